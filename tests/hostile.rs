//! A hostile peer's attacks on the trust core, one test each (issue 20): each builds the attack
//! with real tools (the openssl CLI, raw SMTP) and checks that hisp refuses it and stays up.

mod common;

use base64::Engine;
use common::network::*;
use common::pki::Pki;
use common::*;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Name, X509};

/// A certificate for the attacker's own key that names `victim`'s issuer in upper case and
/// `victim`'s serial: OpenSSL's CMS_verify compares names case-folded, so it took this certificate
/// for the signer that the SignerInfo names by the victim's exact issuer bytes.
fn look_alike(victim: &X509) -> (X509, PKey<Private>) {
    let key = rsa(2048);
    let mut upper = X509Name::builder().unwrap();
    for entry in victim.issuer_name().entries() {
        let text = entry.data().to_string().unwrap().to_uppercase();
        upper.append_entry_by_nid(entry.object().nid(), &text).unwrap();
    }
    let upper = upper.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(victim.serial_number()).unwrap();
    b.set_subject_name(&upper).unwrap();
    b.set_issuer_name(&upper).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(victim.not_before()).unwrap();
    b.set_not_after(victim.not_after()).unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// Replaces the last occurrence of `from` in `data` by `to` (of the same length).
fn replace_last(data: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = data.windows(from.len()).rposition(|w| w == from).expect("the bytes to replace");
    data[at..at + to.len()].copy_from_slice(to);
}

/// `content` and a detached SignedData over it as multipart/signed (RFC 8551 §3.5.3).
fn multipart_signed(content: &[u8], signature: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(signature);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    [
        b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"sig\"\r\n\r\n--sig\r\n".as_slice(),
        content,
        b"\r\n--sig\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        lines.join("\r\n").as_bytes(),
        b"\r\n--sig--\r\n",
    ]
    .concat()
}

/// The message/rfc822 wrapper of an original from `from` to `to`.
fn wrapped(from: &str, to: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "Content-Type: message/rfc822\r\n\r\nFrom: {from}\r\nTo: {to}\r\nSubject: Lab result\r\n\
         Date: Mon, 23 Nov 2026 14:00:00 +0000\r\nMessage-ID: {message_id}\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A detached SignedData (DER) by `signer` (PEM cert and key files) over `content`, made by
/// `openssl cms` with SHA-256 and the `extra` options.
fn openssl_sign(files: &Files, content: &[u8], signer: &str, key: &str, extra: &[&str]) -> Vec<u8> {
    let (input, out) = (files.write("to-sign.eml", content), files.p("signature.der"));
    let mut args = vec![
        "cms", "-sign", "-binary", "-in", &input, "-outform", "DER", "-out", &out, "-signer", signer, "-inkey", key,
    ];
    args.extend_from_slice(&["-md", "sha256"]);
    args.extend_from_slice(extra);
    openssl(&args);
    std::fs::read(&out).unwrap()
}

/// As `openssl_sign`, RSASSA-PSS, carrying the certificates in `certfile` after the signer's.
fn openssl_pss_sign(files: &Files, content: &[u8], signer: &str, key: &str, certfile: Option<&str>) -> Vec<u8> {
    let mut extra = vec!["-keyopt", "rsa_padding_mode:pss"];
    if let Some(certfile) = certfile {
        extra.extend_from_slice(&["-certfile", certfile]);
    }
    openssl_sign(files, content, signer, key, &extra)
}

/// `openssl cms -encrypt` of `input` to the certificate `recipient`, with the outer headers.
fn openssl_encrypt(files: &Files, input: &[u8], recipient: &str, from: &str, to: &str) -> Vec<u8> {
    let (input, out) = (files.write("to-encrypt.eml", input), files.p("encrypted.eml"));
    openssl(&[
        "cms",
        "-encrypt",
        "-binary",
        "-in",
        &input,
        "-out",
        &out,
        "-aes256",
        "-from",
        from,
        "-to",
        to,
        "-subject",
        "Lab result",
        "-recip",
        recipient,
    ]);
    std::fs::read(&out).unwrap()
}

/// The forgery of finding 1: the attacker signs with PSS under a look-alike of `victim_pem`'s
/// certificate, carries [look-alike, victim], and points the SignerInfo at the victim's exact
/// issuer (the sid is not signed).
fn forged_signature(files: &Files, victim_pem: &str, content: &[u8]) -> Vec<u8> {
    let victim = X509::from_pem(&std::fs::read(victim_pem).unwrap()).unwrap();
    let (fake, fake_key) = look_alike(&victim);
    let fake_pem = files.write("look-alike.pem", &fake.to_pem().unwrap());
    let fake_key = files.write("look-alike.key", &fake_key.private_key_to_pem_pkcs8().unwrap());
    let mut signature = openssl_pss_sign(files, content, &fake_pem, &fake_key, Some(victim_pem));
    let (theirs, ours) = (fake.issuer_name().to_der().unwrap(), victim.issuer_name().to_der().unwrap());
    assert_ne!(theirs, ours);
    replace_last(&mut signature, &theirs, &ours);
    signature
}

fn open_as_bob(files: &Files, message: &[u8]) -> Run {
    let input = files.write("received.eml", message);
    hisp(
        &[
            "--json",
            "message",
            "open",
            "--in",
            &input,
            "--out",
            &files.p("opened.eml"),
            "--recipient-cert",
            &files.p("bob.pem"),
            "--recipient-key",
            &files.p("bob.key"),
            "--anchor",
            &files.p("ca.pem"),
        ],
        None,
        &[],
    )
}

#[test]
fn a_signer_certificate_look_alike_cannot_forge_a_signature_and_genuine_pss_opens() {
    let files = Files::new();
    let pki = Pki::new("Hostile Test CA");
    files.ca("ca", &pki.ca);
    files.identity("alice", &pki.issue("alice@a.example.org"));
    files.identity("bob", &pki.issue("bob@b.example.org"));
    let (alice, bob) = ("alice@a.example.org", "bob@b.example.org");

    // Genuine: alice signs with RSASSA-PSS (openssl cms); hisp opens it.
    let content = wrapped(alice, bob, "<pss-1@a.example.org>", "Potassium 4.1 mmol/L.");
    let signature = openssl_pss_sign(&files, &content, &files.p("alice.pem"), &files.p("alice.key"), None);
    let sealed = openssl_encrypt(&files, &multipart_signed(&content, &signature), &files.p("bob.pem"), alice, bob);
    let genuine = open_as_bob(&files, &sealed);
    assert_eq!(genuine.status, 0, "{}\n{}", genuine.text(), genuine.stderr);
    assert_eq!(genuine.json()["signature_algorithm"], "RSASSA-PSS");
    assert!(String::from_utf8_lossy(&files.read("opened.eml")).contains("Potassium 4.1"));

    // Forged: only public certificates and the attacker's own key.
    let content = wrapped(alice, bob, "<forged-1@a.example.org>", "Potassium 7.9 mmol/L: stop the medication.");
    let signature = forged_signature(&files, &files.p("alice.pem"), &content);
    let sealed = openssl_encrypt(&files, &multipart_signed(&content, &signature), &files.p("bob.pem"), alice, bob);
    let forged = open_as_bob(&files, &sealed);
    assert_ne!(forged.status, 0, "a forgery opened: {}", forged.text());
    assert_eq!(forged.json()["error"]["code"], "tampered", "{}", forged.text());
}

/// `openssl cms -encrypt` of `input` to bob as DER, and that DER as a message.
fn openssl_envelope(files: &Files, input: &[u8]) -> Vec<u8> {
    let (input, out) = (files.write("to-encrypt.eml", input), files.p("encrypted.der"));
    let bob = files.p("bob.pem");
    openssl(&["cms", "-encrypt", "-binary", "-in", &input, "-outform", "DER", "-out", &out, "-aes256", "-recip", &bob]);
    std::fs::read(&out).unwrap()
}

fn as_message(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let head = "From: alice@a.example.org\r\nTo: bob@b.example.org\r\nContent-Type: application/pkcs7-mime; \
                smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    [head.as_bytes(), lines.join("\r\n").as_bytes(), b"\r\n"].concat()
}

/// Whether OpenSSL's CMS reads `der` and decrypts it for bob.
fn openssl_decrypts(files: &Files, der: &[u8]) -> bool {
    let input = files.write("for-openssl.der", der);
    let (cert, key) = (files.p("bob.pem"), files.p("bob.key"));
    let args = ["cms", "-decrypt", "-inform", "DER", "-in", &input, "-recip", &cert, "-inkey", &key];
    run("openssl", &args, None, &[]).status == 0
}

#[test]
fn algorithm_parameters_that_are_not_one_whole_element_are_malformed_as_openssl_finds_them() {
    // Found by the open_differential fuzz target: hisp read only the OID of an AlgorithmIdentifier,
    // so a key-transport algorithm whose NULL had a broken length opened, where OpenSSL refuses.
    let files = Files::new();
    let pki = Pki::new("Hostile Test CA");
    files.ca("ca", &pki.ca);
    files.identity("alice", &pki.issue("alice@a.example.org"));
    files.identity("bob", &pki.issue("bob@b.example.org"));
    let content = wrapped("alice@a.example.org", "bob@b.example.org", "<alg-1@a.example.org>", "Sodium 140.");
    let signature = openssl_sign(&files, &content, &files.p("alice.pem"), &files.p("alice.key"), &[]);
    let sealed = openssl_envelope(&files, &multipart_signed(&content, &signature));
    assert_eq!(open_as_bob(&files, &as_message(&sealed)).status, 0, "the unaltered message opens");

    let rsa_null: &[u8] = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00";
    let rsa_broken: &[u8] = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\xfd";
    let mut key_transport = sealed.clone();
    replace_last(&mut key_transport, rsa_null, rsa_broken);
    // OpenSSL decrypts the unaltered message and refuses the altered key transport.
    assert!(openssl_decrypts(&files, &sealed));
    assert!(!openssl_decrypts(&files, &key_transport));
    let opened = open_as_bob(&files, &as_message(&key_transport));
    assert_ne!(opened.status, 0, "opened: {}", opened.text());
    assert_eq!(opened.json()["error"]["code"], "malformed", "{}", opened.text());

    // Found by it next: the encrypted content's type was not read at all, so a broken OID there
    // (the last byte of id-data made to continue the arc) opened too.
    let id_data: &[u8] = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01";
    let broken_type: &[u8] = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x81";
    let mut content_type = sealed.clone();
    replace_last(&mut content_type, id_data, broken_type);
    assert!(!openssl_decrypts(&files, &content_type));
    let opened = open_as_bob(&files, &as_message(&content_type));
    assert_eq!(opened.json()["error"]["code"], "malformed", "{}", opened.text());

    // And third: a NULL parameter with the constructed bit set (0x25), which X.690 forbids and
    // OpenSSL refuses, was read as some other element and opened.
    let constructed_null: &[u8] = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x25\x00";
    let mut null_form = sealed.clone();
    replace_last(&mut null_form, rsa_null, constructed_null);
    assert!(!openssl_decrypts(&files, &null_form));
    let opened = open_as_bob(&files, &as_message(&null_form));
    assert_eq!(opened.json()["error"]["code"], "malformed", "{}", opened.text());
}

#[test]
fn a_forged_signer_over_the_backbone_reaches_no_mailbox_and_gets_no_mdn() {
    let n = network();
    let files = Files::new();
    // What the attacker has: the victim's and the recipient's public certificates.
    let smith = files.p("smith.pem");
    n.a.ok(&["cert", "export", "dr.smith@a.test", "--out", &smith]);
    let jones = files.p("jones.pem");
    n.b.ok(&["cert", "export", "dr.jones@b.test", "--out", &jones]);

    let content = wrapped("dr.smith@a.test", "dr.jones@b.test", "<forged-2@a.test>", "Critical: potassium 7.9.");
    let signature = forged_signature(&files, &smith, &content);
    let sealed =
        openssl_encrypt(&files, &multipart_signed(&content, &signature), &jones, "dr.smith@a.test", "dr.jones@b.test");
    let file = files.write("forged.eml", &[b"Message-ID: <forged-2@a.test>\r\n".as_slice(), &sealed].concat());
    let sent = swaks(
        n.b_backbone,
        &["--tls", "--from", "dr.smith@a.test", "--to", "dr.jones@b.test", "--data", &format!("@{file}")],
    );
    assert_eq!(sent.status, 0, "the backbone takes it and decides later: {}", sent.stderr);

    let refused = wait_status_of(&n.b, "<forged-2@a.test>", "failed");
    assert!(refused.to_string().contains("tampered"), "{refused}");
    assert!(mailbox(&n.b, "b.test", "dr.jones", 0).is_empty(), "nothing in dr.jones's mailbox");
    let outbound = n.b.sql("SELECT CAST(count(*) AS TEXT) FROM queue_messages WHERE direction = 'outbound'");
    assert_eq!(outbound[0], b"0", "B queued no MDN for a message it refused");
    // Of refused mail B keeps the envelope and the reason, not the content (junk must not fill
    // the disk), and says so when asked to retry it.
    let kept = n.b.sql("SELECT CAST(length(sealed_data) AS TEXT) FROM queue_messages WHERE direction = 'inbound'");
    assert_eq!(kept, [b"0".to_vec()]);
    let id = refused["id"].to_string();
    let retried = n.b.run(&["queue", "retry", &id]);
    assert_ne!(retried.status, 0);
    assert!(retried.stderr.contains("only its reason was kept"), "{}", retried.stderr);
}

/// The identifier and definite-length octets of a DER element of `len` content bytes.
fn der_header(tag: u8, len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![tag, len as u8];
    }
    let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
    [vec![tag, 0x80 | bytes.len() as u8], bytes].concat()
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    [der_header(tag, content.len()), content.to_vec()].concat()
}

/// An OCTET STRING made of `levels` constructed OCTET STRINGs, each holding the next.
fn nested_octets(levels: usize) -> Vec<u8> {
    let innermost = tlv(0x04, &[0u8; 32]);
    let mut len = innermost.len();
    let mut headers = Vec::with_capacity(levels);
    for _ in 0..levels {
        let header = der_header(0x24, len);
        len += header.len();
        headers.push(header);
    }
    headers.into_iter().rev().flatten().chain(innermost).collect()
}

/// An S/MIME message whose EnvelopedData has an encryptedKey nested `levels` deep: the remote
/// crash of finding 2, needing no key and no certificate.
fn deeply_nested_message(message_id: &str, levels: usize) -> Vec<u8> {
    const ENVELOPED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
    const DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    const RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const AES256_CBC: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
    let issuer_and_serial = tlv(0x30, &[tlv(0x30, &[]), tlv(0x02, &[1])].concat());
    let ktri =
        tlv(0x30, &[tlv(0x02, &[0]), issuer_and_serial, tlv(0x30, &tlv(0x06, &RSA)), nested_octets(levels)].concat());
    let content_algorithm = tlv(0x30, &[tlv(0x06, &AES256_CBC), tlv(0x04, &[0; 16])].concat());
    let eci = tlv(0x30, &[tlv(0x06, &DATA), content_algorithm, tlv(0x80, &[0; 32])].concat());
    let enveloped = tlv(0x30, &[tlv(0x02, &[0]), tlv(0x31, &ktri), eci].concat());
    let der = tlv(0x30, &[tlv(0x06, &ENVELOPED_DATA), tlv(0xA0, &enveloped)].concat());
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!(
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n\
         Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

#[test]
fn a_hundred_thousand_nested_levels_are_malformed_for_open_and_inspect() {
    let files = Files::new();
    let pki = Pki::new("Hostile Test CA");
    files.ca("ca", &pki.ca);
    files.identity("bob", &pki.issue("bob@b.example.org"));
    let message = deeply_nested_message("<deep-1@a.test>", 100_000);
    assert!(message.len() > 400_000, "{} bytes", message.len());
    let opened = open_as_bob(&files, &message);
    assert_eq!(opened.json()["error"]["code"], "malformed", "{}\n{}", opened.text(), opened.stderr);
    let input = files.write("deep.eml", &message);
    let inspected = hisp(&["--json", "message", "inspect", "--in", &input], None, &[]);
    assert_eq!(inspected.json()["error"]["code"], "malformed", "{}\n{}", inspected.text(), inspected.stderr);

    // MIME nesting: a message wrapped in itself 100,000 times.
    let wrapped =
        [b"Content-Type: message/rfc822\r\n\r\n".repeat(100_000), b"Subject: x\r\n\r\nx\r\n".to_vec()].concat();
    let input = files.write("wrapped.eml", &wrapped);
    let inspected = hisp(&["--json", "message", "inspect", "--in", &input], None, &[]);
    assert_eq!(inspected.json()["error"]["code"], "malformed", "{}\n{}", inspected.text(), inspected.stderr);
}

#[test]
fn a_hundred_thousand_nested_levels_over_the_backbone_leave_the_node_up() {
    let n = network();
    let files = Files::new();
    let file = files.write("deep.eml", &deeply_nested_message("<deep-2@a.test>", 100_000));
    let sent = swaks(
        n.b_backbone,
        &["--tls", "--from", "dr.smith@a.test", "--to", "dr.jones@b.test", "--data", &format!("@{file}")],
    );
    assert_eq!(sent.status, 0, "{}", sent.stderr);
    let refused = wait_status_of(&n.b, "<deep-2@a.test>", "failed");
    assert!(refused.to_string().contains("malformed"), "{refused}");
    // B is still up: its next message from A arrives.
    let later = submit(
        &n,
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: Next\r\nMessage-ID: <after-deep@a.test>\r\n\r\nStill here.\r\n",
    );
    assert_eq!(later.status, 0, "{}", later.stderr);
    assert!(mailbox(&n.b, "b.test", "dr.jones", 1)[0].contains("Still here."));
}

#[test]
fn a_local_part_that_names_a_path_is_refused_where_it_enters_and_set_aside_on_upgrade() {
    use common::node::Node;
    use common::servers::free_port;
    // Where addresses enter: the CLI (the API and SMTP parse with the same rule, tests/api.rs and below).
    let (backbone, mail) = (free_port(), tempfile::tempdir().unwrap());
    let config = node_config(free_port(), free_port(), backbone, free_port(), &mail.path().display().to_string());
    let node = Node::with_published_ca_and(&config);
    practice(&node, "b.test", "dr.jones");
    for evil in ["/etc@b.test", "../../x@b.test", "a/b@b.test", ".x@b.test", "a\\b@b.test"] {
        let added = node.run_in(&["address", "add", evil, "--password-stdin"], Some(b"a long password here\n"));
        assert_ne!(added.status, 0, "{evil} was added");
        assert!(added.stderr.contains(evil), "the refusal names the address: {}", added.stderr);
    }
    assert!(node.run_in(&["address", "add", "/etc@b.test"], None).stderr.contains("may not contain '/'"));

    // A row written before the rule: the upgrade sets it aside (src/store/sqlite.rs tests the
    // migration), the node names it at every start and refuses mail for it.
    node.sql(
        "INSERT INTO set_aside_addresses (address, reason, set_aside_at) \
         VALUES ('/tmp/escape@b.test', 'its local part holds a path separator', 0)",
    );
    let daemon = node.serve(backbone);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !node.serve_log().contains("\"/tmp/escape@b.test\" was set aside") {
        assert!(std::time::Instant::now() < deadline, "not named at start: {}", node.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let replies = smtp_dialogue(
        backbone,
        &["EHLO peer", "MAIL FROM:<dr.smith@a.test>", "RCPT TO:</tmp/escape@b.test>", "RCPT TO:<dr.jones@b.test>"],
    );
    assert!(replies[3].starts_with('5'), "{replies:?}");
    assert!(replies[4].starts_with("250"), "{replies:?}");
    drop(daemon);
}

/// Sends each line (CRLF added) to 127.0.0.1:`port` and returns the greeting and each reply.
fn smtp_dialogue(port: u16, lines: &[&str]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut read_reply = || {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return reply;
            }
        }
    };
    let mut replies = vec![read_reply()];
    for line in lines {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        replies.push(read_reply());
    }
    replies
}

/// Node B with a laboratory's CA among dr.jones's incoming anchors, and what the laboratory and a
/// second sender need to seal to dr.jones themselves (`hisp message seal`, standalone).
struct Labs {
    n: Network,
    files: Files,
    _pki: Pki,
}

impl Labs {
    fn new() -> Labs {
        let n = network();
        let files = Files::new();
        let pki = Pki::new("Laboratory CA");
        files.ca("lab-ca", &pki.ca);
        files.identity("lab", &pki.issue("results@lab.test"));
        files.identity("other", &pki.issue("results@other-lab.test"));
        n.b.ok(&["anchor", "add", &files.p("lab-ca.pem"), "--domain", "b.test", "--incoming"]);
        n.b.ok(&["cert", "export", "dr.jones@b.test", "--out", &files.p("jones.pem")]);
        Labs { n, files, _pki: pki }
    }

    /// `who` ("lab" or "other") seals `body` to dr.jones under `message_id`.
    fn sealed(&self, who: &str, message_id: &str, body: &str) -> String {
        let f = &self.files;
        let from = if who == "lab" { "results@lab.test" } else { "results@other-lab.test" };
        let original = format!(
            "From: {from}\r\nTo: dr.jones@b.test\r\nSubject: Lab result\r\nDate: Mon, 23 Nov 2026 14:00:00 +0000\r\n\
             Message-ID: {message_id}\r\n\r\n{body}\r\n"
        );
        let (input, out) = (f.write(&format!("{who}.eml"), original.as_bytes()), f.p(&format!("{who}-sealed.eml")));
        let (cert, key) = (f.p(&format!("{who}.pem")), f.p(&format!("{who}.key")));
        hisp(
            &[
                "message",
                "seal",
                "--in",
                &input,
                "--out",
                &out,
                "--signer-cert",
                &cert,
                "--signer-key",
                &key,
                "--recipient-cert",
                &f.p("jones.pem"),
            ],
            None,
            &[],
        )
        .ok();
        out
    }

    /// Hands `file` to B's backbone as a peer HISP does.
    fn send(&self, file: &str, from: &str) {
        let sent = swaks(
            self.n.b_backbone,
            &["--tls", "--from", from, "--to", "dr.jones@b.test", "--data", &format!("@{file}")],
        );
        assert_eq!(sent.status, 0, "{}", sent.stderr);
    }

    /// Waits until `count` inbound messages have an outcome at B; their last notes.
    fn outcomes(&self, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let queue: serde_json::Value = serde_json::from_str(&node_queue(&self.n.b)).unwrap();
            let done: Vec<String> = queue
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["flow"] == "inbound")
                .filter(|m| matches!(m["recipients"][0]["status"].as_str(), Some("delivered" | "failed")))
                .map(|m| m["recipients"][0]["last_error"].as_str().unwrap_or("").to_string())
                .collect();
            if done.len() >= count {
                return done;
            }
            assert!(std::time::Instant::now() < deadline, "{queue}\n{}", self.n.b.serve_log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The MDNs B queued back to `sender`.
    fn mdns_to(&self, sender: &str) -> usize {
        let queue: serde_json::Value = serde_json::from_str(&node_queue(&self.n.b)).unwrap();
        queue
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["flow"] == "outbound" && m["recipients"][0]["recipient"] == sender)
            .count()
    }
}

#[test]
fn a_reused_message_id_is_delivered_as_a_message_of_its_own_and_a_true_duplicate_once() {
    let labs = Labs::new();
    let first = labs.sealed("lab", "<result-1@lab.test>", "Potassium 4.1 mmol/L.");
    labs.send(&first, "results@lab.test");
    labs.outcomes(1);
    // The laboratory's HISP sends it again (its 250 was lost): delivered once.
    labs.send(&first, "results@lab.test");
    let notes = labs.outcomes(2);
    assert!(notes.iter().any(|n| n.contains("already delivered")), "{notes:?}");
    // Another sender's critical result under the same Message-ID: delivered, and the reuse logged.
    let second = labs.sealed("other", "<result-1@lab.test>", "Potassium 7.9 mmol/L: critical.");
    labs.send(&second, "results@other-lab.test");
    labs.outcomes(3);
    let mail = mailbox(&labs.n.b, "b.test", "dr.jones", 2);
    assert_eq!(mail.len(), 2, "{mail:?}");
    assert!(mail.iter().any(|m| m.contains("Potassium 4.1")) && mail.iter().any(|m| m.contains("Potassium 7.9")));
    assert!(labs.n.b.serve_log().contains("was used before by a different message"), "{}", labs.n.b.serve_log());
    // One processed MDN for each message written; none for the duplicate.
    assert_eq!((labs.mdns_to("results@lab.test"), labs.mdns_to("results@other-lab.test")), (1, 1));
}

/// What a hostile MX does with each connection, in turn.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// A greeting line that never ends.
    EndlessLine,
    /// A greeting of endless continuation lines.
    EndlessLines,
    /// A greeting sent one byte at a time, each well within the read timeout.
    Trickle,
}

/// Plays each of `acts` on one connection to `port`, for at most `limit` each; how long each
/// connection lasted until the client hung up.
fn hostile_mx(
    port: u16,
    acts: Vec<Hostile>,
    limit: std::time::Duration,
) -> std::thread::JoinHandle<Vec<std::time::Duration>> {
    use std::io::Write;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let mut lasted = Vec::new();
        for act in acts {
            let Ok((mut peer, _)) = listener.accept() else { break };
            let started = std::time::Instant::now();
            let chunk: Vec<u8> = match act {
                Hostile::EndlessLine => [b"220-".as_slice(), &[b'A'; 65_536]].concat(),
                Hostile::EndlessLines => b"220-mx.b.test hello\r\n".repeat(4096),
                Hostile::Trickle => b"2".to_vec(),
            };
            let _ = peer.write_all(if matches!(act, Hostile::EndlessLine) { &chunk } else { b"" });
            while started.elapsed() < limit {
                let piece: &[u8] = if matches!(act, Hostile::EndlessLine) { &chunk[4..] } else { &chunk };
                if peer.write_all(piece).is_err() {
                    break; // the node hung up: what it should do
                }
                if matches!(act, Hostile::Trickle) {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
            }
            lasted.push(started.elapsed());
        }
        lasted
    })
}

/// Waits until A's message `message_id` has been deferred with a reason containing `why`.
fn wait_deferred(n: &Network, message_id: &str, why: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let queue: serde_json::Value = serde_json::from_str(&node_queue(&n.a)).unwrap();
        let entry = queue.as_array().unwrap().iter().find(|m| m["message_id"] == message_id).cloned();
        if let Some(entry) =
            entry.filter(|m| m["recipients"][0]["last_error"].as_str().is_some_and(|e| e.contains(why)))
        {
            return entry;
        }
        assert!(std::time::Instant::now() < deadline, "waiting for '{why}': {queue}\n{}", n.a.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_hostile_mx_cannot_fill_the_senders_memory_or_hold_its_worker() {
    // A waits at most 2 s for each reply; B's backbone is played by a hostile MX.
    let mut n = network_with(|node, config| match node {
        "a" => config.replace("timeout_secs = 10", "timeout_secs = 2"),
        _ => config,
    });
    n.daemons.remove(1).kill9();
    let acts = vec![Hostile::EndlessLine, Hostile::EndlessLines, Hostile::Trickle];
    let mx = hostile_mx(n.b_backbone, acts, std::time::Duration::from_secs(15));
    let sent = submit(&n, "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: x\r\nMessage-ID: <to-hostile@a.test>\r\n\r\nHello.\r\n");
    assert_eq!(sent.status, 0, "{}", sent.stderr);
    // A hangs up on each: at once on the endless line and lines, at its 2 s deadline on the trickle.
    let lasted = mx.join().unwrap();
    assert_eq!(lasted.len(), 3);
    assert!(lasted.iter().all(|d| *d < std::time::Duration::from_secs(5)), "{lasted:?}");
    let rss = n.daemons[0].rss_kib();
    assert!(rss < 200 * 1024, "node A holds {rss} KiB");
    // And says why, one deferral each.
    for why in ["longer than 1000 octets", "over 100 lines", "took longer than allowed"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !n.a.serve_log().contains(why) {
            assert!(std::time::Instant::now() < deadline, "'{why}' not logged: {}", n.a.serve_log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    wait_deferred(&n, "<to-hostile@a.test>", "");
}

/// A certificate for `address` from `pki`'s CA with the extensions a DirectTrust end entity must
/// not have: `ca` makes it a CA (basicConstraints CA:TRUE); otherwise it is a TLS server's.
fn misfit(pki: &Pki, address: &str, ca: bool) -> Identity {
    use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
    let key = rsa(2048);
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("CN", address).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&hisp::pki::ca::random_serial().unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(pki.ca.cert.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::from_unix((*NOW - DAY) as libc::time_t).unwrap()).unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::from_unix((*NOW + DAY) as libc::time_t).unwrap()).unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
        b.append_extension(KeyUsage::new().digital_signature().key_cert_sign().build().unwrap()).unwrap();
    } else {
        b.append_extension(KeyUsage::new().digital_signature().key_encipherment().build().unwrap()).unwrap();
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap()).unwrap();
    }
    let san = SubjectAlternativeName::new().email(address).build(&b.x509v3_context(Some(&pki.ca.cert), None)).unwrap();
    b.append_extension(san).unwrap();
    b.append_extension(hisp::pki::ca::crl_distribution_point(&pki.url("ca.crl")).unwrap()).unwrap();
    b.sign(&pki.ca.key, openssl::hash::MessageDigest::sha256()).unwrap();
    Identity { address: hisp::address::DirectAddress::parse(address).unwrap(), cert: b.build(), key }
}

#[test]
fn a_signer_certificate_made_for_tls_or_for_a_ca_cannot_sign_direct_mail() {
    let files = Files::new();
    let pki = Pki::new("Hostile Test CA");
    files.ca("ca", &pki.ca);
    files.identity("bob", &pki.issue("bob@b.example.org"));
    let alice = "alice@a.example.org";
    files.identity("alice", &pki.issue(alice));
    files.identity("server", &misfit(&pki, alice, false));
    files.identity("ca-signer", &misfit(&pki, alice, true));
    let content = wrapped(alice, "bob@b.example.org", "<purpose@a.example.org>", "Results attached.");
    let seal = |signer: &str| {
        let (pem, key) = (files.p(&format!("{signer}.pem")), files.p(&format!("{signer}.key")));
        let signature = openssl_sign(&files, &content, &pem, &key, &[]);
        let signed = multipart_signed(&content, &signature);
        openssl_encrypt(&files, &signed, &files.p("bob.pem"), alice, "bob@b.example.org")
    };
    assert_eq!(open_as_bob(&files, &seal("alice")).status, 0, "the DirectTrust profile opens");
    for (signer, why) in [("server", "emailProtection"), ("ca-signer", "CA certificate")] {
        let refused = open_as_bob(&files, &seal(signer));
        let report = refused.json();
        assert_eq!(report["error"]["code"], "wrong-purpose", "{signer}: {report}");
        assert!(report["error"]["message"].as_str().unwrap().contains(why), "{signer}: {report}");
    }
}

/// Reads what the server says until it closes the connection or `limit` passes; how long it took.
fn until_closed(stream: &mut std::net::TcpStream, limit: std::time::Duration) -> (String, std::time::Duration) {
    use std::io::Read;
    let started = std::time::Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        said.extend_from_slice(&buf[..n]);
    }
    (String::from_utf8_lossy(&said).into_owned(), started.elapsed())
}

/// Sends `bytes` one at a time, `pause` apart, until the server stops taking them.
fn trickle(mut stream: std::net::TcpStream, bytes: Vec<u8>, pause: std::time::Duration) -> std::thread::JoinHandle<()> {
    use std::io::Write;
    std::thread::spawn(move || {
        for b in bytes {
            if stream.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    })
}

#[test]
fn trickling_smtp_clients_are_cut_off_and_cannot_crowd_out_other_hosts() {
    use common::servers::connect_from;
    use std::io::{BufRead, BufReader};
    use std::time::Duration;
    // B: idle and DATA timeouts of 3 s, at most 5 connections from one address.
    let n = network_with(|_, config| {
        config.replace("max_message_bytes = 1000000\n", "max_message_bytes = 1000000\nmax_connections_per_ip = 5\n")
    });
    let greeted = |stream: &std::net::TcpStream| {
        let mut line = String::new();
        BufReader::new(stream.try_clone().unwrap()).read_line(&mut line).unwrap();
        line
    };
    // Five connections from 127.0.0.2, each trickling a command a byte every 400 ms.
    let mut held = Vec::new();
    for _ in 0..5 {
        let stream = connect_from([127, 0, 0, 2], n.b_backbone);
        assert!(greeted(&stream).starts_with("220"));
        held.push(stream);
    }
    // A sixth from that address is turned away at once; other hosts are served meanwhile.
    let sixth = connect_from([127, 0, 0, 2], n.b_backbone);
    assert!(greeted(&sixth).starts_with("421 4.7.0"), "the sixth connection from one address");
    let sent = submit(
        &n,
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: x\r\nMessage-ID: <crowd@a.test>\r\n\r\nServed.\r\n",
    );
    assert_eq!(sent.status, 0, "{}", sent.stderr);
    assert!(mailbox(&n.b, "b.test", "dr.jones", 1)[0].contains("Served."));

    // The tricklers: a command line that never ends is cut off at the idle timeout, although a
    // byte comes every 400 ms (each read well within any per-read timeout).
    let mut first = held.remove(0);
    let writer =
        trickle(first.try_clone().unwrap(), b"EHLO slowly.example.org\r\n".repeat(4), Duration::from_millis(400));
    let (said, took) = until_closed(&mut first, Duration::from_secs(15));
    assert!(said.contains("421"), "{said:?}");
    assert!(took < Duration::from_secs(6), "cut off after {took:?}");
    writer.join().unwrap();

    // DATA at a byte every 300 ms: cut off after the 3 s grace.
    let mut data = connect_from([127, 0, 0, 3], n.b_backbone);
    greeted(&data);
    let replies = {
        use std::io::Write;
        let mut reader = BufReader::new(data.try_clone().unwrap());
        let mut replies = Vec::new();
        for command in ["EHLO peer.example.org", "MAIL FROM:<x@a.test>", "RCPT TO:<dr.jones@b.test>", "DATA"] {
            data.write_all(format!("{command}\r\n").as_bytes()).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let last = line.as_bytes().get(3) != Some(&b'-');
                replies.push(line);
                if last {
                    break;
                }
            }
        }
        replies
    };
    assert!(replies.last().unwrap().starts_with("354"), "{replies:?}");
    let writer = trickle(data.try_clone().unwrap(), vec![b'x'; 100], Duration::from_millis(300));
    let (said, took) = until_closed(&mut data, Duration::from_secs(15));
    assert!(said.contains("421"), "{said:?}");
    assert!(took < Duration::from_secs(6), "cut off after {took:?}");
    writer.join().unwrap();
}

#[test]
fn below_the_free_space_watermark_peers_are_asked_to_come_back_and_ehrs_still_submit() {
    // B thinks its disks too full (a watermark no disk meets); A has room.
    let n = network_with(|node, config| match node {
        "b" => config.replace("min_free_disk_mb = 0\n", "min_free_disk_mb = 1000000000\n"),
        _ => config,
    });
    let replies = smtp_dialogue(n.b_backbone, &[]);
    assert!(replies[0].starts_with("421 4.3.1"), "{replies:?}");
    // A's EHR submits all the same, and A keeps it until B has room.
    let sent = submit(
        &n,
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: x\r\nMessage-ID: <full@a.test>\r\n\r\nLater.\r\n",
    );
    assert_eq!(sent.status, 0, "{}", sent.stderr);
    let waiting = wait_status_of(&n.a, "<full@a.test>", "deferred");
    assert!(waiting.to_string().contains("4.3.1"), "{waiting}");
}

/// A backbone connection from `source` to `port`, through DATA and the message's header section.
fn open_data(source: [u8; 4], port: u16) -> (std::net::TcpStream, std::io::BufReader<std::net::TcpStream>) {
    use std::io::{BufRead, Write};
    let mut stream = servers::connect_from(source, port);
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    for command in ["EHLO peer.example.org", "MAIL FROM:<x@a.test>", "RCPT TO:<dr.jones@b.test>", "DATA"] {
        stream.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    }
    assert!(line.starts_with("354"), "{line}");
    stream.write_all(b"Content-Type: application/pkcs7-mime\r\n\r\n").unwrap();
    (stream, reader)
}

#[test]
fn one_address_cannot_have_the_backbone_hold_more_than_its_allowance_of_mail() {
    use std::io::{BufRead, Write};
    // B takes messages of up to 1 MB: one address may have four of them in progress at once.
    let n = network();
    let open_data = |source: [u8; 4]| open_data(source, n.b_backbone);
    let chunk = format!("{}\r\n", "A".repeat(998)).repeat(900); // 900 KB
    let mut held = Vec::new();
    for _ in 0..4 {
        let (mut stream, reader) = open_data([127, 0, 0, 4]);
        stream.write_all(chunk.as_bytes()).unwrap();
        held.push((stream, reader));
    }
    // The fifth message from that address goes past the allowance and is refused at its end...
    let (mut fifth, mut reader) = open_data([127, 0, 0, 4]);
    fifth.write_all(chunk.as_bytes()).unwrap();
    fifth.write_all(b".\r\n").unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    assert!(reply.starts_with("452 4.3.1"), "{reply}");
    // ...while another address's message of the same size is taken.
    let (mut other, mut reader) = open_data([127, 0, 0, 5]);
    other.write_all(chunk.as_bytes()).unwrap();
    other.write_all(b".\r\n").unwrap();
    reply.clear();
    reader.read_line(&mut reply).unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    drop(held);
}

#[test]
fn large_messages_being_received_are_held_on_disk_not_in_memory() {
    use std::io::{BufRead, Write};
    // B takes messages of up to 10 MB; eight peers (one address each) are each 9 MB into one.
    let n = network_with(|node, config| match node {
        "b" => config.replace("max_message_bytes = 1000000\n", "max_message_bytes = 10000000\n"),
        _ => config,
    });
    let chunk = format!("{}\r\n", "A".repeat(998)).repeat(9000); // 9 MB
    let before = n.daemons[1].rss_kib();
    let mut held: Vec<_> = (0..8u8)
        .map(|i| {
            let (mut stream, reader) = open_data([127, 0, 0, 20 + i], n.b_backbone);
            stream.write_all(chunk.as_bytes()).unwrap();
            (stream, reader)
        })
        .collect();
    // What was written has been read (the next command waits on B's reply to each).
    let (mut probe, mut probe_reader) = open_data([127, 0, 0, 30], n.b_backbone);
    probe.write_all(b"QUJD\r\n.\r\n").unwrap();
    let mut reply = String::new();
    probe_reader.read_line(&mut reply).unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let grown_mib = n.daemons[1].rss_kib().saturating_sub(before) / 1024;
    // Held in memory, 72 MB would be resident; spooled, about 1 MiB a message.
    assert!(grown_mib < 24, "B grew by {grown_mib} MiB with 72 MB of mail in progress");
    // Each message is taken whole at its end.
    let (stream, reader) = &mut held[0];
    stream.write_all(b".\r\n").unwrap();
    reply.clear();
    reader.read_line(&mut reply).unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    let queue = n.b.json(&["queue", "list", "--all"]);
    let inbound = queue.as_array().unwrap().iter().filter(|m| m["flow"] == "inbound").count();
    assert_eq!(inbound, 2, "the probe and the large message: {queue}");
}

#[test]
fn the_key_encryption_key_does_not_stay_in_the_environment_of_a_running_node() {
    let n = network();
    let environ = n.daemons[0].environ();
    assert!(!environ.is_empty(), "/proc shows the environment");
    let kek = node::KEK.as_bytes();
    assert!(!environ.windows(kek.len()).any(|w| w == kek), "the KEK is still in /proc/PID/environ");
    assert!(String::from_utf8_lossy(&environ).contains("HISP_DB="), "the rest stays");
}

#[test]
fn trickling_clients_of_the_ca_publisher_and_the_dns_publisher_are_cut_off_while_others_are_served() {
    use common::node::Node;
    use common::servers::{connect_from, free_port};
    use std::time::Duration;
    let (dns, http, backbone) = (free_port(), free_port(), free_port());
    let node = Node::with_config(&format!(
        "[ca]\nbase_url = \"http://127.0.0.1:{http}\"\n\
         [server]\nhostname = \"mx.a.test\"\nsubmission = \"\"\nbackbone = \"127.0.0.1:{backbone}\"\nhttp = \"127.0.0.1:{http}\"\n\
         max_connections_per_ip = 3\nmin_free_disk_mb = 0\n\
         [dns_server]\nlisten = \"127.0.0.1:{dns}\"\n"
    ));
    node.ok(&["domain", "add", "a.test"]);
    node.ok(&["ca", "init"]);
    let _daemon = node.serve(backbone);
    // Three clients from 127.0.0.2 on each publisher, trickling a byte every 500 ms.
    let mut tricklers = Vec::new();
    for port in [http, dns] {
        for _ in 0..3 {
            let stream = connect_from([127, 0, 0, 2], port);
            let bytes = if port == http { b"GET /ca.cer HTTP/1.1\r\nHost: x\r\n\r\n".to_vec() } else { vec![0, 40] };
            tricklers.push((
                port,
                stream.try_clone().unwrap(),
                trickle(stream, bytes.repeat(10), Duration::from_millis(500)),
            ));
        }
        // A fourth from that address is not served at all.
        let mut fourth = connect_from([127, 0, 0, 2], port);
        let (said, took) = until_closed(&mut fourth, Duration::from_secs(5));
        assert!(said.is_empty() && took < Duration::from_secs(2), "{port}: {said:?} after {took:?}");
    }
    // Others are served meanwhile: the CA's certificate over HTTP, a CERT query over TCP.
    let cer = run(
        "curl",
        &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{http}/ca.cer")],
        None,
        &[],
    );
    assert_eq!(cer.text(), "200", "{}", cer.stderr);
    let mx = run("kdig", &["@127.0.0.1", &format!("-p{dns}"), "+tcp", "+norecurse", "a.test", "MX"], None, &[]);
    assert!(mx.text().contains("NOERROR"), "{}", mx.text());
    // Each trickler is cut off by its 10 s deadline, not kept for as long as it keeps trickling.
    for (port, mut stream, writer) in tricklers {
        let (_, took) = until_closed(&mut stream, Duration::from_secs(20));
        assert!(took < Duration::from_secs(13), "{port}: held for {took:?}");
        writer.join().unwrap();
    }
}
