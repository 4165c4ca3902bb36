//! Record data as the node uses it, checked at the boundary.

/// The answer to one question: the records and how long they may be cached. An empty answer
/// (NXDOMAIN or no records of the type) is a valid answer too, cached for the negative TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<T> {
    pub records: Vec<T>,
    pub ttl: u32,
}

/// CERT certificate types we act on (RFC 4398 §2.1); others are reported and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertType {
    /// An X.509 certificate, DER.
    Pkix,
    /// The URL of an X.509 certificate.
    Ipkix,
    Other(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    pub cert_type: CertType,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target host, without the trailing dot.
    pub target: String,
}
