//! Sealing (Applicability Statement §2): wrap the message as message/rfc822, sign it (detached
//! multipart/signed, SHA-256), then encrypt that to every recipient and to the sender.

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use super::mime::{self, Entity};
use super::policy::{self, ContentCipher, KeyTransport};
use super::signed_data::SignerTemplate;
use super::{cms_ffi, envelope, SmimeError};
use crate::address::DirectAddress;
use crate::clock::rfc5322;
use crate::pki;
use crate::pki::binding::BoundNames;

/// The sender's signing identity, checked once when it is loaded: the key belongs to the
/// certificate and policy allows it. A node reuses it for every message the sender sends.
pub struct SignerIdentity {
    cert: X509,
    key: PKey<Private>,
    bound: BoundNames,
    template: SignerTemplate,
}

impl SignerIdentity {
    /// `chain`: intermediate CA certificates to carry in the signature.
    pub fn new(cert: X509, key: PKey<Private>, chain: Vec<X509>) -> Result<SignerIdentity, SmimeError> {
        pki::check_key_matches(&cert, &key).map_err(|e| SmimeError::BadInput(e.to_string()))?;
        policy::check_key(&*cert.public_key()?, "sender certificate", false)?;
        let bound = BoundNames::of(&cert);
        let template = SignerTemplate::new(&cert, &key, &chain)?;
        Ok(SignerIdentity { cert, key, bound, template })
    }
}

/// The outer Subject unless configured otherwise.
pub const NEUTRAL_SUBJECT: &str = "Secure message";

#[derive(Debug, Clone)]
pub struct SealOptions {
    pub cipher: ContentCipher,
    pub key_transport: KeyTransport,
    /// The outer message's Subject ("": none); the real one stays inside.
    pub outer_subject: String,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            cipher: ContentCipher::default(),
            key_transport: KeyTransport::default(),
            outer_subject: NEUTRAL_SUBJECT.into(),
        }
    }
}

#[derive(Debug)]
pub struct Sealed {
    pub message: Vec<u8>,
    pub message_id: String,
    pub from: DirectAddress,
    pub recipients: Vec<DirectAddress>,
}

/// Headers repeated on the outer (encrypted) message so it can be routed and threaded.
const OUTER_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Disposition-Notification-To",
    "Disposition-Notification-Options",
];

/// Who a message is from and to, as its header fields say (To, Cc and Bcc).
pub fn envelope_of(headers: &mime::Headers) -> Result<(DirectAddress, Vec<DirectAddress>), SmimeError> {
    let from_value =
        headers.get("from").ok_or_else(|| SmimeError::BadInput("the message has no From header".into()))?;
    let from = match mime::addresses(from_value).as_slice() {
        [one] => DirectAddress::parse(one).map_err(|e| SmimeError::BadInput(format!("From: {e}")))?,
        [] => return Err(SmimeError::BadInput(format!("From header '{from_value}' holds no address"))),
        _ => return Err(SmimeError::BadInput("From header holds more than one address".into())),
    };
    let mut recipients: Vec<DirectAddress> = Vec::new();
    for field in ["to", "cc", "bcc"] {
        for value in headers.all(field) {
            for a in mime::addresses(value) {
                let a = DirectAddress::parse(&a).map_err(|e| SmimeError::BadInput(format!("{field}: {e}")))?;
                if !recipients.contains(&a) {
                    recipients.push(a);
                }
            }
        }
    }
    if recipients.is_empty() {
        return Err(SmimeError::BadInput("the message has no recipients (To, Cc or Bcc)".into()));
    }
    Ok((from, recipients))
}

/// Seals `message` (RFC 5322, any line endings). Consumes it so a large message is not held twice.
pub fn seal(
    message: Vec<u8>,
    signer: &SignerIdentity,
    recipient_certs: &[X509],
    options: SealOptions,
    now: i64,
) -> Result<Sealed, SmimeError> {
    let canonical = match mime::to_crlf(&message) {
        std::borrow::Cow::Owned(converted) => converted,
        std::borrow::Cow::Borrowed(_) => message, // already canonical: no copy
    };
    let original = Entity::parse(&canonical);
    let (from, recipients) = envelope_of(&original.headers)?;
    if signer.bound.binding_for(&from).is_none() {
        return Err(SmimeError::NotBound {
            subject: pki::name_line(signer.cert.subject_name()),
            bound: signer.bound.all().join(", "),
            from: from.to_string(),
        });
    }
    let encrypt_to = encryption_targets(recipient_certs, &signer.cert)?;
    let message_id = original
        .headers
        .get("message-id")
        .map(str::to_string)
        .unwrap_or_else(|| format!("<{}@{}>", random_hex(16), from.domain()));
    let outer_headers = outer_header_block(&original.headers, &message_id, &options.outer_subject, now);
    let entity = signed_entity(&original, signer, &message_id, now)?;
    drop(canonical);
    let enveloped = match options.key_transport {
        KeyTransport::RsaPkcs1 => {
            envelope::encrypt_pkcs1(entity, &encrypt_to, options.cipher == ContentCipher::Aes256Cbc)?
        }
        KeyTransport::RsaOaep => cms_ffi::encrypt(entity, &encrypt_to, options.cipher.openssl(), true)?,
    };
    let mut head = outer_headers;
    head.extend_from_slice(b"MIME-Version: 1.0\r\n");
    head.extend_from_slice(b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n");
    head.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
    head.extend_from_slice(b"Content-Disposition: attachment; filename=smime.p7m\r\n\r\n");
    let message = mime::prefix_base64_lines_in_place(enveloped, &head);
    Ok(Sealed { message, message_id, from, recipients })
}

/// Whom the message is encrypted to: each recipient certificate once, and the signer's own (so
/// the sender can read what it sent), each with a key policy accepts.
fn encryption_targets<'c>(recipient_certs: &'c [X509], own: &'c X509) -> Result<Vec<&'c X509>, SmimeError> {
    let mut encrypt_to: Vec<&X509> = Vec::new();
    for cert in recipient_certs.iter().chain(std::iter::once(own)) {
        if encrypt_to.iter().any(|c| c.as_ref() == cert.as_ref()) {
            continue;
        }
        policy::check_key(&*cert.public_key()?, "a recipient certificate", true).map_err(|e| match e {
            SmimeError::KeyTooShort { bits, .. } => SmimeError::KeyTooShort {
                whose: format!("recipient certificate '{}'", pki::name_line(cert.subject_name())),
                bits,
            },
            other => other,
        })?;
        encrypt_to.push(cert);
    }
    Ok(encrypt_to)
}

/// The multipart/signed entity: the original wrapped as message/rfc822 (byte for byte what is
/// signed), then its detached signature.
fn signed_entity(
    original: &Entity,
    signer: &SignerIdentity,
    message_id: &str,
    now: i64,
) -> Result<Vec<u8>, SmimeError> {
    let boundary = format!("----=_hisp_{}", random_hex(16));
    let mut entity = Vec::with_capacity(original.header_bytes.len() + original.body.len() + 8192);
    entity.extend_from_slice(
        b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n",
    );
    entity.extend_from_slice(format!("\tboundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n").as_bytes());
    let start = entity.len();
    entity.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    write_inner_headers(&mut entity, original.header_bytes, &original.headers, message_id, now);
    entity.extend_from_slice(b"\r\n");
    entity.extend_from_slice(original.body);
    let signature = signer.template.sign(&entity[start..], &signer.key, now)?;
    entity.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    entity.extend_from_slice(b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n");
    entity.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
    entity.extend_from_slice(b"Content-Disposition: attachment; filename=smime.p7s\r\n\r\n");
    mime::encode_base64_lines(&signature, &mut entity);
    entity.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(entity)
}

/// The original header fields minus Bcc (never disclosed to recipients), plus Date and
/// Message-ID when the EHR left them out.
fn write_inner_headers(out: &mut Vec<u8>, raw: &[u8], headers: &mime::Headers, message_id: &str, now: i64) {
    mime::copy_fields_except(raw, &["bcc"], out);
    if headers.get("date").is_none() {
        out.extend_from_slice(format!("Date: {}\r\n", rfc5322(now)).as_bytes());
    }
    if headers.get("message-id").is_none() {
        out.extend_from_slice(format!("Message-ID: {message_id}\r\n").as_bytes());
    }
}

/// The routing and threading fields of the outer message, as the inner message has them; the
/// Subject is `subject` (it is seen by every relay and stored in the clear by many).
fn outer_header_block(headers: &mime::Headers, message_id: &str, subject: &str, now: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for name in OUTER_HEADERS {
        let value = match headers.get(name) {
            _ if *name == "Subject" && subject.is_empty() => continue,
            _ if *name == "Subject" => subject.replace(['\r', '\n'], " "),
            Some(v) => v.to_string(),
            None if *name == "Date" => rfc5322(now),
            None if *name == "Message-ID" => message_id.to_string(),
            None => continue,
        };
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buf).expect("the OpenSSL RNG is available");
    hex::encode(&buf)
}
