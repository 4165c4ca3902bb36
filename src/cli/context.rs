//! What every command may need: the config, the database, the key-encryption key.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use super::Failure;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::dns::{self, DnsClient, DnsConfig};
use crate::kek::{self, Kek};
use crate::store::{NodeStore, Store};

pub(crate) struct Context {
    pub config: Config,
    pub db_path: PathBuf,
    pub json: bool,
    pub clock: SystemClock,
    store: OnceCell<Box<dyn NodeStore>>,
    /// HISP_KEK, taken out of the environment when the command started.
    kek_from_environment: Option<crate::wiped::WipedString>,
}

impl Context {
    pub(crate) fn new(config_path: Option<&Path>, db: Option<PathBuf>, json: bool) -> Result<Context, Failure> {
        let config = match config_path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let db_path = db.unwrap_or_else(|| config.database.path.clone());
        // Out of the environment at once: no child process, log or /proc reader sees it after.
        let kek_from_environment = kek::take_from_environment("HISP_KEK").map(crate::wiped::WipedString);
        Ok(Context { config, db_path, json, clock: SystemClock, store: OnceCell::new(), kek_from_environment })
    }

    pub(crate) fn actor() -> String {
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| {
            // SAFETY: getuid cannot fail.
            format!("uid{}", unsafe { libc::getuid() })
        });
        format!("cli:{user}")
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.unix_now()
    }

    /// Creates the database (for `hisp init`).
    pub(crate) fn create_store(&self) -> Result<&dyn NodeStore, Failure> {
        let store = crate::store::create(&self.db_path, &Self::actor())?;
        Ok(&**self.store.get_or_init(|| store))
    }

    /// The existing database.
    pub(crate) fn store(&self) -> Result<&dyn Store, Failure> {
        Ok(self.node_store()?)
    }

    /// The store with all it keeps (the API's tokens, referrals and documents too).
    pub(crate) fn node_store(&self) -> Result<&dyn NodeStore, Failure> {
        if let Some(s) = self.store.get() {
            return Ok(&**s);
        }
        let store = crate::store::open(&self.db_path, &Self::actor())?;
        Ok(&**self.store.get_or_init(|| store))
    }

    /// The resolver settings: `overrides` (from `--dns`) or dns.servers, else /etc/resolv.conf.
    pub(crate) fn dns_config(&self, overrides: &[String]) -> Result<DnsConfig, Failure> {
        let texts = if overrides.is_empty() { &self.config.dns.servers } else { overrides };
        let mut servers =
            texts.iter().map(|s| dns::parse_server(s).map_err(Failure::usage)).collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            servers = DnsClient::system_servers();
        }
        Ok(DnsConfig {
            servers,
            timeout: std::time::Duration::from_millis(self.config.dns.timeout_ms),
            attempts: self.config.dns.attempts,
        })
    }

    /// The key-encryption key when one is given (HISP_KEK, keys.kek, keys.kek_file), checked
    /// against this database: a wrong one is an error, none is None.
    pub(crate) fn kek_if_given(&self) -> Result<Option<Kek>, Failure> {
        let given = self.kek_from_environment.is_some()
            || self.config.keys.kek.is_some()
            || self.config.keys.kek_file.is_some();
        if given {
            self.kek().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The key-encryption key, checked against this database.
    pub(crate) fn kek(&self) -> Result<Kek, Failure> {
        let secret = kek::secret_from(
            self.kek_from_environment.as_ref().map(|s| s.0.clone()),
            self.config.keys.kek.as_deref(),
            self.config.keys.kek_file.as_deref(),
        )?;
        Ok(Kek::unlock(self.store()?, &secret)?)
    }
}
