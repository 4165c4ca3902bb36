//! The node's configuration (hosted domains and addresses, certificates, keys, trust anchors,
//! practices) as the queue workers read it for every message, kept in memory between messages.
//! Each read of the database costs a read transaction, and under load another connection has
//! always written in between, so SQLite drops its page cache and reads every page again: a
//! tenth of the workers' time went there. The cache follows the database: triggers count every
//! change to the tables it reads (`config_generation`, whoever writes: this process, the CLI, the
//! API), and a worker checks that count before each message, dropping everything when it moved.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::Hash;

use super::{AnchorRecord, CertRecord, PracticeRecord, Result, SealedKey};

/// Past this many answers, the cache starts again (it holds one per recipient address looked up).
const MAX_ENTRIES: usize = 10_000;

/// Answers of one kind, by what was asked.
pub(super) struct Memo<K, V>(RefCell<HashMap<K, V>>);

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn new() -> Self {
        Memo(RefCell::new(HashMap::new()))
    }

    /// The remembered answer to `key`, or `load`'s (remembered only when it is Ok).
    fn get(&self, key: K, load: impl FnOnce() -> Result<V>) -> Result<V> {
        if let Some(v) = self.0.borrow().get(&key) {
            return Ok(v.clone());
        }
        let v = load()?;
        let mut map = self.0.borrow_mut();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, v.clone());
        Ok(v)
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
    pub(super) practice_state: Memo<String, Option<(String, String)>>,
}

impl ConfigCache {
    pub fn new(enabled: bool) -> ConfigCache {
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

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Reads through `memo` when enabled, else straight from `load`.
    pub fn read<K: Eq + Hash, V: Clone>(
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

    /// Keeps the answers if the database's change count is still `generation`, else drops them.
    pub fn follow(&self, generation: i64) {
        if self.generation.get() != Some(generation) {
            self.clear();
            self.generation.set(Some(generation));
        }
    }

    /// Drops every answer (and forgets the generation: the next `follow` starts afresh).
    pub fn clear(&self) {
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
    pub fn len(&self) -> usize {
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
    fn it_starts_again_past_its_size_limit() {
        let cache = ConfigCache::new(true);
        for n in 0..MAX_ENTRIES + 5 {
            cache.read(&cache.has_address, format!("u{n}@a.test"), || Ok(true)).unwrap();
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert_eq!(cache.len(), 5);
    }
}
