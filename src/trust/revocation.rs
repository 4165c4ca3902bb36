//! Revocation by CRL (RFC 5280 §6.3): the CRLs named in a certificate's distribution points are
//! fetched over HTTP, must be signed by the certificate's issuer and current, and are kept until
//! their nextUpdate. A CRL that cannot be had is a reported state, never silently "good": the
//! caller decides hard fail (the default) or soft fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use openssl::x509::{CrlStatus, X509Crl, X509Ref, X509};
use serde::Deserialize;

use crate::clock::iso8601;
use crate::fetch::Fetcher;
use crate::pki;

/// What to do when revocation cannot be checked (no CRL reachable, stale, badly signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// The certificate is not used.
    #[default]
    Hard,
    /// The certificate is used and the failure reported.
    Soft,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked {
        on: String,
    },
    /// Why revocation could not be checked.
    Unknown(String),
}

/// Fetched and verified CRLs by URL and issuer, with the time (unix) until which each may be used.
type CrlCache = Mutex<HashMap<String, (i64, Arc<X509Crl>)>>;

fn cache() -> &'static CrlCache {
    static CACHE: OnceLock<CrlCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

const CACHE_CAPACITY: usize = 1024;

/// The http:// URLs of `cert`'s CRL distribution points.
pub fn crl_urls(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else { return Vec::new() };
    points
        .iter()
        .filter_map(|p| p.distpoint().and_then(|d| d.fullname()))
        .flat_map(|names| names.iter().filter_map(|n| n.uri().map(str::to_string)).collect::<Vec<_>>())
        .collect()
}

/// Is `cert` revoked, by the CRLs of its distribution points, signed by one of `issuers`.
pub fn check(cert: &X509Ref, issuers: &[X509], fetch: &dyn Fetcher, now: i64) -> Status {
    let urls = crl_urls(cert);
    if urls.is_empty() {
        return Status::Unknown("the certificate names no CRL distribution point".into());
    }
    let Some(issuer) = issuers.iter().find(|i| i.subject_name().try_cmp(cert.issuer_name()).is_ok_and(|o| o.is_eq()))
    else {
        return Status::Unknown("the issuer of the certificate is not known, so its CRL cannot be checked".into());
    };
    let mut reasons = Vec::new();
    for url in urls {
        match crl(&url, issuer, fetch, now) {
            Ok(crl) => {
                return match crl.get_by_serial(cert.serial_number()) {
                    CrlStatus::Revoked(entry) => {
                        Status::Revoked { on: iso8601(pki::unix_time(entry.revocation_date())) }
                    }
                    CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => Status::Good,
                }
            }
            Err(e) => reasons.push(format!("{url}: {e}")),
        }
    }
    Status::Unknown(reasons.join("; "))
}

/// A current CRL from `url` signed by `issuer`, from the cache while it is current.
fn crl(url: &str, issuer: &X509, fetch: &dyn Fetcher, now: i64) -> Result<Arc<X509Crl>, String> {
    // Keyed by URL and issuer: a cached CRL was verified against exactly this issuer.
    let key = format!("{url} {}", pki::fingerprint(issuer));
    if let Some((until, crl)) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        if now <= until {
            return Ok(crl);
        }
    }
    let bytes = fetch.get(url)?;
    let crl = if bytes.starts_with(b"-----BEGIN") { X509Crl::from_pem(&bytes) } else { X509Crl::from_der(&bytes) }
        .map_err(|_| "not a CRL".to_string())?;
    if !signed_by(&crl, issuer) {
        return Err(format!("the CRL is not signed by {}", pki::name_line(issuer.subject_name())));
    }
    let this_update = pki::unix_time(crl.last_update());
    let next_update = crl.next_update().map(pki::unix_time);
    if this_update > now {
        return Err(format!("the CRL is not valid before {}", iso8601(this_update)));
    }
    let Some(next_update) = next_update else {
        return Err("the CRL has no nextUpdate".into());
    };
    if next_update < now {
        return Err(format!("the CRL is stale (nextUpdate {})", iso8601(next_update)));
    }
    let crl = Arc::new(crl);
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CACHE_CAPACITY {
            c.clear();
        }
        c.insert(key, (next_update, crl.clone()));
    }
    Ok(crl)
}

fn signed_by(crl: &X509Crl, issuer: &X509) -> bool {
    let same_name = crl.issuer_name().try_cmp(issuer.subject_name()).is_ok_and(|o| o.is_eq());
    same_name && issuer.public_key().is_ok_and(|k| crl.verify(&k).unwrap_or(false))
}

/// Forgets fetched CRLs (tests, and an operator's refresh).
pub fn clear_cache() {
    if let Ok(mut c) = cache().lock() {
        c.clear();
    }
}
