//! What an SMTP session asks of the store: credentials (argon2id hashes) and hosted names.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::address::{DirectAddress, Domain};
use crate::login_cache::LoginCache;
use crate::smtp::server::GateFactory;
use crate::smtp::session::Gate;
use crate::store::{SqliteStore, Store};

/// An SMTP session's view of the store; its connection goes back to the pool when it ends.
pub struct StoreGate {
    store: Option<SqliteStore>,
    logins: Arc<LoginCache>,
    idle: Arc<Mutex<Vec<SqliteStore>>>,
}

impl StoreGate {
    fn store(&self) -> &SqliteStore {
        self.store.as_ref().expect("a gate has its store until it is dropped")
    }
}

impl Drop for StoreGate {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else { return };
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE_STORES {
                idle.push(store);
            }
        }
    }
}

impl Gate for StoreGate {
    fn authenticate(&self, user: &str, password: &str) -> Option<DirectAddress> {
        let address = DirectAddress::parse(user).ok()?;
        let hash = self.store().password_hash(&address).ok()??;
        self.logins.verify(&address.to_string(), password, &hash).then_some(address)
    }

    fn hosts_domain(&self, domain: &Domain) -> Result<bool, String> {
        self.store().has_domain(domain).map_err(|e| e.to_string())
    }

    fn hosts_address(&self, address: &DirectAddress) -> Result<bool, String> {
        self.store().has_address(address).map_err(|e| e.to_string())
    }

    fn may_send(&self, sender: &DirectAddress) -> Result<Option<String>, String> {
        match crate::onboarding::require_verified(self.store(), sender.domain()) {
            Ok(()) => Ok(None),
            Err(Ok(why)) => Ok(Some(why)),
            Err(Err(e)) => Err(e.to_string()),
        }
    }
}

/// Store connections kept for the next SMTP sessions.
const MAX_IDLE_STORES: usize = 32;

/// Gives each SMTP session a store connection of its own (SQLite connections are not shared
/// between threads), reusing those of sessions that ended: opening one reads and parses the whole
/// schema and prepares every statement afresh, which a client connecting per message would pay
/// every time.
pub struct StoreGates {
    db: PathBuf,
    logins: Arc<LoginCache>,
    idle: Arc<Mutex<Vec<SqliteStore>>>,
}

impl StoreGates {
    pub fn new(db: PathBuf, logins: LoginCache) -> StoreGates {
        StoreGates { db, logins: Arc::new(logins), idle: Arc::default() }
    }
}

impl GateFactory for StoreGates {
    fn gate(&self) -> Result<Box<dyn Gate>, String> {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let store = match reused {
            Some(store) => store,
            None => SqliteStore::open(&self.db, "smtp").map_err(|e| e.to_string())?,
        };
        Ok(Box::new(StoreGate { store: Some(store), logins: self.logins.clone(), idle: self.idle.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::DirectAddress;

    #[test]
    fn sessions_reuse_the_store_connections_of_sessions_that_ended() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hisp.db");
        let store = SqliteStore::create(&db, "test").unwrap();
        store.add_practice("A", &Domain::parse("a.test").unwrap()).unwrap();
        let gates = StoreGates::new(db, LoginCache::new(std::time::Duration::ZERO).unwrap());
        let (first, second) = (gates.gate().unwrap(), gates.gate().unwrap());
        assert_eq!(gates.idle.lock().unwrap().len(), 0);
        drop(first);
        drop(second);
        assert_eq!(gates.idle.lock().unwrap().len(), 2, "both connections kept");
        let third = gates.gate().unwrap();
        assert_eq!(gates.idle.lock().unwrap().len(), 1, "one reused");
        // A kept connection answers from the current state of the store.
        assert!(third.hosts_domain(&Domain::parse("a.test").unwrap()).unwrap());
        store.add_practice("B", &Domain::parse("b.test").unwrap()).unwrap();
        assert!(third.hosts_domain(&Domain::parse("b.test").unwrap()).unwrap());
        assert!(!third.hosts_address(&DirectAddress::parse("x@b.test").unwrap()).unwrap());
    }
}
