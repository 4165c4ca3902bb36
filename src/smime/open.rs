//! Opening: decrypt with the addressee's key, verify the signature, check the signer is bound to
//! From and chains to the local domain's incoming anchors, then unwrap the original message.

use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Ref, X509};

use super::mime::{self, Entity};
use super::structure::{self, ContentInfo, RecipientId, Signed};
use super::{decrypt, policy, verify, SmimeError};
use crate::address::{Binding, DirectAddress, Domain};
use crate::clock::iso8601;
use crate::pki::{self, cert_cache};
use crate::store::Direction;
use crate::trust::chain::{self, ChainError};
use crate::trust::purpose::{self, Use};
use crate::trust::revocation::{self, FailMode, Status};
use crate::trust::AnchorSource;

/// A key we hold for receiving: the certificate, its private key, and the local domain whose
/// anchors decide trust for mail it decrypts (None in standalone mode).
pub struct RecipientKey {
    pub cert: X509,
    pub key: PKey<Private>,
    pub domain: Option<Domain>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SignerReport {
    pub subject: String,
    pub issuer: String,
    pub sha256: String,
    pub binding: Binding,
    pub key: String,
    pub not_after: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Opened {
    #[serde(skip)]
    pub original: Vec<u8>,
    pub from: DirectAddress,
    /// The certificate whose key decrypted the message.
    pub decrypted_for: String,
    pub signer: SignerReport,
    pub content_encryption: String,
    pub key_transport: String,
    pub digest: String,
    pub signature_algorithm: String,
    /// "good", or why revocation could not be checked when that is a soft failure.
    pub revocation: String,
}

/// What decides whether a signer is trusted: the anchors of the local domain, how revocation is
/// checked, and the time.
#[derive(Clone, Copy)]
pub struct OpenTrust<'a> {
    pub anchors: &'a dyn AnchorSource,
    pub revocation: revocation::Policy<'a>,
    pub now: i64,
}

pub fn open(message: &[u8], keys: &[RecipientKey], trust: &OpenTrust) -> Result<Opened, SmimeError> {
    let (from, ber) = enveloped_layer(message)?;
    let Decrypted { ours, content, content_encryption, key_transport } = decrypt_for(&ber, keys)?;
    drop(ber);
    let checked = check_signature(&content, ours)?;
    let signer = &*checked.signer;
    let subject = signer.subject.clone();
    let binding = signer.names.binding_for(&from).ok_or_else(|| SmimeError::NotBound {
        subject: subject.clone(),
        bound: signer.names.all().join(", "),
        from: from.to_string(),
    })?;
    let revocation = trust_signer(&checked, ours, trust)?;
    let original = unwrap(&checked.content, &from)?;
    Ok(Opened {
        original,
        from,
        decrypted_for: pki::name_line(ours.cert.subject_name()),
        signer: SignerReport {
            subject,
            issuer: signer.issuer.clone(),
            sha256: signer.sha256.clone(),
            binding,
            key: checked.key_description,
            not_after: iso8601(signer.not_after),
        },
        content_encryption,
        key_transport,
        digest: checked.digest,
        signature_algorithm: checked.signature_algorithm,
        revocation,
    })
}

/// The outer layer: an application/pkcs7-mime enveloped message from one address; returns that
/// address and the CMS it carries.
fn enveloped_layer(message: &[u8]) -> Result<(DirectAddress, std::borrow::Cow<'_, [u8]>), SmimeError> {
    let outer = Entity::parse(message);
    let ct = outer.content_type();
    let smime_type = ct.param("smime-type").map(str::to_ascii_lowercase);
    let is_pkcs7 = ct.is("application/pkcs7-mime") || ct.is("application/x-pkcs7-mime");
    if !is_pkcs7 {
        return Err(SmimeError::NotEncrypted(format!("the message is {}, not application/pkcs7-mime", ct.mime_type)));
    }
    if smime_type.as_deref().is_some_and(|t| t != "enveloped-data" && t != "authenveloped-data") {
        return Err(SmimeError::NotEncrypted(format!("the message is smime-type={}", smime_type.unwrap_or_default())));
    }
    let from = outer_from(&outer)?;
    let ber = outer.decoded_body().map_err(SmimeError::Malformed)?;
    Ok((from, ber))
}

/// What decryption gave: the key it used, the content, and the algorithms (checked by policy).
struct Decrypted<'k> {
    ours: &'k RecipientKey,
    content: Vec<u8>,
    content_encryption: String,
    key_transport: String,
}

/// Decrypts the enveloped data `ber` with the first of `keys` it is addressed to.
fn decrypt_for<'k>(ber: &[u8], keys: &'k [RecipientKey]) -> Result<Decrypted<'k>, SmimeError> {
    let enveloped = match structure::parse(ber)? {
        ContentInfo::Enveloped(e) => e,
        ContentInfo::Signed(_) => return Err(SmimeError::NotEncrypted("it is signed-data without encryption".into())),
        ContentInfo::Other(oid) => return Err(SmimeError::NotEncrypted(format!("its CMS content type is {oid}"))),
    };
    let content_encryption = policy::check_content_cipher(&enveloped.content_cipher)?;
    let (ours, recipient) = enveloped
        .recipients
        .iter()
        .find_map(|r| {
            let id = r.id.as_ref()?;
            let key = keys.iter().find(|k| identifies(id, &k.cert))?;
            Some((key, r))
        })
        .ok_or_else(|| SmimeError::NoKey { recipients: describe_recipients(&enveloped.recipients) })?;
    let key_transport = policy::check_key_transport(recipient.key_algorithm.as_deref().unwrap_or_default())?;
    let content = decrypt::decrypt(ber, &enveloped, recipient, &ours.key, &ours.cert)?;
    Ok(Decrypted { ours, content, content_encryption, key_transport })
}

/// A signature checked with the certificate it names: what was signed, by whom, and how.
struct CheckedSignature {
    content: Vec<u8>,
    signer: std::sync::Arc<cert_cache::Parsed>,
    /// The other certificates the signature carried: candidates for the signer's path.
    intermediates: Vec<X509>,
    key_description: String,
    digest: String,
    signature_algorithm: String,
}

/// Checks the one signature of the decrypted `content` by policy and with the signer's own
/// certificate (never one the library picks), and that the certificate is for signing.
fn check_signature(content: &[u8], ours: &RecipientKey) -> Result<CheckedSignature, SmimeError> {
    let SignatureLayer { signed, detached_content } = signed_layer(content)?;
    let signer_info = signed.signers.first().ok_or_else(|| SmimeError::NotSigned("SignedData has no signer".into()))?;
    if signed.signers.len() > 1 {
        return Err(SmimeError::Unsupported("more than one signer".into()));
    }
    for digest in &signed.digests {
        policy::check_digest(digest)?;
    }
    let digest = policy::check_digest(&signer_info.digest)?;
    let signature_algorithm = policy::check_signature_algorithm(&signer_info.signature_algorithm)?;
    let mut certificates: Vec<_> = signed.certificates.iter().filter_map(|der| cert_cache::parse(der).ok()).collect();
    let signer_at = signer_info.id.as_ref().and_then(|id| certificates.iter().position(|c| identifies(id, &c.cert)));
    let signer = signer_at.map(|i| certificates.remove(i)).ok_or_else(|| SmimeError::Untrusted {
        subject: "(unknown)".into(),
        domain: domain_name(ours),
        reason: "the signature does not carry the signer's certificate".into(),
    })?;
    let key_description = policy::check_key(&*signer.cert.public_key()?, "signer certificate", false)?;
    purpose::check(&signer.cert, Use::Signing)
        .map_err(|reason| SmimeError::WrongPurpose { subject: signer.subject.clone(), reason })?;
    let content = verify::verify(&signed, signer_info, &signer.cert, detached_content)?;
    let intermediates = certificates.iter().map(|c| c.cert.clone()).collect();
    Ok(CheckedSignature { content, signer, intermediates, key_description, digest, signature_algorithm })
}

/// Checks that the signer chains to the local domain's incoming anchors and is not revoked;
/// returns what the revocation check found ("good", or why it could not tell, in soft-fail mode).
fn trust_signer(checked: &CheckedSignature, ours: &RecipientKey, trust: &OpenTrust) -> Result<String, SmimeError> {
    let signer = &checked.signer.cert;
    let subject = || checked.signer.subject.clone();
    let anchors = trust
        .anchors
        .anchors(ours.domain.as_ref(), Direction::Incoming)
        .map_err(|reason| SmimeError::Untrusted { subject: subject(), domain: domain_name(ours), reason })?;
    chain::verify(signer, &checked.intermediates, &anchors, trust.now).map_err(|e| match e {
        ChainError::Expired { not_after } => SmimeError::Expired { subject: subject(), not_after },
        ChainError::NotYetValid { not_before } => SmimeError::NotYetValid { subject: subject(), not_before },
        ChainError::Untrusted(reason) => {
            SmimeError::Untrusted { subject: subject(), domain: domain_name(ours), reason }
        }
    })?;
    match revocation::check_path(signer, &checked.intermediates, &anchors, trust.revocation.fetch, trust.now) {
        Status::Good => Ok("good".to_string()),
        Status::Revoked { on } => Err(SmimeError::Revoked { subject: subject(), on }),
        Status::Unknown(reason) if trust.revocation.mode == FailMode::Hard => {
            Err(SmimeError::RevocationUnknown { subject: subject(), reason })
        }
        Status::Unknown(reason) => Ok(format!("not checked (soft fail): {reason}")),
    }
}

fn domain_name(key: &RecipientKey) -> String {
    key.domain.as_ref().map_or_else(|| "the given anchors".to_string(), Domain::to_string)
}

fn outer_from(outer: &Entity) -> Result<DirectAddress, SmimeError> {
    let value =
        outer.headers.get("from").ok_or_else(|| SmimeError::Malformed("the message has no From header".into()))?;
    if outer.headers.all("from").count() > 1 {
        return Err(SmimeError::Malformed("the message has more than one From header".into()));
    }
    match mime::addresses(value).as_slice() {
        [one] => DirectAddress::parse(one).map_err(|e| SmimeError::Malformed(format!("From: {e}"))),
        _ => Err(SmimeError::Malformed(format!("From header '{value}' must hold exactly one address"))),
    }
}

/// Does this RecipientIdentifier / SignerIdentifier name `cert`.
pub fn identifies(id: &RecipientId, cert: &X509Ref) -> bool {
    match id {
        RecipientId::IssuerSerial { issuer_der, serial } => {
            let cert_serial = cert.serial_number().to_bn().map(|b| b.to_vec()).unwrap_or_default();
            let cert_serial: &[u8] = if cert_serial.is_empty() { &[0] } else { &cert_serial };
            cert.issuer_name().to_der().is_ok_and(|d| &d == issuer_der) && cert_serial == serial.as_slice()
        }
        RecipientId::SubjectKeyId(ski) => cert.subject_key_id().is_some_and(|k| k.as_slice() == ski.as_slice()),
    }
}

pub fn describe_recipients(recipients: &[structure::Recipient]) -> String {
    let names: Vec<String> = recipients
        .iter()
        .map(|r| match &r.id {
            Some(RecipientId::IssuerSerial { issuer_der, serial }) => {
                let issuer = openssl::x509::X509Name::from_der(issuer_der)
                    .map(|n| pki::name_line(&n))
                    .unwrap_or_else(|_| "?".into());
                format!("[issuer {issuer}, serial {}]", hex::encode(serial))
            }
            Some(RecipientId::SubjectKeyId(ski)) => format!("[key id {}]", hex::encode(ski)),
            None => format!("[{} recipient]", r.kind),
        })
        .collect();
    names.join(", ")
}

/// The signature found in decrypted content.
struct SignatureLayer {
    signed: Signed,
    /// The signed content of a detached signature (None for an opaque one, which carries it).
    detached_content: Option<Vec<u8>>,
}

/// Finds the signature layer in decrypted content: multipart/signed (detached) or
/// application/pkcs7-mime signed-data (opaque).
fn signed_layer(decrypted: &[u8]) -> Result<SignatureLayer, SmimeError> {
    let entity = Entity::parse(decrypted);
    let ct = entity.content_type();
    if ct.is("multipart/signed") {
        let protocol = ct.param("protocol").unwrap_or("").to_ascii_lowercase();
        if protocol != "application/pkcs7-signature" && protocol != "application/x-pkcs7-signature" {
            return Err(SmimeError::NotSigned(format!("multipart/signed with protocol '{protocol}'")));
        }
        let boundary =
            ct.param("boundary").ok_or_else(|| SmimeError::Malformed("multipart/signed without boundary".into()))?;
        let parts = mime::multipart_parts(entity.body, boundary).map_err(SmimeError::Malformed)?;
        if parts.len() != 2 {
            return Err(SmimeError::Malformed(format!("multipart/signed has {} parts, not 2", parts.len())));
        }
        let signature = Entity::parse(parts[1]);
        let sig_type = signature.content_type();
        if !(sig_type.is("application/pkcs7-signature") || sig_type.is("application/x-pkcs7-signature")) {
            return Err(SmimeError::NotSigned(format!("the second part is {}, not a signature", sig_type.mime_type)));
        }
        let der = signature.decoded_body().map_err(SmimeError::Malformed)?.into_owned();
        let ContentInfo::Signed(signed) = structure::parse(&der)? else {
            return Err(SmimeError::NotSigned("the signature part is not CMS SignedData".into()));
        };
        return Ok(SignatureLayer { signed, detached_content: Some(parts[0].to_vec()) });
    }
    let opaque = (ct.is("application/pkcs7-mime") || ct.is("application/x-pkcs7-mime"))
        && ct.param("smime-type").is_none_or(|t| t.eq_ignore_ascii_case("signed-data"));
    if opaque {
        let der = entity.decoded_body().map_err(SmimeError::Malformed)?.into_owned();
        if let ContentInfo::Signed(signed) = structure::parse(&der)? {
            return Ok(SignatureLayer { signed, detached_content: None });
        }
    }
    Err(SmimeError::NotSigned(format!("the decrypted content is {}, not a signature", ct.mime_type)))
}

/// The original message from the signed content: the body of a message/rfc822 wrapper, or the
/// signed entity itself when the sender did not wrap. A protected From must match the envelope's.
fn unwrap(signed_content: &[u8], from: &DirectAddress) -> Result<Vec<u8>, SmimeError> {
    let entity = Entity::parse(signed_content);
    let original =
        if entity.content_type().is("message/rfc822") { entity.body.to_vec() } else { signed_content.to_vec() };
    let inner = Entity::parse(&original);
    // Every From field, and exactly one address in all: the signer is bound to one address, and
    // a second one (or a second field) would let a reader see someone it never vouched for.
    let fields: Vec<&str> = inner.headers.all("from").collect();
    if !fields.is_empty() {
        let named: Vec<String> = fields.iter().flat_map(|v| mime::addresses(v)).collect();
        let inner_from = match named.as_slice() {
            [one] => DirectAddress::parse(one).ok(),
            _ => None,
        };
        if inner_from.as_ref() != Some(from) {
            return Err(SmimeError::FromMismatch { outer: from.to_string(), inner: fields.join(", ") });
        }
    }
    Ok(original)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_from_must_name_the_one_bound_address_and_nothing_else() {
        let alice = DirectAddress::parse("alice@a.example.org").unwrap();
        let signed = |from: &str| format!("Content-Type: message/rfc822\r\n\r\n{from}Subject: x\r\n\r\nbody\r\n");
        assert!(unwrap(signed("From: Alice <alice@a.example.org>\r\n").as_bytes(), &alice).is_ok());
        assert!(unwrap(signed("").as_bytes(), &alice).is_ok(), "no inner From: the envelope's is the sender");
        for bad in [
            "From: alice@a.example.org, mallory@evil.test\r\n",
            "From: mallory@evil.test, alice@a.example.org\r\n",
            "From: alice@a.example.org\r\nFrom: mallory@evil.test\r\n",
            "From: team: alice@a.example.org, mallory@evil.test;\r\n",
            "From: mallory@evil.test\r\n",
        ] {
            assert!(matches!(unwrap(signed(bad).as_bytes(), &alice), Err(SmimeError::FromMismatch { .. })), "{bad}");
        }
    }
}
