//! Seal then open inside hisp: the format of DESIGN.md §2, and every refusal that can be built
//! with hisp's own tools. (Interop with openssl and Python peers: tests/interop.rs.)

mod common;

use common::*;
use hisp::address::Binding;
use hisp::fetch::StaticFetcher;
use hisp::smime::mime::{self, Entity};
use hisp::smime::open::{open, OpenTrust, Opened, RecipientKey};
use hisp::smime::seal::{seal, SealOptions, SignerIdentity};
use hisp::smime::{ContentCipher, KeyTransport, SmimeError};
use hisp::trust::revocation::{FailMode, Policy};
use hisp::trust::FixedAnchors;

/// Opens trusting `ca`, whose (empty) CRL is served at the URL its certificates name.
fn open_trusting(message: &[u8], keys: &[RecipientKey], ca: &Ca, now: i64) -> Result<Opened, SmimeError> {
    let crl = crl(ca, &[], now - DAY, now + 7 * DAY);
    let fetch = StaticFetcher([("http://ca.test.invalid/ca.crl".to_string(), crl)].into());
    let anchors = FixedAnchors(vec![ca.cert.clone()]);
    let trust = OpenTrust { anchors: &anchors, revocation: Policy { fetch: &fetch, mode: FailMode::Hard }, now };
    open(message, keys, &trust)
}

fn key_of(id: &Identity) -> RecipientKey {
    RecipientKey { cert: id.cert.clone(), key: id.key.clone(), domain: Some(id.address.domain().clone()) }
}

fn seal_simple(sender: &Identity, recipients: &[&Identity], msg: Vec<u8>, options: SealOptions) -> Vec<u8> {
    let signer = SignerIdentity::new(sender.cert.clone(), sender.key.clone(), Vec::new()).unwrap();
    let certs: Vec<_> = recipients.iter().map(|r| r.cert.clone()).collect();
    seal(msg, &signer, &certs, options, *NOW).unwrap().message
}

#[test]
fn sealed_message_has_the_direct_format_and_opens() {
    let ca = ca("Test CA");
    let alice = issue(&ca, "alice@a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let sealed = seal_simple(
        &alice,
        &[&bob],
        message("alice@a.example.org", "bob@b.example.org", "hello"),
        SealOptions::default(),
    );

    let outer = Entity::parse(&sealed);
    let ct = outer.content_type();
    assert!(ct.is("application/pkcs7-mime"));
    assert_eq!(ct.param("smime-type"), Some("enveloped-data"));
    assert_eq!(ct.param("name"), Some("smime.p7m"));
    assert_eq!(outer.headers.get("content-disposition"), Some("attachment; filename=smime.p7m"));
    assert_eq!(outer.headers.get("content-transfer-encoding"), Some("base64"));
    assert!(!sealed.windows(5).any(|w| w == b"hello"), "content must not be visible");

    let opened = open_trusting(&sealed, &[key_of(&bob)], &ca, *NOW).unwrap();
    assert_eq!(opened.from.to_string(), "alice@a.example.org");
    assert_eq!(opened.signer.binding, Binding::Address);
    assert_eq!(opened.content_encryption, "AES-256-CBC");
    assert_eq!(opened.key_transport, "RSA (PKCS#1 v1.5)");
    assert_eq!(opened.digest, "SHA-256");
    let original = Entity::parse(&opened.original);
    assert_eq!(original.headers.get("subject"), Some("Referral"));
    assert_eq!(original.body, b"hello\r\n");

    // The sender can open its own copy too.
    assert!(open_trusting(&sealed, &[key_of(&alice)], &ca, *NOW).is_ok());
}

#[test]
fn aes128_and_oaep_are_honoured() {
    let ca = ca("Test CA");
    let alice = issue(&ca, "alice@a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let options =
        SealOptions { cipher: ContentCipher::Aes128Cbc, key_transport: KeyTransport::RsaOaep, ..Default::default() };
    let sealed = seal_simple(&alice, &[&bob], message("alice@a.example.org", "bob@b.example.org", "x"), options);
    let opened = open_trusting(&sealed, &[key_of(&bob)], &ca, *NOW).unwrap();
    assert_eq!(opened.content_encryption, "AES-128-CBC");
    assert_eq!(opened.key_transport, "RSA-OAEP");
}

#[test]
fn bcc_is_encrypted_to_but_never_disclosed() {
    let ca = ca("Test CA");
    let alice = issue(&ca, "alice@a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let carol = issue(&ca, "carol@c.example.org");
    let mut msg = b"From: alice@a.example.org\r\nTo: bob@b.example.org\r\nBcc: carol@c.example.org\r\n".to_vec();
    msg.extend_from_slice(b"Subject: s\r\n\r\nbody\r\n");
    let signer = SignerIdentity::new(alice.cert.clone(), alice.key.clone(), Vec::new()).unwrap();
    let sealed = seal(msg, &signer, &[bob.cert.clone(), carol.cert.clone()], SealOptions::default(), *NOW).unwrap();
    assert_eq!(sealed.recipients.len(), 2);
    let outer = Entity::parse(&sealed.message);
    assert!(outer.headers.get("bcc").is_none());
    assert!(!String::from_utf8_lossy(outer.header_bytes).contains("carol"), "Bcc recipients are not disclosed");
    let opened = open_trusting(&sealed.message, &[key_of(&carol)], &ca, *NOW).unwrap();
    let original = Entity::parse(&opened.original);
    assert!(original.headers.get("bcc").is_none());
    // Date and Message-ID were missing and are added.
    assert!(original.headers.get("date").is_some());
    assert_eq!(original.headers.get("message-id"), Some(sealed.message_id.as_str()));
}

#[test]
fn domain_bound_certificate_signs_for_any_address_of_its_domain() {
    let ca = ca("Test CA");
    let domain = issue(&ca, "a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let sealed = seal_simple(
        &domain,
        &[&bob],
        message("anyone@a.example.org", "bob@b.example.org", "x"),
        SealOptions::default(),
    );
    let opened = open_trusting(&sealed, &[key_of(&bob)], &ca, *NOW).unwrap();
    assert_eq!(opened.signer.binding, Binding::Domain);
}

#[test]
fn refusals_on_open() {
    let ca = ca("Test CA");
    let other_ca = ca_named("Other CA");
    let alice = issue(&ca, "alice@a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let eve = issue(&ca, "eve@e.example.org");
    let msg = || message("alice@a.example.org", "bob@b.example.org", "hello");
    let sealed = seal_simple(&alice, &[&bob], msg(), SealOptions::default());

    // No key for any recipient.
    let err = open_trusting(&sealed, &[key_of(&eve)], &ca, *NOW).unwrap_err();
    assert!(matches!(err, SmimeError::NoKey { .. }), "{err}");

    // Untrusted: the anchors are another CA's.
    let err = open_trusting(&sealed, &[key_of(&bob)], &other_ca, *NOW).unwrap_err();
    assert!(matches!(err, SmimeError::Untrusted { .. }), "{err}");

    // Expired: open it a year and a day later.
    let err = open_trusting(&sealed, &[key_of(&bob)], &ca, *NOW + 367 * DAY).unwrap_err();
    assert!(matches!(err, SmimeError::Expired { .. }), "{err}");

    // Not encrypted: a plain message.
    let err = open_trusting(&msg(), &[key_of(&bob)], &ca, *NOW).unwrap_err();
    assert!(matches!(err, SmimeError::NotEncrypted(_)), "{err}");

    // Not bound: the envelope From is changed to someone else's address.
    let forged = String::from_utf8(sealed.clone()).unwrap().replacen("alice@a.example.org", "mallory@a.example.org", 1);
    let err = open_trusting(forged.as_bytes(), &[key_of(&bob)], &ca, *NOW).unwrap_err();
    assert!(matches!(err, SmimeError::NotBound { .. }), "{err}");
}

/// A wrong RSA key block must fail like any wrong key (no padding oracle): the message is refused
/// and nothing of it is returned.
#[test]
fn a_tampered_key_block_is_refused() {
    use hisp::smime::structure::{self, ContentInfo};
    let ca = ca("Test CA");
    let alice = issue(&ca, "alice@a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let sealed =
        seal_simple(&alice, &[&bob], message("alice@a.example.org", "bob@b.example.org", "hi"), SealOptions::default());
    let outer = Entity::parse(&sealed);
    let mut der = outer.decoded_body().unwrap().into_owned();
    let ContentInfo::Enveloped(enveloped) = structure::parse(&der).unwrap() else { panic!("not enveloped") };
    for recipient in &enveloped.recipients {
        let at = der.windows(recipient.encrypted_key.len()).position(|w| w == recipient.encrypted_key).unwrap();
        der[at + 100] ^= 0x5A;
    }
    let header_len = sealed.len() - outer.body.len();
    let mut tampered = sealed[..header_len].to_vec();
    mime::encode_base64_lines(&der, &mut tampered);
    for key in [key_of(&bob), key_of(&alice)] {
        let err = open_trusting(&tampered, &[key], &ca, *NOW).unwrap_err();
        // A random key almost always fails the CBC padding; once in 256 it yields garbage that is
        // no signed message. Either way: refused, with no content.
        assert!(
            matches!(err, SmimeError::DecryptFailed | SmimeError::NotSigned(_) | SmimeError::Malformed(_)),
            "{err}"
        );
    }
}

fn ca_named(name: &str) -> Ca {
    ca(name)
}

#[test]
fn the_referral_note_round_trips_byte_for_byte() {
    let ca = ca("Test CA");
    let alice = issue(&ca, "alice@a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let ccda = fixture("ccda/referral-note.xml");
    let mut msg = b"From: alice@a.example.org\r\nTo: bob@b.example.org\r\nSubject: Referral note\r\n".to_vec();
    msg.extend_from_slice(b"Date: Mon, 23 Nov 2026 14:00:00 +0000\r\nMessage-ID: <ccda@a.example.org>\r\n");
    msg.extend_from_slice(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n");
    msg.extend_from_slice(b"Content-Type: text/plain\r\n\r\nPlease see the attached referral note.\r\n--b1\r\n");
    msg.extend_from_slice(
        b"Content-Type: application/xml; name=referral-note.xml\r\nContent-Transfer-Encoding: base64\r\n",
    );
    msg.extend_from_slice(b"Content-Disposition: attachment; filename=referral-note.xml\r\n\r\n");
    mime::encode_base64_lines(&ccda, &mut msg);
    msg.extend_from_slice(b"--b1--\r\n");
    let sealed = seal_simple(&alice, &[&bob], msg.clone(), SealOptions::default());
    let opened = open_trusting(&sealed, &[key_of(&bob)], &ca, *NOW).unwrap();
    assert_eq!(opened.original, msg);
    let original = Entity::parse(&opened.original);
    let parts = mime::multipart_parts(original.body, "b1").unwrap();
    assert_eq!(Entity::parse(parts[1]).decoded_body().unwrap().as_ref(), ccda.as_slice());
}
