//! `hisp serve` end to end on loopback: swaks as the EHR (STARTTLS + AUTH) submitting to node A,
//! which discovers node B's certificate in DNS (knot), seals, and delivers to B's backbone; B opens
//! the message and delivers it into the addressee's Maildir.

mod common;

use common::network::*;
use common::node::*;
use common::servers::{self, free_port};
use common::*;

#[test]
fn an_ehr_submission_travels_from_a_to_the_maildir_at_b() {
    let n = network();
    let referral = "From: Dr. Smith <dr.smith@a.test>\r\nTo: Dr. Jones <dr.jones@b.test>\r\nSubject: Referral\r\n\
         X-Direct-Verified-Sender: forged@evil.test\r\nMessage-ID: <e2e-1@a.test>\r\n\r\nPlease see Ms. Doe.\r\n";
    let sent = submit(&n, referral);
    assert_eq!(sent.status, 0, "swaks: {} {}", sent.text(), sent.stderr);
    let delivered = mailbox(&n.b, "b.test", "dr.jones", 1);
    let mail = &delivered[0];
    assert!(mail.contains("Please see Ms. Doe."), "{mail}");
    assert!(mail.starts_with("X-Direct-Verified-Sender: dr.smith@a.test;"), "{mail}");
    assert!(mail.contains("revocation=good"), "{mail}");
    assert!(!mail.contains("forged@evil.test"), "an incoming copy of the header is removed: {mail}");

    // Each node records the outcome just after the fact: wait for the record.
    wait_status_of(&n.a, "<e2e-1@a.test>", "sent");
    let b_entry = wait_status_of(&n.b, "<e2e-1@a.test>", "delivered");
    assert_eq!(b_entry["flow"], "inbound");
    // And each logs one line for it, as an operator reads a mail server's log (never the subject).
    let logged = |node: &Node, status: &str| {
        node.serve_log()
            .lines()
            .filter(|l| l.contains("<e2e-1@a.test>") && l.contains("<dr.smith@a.test> -> <dr.jones@b.test>: "))
            .filter(|l| l.contains(&format!(": {status}, attempt 1,")))
            .count()
    };
    assert_eq!(logged(&n.a, "sent"), 1, "{}", n.a.serve_log());
    assert_eq!(logged(&n.b, "delivered"), 1, "{}", n.b.serve_log());
    assert!(!n.b.serve_log().contains("Subject") && !n.b.serve_log().contains("Referral"), "{}", n.b.serve_log());
    // What crossed the network was S/MIME: B's queue holds no plaintext either (KEK-encrypted).
    let raw = n.b.sql("SELECT sealed_data FROM queue_messages");
    assert!(!raw[0].windows(8).any(|w| w == b"Ms. Doe."), "queued copies are encrypted at rest");

    // A recipient with no certificate anywhere fails at once, and the sender gets one DSN.
    let unknown = submit_to(
        n.a_submission,
        "nobody@b.test",
        "From: dr.smith@a.test\r\nTo: nobody@b.test\r\nSubject: Lost\r\nMessage-ID: <lost-1@a.test>\r\n\r\nPHI here\r\n",
    );
    assert_eq!(unknown.status, 0, "accepted: the failure comes later, as a DSN");
    // dr.smith's mailbox also gets the processed MDN for the referral (tests/notify.rs).
    let dsn = wait_for_mail(&n.a, "a.test", "dr.smith", |m| m.contains("report-type=delivery-status"));
    assert_eq!(dsn.len(), 1, "one DSN");
    let dsn = &dsn[0];
    assert!(
        dsn.contains("report-type=delivery-status") && dsn.contains("From: Mail Delivery System <postmaster@a.test>"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed") && dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(dsn.contains("X-Original-Message-ID: <lost-1@a.test>") && !dsn.contains("PHI here"), "{dsn}");

    // A keeps its SMTP session to B open between deliveries; when B restarts, that session is dead
    // and the next delivery opens a new one.
    let mut n = n;
    n.daemons.remove(1).kill9();
    n.daemons.push(n.b.serve(n.b_backbone));
    let again = submit(&n, "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: Again\r\nMessage-ID: <e2e-2@a.test>\r\n\r\nSecond.\r\n");
    assert_eq!(again.status, 0);
    let delivered = mailbox(&n.b, "b.test", "dr.jones", 2);
    assert!(delivered.iter().any(|m| m.contains("Second.")), "{delivered:?}");
}

#[test]
fn a_trust_change_made_with_the_cli_applies_to_the_next_message_of_a_running_node() {
    // One worker at B: the one that opens every message (and remembers the anchors it read).
    let n =
        network_with(|node, config| if node == "b" { config.replace("workers = 2", "workers = 1") } else { config });
    let referral = |id: &str| {
        format!("From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: R\r\nMessage-ID: <{id}@a.test>\r\n\r\nBody {id}.\r\n")
    };
    assert_eq!(submit(&n, &referral("trusted-1")).status, 0);
    wait_status_of(&n.b, "<trusted-1@a.test>", "delivered");

    // B's operator stops trusting A's CA while B runs (B's workers keep its anchors in memory).
    let pem = std::fs::read(n.a.files.path("dev-ca.pem")).unwrap();
    let digest = openssl::x509::X509::from_pem(&pem).unwrap().digest(openssl::hash::MessageDigest::sha256()).unwrap();
    let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    n.b.ok(&["anchor", "remove", "--domain", "b.test", &sha256]);
    assert_eq!(submit(&n, &referral("untrusted-2")).status, 0);
    let refused = wait_status_of(&n.b, "<untrusted-2@a.test>", "failed");
    let error = refused["recipients"][0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("refused"), "{refused}");

    // And trusting it again applies as promptly.
    n.b.ok(&["anchor", "add", &n.a.files.p("dev-ca.pem"), "--domain", "b.test", "--incoming", "--outgoing"]);
    assert_eq!(submit(&n, &referral("trusted-3")).status, 0);
    wait_status_of(&n.b, "<trusted-3@a.test>", "delivered");
    let delivered = mailbox(&n.b, "b.test", "dr.jones", 2);
    assert!(delivered.iter().all(|m| !m.contains("Body untrusted-2.")), "{delivered:?}");
}

#[test]
fn a_finished_message_leaves_the_queue_after_its_keeping_time() {
    let keep_one_second = |node: &str, config: String| {
        if node == "b" {
            config.replace("retry_max_secs = 2\n", "retry_max_secs = 2\nkeep_finished_secs = 1\n")
        } else {
            config
        }
    };
    let n = network_with(keep_one_second);
    let referral =
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: R\r\nMessage-ID: <kept-1@a.test>\r\n\r\nBody.\r\n";
    assert_eq!(submit(&n, referral).status, 0);
    wait_status_of(&n.b, "<kept-1@a.test>", "delivered");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // B's queue held the referral and the MDN it sent back: both go, encrypted copies and all.
    while !n.b.sql("SELECT sealed_data FROM queue_messages").is_empty() {
        assert!(std::time::Instant::now() < deadline, "still queued at B: {}", node_queue(&n.b));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!node_queue(&n.b).contains("kept-1@a.test"));
    // Delivered once, and still recorded as delivered (the mailbox record is not the queue's).
    assert_eq!(mailbox(&n.b, "b.test", "dr.jones", 1).len(), 1);
    // A, which keeps finished messages for the default week, still shows it.
    assert!(node_queue(&n.a).contains("kept-1@a.test"));
}

/// A plain-text SMTP client on loopback, one reply at a time.
struct Conversation {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl Conversation {
    /// Connects; the greeting.
    fn open(port: u16) -> (Conversation, String) {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut c = Conversation { reader: std::io::BufReader::new(stream.try_clone().unwrap()), writer: stream };
        let greeting = c.reply();
        (c, greeting)
    }

    /// Sends `chunk` as given (nothing if empty) without reading. A connection the server has
    /// closed shows in the reply that follows, as "(closed)".
    fn send(&mut self, chunk: &[u8]) {
        use std::io::Write;
        let _ = self.writer.write_all(chunk);
    }

    /// Sends `chunk` and reads the reply.
    fn say(&mut self, chunk: &[u8]) -> String {
        self.send(chunk);
        self.reply()
    }

    /// The next reply (all its lines), or "(closed)".
    fn reply(&mut self) -> String {
        use std::io::BufRead;
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return if reply.is_empty() { "(closed)".to_string() } else { reply };
            }
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }
}

/// A plain-text SMTP conversation: sends each chunk as given and returns the reply to each (the
/// greeting first). An empty chunk only reads.
fn talk(port: u16, chunks: &[&[u8]]) -> Vec<String> {
    let (mut c, greeting) = Conversation::open(port);
    std::iter::once(greeting).chain(chunks.iter().map(|chunk| c.say(chunk))).collect()
}

fn codes(replies: &[String]) -> Vec<&str> {
    replies.iter().map(|r| r.get(..3).unwrap_or(r)).collect()
}

/// The SMTP edge cases of the ONC Edge Testing Tool, against the running daemons.
#[test]
fn smtp_edges_are_refused_as_the_edge_tests_expect() {
    let n = network();
    let queued_at_b = || n.b.sql("SELECT count(*) FROM queue_messages")[0].clone();
    let none = queued_at_b();

    // Wrong credentials, after TLS.
    let wrong = with_password(n.a_submission, "wrong", &["--to", "dr.jones@b.test"]);
    assert_ne!(wrong.status, 0);
    // AUTH is not even offered before STARTTLS; mail without it is refused.
    let plain = talk(
        n.a_submission,
        &[b"EHLO ehr\r\n", b"AUTH PLAIN AGRyLnNtaXRoQGEudGVzdAB4\r\n", b"MAIL FROM:<dr.smith@a.test>\r\n"],
    );
    assert!(!plain[1].contains("AUTH"), "{}", plain[1]);
    assert_eq!(codes(&plain)[2..], ["530", "530"]);

    // Sender spoofing: authenticated as dr.smith, sending as someone else.
    let spoof = as_dr_smith(n.a_submission, &["--from", "dr.jones@b.test", "--to", "dr.jones@b.test"]);
    assert_ne!(spoof.status, 0, "a spoofed envelope sender is refused");
    let spoof_header = as_dr_smith(
        n.a_submission,
        &["--from", "dr.smith@a.test", "--to", "dr.jones@b.test", "--h-From", "dr.jones@b.test"],
    );
    assert_ne!(spoof_header.status, 0, "a spoofed From header is refused");

    // Open relay attempts on the backbone; commands out of order.
    let relay = talk(
        n.b_backbone,
        &[
            b"RCPT TO:<dr.jones@b.test>\r\n",
            b"EHLO peer\r\n",
            b"DATA\r\n",
            b"MAIL FROM:<someone@a.test>\r\n",
            b"RCPT TO:<victim@elsewhere.test>\r\n",
            b"RCPT TO:<nobody@b.test>\r\n",
            b"MAIL FROM:<again@a.test>\r\n",
        ],
    );
    assert_eq!(codes(&relay), ["220", "503", "250", "503", "250", "550", "550", "503"]);

    // Bare LF in DATA: refused, and a LF.LF does not end the data.
    let smuggle = talk(
        n.b_backbone,
        &[
            b"EHLO peer\r\n",
            b"MAIL FROM:<someone@a.test>\r\n",
            b"RCPT TO:<dr.jones@b.test>\r\n",
            b"DATA\r\n",
            b"Subject: x\r\n\r\nline\n.\nMAIL FROM:<smuggled@a.test>\r\n.\r\n",
        ],
    );
    assert_eq!(codes(&smuggle)[4..], ["354", "550"], "{smuggle:?}");
    assert_eq!(queued_at_b(), none, "nothing refused is queued");

    // Size: announced, and a larger declared size refused.
    let size = talk(n.b_backbone, &[b"EHLO peer\r\n", b"MAIL FROM:<someone@a.test> SIZE=2000000\r\n"]);
    assert!(size[1].contains("SIZE 1000000"), "{}", size[1]);
    assert_eq!(codes(&size)[2], "552");

    // STARTTLS takes no parameters (RFC 3207 §4): 501, and the session stays in clear.
    for port in [n.a_submission, n.b_backbone] {
        let starttls = talk(port, &[b"EHLO peer\r\n", b"STARTTLS abcd\r\n", b"NOOP\r\n"]);
        assert_eq!(codes(&starttls)[2..], ["501", "250"], "{starttls:?}");
    }

    // Idle timeout: the server says so and closes.
    let idle = talk(n.b_backbone, &[b""]);
    assert!(idle[1].starts_with("421"), "{idle:?}");
}

/// Node A is killed (SIGKILL) while an EHR is submitting, then restarted: every message A accepted
/// arrives in B's mailbox exactly once.
#[test]
fn accepted_mail_survives_kill_9_and_is_delivered_exactly_once() {
    let mut n = network();
    let total = 12;
    let mut accepted = Vec::new();
    for i in 0..total {
        if i == total / 2 {
            n.daemons.remove(0).kill9();
            // Down: submissions are refused, never half-accepted.
            assert_ne!(submit(&n, &message_number(i)).status, 0);
            n.daemons.insert(0, n.a.serve(n.a_submission));
        }
        if submit(&n, &message_number(i)).status == 0 {
            accepted.push(format!("<load-{i}@a.test>"));
        }
        if i == total / 2 + 1 {
            // Kill again with mail certainly in the queue or in flight.
            n.daemons.remove(0).kill9();
            n.daemons.insert(0, n.a.serve(n.a_submission));
        }
    }
    assert!(accepted.len() >= total - 1, "{accepted:?}");
    let mail = mailbox(&n.b, "b.test", "dr.jones", accepted.len());
    // Give a duplicate the time to show up, were one coming.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mail = if mail.len() == accepted.len() { mailbox(&n.b, "b.test", "dr.jones", accepted.len()) } else { mail };
    assert_eq!(mail.len(), accepted.len(), "no message delivered twice");
    for id in &accepted {
        assert_eq!(mail.iter().filter(|m| m.contains(id.as_str())).count(), 1, "{id} exactly once");
    }
}

fn message_number(i: usize) -> String {
    format!(
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: load {i}\r\nMessage-ID: <load-{i}@a.test>\r\n\r\nbody {i}\r\n"
    )
}

/// A node publishes itself: CERT, MX and A records in DNS (asked with kdig), and its development
/// CA's certificate and CRL over HTTP; `hisp discover` against the node alone finds and trusts its
/// certificate, and sees the revocation once the CA revokes it.
#[test]
fn a_node_publishes_its_certificates_in_dns_and_its_ca_over_http() {
    let (dns, http, backbone) = (free_port(), free_port(), free_port());
    let node = Node::with_config(&format!(
        "[ca]\nbase_url = \"http://127.0.0.1:{http}\"\n\
         [server]\nhostname = \"mx.a.test\"\nsubmission = \"\"\nbackbone = \"127.0.0.1:{backbone}\"\nhttp = \"127.0.0.1:{http}\"\n\
         [dns_server]\nlisten = \"127.0.0.1:{dns}\"\n"
    ));
    node.ok(&["domain", "add", "a.test"]);
    node.ok(&["proofing", "approve", "a.test", "--out-of-band", "--reason", "test practice"]);
    node.ok(&["address", "add", "dr.smith@a.test"]);
    node.ok(&["ca", "init"]);
    node.ok(&["ca", "export", "--out", &node.files.p("ca.pem")]);
    node.ok(&["anchor", "add", &node.files.p("ca.pem"), "--domain", "a.test", "--incoming", "--outgoing"]);
    node.ok(&["cert", "issue", "dr.smith@a.test"]);
    node.ok(&["cert", "issue", "a.test", "--bits", "4096"]);
    node.ok(&["cert", "issue", "a.test", "--bits", "4096", "--days", "30"]);
    let _daemon = node.serve(backbone);
    let kdig = |args: &[&str]| {
        let port = format!("-p{dns}");
        let mut all = vec!["@127.0.0.1", port.as_str(), "+norecurse"];
        all.extend_from_slice(args);
        run("kdig", &all, None, &[]).ok().text()
    };
    let mx = kdig(&["a.test", "MX"]);
    assert!(mx.contains("NOERROR") && mx.contains("10 mx.a.test."), "{mx}");
    assert!(kdig(&["mx.a.test", "A"]).contains("127.0.0.1"));
    let cert = kdig(&["+tcp", "dr.smith.a.test", "CERT"]);
    assert!(cert.contains("CERT\t1 0 0 MII"), "a PKIX (type 1) record of DER: {cert}");
    // Two 4096-bit certificates do not fit 512 bytes: truncated over UDP, whole over TCP.
    let udp = kdig(&["+notcp", "+noedns", "+ignore", "a.test", "CERT"]);
    assert!(udp.contains(" tc"), "{udp}");
    let whole = kdig(&["+tcp", "a.test", "CERT"]);
    assert_eq!(whole.matches("CERT\t1 0 0 MII").count(), 2, "the domain-bound certificates: {whole}");
    assert!(kdig(&["nobody.a.test", "CERT"]).contains("NXDOMAIN"));
    assert!(kdig(&["example.org", "A"]).contains("REFUSED"), "not authoritative for other names");

    // Discovery against the node alone: its own DNS and its own CA publishing (CRL included).
    let dns_server = format!("127.0.0.1:{dns}");
    let discover = || {
        hisp(
            &["--json", "discover", "dr.smith@a.test", "--anchor", &node.files.p("ca.pem"), "--dns", &dns_server],
            None,
            &[],
        )
    };
    let found = discover();
    assert_eq!(found.status, 0, "{}", found.text());
    assert_eq!(found.json()["step"], "dns-address");
    let sha = found.json()["selected"][0].as_str().unwrap().to_string();
    // A message signed with that certificate opens (the CRL comes from the node's HTTP publisher)...
    let msg =
        node.files.write("m.eml", b"From: dr.smith@a.test\r\nTo: postmaster@a.test\r\nSubject: x\r\n\r\nhello\r\n");
    let sealed = node.files.p("sealed.eml");
    node.ok(&["message", "seal", "--in", &msg, "--out", &sealed]);
    node.ok(&["message", "open", "--in", &sealed]);
    // ...until the CA revokes it: the new CRL is published at once, the certificate leaves DNS.
    node.ok(&["cert", "revoke", &sha]);
    let refused = node.run(&["--json", "message", "open", "--in", &sealed]);
    assert_eq!(refused.status, 1, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "revoked");
    let after = discover();
    assert_eq!(after.json()["step"], "dns-domain", "{}", after.text());
    assert!(!after.text().contains(&sha));
}

/// The README's main job, as a new user runs it.
#[test]
fn the_demo_delivers_the_referral_note_intact() {
    // 8 ports in a row free on loopback, for --base-port.
    let free = |p: u16| {
        std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
    };
    // Another test may take one of them between the check and the demo's start: then again
    // elsewhere.
    let (base, demo) = (0..3)
        .map(|_| {
            let base = (0..100)
                .map(|_| free_port())
                .find(|&b| b < 65_000 && (b..b + 8).all(free))
                .expect("8 free ports in a row");
            (base, hisp(&["demo", "--base-port", &base.to_string()], None, &[]))
        })
        .find(|(_, demo)| !format!("{}{}", demo.text(), demo.stderr).contains("Address already in use"))
        .expect("a free range of ports within three tries");
    let text = demo.text();
    assert_eq!(demo.status, 0, "{text}{}", demo.stderr);
    assert!(text.contains(&format!("A submission :{base} backbone :{}", base + 1)), "{text}");
    // Its files are gone once it is done.
    let dir = text.split_whitespace().find(|w| w.contains("hisp-demo-")).expect("the mailbox path");
    let dir = &dir[..dir.find("hisp-demo-").unwrap() + "hisp-demo-".len() + 12];
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
    let held = std::net::TcpListener::bind(("127.0.0.1", base)).unwrap();
    let refused = hisp(&["demo", "--base-port", &base.to_string()], None, &[]);
    assert_ne!(refused.status, 0);
    assert!(refused.stderr.contains("--base-port"), "{}", refused.stderr);
    drop(held);
    assert!(text.contains("X-Direct-Verified-Sender: dr.smith@smithpeds.direct.example.org"), "{text}");
    assert!(text.contains("matches the original byte for byte"), "{text}");
    assert!(text.contains("listed in node B's store for Jones Orthopedics: referral-note.xml"), "{text}");
    assert!(text.contains("done: the referral reached Jones Orthopedics intact"), "{text}");
}

/// A peer MX that does not offer STARTTLS (Postfix's smtp-sink) is never sent a message in clear:
/// the recipient is deferred with the reason, and the sink receives nothing.
#[test]
fn a_peer_without_starttls_is_never_sent_mail_in_clear() {
    let pki = pki::Pki::new("Peer CA");
    let peer = pki.issue("dr.x@c.test");
    let (dns_port, submission, backbone, sink_port) = (free_port(), free_port(), free_port(), free_port());
    let sink_dir = tempfile::tempdir().unwrap();
    let mut args = vec!["-d".to_string(), format!("{}/%M.", sink_dir.path().display())];
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        std::fs::set_permissions(sink_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        args.extend(["-u".to_string(), "postfix".to_string()]);
    }
    args.extend([format!("127.0.0.1:{sink_port}"), "10".to_string()]);
    let _sink = servers::start_program("smtp-sink", &args, sink_port);
    let mail = tempfile::tempdir().unwrap();
    let config = format!(
        "{}[[delivery.destinations]]\ndomain = \"c.test\"\nport = {sink_port}\n",
        node_config(dns_port, submission, backbone, 25, &mail.path().display().to_string())
    );
    let sender = Sender::start(&config, &pki, &peer, dns_port, submission);
    let sent =
        submit_to(submission, "dr.x@c.test", "From: dr.smith@a.test\r\nTo: dr.x@c.test\r\nSubject: x\r\n\r\nPHI\r\n");
    assert_eq!(sent.status, 0);
    // Waiting ends with "deferred"; a message sent in clear would have ended as "sent".
    let queue = wait_status(&sender.node, "deferred");
    let r = &queue[0]["recipients"][0];
    assert!(r["last_error"].as_str().unwrap().contains("does not offer STARTTLS"), "{r}");
    assert_eq!(std::fs::read_dir(sink_dir.path()).unwrap().count(), 0, "nothing reached the sink");
}

/// A recipient whose MX never answers is retried with backoff until the message's maximum age,
/// then fails with one DSN (5.4.7) to the sender.
#[test]
fn a_message_past_its_maximum_age_fails_with_one_dsn() {
    let pki = pki::Pki::new("Far CA");
    let far = pki.issue("dr.far@far.test");
    let (dns_port, submission, backbone, dead) = (free_port(), free_port(), free_port(), free_port());
    let mail = tempfile::tempdir().unwrap();
    let config = node_config(dns_port, submission, backbone, dead, &mail.path().display().to_string())
        .replace("retry_max_secs = 2\n", "retry_max_secs = 2\nmax_age_secs = 4\n");
    let sender = Sender::start(&config, &pki, &far, dns_port, submission);
    let a = &sender.node;
    let sent = submit_to(
        submission,
        "dr.far@far.test",
        "From: dr.smith@a.test\r\nTo: dr.far@far.test\r\nSubject: Far\r\nMessage-ID: <far-1@a.test>\r\n\r\nx\r\n",
    );
    assert_eq!(sent.status, 0);
    let dsn = mailbox(a, "a.test", "dr.smith", 1);
    assert!(dsn[0].contains("Status: 5.4.7") && dsn[0].contains("X-Original-Message-ID: <far-1@a.test>"), "{}", dsn[0]);
    let queue = wait_status(a, "failed");
    let r = &queue[0]["recipients"][0];
    assert!(r["attempts"].as_u64().unwrap() >= 2, "retried before giving up: {r}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(mailbox(a, "a.test", "dr.smith", 1).len(), 1, "exactly one DSN");
}

#[test]
fn a_recipient_whose_outcome_cannot_be_recorded_is_processed_again_not_left_in_flight() {
    let n = network();
    // For a while B cannot record deliveries into its mailboxes: the outcome of every inbound
    // message, committed with that record, fails to commit.
    let b = rusqlite::Connection::open(&n.b.db).unwrap();
    b.execute_batch(
        "CREATE TRIGGER no_deliveries BEFORE INSERT ON mailbox_deliveries BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;",
    )
    .unwrap();
    let referral =
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: R\r\nMessage-ID: <unrecorded-1@a.test>\r\n\r\nBody.\r\n";
    assert_eq!(submit(&n, referral).status, 0);
    // Released to be tried again, with the reason, rather than left in flight until a restart.
    let deferred = wait_status_of(&n.b, "<unrecorded-1@a.test>", "deferred");
    let error = deferred["recipients"][0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("could not be recorded") && error.contains("disk trouble"), "{deferred}");

    b.execute_batch("DROP TRIGGER no_deliveries").unwrap();
    wait_status_of(&n.b, "<unrecorded-1@a.test>", "delivered");
    // Delivered once although it was opened and put in the mailbox more than once.
    let delivered = mailbox(&n.b, "b.test", "dr.jones", 1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(mailbox(&n.b, "b.test", "dr.jones", 1).len(), 1, "{delivered:?}");
}

/// A network whose node A is processing a referral it cannot finish: B is gone and something
/// that never answers holds its port, so A's delivery hangs (10 s timeout). `a_server` is added
/// to A's [server] section; the silent listener comes back with the network (keep it alive).
fn a_with_a_hung_delivery(a_queue: &str, a_server: &str, message_id: &str) -> (Network, std::net::TcpListener) {
    let (a_queue, a_server) = (a_queue.to_string(), a_server.to_string());
    let mut n = network_with(move |node, config| {
        if node == "a" {
            config
                .replace("retry_max_secs = 2\n", &format!("retry_max_secs = 2\n{a_queue}"))
                .replace("idle_timeout_secs = 3\n", &format!("idle_timeout_secs = 3\n{a_server}"))
        } else {
            config
        }
    });
    n.daemons.remove(1).kill9();
    let silent = std::net::TcpListener::bind(("127.0.0.1", n.b_backbone)).unwrap();
    let referral = format!(
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: R\r\nMessage-ID: {message_id}\r\n\r\nBody.\r\n"
    );
    assert_eq!(submit(&n, &referral).status, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while n.a.sql("SELECT in_flight FROM queue_recipients") != [b"Integer(1)".to_vec()] {
        assert!(std::time::Instant::now() < deadline, "never in flight: {}", node_queue(&n.a));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (n, silent)
}

#[test]
fn sigterm_stops_a_node_in_order_and_what_it_was_processing_is_not_counted_as_a_crash() {
    // A quarantines a message at its first crash and gives its workers 1 s to finish.
    let (mut n, _silent) = a_with_a_hung_delivery("max_crashes = 1\n", "stop_grace_secs = 1\n", "<stopped-1@a.test>");
    let a = n.daemons.remove(0);
    let asked = std::time::Instant::now();
    a.terminate();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // While it winds down, new connections are turned away.
    let greeting = talk(n.a_submission, &[]);
    assert!(greeting[0].starts_with("421"), "{greeting:?}");
    let status = a.wait_exit(std::time::Duration::from_secs(8));
    assert!(status.success(), "{status}: {}", n.a.serve_log());
    assert!(asked.elapsed() < std::time::Duration::from_secs(5), "the grace time bounds the stop, not the delivery");
    let log = n.a.serve_log();
    assert!(log.contains("SIGTERM: stopping") && log.contains("stopped; 1 recipient(s)"), "{log}");
    // Handed back, not counted as a crash: the next start resumes it instead of quarantining it.
    assert_eq!(n.a.sql("SELECT in_flight || '/' || crashes FROM queue_recipients"), [b"0/0".to_vec()]);
    n.daemons.push(n.a.serve(n.a_submission));
    let queue: serde_json::Value = serde_json::from_str(&node_queue(&n.a)).unwrap();
    assert_eq!(queue[0]["message_id"], "<stopped-1@a.test>", "{queue}");
    assert!(queue[0]["quarantined"].is_null(), "{queue}");
}

#[test]
fn a_second_sigterm_during_the_grace_time_ends_the_node_at_once() {
    let (mut n, _silent) = a_with_a_hung_delivery("", "stop_grace_secs = 30\n", "<stopped-2@a.test>");
    let a = n.daemons.remove(0);
    let asked = std::time::Instant::now();
    a.terminate();
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.terminate();
    let status = a.wait_exit(std::time::Duration::from_secs(8));
    assert_eq!(status.code(), Some(1), "{}", n.a.serve_log());
    assert!(asked.elapsed() < std::time::Duration::from_secs(5), "not the 10 s delivery nor the 30 s grace");
    assert!(n.a.serve_log().contains("SIGTERM again: exiting now"), "{}", n.a.serve_log());
}

#[test]
fn sigterm_answers_the_message_being_received_and_closes_waiting_sessions_with_421() {
    // B's idle timeout is longer than the test: only the stop can close the waiting session.
    let mut n = network_with(|node, config| {
        if node == "b" {
            config.replace("idle_timeout_secs = 3\n", "idle_timeout_secs = 60\nstop_grace_secs = 20\n")
        } else {
            config
        }
    });
    let b = n.daemons.remove(1);
    let (mut waiting, _) = Conversation::open(n.b_backbone);
    assert!(waiting.say(b"EHLO waiting.test\r\n").starts_with("250"));
    let (mut busy, _) = Conversation::open(n.b_backbone);
    let replies: Vec<String> =
        [&b"EHLO a.test\r\n"[..], b"MAIL FROM:<dr.smith@a.test>\r\n", b"RCPT TO:<dr.jones@b.test>\r\n", b"DATA\r\n"]
            .iter()
            .map(|c| busy.say(c))
            .collect();
    assert_eq!(codes(&replies), ["250", "250", "250", "354"], "{replies:?}");
    busy.send(
        b"From: dr.smith@a.test\r\nMessage-ID: <during-stop@a.test>\r\nContent-Type: application/pkcs7-mime\r\n\r\nfirst half\r\n",
    );

    let asked = std::time::Instant::now();
    b.terminate();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The session waiting for a command is told at once, not left to its idle timeout.
    let told = waiting.reply();
    assert!(told.starts_with("421 4.3.2"), "{told}");
    assert_eq!(waiting.reply(), "(closed)");
    // The message being received is committed and answered, then its session is closed.
    let answered = busy.say(b"second half\r\n.\r\n");
    assert!(answered.starts_with("250"), "{answered}: {}", n.b.serve_log());
    assert!(busy.reply().starts_with("421 4.3.2"));

    let status = b.wait_exit(std::time::Duration::from_secs(8));
    assert!(status.success(), "{status}: {}", n.b.serve_log());
    assert!(asked.elapsed() < std::time::Duration::from_secs(5), "neither the grace time nor the idle timeout");
    assert!(n.b.serve_log().contains("cut off: 0 SMTP session(s) receiving a message"), "{}", n.b.serve_log());
    assert_eq!(
        n.b.sql("SELECT count(*) FROM queue_messages WHERE message_id = '<during-stop@a.test>'"),
        [b"Integer(1)".to_vec()]
    );
}

#[test]
fn the_log_can_be_json_lines_with_their_span_and_names_who_failed_to_log_in() {
    let json_log = |name: &str, config: String| match name {
        "a" => config.replace("[server]\n", "[server]\nlog_format = \"json\"\n"),
        _ => config,
    };
    let n = network_with(json_log);
    let wrong =
        with_password(n.a_submission, "not-the-password-42", &["--from", "dr.smith@a.test", "--to", "dr.jones@b.test"]);
    assert_ne!(wrong.status, 0);
    let sent = as_dr_smith(n.a_submission, &["--from", "dr.smith@a.test", "--to", "dr.jones@b.test"]);
    assert_eq!(sent.status, 0, "{}", sent.stderr);
    // Every line of the log is one JSON object (the start-up report on stdout apart).
    let events = || -> Vec<serde_json::Value> {
        n.a.serve_log()
            .lines()
            .filter(|l| !l.starts_with("hisp: "))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let outcome = loop {
        if let Some(e) = events().into_iter().find(|e| e["target"] == "hisp::outcome") {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no outcome event: {}", n.a.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!((outcome["level"].as_str(), outcome["fields"]["outcome"].as_str()), (Some("INFO"), Some("sent")));
    assert_eq!(outcome["span"]["name"], "job", "{outcome}");
    assert_eq!(outcome["span"]["recipient"], "dr.jones@b.test", "{outcome}");
    let refused = events()
        .into_iter()
        .find(|e| e["fields"]["message"].as_str().is_some_and(|m| m.starts_with("SMTP AUTH refused")))
        .expect("the failed login is logged");
    assert_eq!(refused["level"], "WARN");
    assert_eq!(
        (refused["fields"]["peer"].as_str(), refused["fields"]["account"].as_str()),
        (Some("127.0.0.1"), Some("dr.smith@a.test"))
    );
    assert_eq!(refused["span"]["name"], "smtp", "{refused}");
    assert!(!n.a.serve_log().contains("not-the-password-42"), "a password never reaches the log");
}

/// `hisp backup` copies a running node's database; `hisp restore` makes a fresh node of it alone,
/// which delivers the message the first one still held in its queue.
#[test]
fn a_backup_of_a_running_node_restored_into_a_fresh_one_delivers_what_was_queued() {
    let mut n = network();
    // B is down: A's message to it waits in A's queue.
    n.daemons.remove(1).kill9();
    // One message the operator removes from the queue (the audit log says who did), one kept.
    let dropped = "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: Drop\r\nMessage-ID: <drop-1@a.test>\r\n\r\nDropped.\r\n";
    assert_eq!(submit(&n, dropped).status, 0);
    let queued = n.a.json(&["queue", "list", "--all"]);
    let id = queued.as_array().and_then(|q| q.first()).map(|m| m["id"].to_string()).expect("a queued message");
    let unasked = n.a.run(&["queue", "remove", &id]);
    assert!(
        unasked.status != 0 && unasked.stderr.contains("dr.jones@b.test"),
        "says who would not get it: {}",
        unasked.stderr
    );
    n.a.ok(&["queue", "remove", &id, "--yes"]);
    let audit = n.a.json(&["audit", "--limit", "5"]);
    assert_eq!(audit[0]["action"], "queue.remove", "{audit}");
    let message = "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: Kept\r\nMessage-ID: <backup-1@a.test>\r\n\r\nKept safe.\r\n";
    assert_eq!(submit(&n, message).status, 0);
    let backup = n.a.files.p("backup.db");
    let made = n.a.json(&["backup", &backup]);
    assert!(made["bytes"].as_u64().unwrap() > 0, "{made}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let again = n.a.run(&["backup", &backup]);
    assert!(again.status != 0 && again.stderr.contains("--force"), "{}", again.stderr);

    // A is gone; a fresh node has nothing but the backup.
    n.daemons.remove(0).kill9();
    let fresh = n.a.elsewhere();
    fresh.ok(&["restore", &backup]);
    assert!(fresh.run(&["restore", &backup]).stderr.contains("move it away"), "never over a database");
    let _a = fresh.serve(n.a_submission);
    n.daemons.push(n.b.serve(n.b_backbone));
    let delivered = mailbox(&n.b, "b.test", "dr.jones", 1);
    assert!(delivered[0].contains("Kept safe."), "{}", delivered[0]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(mailbox(&n.b, "b.test", "dr.jones", 0).len(), 1, "the removed message never left");
}

/// The sessions a peer recorded (tests/peers/mx_recorder.py) that got as far as EHLO (not the
/// probe that saw the peer listening), in order: whether each was told QUIT and has closed.
fn recorded_sessions(log: &std::path::Path) -> Vec<(bool, bool)> {
    let mut sessions = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let (event, n) = line.split_once(' ').unwrap();
        let entry: &mut (bool, bool, bool) = sessions.entry(n.parse::<u32>().unwrap()).or_default();
        match event {
            "ehlo" => entry.0 = true,
            "quit" => entry.1 = true,
            "close" => entry.2 = true,
            _ => {}
        }
    }
    sessions.into_values().filter(|s| s.0).map(|(_, quit, closed)| (quit, closed)).collect()
}

/// Waits up to 20 s for the peer's log to satisfy `done`.
fn wait_recorded(log: &std::path::Path, done: impl Fn(&[(bool, bool)]) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done(&recorded_sessions(log)) {
        assert!(std::time::Instant::now() < deadline, "{}", std::fs::read_to_string(log).unwrap_or_default());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// hisp ends every SMTP session it opens to a peer with QUIT (RFC 5321 §4.1.1.10): at a stop,
/// after the session has been idle a while, after the peer refused a recipient, and when the peer
/// offers no STARTTLS or refuses it. The DSN for the refused recipient gives the peer's reply as a
/// Diagnostic-Code of type smtp (RFC 3464 §2.3.6). The peers are aiosmtpd servers that log each
/// session's QUIT and close.
#[test]
fn every_session_to_a_peer_ends_with_quit() {
    use base64::Engine as _;
    let pki = pki::Pki::new("Peer CA");
    let (dns_port, submission, backbone) = (free_port(), free_port(), free_port());
    let (c_port, d_port, e_port) = (free_port(), free_port(), free_port());
    let mail = tempfile::tempdir().unwrap();
    let mut config = node_config(dns_port, submission, backbone, 25, &mail.path().display().to_string());
    config.push_str("session_idle_secs = 600\n");
    for (domain, port) in [("c.test", c_port), ("d.test", d_port), ("e.test", e_port)] {
        config.push_str(&format!("[[delivery.destinations]]\ndomain = \"{domain}\"\nport = {port}\n"));
    }
    let node = Node::with_published_ca_and(&config);
    practice(&node, "a.test", "dr.smith");
    node.files.ca("peer-ca", &pki.ca);
    node.ok(&["anchor", "add", &node.files.p("peer-ca.pem"), "--domain", "a.test", "--outgoing"]);
    let cert_line = |address: &str| {
        let der = base64::engine::general_purpose::STANDARD.encode(pki.issue(address).cert.to_der().unwrap());
        format!("{} IN CERT PKIX 0 0 {der}\n", address.split('@').next().unwrap())
    };
    let mx = "@ IN MX 10 mx\nmx IN A 127.0.0.1\n";
    let zones = [
        ("c.test", format!("{}{}{mx}", cert_line("dr.x@c.test"), cert_line("refused.x@c.test"))),
        ("d.test", format!("{}{mx}", cert_line("dr.x@d.test"))),
        ("e.test", format!("{}{mx}", cert_line("dr.x@e.test"))),
    ];
    let _dns = servers::knot_on(dns_port, &zones);
    let (cert, key) = relay::loopback_tls(&node.files);
    let logs = tempfile::tempdir().unwrap();
    let recorder = |port: u16, name: &str, mode: &str| {
        let log = logs.path().join(name);
        let args = [port.to_string(), cert.clone(), key.clone(), log.display().to_string(), mode.to_string()];
        (relay::python_peer("mx_recorder.py", &args, port), log)
    };
    let (_c, c_log) = recorder(c_port, "c.log", "tls");
    let (_d, d_log) = recorder(d_port, "d.log", "plain");
    let (_e, e_log) = recorder(e_port, "e.log", "refuse-starttls");
    let send = |to: &str, id: &str| {
        let data =
            format!("From: dr.smith@a.test\r\nTo: {to}\r\nSubject: x\r\nMessage-ID: <{id}@a.test>\r\n\r\nPHI\r\n");
        assert_eq!(submit_to(submission, to, &data).status, 0);
    };

    // Kept for ten minutes: the session stays open after the message, and the stop ends it.
    let daemon = node.serve(submission);
    send("dr.x@c.test", "q-1");
    wait_status_of(&node, "<q-1@a.test>", "sent");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(recorded_sessions(&c_log), [(false, false)], "the session is kept for the next message");
    daemon.terminate();
    assert!(daemon.wait_exit(std::time::Duration::from_secs(30)).success());
    wait_recorded(&c_log, |s| s == [(true, true)]);

    // Kept for a second: closed with QUIT while the node runs.
    let file = node.files.path("hisp.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace("session_idle_secs = 600", "session_idle_secs = 1");
    std::fs::write(&file, text).unwrap();
    let daemon = node.serve(submission);
    send("dr.x@c.test", "q-2");
    wait_status_of(&node, "<q-2@a.test>", "sent");
    wait_recorded(&c_log, |s| s.get(1) == Some(&(true, true)));

    // A recipient the peer refuses: a DSN quoting the peer's reply, and the session still ends with QUIT.
    send("refused.x@c.test", "q-3");
    wait_status_of(&node, "<q-3@a.test>", "failed");
    let dsn = wait_for_mail(&node, "a.test", "dr.smith", |m| m.contains("report-type=delivery-status")).remove(0);
    assert!(dsn.contains("Diagnostic-Code: smtp; 550 5.1.1 No such user here"), "{dsn}");
    wait_recorded(&c_log, |s| s.get(2) == Some(&(true, true)));

    // A peer without STARTTLS, and one that refuses it: deferred, and told QUIT each time.
    send("dr.x@d.test", "q-4");
    let deferred = wait_status_of(&node, "<q-4@a.test>", "deferred");
    assert!(
        deferred["recipients"][0]["last_error"].as_str().unwrap().contains("does not offer STARTTLS"),
        "{deferred}"
    );
    send("dr.x@e.test", "q-5");
    let deferred = wait_status_of(&node, "<q-5@a.test>", "deferred");
    assert!(deferred["recipients"][0]["last_error"].as_str().unwrap().contains("454 4.7.0"), "{deferred}");
    daemon.terminate();
    assert!(daemon.wait_exit(std::time::Duration::from_secs(30)).success());
    for log in [&c_log, &d_log, &e_log] {
        wait_recorded(log, |s| !s.is_empty() && s.iter().all(|&(quit, closed)| quit && closed));
    }
}
