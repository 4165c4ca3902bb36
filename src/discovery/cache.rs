//! Positive and negative DNS answers kept for their TTL (RFC 1035 §3.2.1, RFC 2308), in front of
//! any resolver. Bounded: when full, expired entries go first, then everything. Failures are not
//! cached, so a server that comes back is asked again at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::dns::{CertRecord, DnsError, Lookup, Resolver, SrvRecord};

const CAPACITY: usize = 10_000;
/// Even a long TTL is not trusted for more than a day.
const MAX_TTL: u32 = 86_400;

#[derive(Clone)]
enum Entry {
    Cert(Lookup<CertRecord>),
    Srv(Lookup<SrvRecord>),
    Addresses(Lookup<IpAddr>),
    Mx(Lookup<(u16, String)>),
}

/// (lower-case name, record kind) -> (expiry, answer).
type Entries = Mutex<HashMap<(String, &'static str), (Instant, Entry)>>;

pub struct CachingResolver<R> {
    inner: R,
    entries: Entries,
}

impl<R: Resolver> CachingResolver<R> {
    pub fn new(inner: R) -> CachingResolver<R> {
        CachingResolver { inner, entries: Mutex::new(HashMap::new()) }
    }

    fn cached<T>(
        &self,
        name: &str,
        kind: &'static str,
        unwrap: impl Fn(Entry) -> Option<Lookup<T>>,
        wrap: impl Fn(Lookup<T>) -> Entry,
        ask: impl FnOnce() -> Result<Lookup<T>, DnsError>,
    ) -> Result<Lookup<T>, DnsError>
    where
        T: Clone,
    {
        let key = (name.trim_end_matches('.').to_ascii_lowercase(), kind);
        let now = Instant::now();
        if let Some((expires, entry)) = self.entries.lock().ok().and_then(|e| e.get(&key).cloned()) {
            if now < expires {
                if let Some(hit) = unwrap(entry) {
                    return Ok(hit);
                }
            }
        }
        let answer = ask()?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.retain(|_, (expires, _)| *expires > now);
                if entries.len() >= CAPACITY {
                    entries.clear();
                }
            }
            let ttl = Duration::from_secs(u64::from(answer.ttl.min(MAX_TTL)));
            entries.insert(key, (now + ttl, wrap(answer.clone())));
        }
        Ok(answer)
    }
}

impl<R: Resolver> Resolver for CachingResolver<R> {
    fn cert(&self, name: &str) -> Result<Lookup<CertRecord>, DnsError> {
        let unwrap = |e| if let Entry::Cert(l) = e { Some(l) } else { None };
        self.cached(name, "CERT", unwrap, Entry::Cert, || self.inner.cert(name))
    }

    fn srv(&self, name: &str) -> Result<Lookup<SrvRecord>, DnsError> {
        let unwrap = |e| if let Entry::Srv(l) = e { Some(l) } else { None };
        self.cached(name, "SRV", unwrap, Entry::Srv, || self.inner.srv(name))
    }

    fn addresses(&self, host: &str) -> Result<Lookup<IpAddr>, DnsError> {
        let unwrap = |e| if let Entry::Addresses(l) = e { Some(l) } else { None };
        self.cached(host, "A/AAAA", unwrap, Entry::Addresses, || self.inner.addresses(host))
    }

    fn mx(&self, domain: &str) -> Result<Lookup<(u16, String)>, DnsError> {
        let unwrap = |e| if let Entry::Mx(l) = e { Some(l) } else { None };
        self.cached(domain, "MX", unwrap, Entry::Mx, || self.inner.mx(domain))
    }
}
