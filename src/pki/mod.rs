//! Certificates and keys as files and facts: loading PEM/DER/PKCS#12, fingerprints, names, times.

pub(crate) mod binding;
pub mod ca;
pub mod cert_cache;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::x509::{X509NameRef, X509Ref, X509};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0}: no certificate found (expected PEM or DER)")]
    NoCertificate(String),
    #[error("{0}: no private key found (expected PEM or DER PKCS#8/PKCS#1)")]
    NoKey(String),
    #[error("{0}: cannot open PKCS#12 (wrong password or not a PKCS#12 file)")]
    Pkcs12(String),
    #[error("the private key does not belong to the certificate {0}")]
    KeyMismatch(String),
    #[error("{0}")]
    Policy(String),
    #[error("crypto error: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// The smallest RSA key hisp makes or accepts (DirectTrust: 2048 bits).
pub(crate) const MIN_RSA_BITS: u32 = 2048;

/// Lowercase hex SHA-256 of a DER encoding (a certificate's fingerprint).
pub(crate) fn sha256_hex(der: &[u8]) -> String {
    hex::encode(hash(MessageDigest::sha256(), der).expect("SHA-256 is always available"))
}

/// A certificate's fingerprint, as `cert_cache::sha256_of` keeps it per certificate object.
pub fn fingerprint(cert: &X509Ref) -> String {
    cert_cache::sha256_of(cert).map_or_else(|| sha256_hex(&[]), hex::encode)
}

/// SHA-256 of the SubjectPublicKeyInfo: ties a stored key to its certificates.
pub(crate) fn public_key_sha256<T: HasPublic>(key: &PKeyRef<T>) -> Result<String, PkiError> {
    Ok(sha256_hex(&key.public_key_to_der()?))
}

/// `CN=Dr Smith, O=Smith Pediatrics` (RFC 4514 order reversed to the familiar reading order).
pub(crate) fn name_line(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?").to_string();
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn unix_time(t: &Asn1TimeRef) -> i64 {
    let epoch = Asn1Time::from_unix(0).expect("epoch is representable");
    match epoch.diff(t) {
        Ok(d) => i64::from(d.days) * 86_400 + i64::from(d.secs),
        Err(_) => 0,
    }
}

/// All certificates in a PEM bundle, a DER certificate, or a PKCS#7 certs-only object (.p7b/.p7c,
/// DER or PEM), as AIA caIssuers URLs and trust bundles publish them.
pub fn load_certs(bytes: &[u8], origin: &str) -> Result<Vec<X509>, PkiError> {
    let pkcs7_certs = |p7: openssl::pkcs7::Pkcs7| -> Vec<X509> {
        p7.signed().and_then(|s| s.certificates()).map(|c| c.iter().map(|x| x.to_owned()).collect()).unwrap_or_default()
    };
    let certs = if bytes.windows(16).any(|w| w == b"-----BEGIN PKCS7") {
        openssl::pkcs7::Pkcs7::from_pem(bytes).map(pkcs7_certs).unwrap_or_default()
    } else if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        X509::stack_from_pem(bytes).unwrap_or_default()
    } else {
        X509::from_der(bytes)
            .map(|c| vec![c])
            .or_else(|_| openssl::pkcs7::Pkcs7::from_der(bytes).map(pkcs7_certs))
            .unwrap_or_default()
    };
    if certs.is_empty() {
        return Err(PkiError::NoCertificate(origin.to_string()));
    }
    Ok(certs)
}

pub(crate) fn load_cert_file(path: &std::path::Path) -> Result<X509, PkiError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| PkiError::Policy(format!("cannot read {origin}: {e}")))?;
    Ok(load_certs(&bytes, &origin)?.remove(0))
}

/// A private key from PEM (PKCS#8 or traditional) or DER (PKCS#8).
pub(crate) fn load_private_key(bytes: &[u8], origin: &str) -> Result<PKey<Private>, PkiError> {
    PKey::private_key_from_pem(bytes)
        .or_else(|_| PKey::private_key_from_der(bytes))
        .or_else(|_| PKey::private_key_from_pkcs8(bytes))
        .map_err(|_| PkiError::NoKey(origin.to_string()))
}

pub(crate) fn load_key_file(path: &std::path::Path) -> Result<PKey<Private>, PkiError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| PkiError::Policy(format!("cannot read {origin}: {e}")))?;
    load_private_key(&bytes, &origin)
}

/// Certificate, key and any chain from a PKCS#12 file.
pub(crate) fn load_pkcs12(
    bytes: &[u8],
    password: &str,
    origin: &str,
) -> Result<(X509, PKey<Private>, Vec<X509>), PkiError> {
    let parsed = openssl::pkcs12::Pkcs12::from_der(bytes)
        .and_then(|p| p.parse2(password))
        .map_err(|_| PkiError::Pkcs12(origin.to_string()))?;
    match (parsed.cert, parsed.pkey) {
        (Some(cert), Some(key)) => {
            let chain = parsed.ca.map(|s| s.into_iter().collect()).unwrap_or_default();
            Ok((cert, key, chain))
        }
        _ => Err(PkiError::Pkcs12(origin.to_string())),
    }
}

/// Fails unless `key` is the private half of `cert`'s public key.
pub(crate) fn check_key_matches(cert: &X509Ref, key: &PKeyRef<Private>) -> Result<(), PkiError> {
    let public = cert.public_key()?;
    if public.public_eq(key) {
        Ok(())
    } else {
        Err(PkiError::KeyMismatch(name_line(cert.subject_name())))
    }
}

/// The rfc822Name and dNSName entries of subjectAltName, lowercased.
pub(crate) fn alt_names(cert: &X509Ref) -> (Vec<String>, Vec<String>) {
    let mut emails = Vec::new();
    let mut dns = Vec::new();
    if let Some(names) = cert.subject_alt_names() {
        for name in names.iter() {
            if let Some(e) = name.email() {
                emails.push(e.to_ascii_lowercase());
            } else if let Some(d) = name.dnsname() {
                dns.push(d.to_ascii_lowercase());
            }
        }
    }
    (emails, dns)
}

/// Subject emailAddress attributes, lowercased.
pub(crate) fn subject_emails(cert: &X509Ref) -> Vec<String> {
    cert.subject_name()
        .entries_by_nid(openssl::nid::Nid::PKCS9_EMAILADDRESS)
        .filter_map(|e| e.data().to_string().ok().map(|s| s.to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn fingerprints_are_lowercase_hex_of_sha256() {
        // The SHA-256 of nothing, as every tool prints it.
        assert_eq!(super::sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
