//! Parsed certificates, memoized by the SHA-256 of their DER, with the facts every message needs
//! from them. Parsing a certificate costs about 100 µs on OpenSSL 3.0 (its public-key decoder), as
//! much as a third of an RSA-2048 private-key operation, and a HISP sees the same peers'
//! certificates again and again. Everything here is a pure function of the bytes, so a
//! process-wide cache is safe; it is bounded and simply starts over when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::x509::X509;

use crate::trust::binding::BoundNames;

const CAPACITY: usize = 4096;

/// A certificate and what is read from it once.
pub struct Parsed {
    pub cert: X509,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub names: BoundNames,
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
        sha256: super::hex(&key),
        subject: super::name_line(cert.subject_name()),
        issuer: super::name_line(cert.issuer_name()),
        names: BoundNames::of(&cert),
        cert,
    });
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(key, parsed.clone());
    }
    Ok(parsed)
}

/// Forgets every parsed certificate (benchmarks of the cold path).
pub fn clear() {
    if let Ok(mut c) = cache().lock() {
        c.clear();
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
}
