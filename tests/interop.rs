//! Interop with independent S/MIME implementations (the `openssl cms` CLI; Python `cryptography`
//! with endesive), both ways, and every refusal of `hisp message open` on a message built by them.

mod common;

use common::pki::Pki;
use common::*;

const ORIGINAL: &[u8] = b"From: Alice <alice@a.example.org>\r\nTo: bob@b.example.org\r\nSubject: Referral for patient\r\n\
Date: Mon, 23 Nov 2026 14:00:00 +0000\r\nMessage-ID: <interop-1@a.example.org>\r\n\r\nPlease see the patient on Monday.\r\n";

struct World {
    files: Files,
    pki: Pki,
    alice: Identity,
}

/// A CA publishing its CRL on loopback, alice@a (sender), bob@b (recipient), eve@e (a bystander),
/// and a second, untrusted CA.
fn world() -> World {
    let files = Files::new();
    let pki = Pki::new("Interop CA");
    files.ca("ca", &pki.ca);
    files.ca("other-ca", &ca("Other CA"));
    let alice = pki.issue("alice@a.example.org");
    files.identity("alice", &alice);
    files.identity("bob", &pki.issue("bob@b.example.org"));
    files.identity("eve", &pki.issue("eve@e.example.org"));
    files.write("original.eml", ORIGINAL);
    files.write("wrapped.eml", &[b"Content-Type: message/rfc822\r\n\r\n".as_slice(), ORIGINAL].concat());
    World { files, pki, alice }
}

impl World {
    fn hisp_seal(&self, extra: &[&str]) -> String {
        let f = &self.files;
        let out = f.p("sealed.eml");
        let mut args = vec![
            "message",
            "seal",
            "--in",
            f.p("original.eml").leak(),
            "--out",
            out.clone().leak(),
            "--signer-cert",
            f.p("alice.pem").leak(),
            "--signer-key",
            f.p("alice.key").leak(),
            "--recipient-cert",
            f.p("bob.pem").leak(),
        ];
        args.extend_from_slice(extra);
        hisp(&args, None, &[]).ok();
        out
    }

    /// `openssl cms -sign` (detached unless told otherwise) of the wrapped original by `signer`.
    fn openssl_sign(&self, signer: &str, extra: &[&str]) -> String {
        let f = &self.files;
        let out = f.p("signed.eml");
        let mut args = vec![
            "cms",
            "-sign",
            "-in",
            f.p("wrapped.eml").leak(),
            "-out",
            out.clone().leak(),
            "-signer",
            f.p(&format!("{signer}.pem")).leak(),
            "-inkey",
            f.p(&format!("{signer}.key")).leak(),
        ];
        if !extra.contains(&"-md") {
            args.extend_from_slice(&["-md", "sha256"]);
        }
        args.extend_from_slice(extra);
        openssl(&args);
        out
    }

    /// `openssl cms -encrypt` of `input` to `recipient`, with the envelope headers a HISP adds.
    fn openssl_encrypt(&self, input: &str, recipient: &str, extra: &[&str]) -> String {
        let f = &self.files;
        let out = f.p("encrypted.eml");
        let mut args = vec![
            "cms",
            "-encrypt",
            "-in",
            input,
            "-out",
            out.clone().leak(),
            "-from",
            "alice@a.example.org",
            "-to",
            "bob@b.example.org",
            "-subject",
            "Referral for patient",
        ];
        if !extra.iter().any(|a| a.starts_with("-aes") || *a == "-des3" || *a == "-rc2") {
            args.push("-aes256");
        }
        args.extend_from_slice(&["-recip", f.p(&format!("{recipient}.pem")).leak()]);
        args.extend_from_slice(extra);
        openssl(&args);
        out
    }

    /// `openssl cms -decrypt` as `who`; returns the name of the decrypted file.
    fn openssl_decrypt(&self, sealed: &str, who: &str) -> &'static str {
        let f = &self.files;
        let (cert, key) = (f.p(&format!("{who}.pem")), f.p(&format!("{who}.key")));
        openssl(&["cms", "-decrypt", "-in", sealed, "-out", &f.p("dec.eml"), "-recip", &cert, "-inkey", &key]);
        "dec.eml"
    }

    /// `hisp message open` standalone as bob, trusting `anchor`; JSON report.
    fn hisp_open(&self, message: &str, anchor: &str) -> Run {
        self.hisp_open_with(message, anchor, &[])
    }

    /// As `hisp_open`, with more options.
    fn hisp_open_with(&self, message: &str, anchor: &str, extra: &[&str]) -> Run {
        let f = &self.files;
        let (out, cert, key, anchor) =
            (f.p("opened.eml"), f.p("bob.pem"), f.p("bob.key"), f.p(&format!("{anchor}.pem")));
        let mut args = vec![
            "--json",
            "message",
            "open",
            "--in",
            message,
            "--out",
            &out,
            "--recipient-cert",
            &cert,
            "--recipient-key",
            &key,
            "--anchor",
            &anchor,
        ];
        args.extend_from_slice(extra);
        hisp(&args, None, &[])
    }

    fn assert_opens(&self, message: &str) -> serde_json::Value {
        let report = self.hisp_open(message, "ca").ok().json();
        assert_eq!(report["ok"], true);
        assert_eq!(report["revocation"], "good", "the CRL was fetched and checked");
        assert_eq!(report["from"], "alice@a.example.org");
        assert_eq!(self.files.read("opened.eml"), ORIGINAL, "the original must come back byte for byte");
        report
    }

    fn assert_refused(&self, message: &str, anchor: &str, code: &str) -> String {
        let run = self.hisp_open(message, anchor);
        assert_eq!(run.status, 1, "expected a refusal ({code}); stdout: {}", run.text());
        let report = run.json();
        assert_eq!(report["ok"], false);
        assert_eq!(report["error"]["code"], code, "{}", report["error"]["message"]);
        assert!(!self.files.path("opened.eml").exists(), "nothing may be written for a refused message");
        report["error"]["message"].as_str().unwrap().to_string()
    }
}

// ---- hisp seals, others open ----

#[test]
fn openssl_decrypts_and_verifies_what_hisp_seals() {
    let w = world();
    let f = &w.files;
    let sealed = w.hisp_seal(&[]);
    let structure = openssl(&["cms", "-cmsout", "-print", "-in", &sealed]).text();
    assert!(structure.contains("aes-256-cbc"), "{structure}");
    assert!(structure.contains("rsaEncryption"), "{structure}");
    let decrypted = w.openssl_decrypt(&sealed, "bob");
    let decrypted = String::from_utf8(f.read(decrypted)).unwrap();
    assert!(decrypted.contains("multipart/signed"), "{decrypted}");
    assert!(decrypted.contains("micalg=sha-256"));
    let verified = openssl(&["cms", "-verify", "-in", &f.p("dec.eml"), "-CAfile", &f.p("ca.pem")]).stdout;
    let text = String::from_utf8(verified).unwrap();
    assert!(text.starts_with("Content-Type: message/rfc822"), "{text}");
    assert!(text.contains("Please see the patient on Monday."));
    // The real subject travels inside, encrypted; the outer message, which relays see, has a
    // neutral one.
    assert!(text.contains("Subject: Referral for patient"), "{text}");
    let outer = String::from_utf8(f.read("sealed.eml")).unwrap();
    let outer_head = &outer[..outer.find("\r\n\r\n").unwrap()];
    assert!(outer_head.contains("Subject: Secure message"), "{outer_head}");
    assert!(!outer.contains("Referral for patient"), "{outer_head}");
    // The sender can decrypt its own copy.
    w.openssl_decrypt(&sealed, "alice");
}

#[test]
fn openssl_decrypts_hisp_oaep_and_aes128() {
    let w = world();
    let f = &w.files;
    let sealed = w.hisp_seal(&["--key-transport", "rsa-oaep", "--cipher", "aes-128-cbc"]);
    let structure = openssl(&["cms", "-cmsout", "-print", "-in", &sealed]).text();
    assert!(structure.contains("rsaesOaep"), "{structure}");
    assert!(structure.contains("aes-128-cbc"), "{structure}");
    let decrypted = w.openssl_decrypt(&sealed, "bob");
    openssl(&["cms", "-verify", "-in", &f.p(decrypted), "-CAfile", &f.p("ca.pem")]);
}

#[test]
fn python_peer_decrypts_and_verifies_what_hisp_seals() {
    let w = world();
    let f = &w.files;
    let sealed = w.hisp_seal(&[]);
    let out = py_peer(&[
        "open",
        "--in",
        &sealed,
        "--recipient-cert",
        &f.p("bob.pem"),
        "--recipient-key",
        &f.p("bob.key"),
        "--anchor",
        &f.p("ca.pem"),
    ])
    .ok();
    assert_eq!(out.stdout, [b"Content-Type: message/rfc822\r\n\r\n".as_slice(), ORIGINAL].concat());
}

// ---- others seal, hisp opens ----

#[test]
fn hisp_opens_openssl_sign_then_encrypt() {
    let w = world();
    let signed = w.openssl_sign("alice", &[]);
    let report = w.assert_opens(&w.openssl_encrypt(&signed, "bob", &[]));
    assert_eq!(report["content_encryption"], "AES-256-CBC");
    assert_eq!(report["key_transport"], "RSA (PKCS#1 v1.5)");
    assert_eq!(report["digest"], "SHA-256");
    assert_eq!(report["signer"]["binding"], "address");
}

#[test]
fn hisp_opens_openssl_oaep_gcm_and_opaque_signatures() {
    let w = world();
    let signed = w.openssl_sign("alice", &[]);
    let report = w.assert_opens(&w.openssl_encrypt(&signed, "bob", &["-keyopt", "rsa_padding_mode:oaep"]));
    assert_eq!(report["key_transport"], "RSA-OAEP");
    let report = w.assert_opens(&w.openssl_encrypt(&signed, "bob", &["-aes-256-gcm"]));
    assert_eq!(report["content_encryption"], "AES-256-GCM");
    let opaque = w.openssl_sign("alice", &["-nodetach"]);
    w.assert_opens(&w.openssl_encrypt(&opaque, "bob", &[]));
}

#[test]
fn hisp_opens_python_peer_messages_with_oaep_and_pkcs1() {
    let w = world();
    let f = &w.files;
    for (flag, transport) in [(Some("--oaep"), "RSA-OAEP"), (None, "RSA (PKCS#1 v1.5)")] {
        let mut args = vec![
            "seal",
            "--in",
            f.p("original.eml").leak(),
            "--signer-cert",
            f.p("alice.pem").leak(),
            "--signer-key",
            f.p("alice.key").leak(),
            "--recipient-cert",
            f.p("bob.pem").leak(),
        ];
        args.extend(flag);
        let sealed = f.write("py.eml", &py_peer(&args).ok().stdout);
        let report = w.assert_opens(&sealed);
        assert_eq!(report["key_transport"], transport);
        std::fs::remove_file(f.path("opened.eml")).unwrap();
    }
}

// ---- refusals, each on a message an independent tool built ----

#[test]
fn refuses_a_message_that_is_not_encrypted() {
    let w = world();
    let signed = w.openssl_sign("alice", &[]);
    let msg = w.assert_refused(&signed, "ca", "not-encrypted");
    assert!(msg.contains("not encrypted"), "{msg}");
    w.assert_refused(&w.files.p("original.eml"), "ca", "not-encrypted");
}

#[test]
fn refuses_a_message_that_is_not_signed() {
    let w = world();
    let encrypted = w.openssl_encrypt(&w.files.p("wrapped.eml"), "bob", &[]);
    w.assert_refused(&encrypted, "ca", "not-signed");
}

#[test]
fn refuses_a_tampered_message() {
    let w = world();
    let signed = String::from_utf8(std::fs::read(w.openssl_sign("alice", &[])).unwrap()).unwrap();
    let tampered = signed.replace("Monday", "Friday");
    assert_ne!(tampered, signed);
    let input = w.files.write("tampered.eml", tampered.as_bytes());
    let msg = w.assert_refused(&w.openssl_encrypt(&input, "bob", &[]), "ca", "tampered");
    assert!(msg.contains("does not verify"), "{msg}");
}

#[test]
fn refuses_a_signer_not_bound_to_from() {
    let w = world();
    // Eve signs, but the message says it is from alice.
    let msg = w.assert_refused(&w.openssl_encrypt(&w.openssl_sign("eve", &[]), "bob", &[]), "ca", "not-bound");
    assert!(msg.contains("eve@e.example.org") && msg.contains("alice@a.example.org"), "{msg}");
}

#[test]
fn refuses_an_untrusted_signer() {
    let w = world();
    let encrypted = w.openssl_encrypt(&w.openssl_sign("alice", &[]), "bob", &[]);
    w.assert_refused(&encrypted, "other-ca", "untrusted");
}

#[test]
fn refuses_an_expired_signer() {
    let w = world();
    w.files.identity("old", &w.pki.issue_with("alice@a.example.org", 2048, *NOW - 400 * DAY, *NOW - 35 * DAY));
    let encrypted = w.openssl_encrypt(&w.openssl_sign("old", &[]), "bob", &[]);
    let msg = w.assert_refused(&encrypted, "ca", "expired");
    assert!(msg.contains("valid until"), "{msg}");
}

#[test]
fn refuses_a_message_for_someone_else() {
    let w = world();
    let encrypted = w.openssl_encrypt(&w.openssl_sign("alice", &[]), "eve", &[]);
    let msg = w.assert_refused(&encrypted, "ca", "no-key");
    assert!(msg.contains("Interop CA"), "the refusal names the recipients: {msg}");
}

#[test]
fn refuses_md5_and_sha1_digests() {
    let w = world();
    for (md, name) in [("sha1", "SHA-1"), ("md5", "MD5")] {
        let encrypted = w.openssl_encrypt(&w.openssl_sign("alice", &["-md", md]), "bob", &[]);
        let msg = w.assert_refused(&encrypted, "ca", "weak-digest");
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn refuses_3des_and_rc2_content_encryption() {
    let w = world();
    let signed = w.openssl_sign("alice", &[]);
    let msg = w.assert_refused(&w.openssl_encrypt(&signed, "bob", &["-des3"]), "ca", "weak-cipher");
    assert!(msg.contains("3DES"), "{msg}");
    // RC2 lives in OpenSSL 3's legacy provider.
    let rc2 = w.openssl_encrypt(&signed, "bob", &["-rc2", "-provider", "legacy", "-provider", "default"]);
    let msg = w.assert_refused(&rc2, "ca", "weak-cipher");
    assert!(msg.contains("RC2"), "{msg}");
}

#[test]
fn refuses_rsa_keys_under_2048_bits() {
    let w = world();
    w.files.identity("weak", &w.pki.issue_with("alice@a.example.org", 1024, *NOW - DAY, *NOW + 30 * DAY));
    let encrypted = w.openssl_encrypt(&w.openssl_sign("weak", &[]), "bob", &[]);
    let msg = w.assert_refused(&encrypted, "ca", "short-key");
    assert!(msg.contains("1024"), "{msg}");
}

#[test]
fn refuses_a_revoked_signer() {
    let w = world();
    let encrypted = w.openssl_encrypt(&w.openssl_sign("alice", &[]), "bob", &[]);
    w.assert_opens(&encrypted);
    w.pki.publish_crl(&[&w.alice]);
    std::fs::remove_file(w.files.path("opened.eml")).unwrap();
    let msg = w.assert_refused(&encrypted, "ca", "revoked");
    assert!(msg.contains("alice@a.example.org") && msg.contains("revoked on"), "{msg}");
}

#[test]
fn an_unreachable_crl_refuses_by_default_and_warns_when_soft() {
    let w = world();
    let encrypted = w.openssl_encrypt(&w.openssl_sign("alice", &[]), "bob", &[]);
    std::fs::remove_file(w.pki.web.path("ca.crl")).unwrap();
    let msg = w.assert_refused(&encrypted, "ca", "revocation-unknown");
    assert!(msg.contains("404"), "the reason is reported: {msg}");

    let soft = w.hisp_open_with(&encrypted, "ca", &["--revocation", "soft"]).ok().json();
    assert_eq!(soft["ok"], true);
    let note = soft["revocation"].as_str().unwrap();
    assert!(note.starts_with("not checked (soft fail)") && note.contains("404"), "{note}");
}
