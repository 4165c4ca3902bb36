//! Certificate discovery for a Direct address (Certificate Discovery for Direct IG, DESIGN.md §2):
//! DNS CERT address-bound, DNS CERT domain-bound, LDAP address-bound, LDAP domain-bound, stopping
//! at the first step that returns any certificate, then keeping only the usable ones. The steps
//! take the node's resolver, LDAP and HTTP adapters as traits, so the order and the stop rule are
//! tested without servers.

pub mod assess;
pub mod cache;
pub mod ldap;
pub(crate) mod ldap_gate;
pub(crate) mod srv;
pub(crate) mod verdict;

use serde::Serialize;

use crate::address::DirectAddress;
use crate::dns::{CertType, DnsError, Resolver};
use crate::fetch::Fetcher;
use ldap::LdapDirectory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    DnsAddress,
    DnsDomain,
    LdapAddress,
    LdapDomain,
}

impl Step {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Step::DnsAddress => "dns-address",
            Step::DnsDomain => "dns-domain",
            Step::LdapAddress => "ldap-address",
            Step::LdapDomain => "ldap-domain",
        }
    }

    pub(crate) fn source(self) -> &'static str {
        match self {
            Step::DnsAddress | Step::DnsDomain => "dns",
            Step::LdapAddress | Step::LdapDomain => "ldap",
        }
    }

    /// "address" or "domain": what the certificates found at this step must be bound to.
    pub(crate) fn binding(self) -> &'static str {
        match self {
            Step::DnsAddress | Step::LdapAddress => "address",
            Step::DnsDomain | Step::LdapDomain => "domain",
        }
    }
}

/// A certificate as found, before any check.
#[derive(Debug, Clone)]
pub struct Found {
    /// The certificate's bytes as published (DER, or PEM from an IPKIX URL or LDAP).
    pub data: Vec<u8>,
    /// Where: the DNS name, the IPKIX URL or the LDAP server.
    pub origin: String,
}

/// What the walk through the steps gave.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    pub step: Option<Step>,
    pub found: Vec<Found>,
    /// Things an operator should know that did not stop the lookup (an LDAP server skipped, a CERT
    /// record of a type we do not use, an IPKIX URL that could not be fetched).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    #[error("DNS lookup failed: {0}")]
    Dns(#[from] DnsError),
    #[error("no LDAP server for {domain} could be reached: {reasons}")]
    LdapUnreachable { domain: String, reasons: String },
}

impl DiscoveryError {
    /// A lookup that failed may succeed later: temporary, a directory failure.
    pub(crate) fn failure(&self) -> crate::failure::Failure {
        use crate::failure::{Code, Failure};
        Failure::temporary(Code::DIRECTORY, format!("certificate discovery: {self}"))
    }
}

/// The adapters discovery uses.
pub struct Sources<'a> {
    pub dns: &'a dyn Resolver,
    pub ldap: &'a dyn LdapDirectory,
    pub fetch: &'a dyn Fetcher,
}

/// Walks the four steps for `address`. A failure to look something up (as opposed to finding
/// nothing) ends the walk with an error: a later step must not answer for an earlier one that
/// could not be asked.
pub fn discover(address: &DirectAddress, sources: &Sources) -> Result<Discovered, DiscoveryError> {
    let mut out = Discovered::default();
    let domain = address.domain().as_str();
    let address_name = format!("{}.{}", address.local(), domain);
    for (step, name) in [(Step::DnsAddress, address_name.as_str()), (Step::DnsDomain, domain)] {
        let found = dns_step(name, sources, &mut out.notes)?;
        if !found.is_empty() {
            out.step = Some(step);
            out.found = found;
            return Ok(out);
        }
    }
    let servers = srv::order(&sources.dns.srv(&format!("_ldap._tcp.{domain}"))?.records);
    if servers.is_empty() {
        return Ok(out);
    }
    for (step, mail) in [(Step::LdapAddress, address.to_string()), (Step::LdapDomain, domain.to_string())] {
        let found = ldap_step(&servers, &mail, domain, sources, &mut out.notes)?;
        if !found.is_empty() {
            out.step = Some(step);
            out.found = found;
            return Ok(out);
        }
    }
    Ok(out)
}

fn dns_step(name: &str, sources: &Sources, notes: &mut Vec<String>) -> Result<Vec<Found>, DiscoveryError> {
    let mut found = Vec::new();
    let records = match sources.dns.cert(name) {
        Ok(answer) => answer.records,
        // A local part that cannot be a DNS label cannot have a CERT record.
        Err(DnsError::BadName { reason, .. }) => {
            notes.push(format!("{name} is not a DNS name ({reason}): no CERT record can exist there"));
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    for record in records {
        match record.cert_type {
            CertType::Pkix => found.push(Found { data: record.data, origin: format!("CERT {name}") }),
            CertType::Ipkix => {
                let url = String::from_utf8_lossy(&record.data).trim().to_string();
                match sources.fetch.get(&url) {
                    Ok(data) => found.push(Found { data, origin: format!("CERT {name} IPKIX {url}") }),
                    Err(e) => notes.push(format!("CERT {name}: IPKIX URL could not be fetched: {e}")),
                }
            }
            CertType::Other(t) => notes.push(format!("CERT {name}: record of certificate type {t} skipped")),
        }
    }
    Ok(found)
}

/// Asks the servers in order until one answers; unreachable ones are walked past.
fn ldap_step(
    servers: &[crate::dns::SrvRecord],
    mail: &str,
    domain: &str,
    sources: &Sources,
    notes: &mut Vec<String>,
) -> Result<Vec<Found>, DiscoveryError> {
    let mut reasons = Vec::new();
    for server in servers {
        match sources.ldap.certificates(&server.target, server.port, mail) {
            Ok(certs) => {
                let origin = format!("ldap://{}:{} (mail={mail})", server.target, server.port);
                return Ok(certs.into_iter().map(|data| Found { data, origin: origin.clone() }).collect());
            }
            Err(e) => {
                notes.push(format!("LDAP server {}:{} skipped: {e}", server.target, server.port));
                reasons.push(e);
            }
        }
    }
    Err(DiscoveryError::LdapUnreachable { domain: domain.to_string(), reasons: reasons.join("; ") })
}

#[cfg(test)]
mod tests;
