//! Parsed certificates, memoized by the SHA-256 of their DER, with the facts every message needs
//! from them. Parsing a certificate costs about 100 µs on OpenSSL 3.0 (its public-key decoder), as
//! much as a third of an RSA-2048 private-key operation, and a HISP sees the same peers'
//! certificates again and again. Everything here is a pure function of the bytes, so a
//! process-wide cache is safe; it is bounded and simply starts over when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::x509::{X509Ref, X509};

use crate::pki::binding::BoundNames;

const CAPACITY: usize = 4096;

/// A certificate and what is read from it once.
pub struct Parsed {
    pub cert: X509,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub names: BoundNames,
    /// notAfter, unix seconds.
    pub not_after: i64,
}

type Cache = Mutex<HashMap<Vec<u8>, Arc<Parsed>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The certificate encoded by `der`, parsed at most once while it stays in the cache.
pub fn parse(der: &[u8]) -> Result<Arc<Parsed>, ErrorStack> {
    let key = hash(MessageDigest::sha256(), der)?.to_vec();
    if let Some(parsed) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(parsed);
    }
    let cert = X509::from_der(der)?;
    let parsed = Arc::new(Parsed {
        sha256: hex::encode(&key),
        subject: super::name_line(cert.subject_name()),
        issuer: super::name_line(cert.issuer_name()),
        names: BoundNames::of(&cert),
        not_after: super::unix_time(cert.not_after()),
        cert,
    });
    if let Ok(digest) = <[u8; 32]>::try_from(&key[..]) {
        remember_fingerprint(&parsed.cert, digest);
    }
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(key, parsed.clone());
    }
    Ok(parsed)
}

/// Fingerprints by certificate object. Each entry holds a reference to its certificate, so its
/// address cannot be taken by another certificate while the entry exists; certificates are never
/// changed once built or parsed.
type Fingerprints = Mutex<HashMap<usize, (X509, [u8; 32])>>;

fn fingerprints() -> &'static Fingerprints {
    static FINGERPRINTS: OnceLock<Fingerprints> = OnceLock::new();
    FINGERPRINTS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn remember_fingerprint(cert: &X509Ref, digest: [u8; 32]) {
    if let Ok(mut f) = fingerprints().lock() {
        if f.len() >= CAPACITY {
            f.clear();
        }
        f.insert(cert.as_ptr() as usize, (cert.to_owned(), digest));
    }
}

/// The SHA-256 of `cert`'s DER. Computing it encodes the certificate again (a few µs on OpenSSL
/// 3.0), and path and revocation checks key their caches on it for every message, so it is kept
/// per certificate object: free for certificates from `parse`, computed once for others.
pub fn sha256_of(cert: &X509Ref) -> Option<[u8; 32]> {
    let id = cert.as_ptr() as usize;
    if let Some(digest) = fingerprints().lock().ok().and_then(|f| f.get(&id).map(|entry| entry.1)) {
        return Some(digest);
    }
    let digest = openssl::sha::sha256(&cert.to_der().ok()?);
    remember_fingerprint(cert, digest);
    Some(digest)
}

/// Forgets every parsed certificate (benchmarks of the cold path).
pub fn clear() {
    if let Ok(mut c) = cache().lock() {
        c.clear();
    }
    if let Ok(mut f) = fingerprints().lock() {
        f.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_same_certificate_and_refuses_garbage() {
        let key = crate::pki::ca::generate_rsa(2048).unwrap();
        let cert = crate::pki::ca::create_root(&key, "cache test", 0, 10).unwrap();
        let der = cert.to_der().unwrap();
        let first = parse(&der).unwrap();
        assert_eq!(first.cert.to_der().unwrap(), der);
        assert_eq!(first.sha256, crate::pki::fingerprint(&cert));
        assert_eq!(first.subject, "O=hisp development CA, CN=cache test");
        let second = parse(&der).unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the second parse is served from the cache");
        assert!(parse(b"not a certificate").is_err());
    }

    #[test]
    fn a_fingerprint_is_the_sha256_of_the_der_whether_parsed_here_or_not() {
        let key = crate::pki::ca::generate_rsa(2048).unwrap();
        let built = crate::pki::ca::create_root(&key, "fingerprint test", 0, 10).unwrap();
        let expected = openssl::sha::sha256(&built.to_der().unwrap());
        assert_eq!(sha256_of(&built), Some(expected), "computed for a certificate built in memory");
        assert_eq!(sha256_of(&built), Some(expected), "and the same when remembered");
        let parsed = parse(&built.to_der().unwrap()).unwrap();
        assert_eq!(sha256_of(&parsed.cert), Some(expected));
        let other = crate::pki::ca::create_root(&key, "another", 0, 10).unwrap();
        assert_ne!(sha256_of(&other), Some(expected));
    }
}
