//! Verifying a CMS signature (RFC 5652 §5.4, §5.6) with the signer's certificate already in hand.
//!
//! OpenSSL's CMS_verify would re-decode every certificate the SignedData carries (about 100 µs
//! each on OpenSSL 3.0); here the signer's key is used directly. Forms this does not handle
//! (RSASSA-PSS, BER-encoded signed attributes) go through CMS_verify instead.

use std::borrow::Cow;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::Id;
use openssl::sign::Verifier;
use openssl::x509::X509Ref;

use super::mime;
use super::structure::{Signed, Signer};
use super::SmimeError;
use crate::der::{self, OCTET_STRING, SEQUENCE, SET};

const CONTENT_TYPE_ATTR: &str = "1.2.840.113549.1.9.3";
const MESSAGE_DIGEST_ATTR: &str = "1.2.840.113549.1.9.4";

/// Checks `signer`'s signature over the signed content and returns that content: the detached
/// content given, or the content the SignedData carries. A content whose line endings were
/// changed in transit is accepted in its canonical CRLF form, as S/MIME signs it (RFC 8551 §3.1.1).
pub fn verify(
    signed: &Signed,
    signer: &Signer,
    cert: &X509Ref,
    detached: Option<Vec<u8>>,
    signed_der: &[u8],
) -> Result<Vec<u8>, SmimeError> {
    let content = match (detached, &signed.content) {
        (Some(c), _) => c,
        (None, Some(c)) => c.clone(),
        (None, None) => {
            return Err(SmimeError::Malformed("the signature carries no content and none is attached".into()))
        }
    };
    let Some(md) = digest_of(&signer.digest) else {
        return Err(SmimeError::Unsupported(format!("digest {}", super::oids::name(&signer.digest))));
    };
    if !handled(&signer.signature_algorithm) || signer.signed_attrs.as_ref().is_some_and(|a| a.get(1) == Some(&0x80)) {
        return verify_with_openssl(signed_der, content);
    }
    let key = cert.public_key()?;
    let verifies = |candidate: &[u8]| -> Result<bool, SmimeError> {
        match &signer.signed_attrs {
            Some(attrs) => Ok(attributes_match(attrs, &signed.content_type, &hash(md, candidate)?)? && {
                // The signature covers the attributes' DER with the SET tag, not [0] (§5.4).
                let mut set = attrs.clone();
                set[0] = SET;
                signature_ok(md, &key, &set, &signer.signature)?
            }),
            None => signature_ok(md, &key, candidate, &signer.signature),
        }
    };
    if verifies(&content)? {
        return Ok(content);
    }
    // Only when the content as received fails: its CRLF form, if that differs.
    if let Cow::Owned(canonical) = mime::to_crlf(&content) {
        if verifies(&canonical)? {
            return Ok(canonical);
        }
    }
    Err(SmimeError::Tampered)
}

fn digest_of(oid: &str) -> Option<MessageDigest> {
    match oid {
        "2.16.840.1.101.3.4.2.1" => Some(MessageDigest::sha256()),
        "2.16.840.1.101.3.4.2.2" => Some(MessageDigest::sha384()),
        "2.16.840.1.101.3.4.2.3" => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// Signature algorithms verified here: RSA PKCS#1 v1.5 and ECDSA.
fn handled(oid: &str) -> bool {
    matches!(
        oid,
        "1.2.840.113549.1.1.1"
            | "1.2.840.113549.1.1.11"
            | "1.2.840.113549.1.1.12"
            | "1.2.840.113549.1.1.13"
            | "1.2.840.10045.2.1"
            | "1.2.840.10045.4.3.2"
            | "1.2.840.10045.4.3.3"
            | "1.2.840.10045.4.3.4"
    )
}

fn signature_ok(
    md: MessageDigest,
    key: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, SmimeError> {
    if key.id() == Id::RSA && rsa_pkcs1_matches(md, key, data, signature)? {
        return Ok(true);
    }
    let mut verifier = Verifier::new(md, key)?;
    verifier.update(data)?;
    // A malformed signature value is a failed verification, not an error of ours.
    Ok(verifier.verify(signature).unwrap_or(false))
}

/// RSASSA-PKCS1-v1_5 checked by encoding and comparing (RFC 8017 §8.2.2, `pki::rsa_public`): the
/// signature, opened with the public key, must be exactly the padded DigestInfo of `data`. This
/// skips OpenSSL 3.0's per-call provider set-up and its generic public-key arithmetic. A mismatch
/// is not final: encodings this does not produce (DigestInfo without NULL parameters) are left to
/// OpenSSL's verifier.
fn rsa_pkcs1_matches(
    md: MessageDigest,
    key: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, SmimeError> {
    let Some(expected) = super::digest_info::of(md, data) else {
        return Ok(false);
    };
    Ok(crate::pki::rsa_public::verify_pkcs1(&*key.rsa()?, signature, &expected))
}

/// The signed attributes must name the content type and carry the content's digest (§5.3, §11).
fn attributes_match(attrs: &[u8], content_type: &str, digest: &[u8]) -> Result<bool, SmimeError> {
    let set = der::parse(attrs)?;
    let mut found_type = false;
    let mut found_digest = false;
    let mut each = set.children();
    while let Some(attr) = each.read()? {
        let mut fields = attr.expect(SEQUENCE, "Attribute is not a SEQUENCE")?.children();
        let oid = fields.required("Attribute has no type")?.oid()?;
        let values = fields.required("Attribute has no values")?.expect(SET, "attribute values are not a SET")?;
        let mut v = values.children();
        let value = v.required("Attribute has no value")?;
        if v.read()?.is_some() && (oid == CONTENT_TYPE_ATTR || oid == MESSAGE_DIGEST_ATTR) {
            return Err(SmimeError::Malformed(format!("attribute {oid} has more than one value")));
        }
        match oid.as_str() {
            CONTENT_TYPE_ATTR => {
                if found_type || value.oid()? != content_type {
                    return Ok(false);
                }
                found_type = true;
            }
            MESSAGE_DIGEST_ATTR => {
                if found_digest || value.tag != OCTET_STRING || value.content != digest {
                    return Ok(false);
                }
                found_digest = true;
            }
            _ => {}
        }
    }
    if !(found_type && found_digest) {
        return Err(SmimeError::Malformed("signed attributes lack content-type or message-digest".into()));
    }
    Ok(true)
}

/// OpenSSL's own verification, for the forms `verify` leaves to it.
fn verify_with_openssl(signed_der: &[u8], content: Vec<u8>) -> Result<Vec<u8>, SmimeError> {
    let mut cms = CmsContentInfo::from_der(signed_der).map_err(|e| SmimeError::Malformed(e.to_string()))?;
    let flags = CMSOptions::NO_SIGNER_CERT_VERIFY;
    let detached = cms_is_detached(signed_der);
    if detached {
        cms.verify(None, None, Some(&content), None, flags).map_err(|_| SmimeError::Tampered)?;
        Ok(content)
    } else {
        let mut out = Vec::new();
        cms.verify(None, None, None, Some(&mut out), flags).map_err(|_| SmimeError::Tampered)?;
        Ok(out)
    }
}

fn cms_is_detached(signed_der: &[u8]) -> bool {
    matches!(super::structure::parse(signed_der), Ok(super::structure::ContentInfo::Signed(s)) if s.content.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Owner;
    use crate::pki::ca;
    use crate::smime::signed_data::SignerTemplate;
    use crate::smime::structure::{self, ContentInfo};

    fn signer() -> (openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>) {
        let ca_key = ca::generate_rsa(2048).unwrap();
        let root = ca::create_root(&ca_key, "verify test CA", 0, 3650).unwrap();
        let key = ca::generate_rsa(2048).unwrap();
        let owner = Owner::parse("a@a.example.org").unwrap();
        let profile = ca::EndEntity {
            owner: &owner,
            not_before: 0,
            not_after: 86_400,
            crl_url: "http://x/c",
            issuer_url: "http://x/i",
        };
        (ca::issue(&root, &ca_key, &key, &profile).unwrap(), key)
    }

    fn parts(der: &[u8]) -> (Signed, Signer) {
        let ContentInfo::Signed(signed) = structure::parse(der).unwrap() else { panic!("not SignedData") };
        let signer = signed.signers[0].clone();
        (signed, signer)
    }

    #[test]
    fn good_signatures_verify_and_damaged_ones_are_tampered() {
        let (cert, key) = signer();
        let content = b"Content-Type: text/plain\r\n\r\nline one\r\nline two\r\n".to_vec();
        let der = SignerTemplate::new(&cert, &key, &[]).unwrap().sign(&content, &key, 1_000).unwrap();
        let (signed, info) = parts(&der);
        assert_eq!(verify(&signed, &info, &cert, Some(content.clone()), &der).unwrap(), content);

        // Line endings changed to LF in transit: the canonical CRLF form is what was signed.
        let lf = b"Content-Type: text/plain\n\nline one\nline two\n".to_vec();
        assert_eq!(verify(&signed, &info, &cert, Some(lf), &der).unwrap(), content);

        let mut altered = content.clone();
        altered[30] ^= 0x20;
        assert!(matches!(verify(&signed, &info, &cert, Some(altered), &der), Err(SmimeError::Tampered)));

        let mut bad = info.clone();
        bad.signature[10] ^= 1;
        assert!(matches!(verify(&signed, &bad, &cert, Some(content.clone()), &der), Err(SmimeError::Tampered)));

        // Signed attributes changed after signing (here: the signing time).
        let mut forged = info.clone();
        let attrs = forged.signed_attrs.as_mut().unwrap();
        let at = attrs.windows(3).position(|w| w == b"700").expect("the UTCTime of 1970");
        attrs[at] = b'8';
        assert!(matches!(verify(&signed, &forged, &cert, Some(content.clone()), &der), Err(SmimeError::Tampered)));

        // Another key does not verify it.
        let (other, _) = signer();
        assert!(matches!(verify(&signed, &info, &other, Some(content), &der), Err(SmimeError::Tampered)));
    }
}
