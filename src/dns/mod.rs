//! The one resolver every name lookup of the node goes through (DESIGN.md §2): CERT, SRV, MX and
//! A/AAAA, asked of the configured servers only, so tests can point the whole node at a test DNS
//! server. Answers carry their TTL (negative answers the SOA minimum) for the caches above.

mod client;
mod records;

#[cfg(feature = "fuzzing")]
pub(crate) use client::read_answer;
pub use client::{DnsClient, DnsConfig};
pub use records::{CertRecord, CertType, Lookup, SrvRecord};

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("{name} is not a valid DNS name: {reason}")]
    BadName { name: String, reason: String },
    #[error("no DNS server answered for {name} {rtype} (asked {servers}): {reason}")]
    Unreachable { name: String, rtype: String, servers: String, reason: String },
    #[error("the DNS server {server} refused or failed {name} {rtype}: {code}")]
    ServerFailure { name: String, rtype: String, server: SocketAddr, code: String },
    #[error("no DNS servers are configured")]
    NoServers,
}

/// Name lookups, as the rest of the node sees them. `DnsClient` asks real servers; tests of core
/// logic may answer from a table.
pub trait Resolver: Send + Sync {
    fn cert(&self, name: &str) -> Result<Lookup<CertRecord>, DnsError>;
    fn srv(&self, name: &str) -> Result<Lookup<SrvRecord>, DnsError>;
    /// IPv4 and IPv6 addresses of a host.
    fn addresses(&self, host: &str) -> Result<Lookup<IpAddr>, DnsError>;
    /// MX hosts sorted by preference, lowest first.
    fn mx(&self, domain: &str) -> Result<Lookup<(u16, String)>, DnsError>;
}

/// Parses `HOST:PORT` (an IP address; `[v6]:port` for IPv6) or a bare IP (port 53).
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("'{text}' is not a DNS server address (IP or IP:PORT)"))
}

/// A resolver for unit tests of adapters against servers on loopback: every name is 127.0.0.1.
#[cfg(test)]
pub(crate) struct Loopback;

#[cfg(test)]
impl Resolver for Loopback {
    fn cert(&self, _: &str) -> Result<Lookup<CertRecord>, DnsError> {
        Ok(Lookup { records: vec![], ttl: 60 })
    }
    fn srv(&self, _: &str) -> Result<Lookup<SrvRecord>, DnsError> {
        Ok(Lookup { records: vec![], ttl: 60 })
    }
    fn addresses(&self, _: &str) -> Result<Lookup<IpAddr>, DnsError> {
        Ok(Lookup { records: vec![IpAddr::from([127, 0, 0, 1])], ttl: 60 })
    }
    fn mx(&self, _: &str) -> Result<Lookup<(u16, String)>, DnsError> {
        Ok(Lookup { records: vec![], ttl: 60 })
    }
}
