//! One SMTP server session (RFC 5321, with STARTTLS per RFC 3207 and AUTH per RFC 4954) as an
//! I/O-free state machine: the listener feeds it the lines it reads and carries out what it asks
//! (write a reply, start TLS, commit a message, close). Commands are parsed by `smtp-proto`; the
//! message data is read here, strictly: only CRLF ends a line, so a bare CR or LF can never end the
//! data early (no SMTP smuggling), and a message containing one is refused.

use base64::Engine;
use smtp_proto::{Error as ParseError, Request, AUTH_LOGIN, AUTH_PLAIN};

use std::path::Path;
use std::sync::Arc;

use crate::address::{DirectAddress, Domain};
use crate::failure::{Code, Failure};
use crate::smime::mime;
use crate::smtp::spool::Spool;

/// Which door of the node this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// EHRs submit: TLS, then AUTH, then mail from their own address to any Direct address.
    Submission,
    /// Peer HISPs deliver: mail only for the hosted domains (never a relay).
    Backbone,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub role: Role,
    /// Our host name, in the greeting and EHLO reply.
    pub hostname: String,
    /// The largest message accepted, announced as SIZE.
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    /// Failed AUTH attempts before the connection is closed.
    pub max_auth_failures: u32,
    /// Whether STARTTLS can be offered (the listener has a certificate).
    pub tls_available: bool,
    /// MAIL is refused (530) until STARTTLS: always on submission, on the backbone when the
    /// operator asks (`[server] backbone_require_tls`).
    pub require_tls: bool,
    /// Where message data beyond what stays in memory goes (`spool`); None keeps it in memory.
    pub spool_dir: Option<Arc<Path>>,
}

/// What came of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Login {
    Granted(DirectAddress),
    Refused,
    /// Too many failures for the account or from the client's address: not even checked.
    Throttled,
}

/// What the session needs to know about the node: credentials and hosted names.
pub(crate) trait Gate {
    /// Whether `user` authenticates with `password`.
    fn authenticate(&self, user: &str, password: &str) -> Login;
    /// Errors are temporary (the store could not be asked) and answered with 451.
    fn hosts_domain(&self, domain: &Domain) -> Result<bool, String>;
    fn hosts_address(&self, address: &DirectAddress) -> Result<bool, String>;
    /// Whether an authenticated user may send: None yes, Some(why) no (answered 550 5.7.1 with
    /// the reason: the user's practice has not completed identity proofing).
    fn may_send(&self, sender: &DirectAddress) -> Result<Option<String>, String>;
}

/// Text fit for one reply line: no CR/LF, bounded length.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(400).collect()
}

/// A message the session accepted, to be committed before the 250 goes out.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// None for the null reverse-path (delivery reports).
    pub mail_from: Option<DirectAddress>,
    pub recipients: Vec<DirectAddress>,
    /// The message as received, dot-unstuffed, CRLF line endings.
    pub data: Spool,
    pub authenticated: Option<DirectAddress>,
    pub helo: String,
    pub tls: bool,
}

#[derive(Debug)]
pub(crate) enum Action {
    /// Read the next line.
    Continue,
    /// Write the reply, then start the TLS handshake, then call `tls_started`.
    StartTls,
    /// Write the reply (if any), then close the connection.
    Close,
    /// Commit this message durably, then send the reply `committed` gives.
    Commit(Box<Envelope>),
}

#[derive(Debug)]
pub(crate) struct Step {
    /// The reply to write (CRLF-terminated lines), if any.
    pub reply: Option<String>,
    pub action: Action,
}

impl Step {
    fn reply(text: impl Into<String>) -> Step {
        Step { reply: Some(text.into()), action: Action::Continue }
    }
    fn close(text: impl Into<String>) -> Step {
        Step { reply: Some(text.into()), action: Action::Close }
    }
}

enum State {
    /// Before EHLO/HELO (at the start, and again after STARTTLS).
    Fresh,
    Ready,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword(String),
    Mail,
    Rcpt,
    /// Boxed: the spool's in-memory buffer makes it far larger than the other states.
    Data(Box<DataState>),
}

struct DataState {
    buf: Spool,
    /// The previous line ended with CRLF (so this one starts a line).
    at_line_start: bool,
    /// Why the message will be refused at its end (bare CR/LF, too large); the data is still
    /// read to its end so the session stays in step with the client.
    refused: Option<Failure>,
}

/// Longest command line (RFC 5321 §4.5.3.1.4 says 512; extensions make it longer).
pub(crate) const MAX_COMMAND_LINE: usize = 4096;

struct Transaction {
    mail_from: Option<DirectAddress>,
    recipients: Vec<DirectAddress>,
}

pub(crate) struct Session {
    config: SessionConfig,
    state: State,
    tls: bool,
    helo: String,
    authenticated: Option<DirectAddress>,
    auth_failures: u32,
    transaction: Option<Transaction>,
}

impl Session {
    pub(crate) fn new(config: SessionConfig) -> Session {
        Session {
            config,
            state: State::Fresh,
            tls: false,
            helo: String::new(),
            authenticated: None,
            auth_failures: 0,
            transaction: None,
        }
    }

    pub(crate) fn greeting(&self) -> String {
        format!("220 {} ESMTP hisp\r\n", self.config.hostname)
    }

    pub(crate) fn in_data(&self) -> bool {
        matches!(self.state, State::Data(_))
    }

    /// The handshake finished: RFC 3207 §4.2, forget everything learnt before it.
    pub(crate) fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Fresh;
        self.helo.clear();
        self.authenticated = None;
        self.transaction = None;
    }

    /// The reply to a read that timed out.
    pub(crate) fn timed_out(&self) -> String {
        let what = if self.in_data() { "DATA" } else { "idle" };
        format!("421 4.4.2 {} {what} timeout, closing\r\n", self.config.hostname)
    }

    /// The reply to a client whose session the node closes because it stops.
    pub(crate) fn shutting_down(&self) -> String {
        format!("421 4.3.2 {} Shutting down, try again later\r\n", self.config.hostname)
    }

    /// The reply once the listener tried to commit the accepted message.
    pub(crate) fn committed(&mut self, outcome: Result<String, String>) -> String {
        self.transaction = None;
        self.state = State::Ready;
        match outcome {
            Ok(id) => format!("250 2.0.0 Ok: queued as {id}\r\n"),
            Err(_) => "451 4.3.0 Temporary failure storing the message, try again later\r\n".into(),
        }
    }

    /// Feeds one line as read (with its line ending; a chunk without one was cut at the length
    /// limit).
    pub(crate) fn line(&mut self, line: &[u8], gate: &dyn Gate) -> Step {
        match &mut self.state {
            State::Data(_) => self.data_line(line),
            State::AuthPlain | State::AuthLoginUser | State::AuthLoginPassword(_) => self.auth_response(line, gate),
            _ => self.command(line, gate),
        }
    }

    fn command(&mut self, line: &[u8], gate: &dyn Gate) -> Step {
        if !line.ends_with(b"\n") || line.len() > MAX_COMMAND_LINE {
            return Step::close("500 5.5.2 Line too long, closing\r\n");
        }
        let mut iter = line.iter();
        let request = match Request::parse(&mut iter) {
            Ok(r) => r,
            Err(ParseError::UnknownCommand) => return Step::reply("500 5.5.2 Command unrecognized\r\n"),
            Err(ParseError::InvalidSenderAddress) => return Step::reply("501 5.1.7 Bad sender address syntax\r\n"),
            Err(ParseError::InvalidRecipientAddress) => {
                return Step::reply("501 5.1.3 Bad recipient address syntax\r\n")
            }
            Err(ParseError::UnsupportedParameter { .. }) | Err(ParseError::InvalidParameter { .. }) => {
                return Step::reply("555 5.5.4 Unsupported parameter\r\n")
            }
            Err(_) => return Step::reply("501 5.5.2 Syntax error\r\n"),
        };
        match request {
            Request::Ehlo { host } => self.ehlo(&host, true),
            Request::Helo { host } => self.ehlo(&host, false),
            Request::Lhlo { .. } => Step::reply("500 5.5.1 LHLO is for LMTP\r\n"),
            // RFC 3207 §4: STARTTLS takes no parameters (smtp-proto ignores what follows it).
            Request::StartTls if !line.trim_ascii().eq_ignore_ascii_case(b"STARTTLS") => {
                Step::reply("501 5.5.4 STARTTLS takes no parameters\r\n")
            }
            Request::StartTls => self.starttls(),
            Request::Auth { mechanism, initial_response } => self.auth(mechanism, &initial_response, gate),
            Request::Mail { from } => self.mail(&from.address, from.size, gate),
            Request::Rcpt { to } => self.rcpt(&to.address, gate),
            Request::Data => self.data(),
            Request::Bdat { .. } => Step::reply("502 5.5.1 BDAT is not offered\r\n"),
            Request::Rset => {
                self.transaction = None;
                if !matches!(self.state, State::Fresh) {
                    self.state = State::Ready;
                }
                Step::reply("250 2.0.0 Ok\r\n")
            }
            Request::Noop { .. } => Step::reply("250 2.0.0 Ok\r\n"),
            Request::Quit => Step::close(format!("221 2.0.0 {} closing\r\n", self.config.hostname)),
            Request::Vrfy { .. } => Step::reply("252 2.5.2 Cannot VRFY; send mail and it will be delivered\r\n"),
            Request::Expn { .. } => Step::reply("502 5.5.1 EXPN is not offered\r\n"),
            Request::Help { .. } => Step::reply("214 2.0.0 See RFC 5321\r\n"),
            Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => {
                Step::reply("502 5.5.1 Command not implemented\r\n")
            }
        }
    }

    fn ehlo(&mut self, host: &str, extended: bool) -> Step {
        self.helo = host.to_string();
        self.transaction = None;
        self.state = State::Ready;
        let name = &self.config.hostname;
        if !extended {
            return Step::reply(format!("250 {name}\r\n"));
        }
        let mut lines = vec![
            name.clone(),
            "PIPELINING".into(),
            format!("SIZE {}", self.config.max_message_bytes),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.config.tls_available && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.config.role == Role::Submission && self.tls && self.authenticated.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let last = lines.len() - 1;
        let text: String =
            lines.iter().enumerate().map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' })).collect();
        Step::reply(text)
    }

    fn starttls(&mut self) -> Step {
        if self.tls {
            return Step::reply("503 5.5.1 TLS is already active\r\n");
        }
        if !self.config.tls_available {
            return Step::reply("454 4.7.0 TLS not available\r\n");
        }
        if matches!(self.state, State::Fresh) {
            return Step::reply("503 5.5.1 Send EHLO first\r\n");
        }
        Step { reply: Some("220 2.0.0 Ready to start TLS\r\n".into()), action: Action::StartTls }
    }

    fn auth(&mut self, mechanism: u64, initial: &str, gate: &dyn Gate) -> Step {
        if self.config.role != Role::Submission {
            return Step::reply("502 5.5.1 AUTH is not offered here\r\n");
        }
        if !self.tls {
            return Step::reply("530 5.7.0 Must issue a STARTTLS command first\r\n");
        }
        if matches!(self.state, State::Fresh) {
            return Step::reply("503 5.5.1 Send EHLO first\r\n");
        }
        if self.authenticated.is_some() {
            return Step::reply("503 5.5.1 Already authenticated\r\n");
        }
        if self.transaction.is_some() {
            return Step::reply("503 5.5.1 AUTH is not allowed during a mail transaction\r\n");
        }
        match mechanism {
            AUTH_PLAIN if initial.is_empty() => {
                self.state = State::AuthPlain;
                Step::reply("334 \r\n")
            }
            AUTH_PLAIN if initial == "=" => self.auth_plain(b"", gate),
            AUTH_PLAIN => match decode64(initial) {
                Some(bytes) => self.auth_plain(&bytes, gate),
                None => Step::reply("501 5.5.2 Cannot decode the response\r\n"),
            },
            AUTH_LOGIN if initial.is_empty() => {
                self.state = State::AuthLoginUser;
                Step::reply("334 VXNlcm5hbWU6\r\n")
            }
            AUTH_LOGIN => match decode64(initial).and_then(|b| String::from_utf8(b).ok()) {
                Some(user) => {
                    self.state = State::AuthLoginPassword(user);
                    Step::reply("334 UGFzc3dvcmQ6\r\n")
                }
                None => Step::reply("501 5.5.2 Cannot decode the response\r\n"),
            },
            _ => Step::reply("504 5.5.4 Unrecognized authentication mechanism\r\n"),
        }
    }

    fn auth_response(&mut self, line: &[u8], gate: &dyn Gate) -> Step {
        let state = std::mem::replace(&mut self.state, State::Ready);
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text == "*" {
            return Step::reply("501 5.0.0 Authentication cancelled\r\n");
        }
        let Some(decoded) = decode64(text) else {
            return Step::reply("501 5.5.2 Cannot decode the response\r\n");
        };
        match state {
            State::AuthPlain => self.auth_plain(&decoded, gate),
            State::AuthLoginUser => match String::from_utf8(decoded) {
                Ok(user) => {
                    self.state = State::AuthLoginPassword(user);
                    Step::reply("334 UGFzc3dvcmQ6\r\n")
                }
                Err(_) => Step::reply("501 5.5.2 The user name is not UTF-8\r\n"),
            },
            State::AuthLoginPassword(user) => match String::from_utf8(decoded) {
                Ok(password) => self.auth_check(&user, &password, gate),
                Err(_) => self.auth_failed(),
            },
            _ => Step::reply("503 5.5.1 Bad sequence of commands\r\n"),
        }
    }

    /// RFC 4616: [authzid] NUL authcid NUL passwd; an authzid must equal the authcid.
    fn auth_plain(&mut self, bytes: &[u8], gate: &dyn Gate) -> Step {
        let parts: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
        let [authz, user, password] = parts.as_slice() else {
            return Step::reply("501 5.5.2 Malformed PLAIN response\r\n");
        };
        match (std::str::from_utf8(authz), std::str::from_utf8(user), std::str::from_utf8(password)) {
            (Ok(authz), Ok(user), Ok(password)) if authz.is_empty() || authz.eq_ignore_ascii_case(user) => {
                self.auth_check(user, password, gate)
            }
            _ => self.auth_failed(),
        }
    }

    fn auth_check(&mut self, user: &str, password: &str, gate: &dyn Gate) -> Step {
        match gate.authenticate(user, password) {
            Login::Granted(address) => {
                self.authenticated = Some(address);
                self.state = State::Ready;
                Step::reply("235 2.7.0 Authentication successful\r\n")
            }
            Login::Refused => self.auth_failed(),
            Login::Throttled => {
                let step = self.auth_failed();
                match step.action {
                    Action::Close => step,
                    _ => Step::reply("454 4.7.0 Too many failed logins, try again later\r\n"),
                }
            }
        }
    }

    fn auth_failed(&mut self) -> Step {
        self.state = State::Ready;
        self.auth_failures += 1;
        if self.auth_failures >= self.config.max_auth_failures {
            return Step::close("421 4.7.0 Too many failed authentications, closing\r\n");
        }
        Step::reply("535 5.7.8 Authentication credentials invalid\r\n")
    }

    fn mail(&mut self, address: &str, size: usize, gate: &dyn Gate) -> Step {
        match self.state {
            State::Fresh => return Step::reply("503 5.5.1 Send EHLO first\r\n"),
            State::Ready => {}
            _ => return Step::reply("503 5.5.1 Nested MAIL command\r\n"),
        }
        if (self.config.require_tls || self.config.role == Role::Submission) && !self.tls {
            return Step::reply("530 5.7.0 Must issue a STARTTLS command first\r\n");
        }
        if self.config.role == Role::Submission && self.authenticated.is_none() {
            return Step::reply("530 5.7.0 Authentication required\r\n");
        }
        if size > self.config.max_message_bytes {
            return Step::reply(format!(
                "552 5.3.4 Message size exceeds the limit of {} bytes\r\n",
                self.config.max_message_bytes
            ));
        }
        let mail_from = if address.is_empty() {
            if self.config.role == Role::Submission {
                return Step::reply("553 5.7.1 Submissions need a sender address\r\n");
            }
            None
        } else {
            match DirectAddress::parse(address) {
                Ok(a) => Some(a),
                Err(_) => return Step::reply("553 5.1.7 The sender is not a valid Direct address\r\n"),
            }
        };
        if self.config.role == Role::Submission && mail_from != self.authenticated {
            return Step::reply("553 5.7.1 Sender address is not owned by the authenticated user\r\n");
        }
        if let (Role::Submission, Some(sender)) = (self.config.role, &mail_from) {
            match gate.may_send(sender) {
                Ok(None) => {}
                Ok(Some(why)) => return Step::reply(format!("550 5.7.1 {}\r\n", one_line(&why))),
                Err(_) => return Step::reply("451 4.3.0 Temporary failure checking the sender, try again later\r\n"),
            }
        }
        self.transaction = Some(Transaction { mail_from, recipients: Vec::new() });
        self.state = State::Mail;
        Step::reply("250 2.1.0 Ok\r\n")
    }

    fn rcpt(&mut self, address: &str, gate: &dyn Gate) -> Step {
        if !matches!(self.state, State::Mail | State::Rcpt) {
            return Step::reply("503 5.5.1 Need MAIL before RCPT\r\n");
        }
        let Ok(recipient) = DirectAddress::parse(address) else {
            return Step::reply("501 5.1.3 The recipient is not a valid Direct address\r\n");
        };
        if self.config.role == Role::Backbone {
            // A hosted address is on a hosted domain (the store keeps no address without its
            // domain): the domain is asked only to tell the two refusals apart.
            let hosted = match gate.hosts_address(&recipient) {
                Ok(true) => Ok(()),
                Ok(false) => match gate.hosts_domain(recipient.domain()) {
                    Ok(false) => Err("550 5.7.1 Relaying denied: not a domain hosted here\r\n"),
                    Ok(true) => Err("550 5.1.1 No such user here\r\n"),
                    Err(_) => Err("451 4.3.0 Temporary failure looking up the recipient\r\n"),
                },
                Err(_) => Err("451 4.3.0 Temporary failure looking up the recipient\r\n"),
            };
            if let Err(refusal) = hosted {
                return Step::reply(refusal);
            }
        }
        let transaction = self.transaction.as_mut().expect("MAIL opened the transaction");
        if transaction.recipients.len() >= self.config.max_recipients {
            return Step::reply("452 4.5.3 Too many recipients\r\n");
        }
        if !transaction.recipients.contains(&recipient) {
            transaction.recipients.push(recipient);
        }
        self.state = State::Rcpt;
        Step::reply("250 2.1.5 Ok\r\n")
    }

    fn data(&mut self) -> Step {
        match self.state {
            State::Rcpt => {}
            State::Mail => return Step::reply("554 5.5.1 No valid recipients\r\n"),
            _ => return Step::reply("503 5.5.1 Need RCPT before DATA\r\n"),
        }
        let buf = Spool::new(self.config.spool_dir.clone());
        self.state = State::Data(Box::new(DataState { buf, at_line_start: true, refused: None }));
        Step::reply("354 End data with <CR><LF>.<CR><LF>\r\n")
    }

    fn data_line(&mut self, line: &[u8]) -> Step {
        let max = self.config.max_message_bytes;
        let State::Data(data) = &mut self.state else { unreachable!("called in the DATA state") };
        if data.at_line_start && line == b".\r\n" {
            let State::Data(data) = std::mem::replace(&mut self.state, State::Ready) else { unreachable!() };
            return self.end_of_data(*data);
        }
        let complete = line.ends_with(b"\n");
        // Only CRLF ends a line: a LF without CR before it, or a CR not followed by LF, is refused.
        let body = if complete { &line[..line.len() - 1] } else { line };
        let bare_lf = complete && !body.ends_with(b"\r");
        let text = if complete && !bare_lf { &body[..body.len() - 1] } else { body };
        let bare_cr = text.contains(&b'\r');
        if bare_lf || bare_cr {
            data.refused.get_or_insert_with(|| {
                Failure::permanent(Code::BARE_LINE_END, "Bare CR or LF in the message data is not allowed")
            });
        }
        if data.refused.is_none() {
            let unstuffed = if data.at_line_start && line.first() == Some(&b'.') { &line[1..] } else { line };
            if data.buf.len() + unstuffed.len() > max {
                data.refused =
                    Some(Failure::permanent(Code::TOO_BIG, "Message size exceeds the limit").with_reply(552));
                data.buf = Spool::new(None);
            } else if let Err(e) = data.buf.push(unstuffed) {
                tracing::error!("smtp: cannot spool a message being received: {e}");
                data.refused = Some(Failure::temporary(Code::SYSTEM, "The message could not be kept, try again later"));
                data.buf = Spool::new(None);
            }
        }
        data.at_line_start = complete && !bare_lf;
        Step { reply: None, action: Action::Continue }
    }

    /// Refuses the message being received, for a reason of the server's (its data is dropped and
    /// the rest of it read and discarded; the client gets the reason at its end).
    pub(crate) fn refuse_data(&mut self, why: Failure) {
        if let State::Data(data) = &mut self.state {
            data.refused.get_or_insert(why);
            data.buf = Spool::new(None);
        }
    }

    fn end_of_data(&mut self, data: DataState) -> Step {
        let transaction = self.transaction.take().expect("DATA follows MAIL");
        if let Some(why) = data.refused {
            return Step::reply(why.reply_line());
        }
        // The checks below, and the intake, read the header section from what stayed in memory.
        if data.buf.spilled() && memchr::memmem::find(data.buf.head(), b"\r\n\r\n").is_none() {
            return Step::reply("552 5.3.4 The header section is too large\r\n");
        }
        if self.config.role == Role::Backbone {
            // Peers send Direct messages, which are S/MIME-enveloped: anything else is refused
            // now, before it takes room in the queue.
            let ct = mime::Entity::parse(data.buf.head()).content_type();
            if !(ct.is("application/pkcs7-mime") || ct.is("application/x-pkcs7-mime")) {
                return Step::reply(
                    "554 5.6.0 Only S/MIME messages (application/pkcs7-mime) are accepted from peer HISPs\r\n",
                );
            }
        }
        if self.config.role == Role::Submission {
            // The From header must be the authenticated user's own address, as the envelope is.
            let headers = mime::Entity::parse(data.buf.head()).headers;
            let from: Vec<String> = headers.all("from").flat_map(mime::addresses).collect();
            let owned = matches!(from.as_slice(), [one] if DirectAddress::parse(one).ok() == self.authenticated);
            if !owned {
                return Step::reply("550 5.7.1 The From header must be the authenticated user's own address\r\n");
            }
        }
        let envelope = Envelope {
            mail_from: transaction.mail_from,
            recipients: transaction.recipients,
            data: data.buf,
            authenticated: self.authenticated.clone(),
            helo: self.helo.clone(),
            tls: self.tls,
        };
        Step { reply: None, action: Action::Commit(Box::new(envelope)) }
    }
}

fn decode64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
