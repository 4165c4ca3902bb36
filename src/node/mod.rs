//! The running node's context: what its SMTP sessions, queue workers and API connections share
//! (configuration, the store's path and KEK, the resolver and its caches, unsealed keys, TLS
//! client contexts, the queue). The adapters above it (`http`, `serve`) take it by reference; it
//! knows none of them.

pub(crate) mod unsealed;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::discovery::cache::CachingResolver;
use crate::dns::DnsClient;
use crate::kek::Kek;
use crate::store::queue::Queue;

/// From this many new jobs on, every idle worker is woken.
pub(crate) const WAKE_ALL_FROM: usize = 16;

/// Wakes idle workers when new mail is committed.
#[derive(Default)]
pub(crate) struct Wakeup {
    generation: Mutex<u64>,
    signal: Condvar,
}

impl Wakeup {
    /// Wakes as many idle workers as there are new `jobs` (not all of them: every worker woken
    /// claims in a write transaction, and those that find nothing left would have woken for
    /// nothing).
    pub(crate) fn wake(&self, jobs: usize) {
        if let Ok(mut g) = self.generation.lock() {
            *g += 1;
        }
        if jobs >= WAKE_ALL_FROM {
            self.signal.notify_all();
        } else {
            (0..jobs).for_each(|_| self.signal.notify_one());
        }
    }

    /// The current generation: read it before looking for work, then `wait_since` it, so a wake
    /// that comes in between is not lost.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.lock().map(|g| *g).unwrap_or(0)
    }

    /// Waits until woken after generation `seen`, or until `timeout` passes.
    pub(crate) fn wait_since(&self, seen: u64, timeout: Duration) {
        let Ok(g) = self.generation.lock() else { return };
        let _ = self.signal.wait_timeout_while(g, timeout, |g| *g == seen);
    }
}

/// What every worker shares.
pub(crate) struct Shared {
    pub config: Config,
    pub db: PathBuf,
    pub kek: Arc<Kek>,
    pub resolver: CachingResolver<DnsClient>,
    pub clock: Arc<dyn Clock>,
    pub wakeup: Arc<Wakeup>,
    pub lookup_timeout: Duration,
    /// TLS client contexts by (verify, anchors file): building one loads the system's CA store.
    pub connectors: Mutex<std::collections::HashMap<(bool, Option<PathBuf>), openssl::ssl::SslConnector>>,
    /// Open SMTP sessions to peers, reused between deliveries.
    pub sessions: crate::smtp::client::SessionPool,
    /// Private keys and signing identities unsealed so far.
    pub unsealed: unsealed::Unsealed,
    /// The queue, as the workers write it (intake's connection, see `Queue`).
    pub queue: Box<dyn Queue>,
    /// Set when the node stops (`Running::stop`): workers claim nothing more.
    pub stopping: Arc<AtomicBool>,
    /// Workers not yet ended (they end once the node stops and their job in hand is done).
    pub workers_running: AtomicUsize,
}

impl Shared {
    /// The TLS client context for these settings, made once.
    pub(crate) fn connector(
        &self,
        verify: bool,
        anchors: Option<&std::path::Path>,
    ) -> Result<openssl::ssl::SslConnector, String> {
        let key = (verify, anchors.map(PathBuf::from));
        let mut cache = self.connectors.lock().map_err(|_| "TLS context cache poisoned".to_string())?;
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let c = crate::smtp::tls::connector(verify, anchors).map_err(|e| e.to_string())?;
        cache.insert(key, c.clone());
        Ok(c)
    }
}

/// A fresh Message-ID of ours: 128 random bits at our host name.
pub(crate) fn new_message_id(hostname: &str) -> String {
    let mut id = [0u8; 16];
    openssl::rand::rand_bytes(&mut id).expect("the system's random source");
    format!("<{}@{hostname}>", hex::encode(id))
}
