//! Verifying a CMS signature (RFC 5652 §5.4, §5.6) with the public key of the one certificate the
//! caller validated. No library picks the signer here: OpenSSL's `CMS_verify` would choose among
//! the certificates the message carries (comparing names case-folded), which let a sender's own key
//! stand in for the certificate that was checked. So every scheme (RSASSA-PKCS1-v1_5, RSASSA-PSS,
//! ECDSA) goes through OpenSSL's `EVP_DigestVerify` with that certificate's key and nothing else.

use std::borrow::Cow;

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKeyRef, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::x509::X509Ref;

use super::mime;
use super::structure::{Signed, Signer};
use super::{oids, policy, SmimeError};
use crate::der::{self, Tlv, INTEGER, OCTET_STRING, SEQUENCE, SET};

const CONTENT_TYPE_ATTR: &str = "1.2.840.113549.1.9.3";
const MESSAGE_DIGEST_ATTR: &str = "1.2.840.113549.1.9.4";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const MGF1: &str = "1.2.840.113549.1.1.8";
const SHA1: &str = "1.3.14.3.2.26";

/// How the signature value is checked, as the SignerInfo's signatureAlgorithm says.
#[derive(Clone, Copy)]
enum Scheme {
    Pkcs1,
    /// RSASSA-PSS (RFC 4055 §3.1): MGF1 over `mgf1`, a salt of exactly `salt_len` bytes.
    Pss {
        mgf1: MessageDigest,
        salt_len: i32,
    },
    Ecdsa,
}

/// Checks `signer`'s signature over the signed content with `cert`'s public key and returns that
/// content: the detached content given, or the content the SignedData carries. A content whose
/// line endings were changed in transit is accepted in its canonical CRLF form, as S/MIME signs it
/// (RFC 8551 §3.1.1).
pub(crate) fn verify(
    signed: &Signed,
    signer: &Signer,
    cert: &X509Ref,
    detached: Option<Vec<u8>>,
) -> Result<Vec<u8>, SmimeError> {
    let content = match (detached, &signed.content) {
        (Some(c), _) => c,
        (None, Some(c)) => c.clone(),
        (None, None) => {
            return Err(SmimeError::Malformed("the signature carries no content and none is attached".into()))
        }
    };
    let md = digest_of(&signer.digest)?;
    let key = cert.public_key()?;
    let scheme = scheme(signer, md, &key)?;
    if signer.signed_attrs.as_ref().is_some_and(|a| a.get(1) == Some(&0x80)) {
        // The signature covers the attributes' DER encoding, and they must travel in it (§5.3).
        return Err(SmimeError::Malformed("the signed attributes are not DER-encoded".into()));
    }
    let verifies = |candidate: &[u8]| -> Result<bool, SmimeError> {
        match &signer.signed_attrs {
            Some(attrs) => Ok(attributes_match(attrs, &signed.content_type, &hash(md, candidate)?)? && {
                // The signature covers the attributes' DER with the SET tag, not [0] (§5.4).
                let mut set = attrs.clone();
                set[0] = SET;
                signature_ok(md, scheme, &key, &set, &signer.signature)?
            }),
            None => signature_ok(md, scheme, &key, candidate, &signer.signature),
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

/// A digest algorithm the policy accepts, as OpenSSL names it.
fn digest_of(oid: &str) -> Result<MessageDigest, SmimeError> {
    policy::check_digest(oid)?;
    match oid {
        "2.16.840.1.101.3.4.2.1" => Ok(MessageDigest::sha256()),
        "2.16.840.1.101.3.4.2.2" => Ok(MessageDigest::sha384()),
        "2.16.840.1.101.3.4.2.3" => Ok(MessageDigest::sha512()),
        other => Err(SmimeError::Unsupported(format!("digest {}", oids::name(other)))),
    }
}

/// The scheme the signature algorithm names, if it fits the key and the SignerInfo's digest.
fn scheme(signer: &Signer, md: MessageDigest, key: &PKeyRef<Public>) -> Result<Scheme, SmimeError> {
    let algorithm = signer.signature_algorithm.as_str();
    policy::check_signature_algorithm(algorithm)?;
    // Algorithms that name their hash must name the SignerInfo's digest algorithm.
    let named_hash = match algorithm {
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => Some("2.16.840.1.101.3.4.2.1"),
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => Some("2.16.840.1.101.3.4.2.2"),
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => Some("2.16.840.1.101.3.4.2.3"),
        _ => None,
    };
    if let Some(named) = named_hash {
        same_digest(algorithm, named, md)?;
    }
    let (scheme, key_type) = match algorithm {
        RSASSA_PSS => (pss(algorithm, signer.signature_parameters.as_deref(), md)?, Id::RSA),
        "1.2.840.10045.2.1" | "1.2.840.10045.4.3.2" | "1.2.840.10045.4.3.3" | "1.2.840.10045.4.3.4" => {
            (Scheme::Ecdsa, Id::EC)
        }
        _ => (Scheme::Pkcs1, Id::RSA),
    };
    if key.id() != key_type {
        return Err(SmimeError::Malformed(format!(
            "the signature algorithm {} does not fit the signer certificate's key",
            oids::name(algorithm)
        )));
    }
    Ok(scheme)
}

fn same_digest(algorithm: &str, named: &str, md: MessageDigest) -> Result<(), SmimeError> {
    if digest_of(named)?.type_() == md.type_() {
        return Ok(());
    }
    Err(SmimeError::Malformed(format!(
        "the signature algorithm {} names {}, not the SignerInfo's digest algorithm",
        oids::name(algorithm),
        oids::name(named)
    )))
}

/// RSASSA-PSS-params (RFC 4055 §3.1): each field [n] EXPLICIT, in order, with SHA-1 defaults,
/// which the policy refuses. The hash must be the SignerInfo's digest (RFC 4056 §2).
fn pss(algorithm: &str, parameters: Option<&[u8]>, md: MessageDigest) -> Result<Scheme, SmimeError> {
    let mut hash_oid = SHA1.to_string();
    let mut mgf1_oid = SHA1.to_string();
    let mut salt_len = 20;
    if let Some(parameters) = parameters {
        let params = der::parse(parameters)?.expect(SEQUENCE, "RSASSA-PSS parameters are not a SEQUENCE")?;
        let mut fields = params.children();
        let mut last = None;
        while let Some(field) = fields.read()? {
            let number = field.context().filter(|n| *n <= 3 && last.is_none_or(|l| *n > l));
            let number = number.ok_or(der::DerError("RSASSA-PSS parameters hold an unknown or repeated field"))?;
            last = Some(number);
            let value = field.children().required("an RSASSA-PSS field is empty")?;
            match number {
                0 => hash_oid = algorithm_oid(value)?,
                1 => {
                    let mut mgf = value.expect(SEQUENCE, "maskGenAlgorithm is not a SEQUENCE")?.children();
                    let mgf_oid = mgf.required("maskGenAlgorithm is empty")?.oid()?;
                    if mgf_oid != MGF1 {
                        return Err(SmimeError::Unsupported(format!("RSASSA-PSS mask generation {mgf_oid}")));
                    }
                    mgf1_oid = algorithm_oid(mgf.required("MGF1 names no hash")?)?;
                }
                2 => salt_len = small_integer(value)?,
                _ => {
                    if small_integer(value)? != 1 {
                        return Err(SmimeError::Malformed("RSASSA-PSS trailerField is not 1".into()));
                    }
                }
            }
        }
    }
    same_digest(algorithm, &hash_oid, md)?;
    Ok(Scheme::Pss { mgf1: digest_of(&mgf1_oid)?, salt_len })
}

fn algorithm_oid(tlv: Tlv) -> Result<String, SmimeError> {
    Ok(tlv
        .expect(SEQUENCE, "AlgorithmIdentifier is not a SEQUENCE")?
        .children()
        .required("empty AlgorithmIdentifier")?
        .oid()?)
}

/// A non-negative INTEGER that fits an i32 (salt lengths and the trailer field).
fn small_integer(tlv: Tlv) -> Result<i32, SmimeError> {
    let tlv = tlv.expect(INTEGER, "expected an INTEGER")?;
    if tlv.content.first().is_none_or(|b| b & 0x80 != 0) || tlv.content.len() > 4 {
        return Err(SmimeError::Malformed("an RSASSA-PSS integer is negative, empty or too large".into()));
    }
    let value = tlv.content.iter().fold(0i64, |acc, &b| (acc << 8) | i64::from(b));
    i32::try_from(value).map_err(|_| SmimeError::Malformed("an RSASSA-PSS integer is too large".into()))
}

fn signature_ok(
    md: MessageDigest,
    scheme: Scheme,
    key: &PKeyRef<Public>,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, SmimeError> {
    let mut verifier = Verifier::new(md, key)?;
    match scheme {
        Scheme::Pkcs1 => verifier.set_rsa_padding(Padding::PKCS1)?,
        Scheme::Pss { mgf1, salt_len } => {
            verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
            verifier.set_rsa_mgf1_md(mgf1)?;
            verifier.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt_len))?;
        }
        Scheme::Ecdsa => {}
    }
    verifier.update(data)?;
    // A malformed signature value is a failed verification, not an error of ours.
    Ok(verifier.verify(signature).unwrap_or(false))
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
        assert_eq!(verify(&signed, &info, &cert, Some(content.clone())).unwrap(), content);

        // Line endings changed to LF in transit: the canonical CRLF form is what was signed.
        let lf = b"Content-Type: text/plain\n\nline one\nline two\n".to_vec();
        assert_eq!(verify(&signed, &info, &cert, Some(lf)).unwrap(), content);

        let mut altered = content.clone();
        altered[30] ^= 0x20;
        assert!(matches!(verify(&signed, &info, &cert, Some(altered)), Err(SmimeError::Tampered)));

        let mut bad = info.clone();
        bad.signature[10] ^= 1;
        assert!(matches!(verify(&signed, &bad, &cert, Some(content.clone())), Err(SmimeError::Tampered)));

        // Signed attributes changed after signing (here: the signing time).
        let mut forged = info.clone();
        let attrs = forged.signed_attrs.as_mut().unwrap();
        let at = attrs.windows(3).position(|w| w == b"700").expect("the UTCTime of 1970");
        attrs[at] = b'8';
        assert!(matches!(verify(&signed, &forged, &cert, Some(content.clone())), Err(SmimeError::Tampered)));

        // Another key does not verify it.
        let (other, _) = signer();
        assert!(matches!(verify(&signed, &info, &other, Some(content)), Err(SmimeError::Tampered)));
    }

    /// RSASSA-PSS-params for SHA-256, MGF1-SHA-256 and `salt` bytes of salt (RFC 4055 §3.1).
    fn pss_params(hash_oid: &[u8], mgf1_hash_oid: &[u8], salt: u8) -> Vec<u8> {
        use crate::der::{encode, OID};
        let algorithm = |oid: &[u8]| encode(SEQUENCE, &encode(OID, oid));
        let mgf1 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
        let mgf = encode(SEQUENCE, &[encode(OID, &mgf1), algorithm(mgf1_hash_oid)].concat());
        let fields = [encode(0xA0, &algorithm(hash_oid)), encode(0xA1, &mgf), encode(0xA2, &encode(INTEGER, &[salt]))];
        encode(SEQUENCE, &fields.concat())
    }

    const SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    const SHA384: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];

    /// `info` re-signed with RSASSA-PSS (SHA-256, MGF1-SHA-256, a 32-byte salt) by `key`.
    fn pss_signed(info: &Signer, key: &openssl::pkey::PKey<openssl::pkey::Private>) -> Signer {
        let mut set = info.signed_attrs.clone().unwrap();
        set[0] = SET;
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key).unwrap();
        signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        signer.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
        signer.update(&set).unwrap();
        Signer {
            signature_algorithm: RSASSA_PSS.into(),
            signature_parameters: Some(pss_params(&SHA256, &SHA256, 32)),
            signature: signer.sign_to_vec().unwrap(),
            ..info.clone()
        }
    }

    #[test]
    fn pss_signatures_verify_with_the_given_certificate_only() {
        let (cert, key) = signer();
        let content = b"Content-Type: text/plain\r\n\r\nPSS\r\n".to_vec();
        let der = SignerTemplate::new(&cert, &key, &[]).unwrap().sign(&content, &key, 1_000).unwrap();
        let (signed, info) = parts(&der);
        let pss = pss_signed(&info, &key);
        assert_eq!(verify(&signed, &pss, &cert, Some(content.clone())).unwrap(), content);

        // The key of any other certificate does not verify it, whatever the message carries.
        let (other, other_key) = signer();
        assert!(matches!(verify(&signed, &pss, &other, Some(content.clone())), Err(SmimeError::Tampered)));
        let by_other = pss_signed(&info, &other_key);
        assert!(matches!(verify(&signed, &by_other, &cert, Some(content.clone())), Err(SmimeError::Tampered)));

        // Parameters that do not match the signature value, or that the policy refuses.
        let wrong_salt = Signer { signature_parameters: Some(pss_params(&SHA256, &SHA256, 20)), ..pss.clone() };
        assert!(matches!(verify(&signed, &wrong_salt, &cert, Some(content.clone())), Err(SmimeError::Tampered)));
        let defaults = Signer { signature_parameters: None, ..pss.clone() };
        assert!(matches!(verify(&signed, &defaults, &cert, Some(content.clone())), Err(SmimeError::WeakDigest(_))));
        let other_hash = Signer { signature_parameters: Some(pss_params(&SHA384, &SHA256, 32)), ..pss.clone() };
        assert!(matches!(verify(&signed, &other_hash, &cert, Some(content.clone())), Err(SmimeError::Malformed(_))));
        let garbage = Signer { signature_parameters: Some(vec![0x30, 0x03, 0xA5, 0x01, 0x00]), ..pss };
        assert!(matches!(verify(&signed, &garbage, &cert, Some(content)), Err(SmimeError::Malformed(_))));
    }

    #[test]
    fn a_signature_algorithm_must_fit_the_key_and_attributes_must_be_der() {
        let (cert, key) = signer();
        let content = b"Content-Type: text/plain\r\n\r\nx\r\n".to_vec();
        let der = SignerTemplate::new(&cert, &key, &[]).unwrap().sign(&content, &key, 1_000).unwrap();
        let (signed, info) = parts(&der);
        let ecdsa = Signer { signature_algorithm: "1.2.840.10045.4.3.2".into(), ..info.clone() };
        assert!(matches!(verify(&signed, &ecdsa, &cert, Some(content.clone())), Err(SmimeError::Malformed(_))));
        let sha384_rsa = Signer { signature_algorithm: "1.2.840.113549.1.1.12".into(), ..info.clone() };
        assert!(matches!(verify(&signed, &sha384_rsa, &cert, Some(content.clone())), Err(SmimeError::Malformed(_))));
        // The same attributes in an indefinite-length (BER) form.
        let mut ber = info.clone();
        let attrs = info.signed_attrs.as_ref().unwrap();
        let inner = &der::parse(attrs).unwrap().content.to_vec();
        ber.signed_attrs = Some([&[0xA0, 0x80][..], inner, &[0, 0]].concat());
        assert!(matches!(verify(&signed, &ber, &cert, Some(content)), Err(SmimeError::Malformed(_))));
    }
}
