//! What an SMTP session asks of the store: credentials (argon2id hashes) and hosted names.

use std::path::PathBuf;

use crate::address::{DirectAddress, Domain};
use crate::password;
use crate::smtp::server::GateFactory;
use crate::smtp::session::Gate;
use crate::store::{SqliteStore, Store};

pub struct StoreGate(SqliteStore);

impl Gate for StoreGate {
    fn authenticate(&self, user: &str, password: &str) -> Option<DirectAddress> {
        let address = DirectAddress::parse(user).ok()?;
        let hash = self.0.password_hash(&address).ok()??;
        password::verify(password, &hash).then_some(address)
    }

    fn hosts_domain(&self, domain: &Domain) -> Result<bool, String> {
        self.0.has_domain(domain).map_err(|e| e.to_string())
    }

    fn hosts_address(&self, address: &DirectAddress) -> Result<bool, String> {
        self.0.has_address(address).map_err(|e| e.to_string())
    }

    fn may_send(&self, sender: &DirectAddress) -> Result<Option<String>, String> {
        match crate::onboarding::require_verified(&self.0, sender.domain()) {
            Ok(()) => Ok(None),
            Err(Ok(why)) => Ok(Some(why)),
            Err(Err(e)) => Err(e.to_string()),
        }
    }
}

/// Opens a store connection per SMTP connection (SQLite connections are not shared between threads).
pub struct StoreGates {
    pub db: PathBuf,
}

impl GateFactory for StoreGates {
    fn gate(&self) -> Result<Box<dyn Gate>, String> {
        let store = SqliteStore::open(&self.db, "smtp").map_err(|e| e.to_string())?;
        Ok(Box::new(StoreGate(store)))
    }
}
