//! One failure for delivery and refusals: temporary or permanent, with its SMTP reply code (RFC
//! 5321 §4.2) and enhanced status code (RFC 3463), the text a peer or sender may see, and the
//! detail only the log and the operator's queue listing keep. Whether a recipient is retried or
//! bounced, and what a peer is answered, follow from its class (4 or 5), never from its words.
//! Each source builds its failures in one place: a peer's SMTP reply and I/O here, the store,
//! discovery, trust and S/MIME in their own modules (`failure()` on their error types).

use std::fmt;

/// The subject and detail of an enhanced status code (RFC 3463 §3); its class (4 or 5) comes
/// from whether the failure is temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(u16, u16);

impl Code {
    /// X.0.0: other or undefined status.
    pub const OTHER: Code = Code(0, 0);
    /// X.1.1: bad destination mailbox address (no certificate is published for it).
    pub const NO_SUCH_ADDRESS: Code = Code(1, 1);
    /// X.1.3: bad destination mailbox address syntax.
    pub const BAD_ADDRESS: Code = Code(1, 3);
    /// X.3.0: other or undefined mail system status (our own store, our own keys).
    pub const SYSTEM: Code = Code(3, 0);
    /// X.3.1: mail system full.
    pub const FULL: Code = Code(3, 1);
    /// X.3.4: message too big for system.
    pub const TOO_BIG: Code = Code(3, 4);
    /// X.4.2: bad connection.
    pub const CONNECTION: Code = Code(4, 2);
    /// X.4.3: directory server failure (DNS, LDAP).
    pub const DIRECTORY: Code = Code(4, 3);
    /// X.4.4: unable to route.
    pub const ROUTING: Code = Code(4, 4);
    /// X.4.7: delivery time expired.
    pub const EXPIRED: Code = Code(4, 7);
    /// X.6.0: other or undefined media error (a message that cannot be read or sealed).
    pub const MEDIA: Code = Code(6, 0);
    /// X.6.11: a bare CR or LF in the data, as servers answer SMTP smuggling attempts (not
    /// among RFC 3463's codes; kept as clients have seen it).
    pub const BARE_LINE_END: Code = Code(6, 11);
    /// X.7.0: other or undefined security status (revocation that cannot be checked yet).
    pub const SECURITY: Code = Code(7, 0);
    /// X.7.1: delivery not authorized, message refused (untrusted, unsigned, not ours to open).
    pub const REFUSED: Code = Code(7, 1);
}

/// An enhanced status code: class.subject.detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    class: u8,
    code: Code,
}

impl Status {
    /// Reads "4.1.1" or "5.7.1" (class 4 or 5, subject and detail of 1 to 3 digits).
    pub fn parse(text: &str) -> Option<Status> {
        let mut parts = text.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        let number = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        if parts.next().is_some() || !number(subject) || !number(detail) {
            return None;
        }
        let class = match class {
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        Some(Status { class, code: Code(subject.parse().ok()?, detail.parse().ok()?) })
    }

    pub fn is_temporary(self) -> bool {
        self.class == 4
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.code.0, self.code.1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The SMTP reply code: 4xx when temporary, 5xx when permanent.
    pub reply: u16,
    pub status: Status,
    /// What a peer or the sender may see.
    pub text: String,
    /// What only the log and the operator see (empty when the text says it all).
    pub detail: String,
    /// The peer's SMTP reply as it came ("550 5.1.1 No such user"), when the failure is one: a
    /// DSN's Diagnostic-Code then has the type `smtp` (RFC 3464 §2.3.6).
    pub remote_reply: Option<String>,
}

impl Failure {
    /// A failure that may clear by itself: retried (451 with `code` in class 4).
    pub fn temporary(code: Code, text: impl Into<String>) -> Failure {
        Failure {
            reply: 451,
            status: Status { class: 4, code },
            text: text.into(),
            detail: String::new(),
            remote_reply: None,
        }
    }

    /// A failure that will not clear by itself: bounced (550 with `code` in class 5).
    pub fn permanent(code: Code, text: impl Into<String>) -> Failure {
        Failure {
            reply: 550,
            status: Status { class: 5, code },
            text: text.into(),
            detail: String::new(),
            remote_reply: None,
        }
    }

    /// Our own trouble (the store, our keys, our configuration), which may clear: temporary;
    /// a peer or sender sees only that there was a local error, the log keeps `detail`.
    pub fn local(detail: impl fmt::Display) -> Failure {
        Failure::temporary(Code::SYSTEM, "local error in processing").with_detail(detail)
    }

    /// The same failure answered with another reply code of its class (452 for a full system, 552
    /// for a message too big, 554 for a transaction refused).
    pub fn with_reply(self, reply: u16) -> Failure {
        debug_assert_eq!(u16::from(self.status.class), reply / 100, "a reply code of the failure's class");
        Failure { reply, ..self }
    }

    /// The same failure with what the log should know besides its text.
    pub fn with_detail(self, detail: impl fmt::Display) -> Failure {
        Failure { detail: detail.to_string(), ..self }
    }

    /// A peer's reply other than the one expected, to the command `during`: temporary when it is
    /// 4xx, permanent otherwise; its enhanced code when the text starts with one of its class.
    pub fn from_reply(code: u16, text: &str, during: &str) -> Failure {
        let temporary = (400..500).contains(&code);
        let class = if temporary { 4 } else { 5 };
        let said = text.split_whitespace().next().and_then(Status::parse).filter(|s| s.class == class);
        let status = said.unwrap_or(Status { class, code: Code::OTHER });
        let reply = if (400..600).contains(&code) { code } else { 554 };
        Failure {
            reply,
            status,
            text: format!("{during}: {code} {text}"),
            detail: String::new(),
            remote_reply: Some(format!("{code} {text}")),
        }
    }

    /// Talking to a peer failed (`during` the command named): temporary, a bad connection.
    pub fn from_io(during: &str, e: &std::io::Error) -> Failure {
        Failure::temporary(Code::CONNECTION, format!("{during}: {e}"))
    }

    pub fn is_temporary(&self) -> bool {
        self.status.is_temporary()
    }

    /// The status and text, as a peer or the sender may see them: "5.7.1 refused (...)".
    pub fn public(&self) -> String {
        format!("{} {}", self.status, self.text)
    }

    /// The SMTP reply line that refuses with this failure, CRLF included.
    pub fn reply_line(&self) -> String {
        format!("{} {} {}\r\n", self.reply, self.status, self.text)
    }
}

/// The status, the text and the detail: what the log and the queue listing keep.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.text)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_reply_is_temporary_by_its_code_and_keeps_an_enhanced_code_of_its_class() {
        let table: &[(u16, &str, bool, &str, u16)] = &[
            (550, "5.1.1 no such user", false, "5.1.1", 550),
            (451, "4.3.0 try later", true, "4.3.0", 451),
            (421, "closing", true, "4.0.0", 421),
            // A code of the other class in the text is not believed.
            (550, "4.2.2 mailbox full", false, "5.0.0", 550),
            (452, "5.3.4 too big", true, "4.0.0", 452),
            // A reply that is neither 4xx nor 5xx where another was expected is permanent.
            (250, "ok", false, "5.0.0", 554),
            (552, "5.3.4.1 not a code", false, "5.0.0", 552),
        ];
        for (code, text, temporary, status, reply) in table {
            let f = Failure::from_reply(*code, text, "RCPT");
            assert_eq!(f.is_temporary(), *temporary, "{code} {text}");
            assert_eq!((f.status.to_string().as_str(), f.reply), (*status, *reply), "{code} {text}");
            assert_eq!(f.text, format!("RCPT: {code} {text}"));
        }
    }

    #[test]
    fn only_class_4_and_5_codes_of_three_parts_read() {
        assert_eq!(Status::parse("5.7.1").map(|s| s.to_string()), Some("5.7.1".into()));
        assert_eq!(Status::parse("4.4.7").map(|s| s.is_temporary()), Some(true));
        for bad in ["2.0.0", "5.1", "5.1.1.1", "5..1", "5.1.1000", "x.1.1", "", "5.1.a"] {
            assert_eq!(Status::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_log_keeps_the_detail_and_a_peer_sees_the_status_and_text_only() {
        let f = Failure::temporary(Code::SYSTEM, "local error in processing").with_detail("disk I/O error");
        assert_eq!(f.to_string(), "4.3.0 local error in processing: disk I/O error");
        assert_eq!(f.public(), "4.3.0 local error in processing");
        assert_eq!(f.reply_line(), "451 4.3.0 local error in processing\r\n");
        let full = Failure::temporary(Code::FULL, "Too much mail in progress").with_reply(452);
        assert_eq!(full.reply_line(), "452 4.3.1 Too much mail in progress\r\n");
    }
}
