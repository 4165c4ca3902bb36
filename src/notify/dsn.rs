//! Delivery status notifications (RFC 3464, RFC 6522) telling a local sender that a recipient
//! failed for good: `multipart/report; report-type=delivery-status`, from postmaster of the
//! sender's domain, `Action: failed` with a 5.x.x `Status`, the original's Message-ID in
//! `X-Original-Message-ID`, and the original's header block returned (never its content).

use crate::address::DirectAddress;
use crate::clock::rfc5322;
use crate::smime::mime;
use mail_builder::headers::{date::Date, raw::Raw};
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

pub(crate) struct Failure<'a> {
    /// The local sender the DSN goes to.
    pub sender: &'a DirectAddress,
    pub recipient: &'a str,
    /// Enhanced status code, 5.x.x.
    pub status: &'a str,
    pub reason: &'a str,
    /// The peer's SMTP reply, when the failure is one (its Diagnostic-Code is then of type
    /// `smtp`, RFC 3464 §2.3.6; otherwise of our own type, `X-hisp`).
    pub remote_reply: Option<&'a str>,
    /// The original message (only its header block is returned).
    pub original: &'a [u8],
    pub original_message_id: &'a str,
    pub arrived_at: i64,
    /// Our host name (Reporting-MTA).
    pub reporting_mta: &'a str,
}

/// The DSN message, with a Message-ID derived from the original and the recipient (so the same
/// failure always makes the same DSN, and a repeated attempt can be recognised).
pub(crate) fn build(f: &Failure, now: i64) -> Vec<u8> {
    let boundary = format!("dsn-{}", &crate::pki::sha256_hex(f.original_message_id.as_bytes())[..16]);
    let id = crate::pki::sha256_hex(format!("{}\0{}", f.original_message_id, f.recipient).as_bytes());
    let headers_end = mime::body_offset(f.original).unwrap_or(f.original.len());
    let original_headers = String::from_utf8_lossy(&f.original[..headers_end]);
    let subject = mime::Entity::parse(f.original).headers.get("subject").unwrap_or("").replace(['\r', '\n'], " ");
    let reason = f.reason.replace(['\r', '\n'], " ");
    let explanation = format!("Your message to {} could not be delivered.\r\n\r\nReason: {reason}\r\n", f.recipient);
    let diagnostic = match f.remote_reply {
        Some(reply) => format!("smtp; {}", reply.replace(['\r', '\n'], " ")),
        None => format!("X-hisp; {reason}"),
    };
    let fields = format!(
        "Reporting-MTA: dns; {}\r\nArrival-Date: {}\r\n\r\n\
         Final-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: {diagnostic}\r\n",
        f.reporting_mta,
        rfc5322(f.arrived_at),
        f.recipient,
        f.status
    );
    // The header block as it came (8-bit when the original's was).
    let returned_headers = format!("{}\r\n", original_headers.trim_end());
    let encoding = if returned_headers.is_ascii() { "7bit" } else { "8bit" };
    let returned = MimePart::new("text/rfc822-headers", BodyPart::Binary(returned_headers.into_bytes().into()))
        .transfer_encoding(encoding);
    let report = super::report_part("delivery-status", &boundary, explanation, fields, Some(returned));
    let mut message = MessageBuilder::new()
        .header("From", Raw::new(format!("Mail Delivery System <postmaster@{}>", f.sender.domain())))
        .to(f.sender.to_string())
        .subject(format!("Undeliverable: {subject}"))
        .date(Date::new(now))
        .message_id(format!("dsn-{}@{}", &id[..32], f.reporting_mta))
        .header("Auto-Submitted", Raw::new("auto-replied"));
    let original_id = f.original_message_id.replace(['\r', '\n'], " ");
    if !original_id.is_empty() {
        message = message
            .header("X-Original-Message-ID", Raw::new(original_id.clone()))
            .in_reply_to(mime::bare_message_id(&original_id));
    }
    let mut out = Vec::new();
    message.body(report).serialize(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_reports_the_failure_and_returns_only_the_headers() {
        let sender = DirectAddress::parse("dr.smith@a.test").unwrap();
        let original = b"From: dr.smith@a.test\r\nTo: x@b.test\r\nSubject: Referral\r\nMessage-ID: <m1@a.test>\r\n\r\nsecret PHI\r\n";
        let dsn = build(
            &Failure {
                sender: &sender,
                recipient: "x@b.test",
                status: "5.7.1",
                reason: "no usable certificate",
                remote_reply: None,
                original,
                original_message_id: "<m1@a.test>",
                arrived_at: 1_700_000_000,
                reporting_mta: "mx.a.test",
            },
            1_700_000_100,
        );
        let text = String::from_utf8(dsn).unwrap();
        let entity = mime::Entity::parse(text.as_bytes());
        let ct = entity.content_type();
        assert!(ct.is("multipart/report") && ct.param("report-type") == Some("delivery-status"), "{text}");
        assert_eq!(entity.headers.get("from"), Some("Mail Delivery System <postmaster@a.test>"));
        assert_eq!(entity.headers.get("x-original-message-id"), Some("<m1@a.test>"));
        let parts = mime::multipart_parts(entity.body, ct.param("boundary").unwrap()).unwrap();
        assert_eq!(parts.len(), 3);
        let status = String::from_utf8_lossy(parts[1]);
        assert!(status.contains("Action: failed") && status.contains("Status: 5.7.1"), "{status}");
        assert!(status.contains("Final-Recipient: rfc822; x@b.test"), "{status}");
        assert!(status.contains("Diagnostic-Code: X-hisp; no usable certificate"), "{status}");
        assert!(!text.contains("secret PHI"), "the content is never returned");
    }

    #[test]
    fn a_peers_smtp_reply_is_a_diagnostic_code_of_type_smtp() {
        let sender = DirectAddress::parse("dr.smith@a.test").unwrap();
        let refused = crate::failure::Failure::from_reply(550, "5.1.1 No such user", "RCPT");
        let dsn = build(
            &Failure {
                sender: &sender,
                recipient: "x@b.test",
                status: &refused.status.to_string(),
                reason: &refused.public(),
                remote_reply: refused.remote_reply.as_deref(),
                original: b"Subject: x\r\n\r\nbody\r\n",
                original_message_id: "<m1@a.test>",
                arrived_at: 1_700_000_000,
                reporting_mta: "mx.a.test",
            },
            1_700_000_100,
        );
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n"), "{text}");
    }
}
