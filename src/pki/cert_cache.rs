//! Parsed certificates, memoized by the SHA-256 of their DER. Parsing a certificate costs about
//! 100 µs on OpenSSL 3.0 (its public-key decoder), as much as a third of an RSA-2048 private-key
//! operation, and a HISP sees the same peers' certificates again and again. Parsing is a pure
//! function of the bytes, so a process-wide cache is safe; it is bounded and simply starts over
//! when full.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::x509::X509;

const CAPACITY: usize = 4096;

fn cache() -> &'static Mutex<HashMap<Vec<u8>, X509>> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<u8>, X509>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The certificate encoded by `der`, parsed at most once while it stays in the cache.
pub fn parse(der: &[u8]) -> Result<X509, ErrorStack> {
    let key = hash(MessageDigest::sha256(), der)?.to_vec();
    if let Some(cert) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(cert);
    }
    let cert = X509::from_der(der)?;
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(key, cert.clone());
    }
    Ok(cert)
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
        assert_eq!(parse(&der).unwrap().to_der().unwrap(), der);
        assert_eq!(parse(&der).unwrap().to_der().unwrap(), der);
        assert!(parse(b"not a certificate").is_err());
    }
}
