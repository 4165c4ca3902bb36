//! What an SMTP session asks of the store: credentials (argon2id hashes) and hosted names.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::address::{DirectAddress, Domain};
use crate::login_cache::LoginCache;
use crate::smtp::server::GateFactory;
use crate::smtp::session::{Gate, Login};
use crate::store::NodeStore;
use crate::throttle::Throttle;

/// An SMTP session's view of the store; its connection goes back to the pool when it ends.
pub(crate) struct StoreGate {
    store: Option<Box<dyn NodeStore>>,
    logins: Arc<LoginCache>,
    idle: Arc<Mutex<Vec<Box<dyn NodeStore>>>>,
    guard: Arc<LoginGuard>,
    peer: IpAddr,
}

/// Failed logins, counted per account and per client address (`throttle`): a few are free, then
/// each attempt waits longer, up to 15 minutes, whatever the password.
pub(crate) struct LoginGuard {
    accounts: Throttle,
    peers: Throttle,
}

impl Default for LoginGuard {
    fn default() -> Self {
        const WINDOW: Duration = Duration::from_secs(15 * 60);
        LoginGuard { accounts: Throttle::new(5, WINDOW, WINDOW), peers: Throttle::new(20, WINDOW, WINDOW) }
    }
}

impl StoreGate {
    fn store(&self) -> &dyn NodeStore {
        self.store.as_deref().expect("a gate has its store until it is dropped")
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
    fn authenticate(&self, user: &str, password: &str) -> Login {
        let peer = self.peer.to_string();
        let account = DirectAddress::parse(user).map(|a| a.to_string()).unwrap_or_else(|_| user.to_ascii_lowercase());
        if self.guard.peers.wait(&peer).is_some() || self.guard.accounts.wait(&account).is_some() {
            tracing::warn!(%peer, %account, "SMTP AUTH refused: too many failed logins (throttled)");
            return Login::Throttled;
        }
        let granted = DirectAddress::parse(user).ok().filter(|address| {
            let hash = self.store().password_hash(address).ok().flatten();
            hash.is_some_and(|hash| self.logins.verify(&address.to_string(), password, &hash))
        });
        match granted {
            Some(address) => {
                self.guard.accounts.succeeded(&account);
                Login::Granted(address)
            }
            None => {
                tracing::warn!(%peer, %account, "SMTP AUTH refused: unknown account or wrong password");
                self.guard.accounts.failed(&account);
                self.guard.peers.failed(&peer);
                Login::Refused
            }
        }
    }

    fn hosts_domain(&self, domain: &Domain) -> Result<bool, String> {
        self.store().has_domain(domain).map_err(|e| e.to_string())
    }

    fn hosts_address(&self, address: &DirectAddress) -> Result<bool, String> {
        self.store().has_address(address).map_err(|e| e.to_string())
    }

    fn may_send(&self, sender: &DirectAddress) -> Result<Option<String>, String> {
        match crate::store::require_verified(self.store(), sender.domain()) {
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
pub(crate) struct StoreGates {
    db: PathBuf,
    logins: Arc<LoginCache>,
    idle: Arc<Mutex<Vec<Box<dyn NodeStore>>>>,
    guard: Arc<LoginGuard>,
}

impl StoreGates {
    pub(crate) fn new(db: PathBuf, logins: LoginCache) -> StoreGates {
        StoreGates { db, logins: Arc::new(logins), idle: Arc::default(), guard: Arc::default() }
    }
}

impl GateFactory for StoreGates {
    fn gate(&self, peer: IpAddr) -> Result<Box<dyn Gate>, String> {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let store = match reused {
            Some(store) => store,
            None => crate::store::open(&self.db, "smtp").map_err(|e| e.to_string())?,
        };
        Ok(Box::new(StoreGate {
            store: Some(store),
            logins: self.logins.clone(),
            idle: self.idle.clone(),
            guard: self.guard.clone(),
            peer,
        }))
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
        let store = crate::store::create(&db, "test").unwrap();
        store.add_practice("A", &Domain::parse("a.test").unwrap(), &[]).unwrap();
        let gates = StoreGates::new(db, LoginCache::new(Duration::ZERO).unwrap());
        let local = IpAddr::from([127, 0, 0, 1]);
        let (first, second) = (gates.gate(local).unwrap(), gates.gate(local).unwrap());
        assert_eq!(gates.idle.lock().unwrap().len(), 0);
        drop(first);
        drop(second);
        assert_eq!(gates.idle.lock().unwrap().len(), 2, "both connections kept");
        let third = gates.gate(local).unwrap();
        assert_eq!(gates.idle.lock().unwrap().len(), 1, "one reused");
        // A kept connection answers from the current state of the store.
        assert!(third.hosts_domain(&Domain::parse("a.test").unwrap()).unwrap());
        store.add_practice("B", &Domain::parse("b.test").unwrap(), &[]).unwrap();
        assert!(third.hosts_domain(&Domain::parse("b.test").unwrap()).unwrap());
        assert!(!third.hosts_address(&DirectAddress::parse("x@b.test").unwrap()).unwrap());
    }

    #[test]
    fn failed_logins_throttle_the_account_and_the_address_whatever_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hisp.db");
        let store = crate::store::create(&db, "test").unwrap();
        store.add_practice("A", &Domain::parse("a.test").unwrap(), &[]).unwrap();
        let smith = DirectAddress::parse("dr.smith@a.test").unwrap();
        store.add_address(&smith, Some(&crate::password::hash("the right password").unwrap())).unwrap();
        let gates = StoreGates::new(db, LoginCache::new(Duration::ZERO).unwrap());
        let guesser = gates.gate(IpAddr::from([192, 0, 2, 1])).unwrap();
        for _ in 0..5 {
            assert_eq!(guesser.authenticate("dr.smith@a.test", "a guess"), Login::Refused);
        }
        // The account now waits, even for the right password, and from another address.
        assert_eq!(guesser.authenticate("dr.smith@a.test", "the right password"), Login::Throttled);
        let elsewhere = gates.gate(IpAddr::from([192, 0, 2, 2])).unwrap();
        assert_eq!(elsewhere.authenticate("dr.smith@a.test", "the right password"), Login::Throttled);
        // An address that guesses at many accounts is throttled for all of them.
        let sprayer = gates.gate(IpAddr::from([192, 0, 2, 3])).unwrap();
        for n in 0..20 {
            assert_eq!(sprayer.authenticate(&format!("user{n}@a.test"), "a guess"), Login::Refused);
        }
        assert_eq!(sprayer.authenticate("nobody@a.test", "a guess"), Login::Throttled);
        gates.guard.accounts.succeeded("dr.smith@a.test");
        assert!(matches!(elsewhere.authenticate("dr.smith@a.test", "the right password"), Login::Granted(_)));
    }
}
