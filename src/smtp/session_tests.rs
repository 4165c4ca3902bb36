use base64::Engine;

use super::*;

struct TestGate;

impl Gate for TestGate {
    fn authenticate(&self, user: &str, password: &str) -> Login {
        if user == "throttled@a.test" {
            return Login::Throttled;
        }
        match (matches!(user, "dr.smith@a.test" | "new.doc@unproofed.test") && password == "right password") {
            true => Login::Granted(DirectAddress::parse(user).unwrap()),
            false => Login::Refused,
        }
    }
    fn hosts_domain(&self, domain: &Domain) -> Result<bool, String> {
        Ok(domain.as_str() == "a.test")
    }
    fn hosts_address(&self, address: &DirectAddress) -> Result<bool, String> {
        Ok(address.to_string() == "dr.smith@a.test")
    }
    fn may_send(&self, sender: &DirectAddress) -> Result<Option<String>, String> {
        Ok((sender.domain().as_str() == "unproofed.test")
            .then(|| "practice Unproofed has not completed identity proofing".into()))
    }
}

fn session(role: Role) -> Session {
    Session::new(config(role))
}

fn config(role: Role) -> SessionConfig {
    SessionConfig {
        role,
        hostname: "mx.a.test".into(),
        max_message_bytes: 1000,
        max_recipients: 3,
        max_auth_failures: 2,
        tls_available: true,
        require_tls: false,
        spool_dir: None,
    }
}

/// Sends `line` (CRLF added) and returns the reply code, or 0 when there is no reply.
fn send(s: &mut Session, line: &str) -> u16 {
    code(&s.line(format!("{line}\r\n").as_bytes(), &TestGate))
}

fn code(step: &Step) -> u16 {
    step.reply.as_deref().map_or(0, |r| r[..3].parse().unwrap())
}

fn plain(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

/// A submission session through EHLO, STARTTLS and EHLO again.
fn after_tls() -> Session {
    let mut s = session(Role::Submission);
    assert_eq!(send(&mut s, "EHLO ehr.a.test"), 250);
    let step = s.line(b"STARTTLS\r\n", &TestGate);
    assert!(matches!(step.action, Action::StartTls));
    s.tls_started();
    assert_eq!(send(&mut s, "EHLO ehr.a.test"), 250);
    s
}

/// A submission session through EHLO, STARTTLS and AUTH.
fn authenticated() -> Session {
    let mut s = after_tls();
    assert_eq!(send(&mut s, &format!("AUTH PLAIN {}", plain("dr.smith@a.test", "right password"))), 235);
    s
}

/// Feeds the DATA lines and the terminating dot; returns the final step.
fn data(s: &mut Session, lines: &[&[u8]]) -> Step {
    assert_eq!(send(s, "DATA"), 354);
    for line in lines {
        let step = s.line(line, &TestGate);
        assert!(step.reply.is_none(), "no reply inside DATA");
    }
    s.line(b".\r\n", &TestGate)
}

#[test]
fn a_submission_is_committed_only_after_tls_auth_and_ownership() {
    let mut s = authenticated();
    assert_eq!(send(&mut s, "MAIL FROM:<dr.smith@a.test> SIZE=200"), 250);
    assert_eq!(send(&mut s, "RCPT TO:<dr.jones@b.test>"), 250);
    let step =
        data(&mut s, &[b"From: Dr Smith <dr.smith@a.test>\r\n", b"To: dr.jones@b.test\r\n", b"\r\n", b"..hi\r\n"]);
    let Action::Commit(envelope) = step.action else { panic!("expected a commit, got {step:?}") };
    assert!(step.reply.is_none(), "no 250 before the commit");
    assert_eq!(
        envelope.data.into_bytes().unwrap(),
        b"From: Dr Smith <dr.smith@a.test>\r\nTo: dr.jones@b.test\r\n\r\n.hi\r\n"
    );
    assert_eq!(envelope.recipients[0].to_string(), "dr.jones@b.test");
    assert_eq!(envelope.authenticated.as_ref().map(|a| a.to_string()).as_deref(), Some("dr.smith@a.test"));
    assert!(s.committed(Ok("42".into())).starts_with("250 "));
    assert!(s.committed(Err("disk full".into())).starts_with("451 "));
}

#[test]
fn a_user_of_a_practice_not_yet_proofed_cannot_send() {
    let mut s = after_tls();
    assert_eq!(send(&mut s, &format!("AUTH PLAIN {}", plain("new.doc@unproofed.test", "right password"))), 235);
    let step = s.line(b"MAIL FROM:<new.doc@unproofed.test>\r\n", &TestGate);
    let reply = step.reply.unwrap();
    assert!(reply.starts_with("550 5.7.1 practice Unproofed has not completed identity proofing"), "{reply}");
    assert_eq!(send(&mut s, "RCPT TO:<dr.jones@b.test>"), 503, "no transaction was opened");
}

#[test]
fn auth_is_offered_and_taken_only_after_tls() {
    let mut s = session(Role::Submission);
    let ehlo = s.line(b"EHLO ehr\r\n", &TestGate).reply.unwrap();
    assert!(ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"), "{ehlo}");
    assert_eq!(send(&mut s, &format!("AUTH PLAIN {}", plain("dr.smith@a.test", "right password"))), 530);
    assert_eq!(send(&mut s, "MAIL FROM:<dr.smith@a.test>"), 530);
    s.line(b"STARTTLS\r\n", &TestGate);
    s.tls_started();
    assert_eq!(send(&mut s, "MAIL FROM:<dr.smith@a.test>"), 503, "EHLO again after TLS");
    let ehlo = s.line(b"EHLO ehr\r\n", &TestGate).reply.unwrap();
    assert!(ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(send(&mut s, "MAIL FROM:<dr.smith@a.test>"), 530, "authentication required");
}

#[test]
fn starttls_with_a_parameter_is_refused_with_501_on_both_roles() {
    for role in [Role::Submission, Role::Backbone] {
        let mut s = session(role);
        assert_eq!(send(&mut s, "EHLO peer"), 250);
        let step = s.line(b"STARTTLS abcd\r\n", &TestGate);
        assert_eq!(code(&step), 501, "{:?}", step.reply);
        assert!(matches!(step.action, Action::Continue), "no handshake after a refused STARTTLS");
        // The plain command, with or without trailing blanks, still starts TLS.
        let step = s.line(b"starttls \r\n", &TestGate);
        assert_eq!(code(&step), 220);
        assert!(matches!(step.action, Action::StartTls));
    }
}

#[test]
fn the_backbone_takes_mail_in_clear_unless_tls_is_required() {
    let mut open = session(Role::Backbone);
    assert_eq!(send(&mut open, "EHLO mx.b.test"), 250);
    assert_eq!(send(&mut open, "MAIL FROM:<dr.jones@b.test>"), 250);

    let mut strict = Session::new(SessionConfig { require_tls: true, ..config(Role::Backbone) });
    assert_eq!(send(&mut strict, "EHLO mx.b.test"), 250);
    let step = strict.line(b"MAIL FROM:<dr.jones@b.test>\r\n", &TestGate);
    assert!(step.reply.as_deref().unwrap().starts_with("530 5.7.0 Must issue a STARTTLS command first"), "{step:?}");
    strict.line(b"STARTTLS\r\n", &TestGate);
    strict.tls_started();
    assert_eq!(send(&mut strict, "EHLO mx.b.test"), 250);
    assert_eq!(send(&mut strict, "MAIL FROM:<dr.jones@b.test>"), 250);
}

#[test]
fn wrong_credentials_are_refused_and_repeated_failures_close() {
    let mut s = after_tls();
    assert_eq!(send(&mut s, &format!("AUTH PLAIN {}", plain("dr.smith@a.test", "wrong"))), 535);
    // AUTH LOGIN, step by step; the second failure closes the connection.
    assert_eq!(send(&mut s, "AUTH LOGIN"), 334);
    assert_eq!(send(&mut s, &base64::engine::general_purpose::STANDARD.encode("dr.smith@a.test")), 334);
    let step =
        s.line(format!("{}\r\n", base64::engine::general_purpose::STANDARD.encode("nope")).as_bytes(), &TestGate);
    assert_eq!(code(&step), 421);
    assert!(matches!(step.action, Action::Close));
}

#[test]
fn auth_login_succeeds_and_the_sender_must_be_the_user() {
    let mut s = after_tls();
    assert_eq!(send(&mut s, "AUTH LOGIN"), 334);
    assert_eq!(send(&mut s, &base64::engine::general_purpose::STANDARD.encode("dr.smith@a.test")), 334);
    assert_eq!(send(&mut s, &base64::engine::general_purpose::STANDARD.encode("right password")), 235);
    assert_eq!(send(&mut s, "MAIL FROM:<dr.evil@a.test>"), 553, "envelope spoofing");
    assert_eq!(send(&mut s, "MAIL FROM:<dr.smith@a.test>"), 250);
    assert_eq!(send(&mut s, "RCPT TO:<dr.jones@b.test>"), 250);
    let step = data(&mut s, &[b"From: dr.evil@a.test\r\n", b"\r\n", b"hi\r\n"]);
    assert_eq!(code(&step), 550, "From header spoofing");
    assert!(matches!(step.action, Action::Continue));
}

#[test]
fn commands_out_of_order_get_503() {
    let mut s = session(Role::Backbone);
    assert_eq!(send(&mut s, "MAIL FROM:<x@b.test>"), 503, "before EHLO");
    send(&mut s, "EHLO peer");
    assert_eq!(send(&mut s, "RCPT TO:<dr.smith@a.test>"), 503, "RCPT before MAIL");
    assert_eq!(send(&mut s, "DATA"), 503, "DATA before MAIL");
    assert_eq!(send(&mut s, "MAIL FROM:<x@b.test>"), 250);
    assert_eq!(send(&mut s, "MAIL FROM:<x@b.test>"), 503, "nested MAIL");
    assert_eq!(send(&mut s, "DATA"), 554, "DATA without recipients");
    assert_eq!(send(&mut s, "RSET"), 250);
    assert_eq!(send(&mut s, "RCPT TO:<dr.smith@a.test>"), 503, "RSET ended the transaction");
    assert_eq!(send(&mut s, "BOGUS"), 500);
    assert_eq!(send(&mut s, "AUTH PLAIN AAAA"), 502, "no AUTH on the backbone");
}

#[test]
fn the_backbone_is_not_an_open_relay() {
    let mut s = session(Role::Backbone);
    send(&mut s, "EHLO peer");
    assert_eq!(send(&mut s, "MAIL FROM:<someone@b.test>"), 250);
    let reply = |s: &mut Session, line: &str, gate: &dyn Gate| s.line(format!("{line}\r\n").as_bytes(), gate).reply;
    let relay = reply(&mut s, "RCPT TO:<victim@elsewhere.test>", &TestGate).unwrap();
    assert!(relay.starts_with("550 5.7.1 Relaying denied"), "{relay}");
    let unknown = reply(&mut s, "RCPT TO:<nobody@a.test>", &TestGate).unwrap();
    assert!(unknown.starts_with("550 5.1.1 No such user"), "{unknown}");
    // A store that cannot be asked is a temporary failure, never an acceptance.
    let failing = reply(&mut s, "RCPT TO:<dr.smith@a.test>", &FailingGate).unwrap();
    assert!(failing.starts_with("451 4.3.0"), "{failing}");
    assert_eq!(send(&mut s, "RCPT TO:<dr.smith@a.test>"), 250);
    let step = data(&mut s, &[b"From: someone@b.test\r\n", SMIME, b"\r\n", b"sealed\r\n"]);
    assert!(matches!(step.action, Action::Commit(_)));
}

const SMIME: &[u8] = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n";

#[test]
fn the_backbone_refuses_what_is_not_s_mime_before_it_is_queued() {
    for (content_type, accepted) in [
        (&b"Content-Type: text/plain\r\n"[..], false),
        (b"", false),
        (b"Content-Type: multipart/mixed; boundary=x\r\n", false),
        (SMIME, true),
        (b"Content-Type: application/x-pkcs7-mime; name=smime.p7m\r\n", true),
    ] {
        let mut s = session(Role::Backbone);
        send(&mut s, "EHLO peer");
        send(&mut s, "MAIL FROM:<x@b.test>");
        send(&mut s, "RCPT TO:<dr.smith@a.test>");
        let step = data(&mut s, &[b"From: x@b.test\r\n", content_type, b"\r\n", b"junk\r\n"]);
        let what = String::from_utf8_lossy(content_type).into_owned();
        if accepted {
            assert!(matches!(step.action, Action::Commit(_)), "{what}");
        } else {
            assert_eq!(code(&step), 554, "{what}");
            assert!(matches!(step.action, Action::Continue), "{what}: nothing to commit");
        }
    }
}

/// A gate whose store cannot be asked.
struct FailingGate;

impl Gate for FailingGate {
    fn authenticate(&self, _: &str, _: &str) -> Login {
        Login::Refused
    }
    fn hosts_domain(&self, _: &Domain) -> Result<bool, String> {
        Err("database is locked".into())
    }
    fn hosts_address(&self, _: &DirectAddress) -> Result<bool, String> {
        Err("database is locked".into())
    }
    fn may_send(&self, _: &DirectAddress) -> Result<Option<String>, String> {
        Err("database is locked".into())
    }
}

#[test]
fn bare_cr_or_lf_in_data_is_refused_and_never_ends_the_data() {
    for smuggled in [&b"one\n"[..], b"two\rthree\r\n"] {
        let mut s = session(Role::Backbone);
        send(&mut s, "EHLO peer");
        send(&mut s, "MAIL FROM:<x@b.test>");
        send(&mut s, "RCPT TO:<dr.smith@a.test>");
        assert_eq!(send(&mut s, "DATA"), 354);
        assert!(s.line(smuggled, &TestGate).reply.is_none());
        // After a bare LF, "." CRLF is not the end of the data: a smuggled command stays data.
        if smuggled.ends_with(b"\n") && !smuggled.ends_with(b"\r\n") {
            assert!(s.line(b".\r\n", &TestGate).reply.is_none());
            assert!(s.line(b"MAIL FROM:<smuggled@b.test>\r\n", &TestGate).reply.is_none());
            assert!(s.in_data());
        }
        let step = s.line(b".\r\n", &TestGate);
        assert_eq!(code(&step), 550, "{step:?}");
        assert!(step.reply.unwrap().contains("5.6.11"));
        assert!(!s.in_data());
    }
}

#[test]
fn size_is_announced_and_enforced() {
    let mut s = session(Role::Backbone);
    let ehlo = s.line(b"EHLO peer\r\n", &TestGate).reply.unwrap();
    assert!(ehlo.contains("SIZE 1000"), "{ehlo}");
    assert_eq!(send(&mut s, "MAIL FROM:<x@b.test> SIZE=5000"), 552);
    send(&mut s, "MAIL FROM:<x@b.test>");
    send(&mut s, "RCPT TO:<dr.smith@a.test>");
    let long = [b'x'; 600];
    let line = [&long[..], b"\r\n"].concat();
    let step = data(&mut s, &[&line, &line]);
    assert_eq!(code(&step), 552);
}

#[test]
fn too_many_recipients_get_452() {
    let mut s = authenticated();
    send(&mut s, "MAIL FROM:<dr.smith@a.test>");
    for i in 0..3 {
        assert_eq!(send(&mut s, &format!("RCPT TO:<r{i}@b.test>")), 250);
    }
    assert_eq!(send(&mut s, "RCPT TO:<r9@b.test>"), 452);
}

#[test]
fn an_overlong_command_line_closes() {
    let mut s = session(Role::Backbone);
    let step = s.line(&[b'A'; 5000], &TestGate);
    assert_eq!(code(&step), 500);
    assert!(matches!(step.action, Action::Close));
}

#[test]
fn a_throttled_login_is_told_to_come_back_later() {
    let mut s = after_tls();
    let step = s.line(format!("AUTH PLAIN {}\r\n", plain("throttled@a.test", "right password")).as_bytes(), &TestGate);
    assert!(step.reply.as_deref().unwrap().starts_with("454 4.7.0"), "{step:?}");
    assert!(s.authenticated.is_none());
}

/// A backbone session that spools into `dir`, taking messages of up to 8 MiB.
fn spooling(dir: &Path) -> Session {
    let mut s = Session::new(SessionConfig {
        role: Role::Backbone,
        hostname: "mx.a.test".into(),
        max_message_bytes: 8 << 20,
        max_recipients: 3,
        max_auth_failures: 2,
        tls_available: true,
        require_tls: false,
        spool_dir: Some(Arc::from(dir)),
    });
    assert_eq!(send(&mut s, "EHLO mx.b.test"), 250);
    assert_eq!(send(&mut s, "MAIL FROM:<dr.jones@b.test>"), 250);
    assert_eq!(send(&mut s, "RCPT TO:<dr.smith@a.test>"), 250);
    s
}

#[test]
fn a_large_message_is_received_into_the_spool_and_committed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spooling(dir.path());
    let line = [b"QUJD".repeat(19).as_slice(), b"\r\n"].concat();
    let mut lines: Vec<&[u8]> = vec![b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n", b"\r\n"];
    lines.extend(std::iter::repeat_n(line.as_slice(), 60_000));
    let step = data(&mut s, &lines);
    let Action::Commit(envelope) = step.action else { panic!("expected a commit, got {step:?}") };
    assert!(envelope.data.spilled(), "4.6 MB stays on disk, not in memory");
    assert_eq!(envelope.data.head().len(), crate::smtp::spool::IN_MEMORY);
    assert_eq!(envelope.data.into_bytes().unwrap(), lines.concat());
}

#[test]
fn a_header_section_beyond_what_stays_in_memory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spooling(dir.path());
    let field = [b"X-Padding: ".as_slice(), &[b'a'; 900], b"\r\n"].concat();
    let mut lines: Vec<&[u8]> = vec![b"Content-Type: application/pkcs7-mime\r\n"];
    lines.extend(std::iter::repeat_n(field.as_slice(), 1_300));
    lines.push(b"\r\n");
    lines.push(b"QUJD\r\n");
    let step = data(&mut s, &lines);
    assert_eq!(code(&step), 552, "{step:?}");
}

#[test]
fn a_spool_that_cannot_be_written_answers_451_and_keeps_the_session() {
    let mut s = spooling(Path::new("/nonexistent/spool"));
    let line = [b"QUJD".repeat(19).as_slice(), b"\r\n"].concat();
    let mut lines: Vec<&[u8]> = vec![b"Content-Type: application/pkcs7-mime\r\n", b"\r\n"];
    lines.extend(std::iter::repeat_n(line.as_slice(), 20_000));
    let step = data(&mut s, &lines);
    assert_eq!(code(&step), 451, "{step:?}");
    assert_eq!(send(&mut s, "MAIL FROM:<dr.jones@b.test>"), 250);
}
