//! Logins verified recently, so that an EHR opening one SMTP connection per message (many do) pays
//! for argon2id once every few minutes instead of on every connection (about 30 ms of CPU each).
//!
//! Only successes are remembered, and only as an HMAC of the password under a key made at start
//! and never stored: a wrong password always goes through argon2id, so guessing is not made any
//! cheaper. An entry counts only while the user's stored hash is the one it was verified against,
//! so a changed password (or a removed user) takes effect at once. Someone able to read the
//! daemon's memory could test guesses against an entry at HMAC speed, but could equally read the
//! passwords themselves as they arrive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashlink::LruCache;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use openssl::sha::Sha256;

/// The most users remembered at once (about 100 bytes each); past it, the user who logged in
/// least recently is forgotten.
const MAX_ENTRIES: usize = 100_000;

pub(crate) struct LoginCache {
    /// The HMAC key (RFC 2104), as its two padded blocks.
    inner_pad: [u8; 64],
    outer_pad: [u8; 64],
    ttl: Duration,
    state: Mutex<State>,
    /// Signalled when a verification ends.
    verified: Condvar,
    /// How many times argon2id ran here.
    hashed: AtomicUsize,
}

struct State {
    entries: LruCache<String, Entry>,
    /// Users whose login is being verified now, with the tag of the password tried: a session
    /// trying the same password waits for that result instead of hashing too (an EHR opening
    /// many connections at once).
    verifying: HashMap<String, [u8; 32]>,
}

/// A verified login: the tag covers the stored hash as well as the password, so a changed hash
/// no longer matches it.
struct Entry {
    tag: [u8; 32],
    verified_at: Instant,
}

impl LoginCache {
    /// Remembers a verified login for `ttl` (zero: never, every login runs argon2id).
    pub(crate) fn new(ttl: Duration) -> Result<LoginCache, openssl::error::ErrorStack> {
        Self::with_capacity(ttl, MAX_ENTRIES)
    }

    fn with_capacity(ttl: Duration, capacity: usize) -> Result<LoginCache, openssl::error::ErrorStack> {
        let mut secret = [0u8; 32];
        openssl::rand::rand_bytes(&mut secret)?;
        let (mut inner_pad, mut outer_pad) = ([0x36u8; 64], [0x5cu8; 64]);
        for (i, byte) in secret.iter().enumerate() {
            inner_pad[i] ^= byte;
            outer_pad[i] ^= byte;
        }
        crate::wiped::wipe(&mut secret);
        Ok(LoginCache {
            inner_pad,
            outer_pad,
            ttl,
            state: Mutex::new(State { entries: LruCache::new(capacity), verifying: HashMap::new() }),
            verified: Condvar::new(),
            hashed: AtomicUsize::new(0),
        })
    }

    /// Whether `password` is `user`'s, whose stored argon2id hash is `stored`: from a recent
    /// verification of the same password against the same hash, else by argon2id.
    pub(crate) fn verify(&self, user: &str, password: &str, stored: &str) -> bool {
        if self.ttl.is_zero() {
            return crate::password::verify(password, stored);
        }
        let tag = self.tag(stored, password);
        let user = user.to_ascii_lowercase();
        let Ok(mut state) = self.state.lock() else { return crate::password::verify(password, stored) };
        loop {
            if self.remembers(&mut state, &user, &tag) {
                return true;
            }
            match state.verifying.get(&user) {
                Some(other) if same(other, &tag) => match self.verified.wait(state) {
                    Ok(s) => state = s,
                    Err(_) => return crate::password::verify(password, stored),
                },
                _ => break,
            }
        }
        let first = !state.verifying.contains_key(&user);
        if first {
            state.verifying.insert(user.clone(), tag);
        }
        drop(state);
        // Outside the lock: other sessions go on while this one hashes.
        self.hashed.fetch_add(1, Ordering::Relaxed);
        let verified = crate::password::verify(password, stored);
        if let Ok(mut state) = self.state.lock() {
            if first {
                state.verifying.remove(&user);
            }
            if verified {
                self.remember(&mut state, user, tag);
            }
        }
        self.verified.notify_all();
        verified
    }

    /// Whether `user` logged in with the password and stored hash of `tag` within the lifetime
    /// (and, if so, makes it the most recently used).
    fn remembers(&self, state: &mut State, user: &str, tag: &[u8; 32]) -> bool {
        state.entries.get(user).is_some_and(|e| e.verified_at.elapsed() < self.ttl && same(&e.tag, tag))
    }

    fn remember(&self, state: &mut State, user: String, tag: [u8; 32]) {
        state.entries.insert(user, Entry { tag, verified_at: Instant::now() });
    }

    /// HMAC-SHA256 over the stored hash and the password (the hash first: it has no NUL).
    fn tag(&self, stored: &str, password: &str) -> [u8; 32] {
        let mut inner = Sha256::new();
        inner.update(&self.inner_pad);
        inner.update(stored.as_bytes());
        inner.update(&[0]);
        inner.update(password.as_bytes());
        let mut outer = Sha256::new();
        outer.update(&self.outer_pad);
        outer.update(&inner.finish());
        outer.finish()
    }
}

/// Tags compared in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "a long enough password";

    #[test]
    fn a_verified_login_is_remembered_for_that_password_and_hash_only() {
        let hash = crate::password::hash(PASSWORD).unwrap();
        let cache = LoginCache::new(Duration::from_secs(300)).unwrap();
        assert!(!cache.verify("dr.smith@a.test", "a wrong password!", &hash), "a failure is not remembered");
        assert!(!cache.remembers(&mut cache.state.lock().unwrap(), "dr.smith@a.test", &cache.tag(&hash, PASSWORD)));
        assert!(cache.verify("Dr.Smith@a.test", PASSWORD, &hash));
        assert!(cache.remembers(&mut cache.state.lock().unwrap(), "dr.smith@a.test", &cache.tag(&hash, PASSWORD)));
        assert!(cache.verify("dr.smith@a.test", PASSWORD, &hash), "from the cache");
        assert!(!cache.verify("dr.smith@a.test", "a long enough passworD", &hash), "another password");
        // The password changed: the entry no longer counts, the old password fails.
        let changed = crate::password::hash("the new long password").unwrap();
        assert!(!cache.remembers(&mut cache.state.lock().unwrap(), "dr.smith@a.test", &cache.tag(&changed, PASSWORD)));
        assert!(!cache.verify("dr.smith@a.test", PASSWORD, &changed));
        assert!(cache.verify("dr.smith@a.test", "the new long password", &changed));
        // Another user with the same password is verified on its own.
        assert!(!cache.remembers(&mut cache.state.lock().unwrap(), "dr.jones@a.test", &cache.tag(&hash, PASSWORD)));
    }

    #[test]
    fn the_tag_is_hmac_sha256() {
        let cache = LoginCache::new(Duration::from_secs(1)).unwrap();
        // The key, recovered from its inner pad, checked against OpenSSL's HMAC.
        let key: Vec<u8> = cache.inner_pad[..32].iter().map(|b| b ^ 0x36).collect();
        let pkey = openssl::pkey::PKey::hmac(&key).unwrap();
        let mut hmac = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        hmac.update(b"$argon2id$stored\0the password").unwrap();
        assert_eq!(cache.tag("$argon2id$stored", "the password").to_vec(), hmac.sign_to_vec().unwrap());
    }

    #[test]
    fn entries_expire_and_a_zero_lifetime_remembers_nothing() {
        let hash = crate::password::hash(PASSWORD).unwrap();
        let brief = LoginCache::new(Duration::from_millis(50)).unwrap();
        assert!(brief.verify("u@a.test", PASSWORD, &hash));
        let tag = brief.tag(&hash, PASSWORD);
        assert!(brief.remembers(&mut brief.state.lock().unwrap(), "u@a.test", &tag));
        std::thread::sleep(Duration::from_millis(80));
        assert!(!brief.remembers(&mut brief.state.lock().unwrap(), "u@a.test", &tag), "expired");
        let never = LoginCache::new(Duration::ZERO).unwrap();
        assert!(never.verify("u@a.test", PASSWORD, &hash));
        assert!(never.state.lock().unwrap().entries.is_empty());
    }

    #[test]
    fn a_full_cache_forgets_the_user_who_logged_in_least_recently_only() {
        let hash = crate::password::hash(PASSWORD).unwrap();
        let cache = LoginCache::with_capacity(Duration::from_secs(300), 3).unwrap();
        for user in ["u0@a.test", "u1@a.test", "u2@a.test"] {
            assert!(cache.verify(user, PASSWORD, &hash));
        }
        assert!(cache.verify("u0@a.test", PASSWORD, &hash), "u0 again: now the most recent");
        assert_eq!(cache.hashed.load(Ordering::Relaxed), 3);
        assert!(cache.verify("u3@a.test", PASSWORD, &hash));
        let tag = cache.tag(&hash, PASSWORD);
        let mut state = cache.state.lock().unwrap();
        assert!(!cache.remembers(&mut state, "u1@a.test", &tag), "the least recent went");
        for kept in ["u0@a.test", "u2@a.test", "u3@a.test"] {
            assert!(cache.remembers(&mut state, kept, &tag), "{kept} kept");
        }
    }

    #[test]
    fn sessions_logging_in_at_once_with_one_password_hash_it_once() {
        let hash = crate::password::hash(PASSWORD).unwrap();
        let cache = LoginCache::new(Duration::from_secs(300)).unwrap();
        let results: Vec<bool> = std::thread::scope(|s| {
            let sessions: Vec<_> = (0..8).map(|_| s.spawn(|| cache.verify("u@a.test", PASSWORD, &hash))).collect();
            sessions.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(results, vec![true; 8]);
        assert_eq!(cache.hashed.load(Ordering::Relaxed), 1, "one argon2id verification for eight logins");
        assert!(cache.state.lock().unwrap().verifying.is_empty());
        // A wrong password tried at once by several sessions fails for each of them.
        let wrong: Vec<bool> = std::thread::scope(|s| {
            let sessions: Vec<_> =
                (0..4).map(|_| s.spawn(|| cache.verify("v@a.test", "not the password", &hash))).collect();
            sessions.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(wrong, vec![false; 4]);
        assert_eq!(cache.hashed.load(Ordering::Relaxed), 1 + 4, "every wrong password is hashed");
    }
}
