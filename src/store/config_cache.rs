//! The node's configuration (hosted domains and addresses, certificates, keys, trust anchors,
//! practices) as the queue workers read it for every message, kept in memory between messages.
//! Each read of the database costs a read transaction, and under load another connection has
//! always written in between, so SQLite drops its page cache and reads every page again: a
//! tenth of the workers' time went there. The cache follows the database: triggers count every
//! change to the tables it reads (`config_generation`, whoever writes: this process, the CLI, the
//! API) and log which entry each touched (`config_changes`); a worker checks that count before
//! each message and forgets the entries the changes since touched (`forget`), or everything when
//! it cannot tell.

use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::hash::Hash;

use hashlink::LruCache;

use super::{AnchorRecord, CertRecord, PracticeRecord, Result, SealedKey};

/// The most answers of one kind kept (one per recipient address looked up, one per owner's
/// certificates...); past it the answer used least recently goes.
const MAX_ENTRIES: usize = 100_000;

/// Answers of one kind, by what was asked.
pub(super) struct Memo<K, V>(RefCell<LruCache<K, V>>);

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn new() -> Self {
        Memo(RefCell::new(LruCache::new(MAX_ENTRIES)))
    }

    /// The remembered answer to `key`, or `load`'s (remembered only when it is Ok).
    fn get(&self, key: K, load: impl FnOnce() -> Result<V>) -> Result<V> {
        if let Some(v) = self.0.borrow_mut().get(&key) {
            return Ok(v.clone());
        }
        let v = load()?;
        self.0.borrow_mut().insert(key, v.clone());
        Ok(v)
    }

    fn remove<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.0.borrow_mut().remove(key);
    }

    fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// What the workers read per message. Off (every read goes to the database) unless enabled.
pub(super) struct ConfigCache {
    enabled: bool,
    /// The change count the answers are from; None: not read yet.
    generation: Cell<Option<i64>>,
    pub(super) has_domain: Memo<String, bool>,
    pub(super) has_address: Memo<String, bool>,
    pub(super) key: Memo<i64, SealedKey>,
    pub(super) certificates: Memo<Option<String>, Vec<CertRecord>>,
    pub(super) anchors: Memo<Option<String>, Vec<AnchorRecord>>,
    pub(super) bundle_anchors: Memo<Option<String>, Vec<AnchorRecord>>,
    pub(super) practice: Memo<String, PracticeRecord>,
    pub(super) practice_state: Memo<String, Option<(String, super::ProofingState)>>,
}

impl ConfigCache {
    pub(super) fn new(enabled: bool) -> ConfigCache {
        ConfigCache {
            enabled,
            generation: Cell::new(None),
            has_domain: Memo::new(),
            has_address: Memo::new(),
            key: Memo::new(),
            certificates: Memo::new(),
            anchors: Memo::new(),
            bundle_anchors: Memo::new(),
            practice: Memo::new(),
            practice_state: Memo::new(),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Reads through `memo` when enabled, else straight from `load`.
    pub(super) fn read<K: Eq + Hash, V: Clone>(
        &self,
        memo: &Memo<K, V>,
        key: K,
        load: impl FnOnce() -> Result<V>,
    ) -> Result<V> {
        if self.enabled {
            memo.get(key, load)
        } else {
            load()
        }
    }

    /// The change count the answers are from (None: nothing read since the last `clear`).
    pub(super) fn generation(&self) -> Option<i64> {
        self.generation.get()
    }

    /// Keeps the answers if the database's change count is still `generation`, else drops them.
    pub(super) fn follow(&self, generation: i64) {
        if self.generation.get() != Some(generation) {
            self.clear();
            self.generation.set(Some(generation));
        }
    }

    /// The answers are from `generation` on, once the changes in between were `forget`-ten.
    pub(super) fn moved_to(&self, generation: i64) {
        self.generation.set(Some(generation));
    }

    /// Forgets what a change of `kind` to `key` (None: to no one entry) may have made wrong
    /// (the kinds and keys of migration 15's log).
    pub(super) fn forget(&self, kind: &str, key: Option<&str>) {
        let Some(key) = key else {
            return self.forget_kind(kind);
        };
        let owner = Some(key.to_string());
        match kind {
            "address" => {
                self.has_address.remove(key);
                self.certificates.remove(&owner);
                // Each practice's record counts its addresses.
                self.practice.clear();
            }
            "certificates" => {
                self.certificates.remove(&owner);
                self.certificates.remove(&None);
            }
            "key" => match key.parse::<i64>() {
                Ok(id) => self.key.remove(&id),
                Err(_) => self.key.clear(),
            },
            "domain" => {
                self.has_domain.remove(key);
                self.practice_state.remove(key);
                self.certificates.remove(&owner);
                for memo in [&self.anchors, &self.bundle_anchors] {
                    memo.remove(&owner);
                    memo.remove(&None);
                }
                self.practice.clear();
            }
            other => self.forget_kind(other),
        }
    }

    fn forget_kind(&self, kind: &str) {
        match kind {
            "anchors" => {
                self.anchors.clear();
                self.bundle_anchors.clear();
            }
            "practice" => {
                self.practice.clear();
                self.practice_state.clear();
            }
            // A kind this build does not know (written by a newer one): nothing read is sure.
            _ => self.clear(),
        }
    }

    /// Drops every answer (and forgets the generation: the next `follow` starts afresh).
    pub(super) fn clear(&self) {
        self.generation.set(None);
        self.has_domain.clear();
        self.has_address.clear();
        self.key.clear();
        self.certificates.clear();
        self.anchors.clear();
        self.bundle_anchors.clear();
        self.practice.clear();
        self.practice_state.clear();
    }

    /// How many answers are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.has_domain.len()
            + self.has_address.len()
            + self.key.len()
            + self.certificates.len()
            + self.anchors.len()
            + self.bundle_anchors.len()
            + self.practice.len()
            + self.practice_state.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_answer_is_loaded_once_and_kept_while_the_generation_holds() {
        let cache = ConfigCache::new(true);
        let loads = Cell::new(0);
        let load = || {
            loads.set(loads.get() + 1);
            Ok(true)
        };
        cache.follow(7);
        assert!(cache.read(&cache.has_domain, "a.test".into(), load).unwrap());
        assert!(cache.read(&cache.has_domain, "a.test".into(), load).unwrap());
        assert_eq!(loads.get(), 1);
        cache.follow(7);
        assert!(cache.read(&cache.has_domain, "a.test".into(), load).unwrap());
        assert_eq!(loads.get(), 1, "same generation: kept");
        cache.follow(8);
        assert_eq!(cache.len(), 0);
        assert!(cache.read(&cache.has_domain, "a.test".into(), load).unwrap());
        assert_eq!(loads.get(), 2, "new generation: read again");
    }

    #[test]
    fn errors_are_not_kept_and_a_disabled_cache_keeps_nothing() {
        let cache = ConfigCache::new(true);
        let failed = cache.read(&cache.key, 1, || Err(StoreError::NotFound("private key #1".into())));
        assert!(failed.is_err());
        assert_eq!(cache.len(), 0);
        let off = ConfigCache::new(false);
        let loads = Cell::new(0);
        for _ in 0..3 {
            off.read(&off.has_address, "dr@a.test".into(), || {
                loads.set(loads.get() + 1);
                Ok(false)
            })
            .unwrap();
        }
        assert_eq!((loads.get(), off.len()), (3, 0));
    }

    #[test]
    fn past_its_size_limit_the_answer_used_least_recently_goes() {
        let cache = ConfigCache::new(true);
        for n in 0..MAX_ENTRIES {
            cache.read(&cache.has_address, format!("u{n}@a.test"), || Ok(true)).unwrap();
        }
        cache.read(&cache.has_address, "u0@a.test".into(), || panic!("kept")).unwrap();
        for n in 0..5 {
            cache.read(&cache.has_address, format!("new{n}@a.test"), || Ok(true)).unwrap();
        }
        assert_eq!(cache.len(), MAX_ENTRIES, "full, and no more");
        cache.read(&cache.has_address, "u0@a.test".into(), || panic!("u0 was used lately: kept")).unwrap();
        cache.read(&cache.has_address, "u6@a.test".into(), || panic!("u6 was never used again: kept")).unwrap();
        let loads = Cell::new(0);
        cache
            .read(&cache.has_address, "u1@a.test".into(), || {
                loads.set(1);
                Ok(true)
            })
            .unwrap();
        assert_eq!(loads.get(), 1, "u1, the least recently used, went");
    }

    #[test]
    fn a_change_forgets_the_entries_it_touched_and_keeps_the_rest() {
        let cache = ConfigCache::new(true);
        cache.follow(1);
        for address in ["a@x.test", "b@x.test"] {
            cache.read(&cache.has_address, address.into(), || Ok(true)).unwrap();
            cache.read(&cache.certificates, Some(address.into()), || Ok(Vec::new())).unwrap();
        }
        cache.read(&cache.has_domain, "x.test".into(), || Ok(true)).unwrap();
        cache.read(&cache.key, 7, || Err(StoreError::NotFound("k".into()))).ok();
        assert_eq!(cache.len(), 5);
        cache.forget("address", Some("a@x.test"));
        cache.moved_to(2);
        assert_eq!(cache.len(), 3, "a@x.test and its certificates went");
        cache.read(&cache.has_address, "b@x.test".into(), || panic!("b@x.test kept")).unwrap();
        cache.forget("certificates", Some("b@x.test"));
        assert_eq!(cache.len(), 2);
        cache.forget("anchors", None);
        assert_eq!(cache.len(), 2, "no anchors were read");
        cache.forget("something newer", Some("x"));
        assert_eq!((cache.len(), cache.generation()), (0, None), "an unknown change drops everything");
    }
}
