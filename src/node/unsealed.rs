//! The node's private keys and signing identities, unsealed once and kept in memory while the
//! daemon runs. Unsealing a key (AES-GCM, then OpenSSL's PKCS#8 decoder) and checking a signing
//! identity cost about as much as sealing the message itself, for every message.
//!
//! Entries are found by the SHA-256 of the sealed key as the store holds it (and, for a signer, of
//! the certificate), so the store still decides which key and certificate are in use: a revoked,
//! removed or replaced certificate is simply no longer asked for. The caches are bounded: when
//! full, the key used least recently goes.

use std::sync::{Arc, Mutex};

use hashlink::LruCache;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::kek::{Kek, KekError};
use crate::smime::seal::SignerIdentity;

/// Keys kept unsealed (one per certificate in use; a node of millions of addresses uses more
/// than this, and each one left out costs an unsealing when it is next used).
const CAPACITY: usize = 16_384;

type Digest = [u8; 32];

pub(crate) struct Unsealed {
    keys: Mutex<LruCache<Digest, PKey<Private>>>,
    signers: Mutex<LruCache<(Digest, Digest), Arc<SignerIdentity>>>,
}

impl Default for Unsealed {
    fn default() -> Self {
        Unsealed::with_capacity(CAPACITY)
    }
}

fn digest(bytes: &[u8]) -> Digest {
    openssl::sha::sha256(bytes)
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<LruCache<K, V>>, key: K, value: V) {
    if let Ok(mut m) = map.lock() {
        m.insert(key, value);
    }
}

fn recall<K: std::hash::Hash + Eq, V: Clone>(map: &Mutex<LruCache<K, V>>, key: &K) -> Option<V> {
    map.lock().ok().and_then(|mut m| m.get(key).cloned())
}

impl Unsealed {
    fn with_capacity(capacity: usize) -> Unsealed {
        Unsealed { keys: Mutex::new(LruCache::new(capacity)), signers: Mutex::new(LruCache::new(capacity)) }
    }

    /// The private key sealed as `sealed` under `kek`.
    pub(crate) fn key(&self, kek: &Kek, sealed: &[u8]) -> Result<PKey<Private>, KekError> {
        let id = digest(sealed);
        if let Some(key) = recall(&self.keys, &id) {
            return Ok(key);
        }
        let key = kek.open_key(sealed)?;
        remember(&self.keys, id, key.clone());
        Ok(key)
    }

    /// The signing identity of `cert` with the key sealed as `sealed_key`, checked once.
    pub(crate) fn signer(&self, kek: &Kek, cert: &X509, sealed_key: &[u8]) -> Result<Arc<SignerIdentity>, String> {
        let id = (digest(&cert.to_der().map_err(|e| e.to_string())?), digest(sealed_key));
        if let Some(signer) = recall(&self.signers, &id) {
            return Ok(signer);
        }
        let key = self.key(kek, sealed_key).map_err(|e| e.to_string())?;
        let signer = Arc::new(SignerIdentity::new(cert.clone(), key, Vec::new()).map_err(|e| e.to_string())?);
        remember(&self.signers, id, signer.clone());
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::derive("unsealed-cache-test-secret", b"0123456789abcdef").unwrap()
    }

    #[test]
    fn a_key_is_unsealed_once_and_a_different_sealed_key_is_not_confused_with_it() {
        let kek = kek();
        let one = crate::pki::ca::generate_rsa(2048).unwrap();
        let two = crate::pki::ca::generate_rsa(2048).unwrap();
        let (sealed_one, sealed_two) = (kek.seal_key(&one).unwrap(), kek.seal_key(&two).unwrap());
        let cache = Unsealed::default();
        let first = cache.key(&kek, &sealed_one).unwrap();
        assert!(first.public_eq(&one));
        // Asked again, it is not unsealed again: a key-encryption key that could not open it
        // still gets the key this daemon already opened.
        let other = Kek::derive("another-secret-of-16+chars", b"0123456789abcdef").unwrap();
        assert!(matches!(other.open_key(&sealed_one), Err(KekError::Damaged)));
        assert!(cache.key(&other, &sealed_one).unwrap().public_eq(&one));
        assert!(cache.key(&kek, &sealed_two).unwrap().public_eq(&two));
    }

    #[test]
    fn a_full_cache_lets_go_of_the_key_used_least_recently_only() {
        let kek = kek();
        let other = Kek::derive("another-secret-of-16+chars", b"0123456789abcdef").unwrap();
        let keys: Vec<_> = (0..3).map(|_| crate::pki::ca::generate_rsa(2048).unwrap()).collect();
        let sealed: Vec<_> = keys.iter().map(|k| kek.seal_key(k).unwrap()).collect();
        let cache = Unsealed::with_capacity(2);
        cache.key(&kek, &sealed[0]).unwrap();
        cache.key(&kek, &sealed[1]).unwrap();
        cache.key(&kek, &sealed[0]).unwrap();
        cache.key(&kek, &sealed[2]).unwrap();
        // Kept keys come back even under a key-encryption key that cannot open them.
        assert!(cache.key(&other, &sealed[0]).unwrap().public_eq(&keys[0]), "used recently: kept");
        assert!(cache.key(&other, &sealed[2]).unwrap().public_eq(&keys[2]), "the newest: kept");
        assert!(cache.key(&other, &sealed[1]).is_err(), "the least recently used went");
    }

    #[test]
    fn a_damaged_sealed_key_is_refused_and_not_remembered() {
        let kek = kek();
        let key = crate::pki::ca::generate_rsa(2048).unwrap();
        let mut sealed = kek.seal_key(&key).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        let cache = Unsealed::default();
        assert!(matches!(cache.key(&kek, &sealed), Err(KekError::Damaged)));
        assert!(cache.keys.lock().unwrap().is_empty());
    }
}
