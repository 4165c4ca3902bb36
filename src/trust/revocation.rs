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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, clap::ValueEnum)]
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

/// What a trust decision needs to check revocation: how to fetch CRLs, and what to do when that fails.
#[derive(Clone, Copy)]
pub struct Policy<'a> {
    pub fetch: &'a dyn Fetcher,
    pub mode: FailMode,
}

/// A CRL fetch that failed, and until when (unix) it is not tried again.
struct Failed {
    until: i64,
    why: String,
}

/// The caches of this module. CRLs are kept by URL and issuer until their nextUpdate; a failed
/// fetch for a minute, so a dead CRL server costs one timeout a minute rather than one per message;
/// and the status of each certificate checked (by the SHA-256 of its DER) until the CRL that
/// decided it is due, so the same peer's next message costs a hash lookup.
#[derive(Default)]
struct Caches {
    crls: HashMap<String, (i64, Arc<X509Crl>)>,
    failed: HashMap<String, Failed>,
    statuses: HashMap<[u8; 32], (i64, Status)>,
}

fn caches() -> &'static Mutex<Caches> {
    static CACHES: OnceLock<Mutex<Caches>> = OnceLock::new();
    CACHES.get_or_init(|| Mutex::new(Caches::default()))
}

const CACHE_CAPACITY: usize = 4096;
const RETRY_FAILED_AFTER: i64 = 60;

/// Inserts into a bounded cache: when full, it starts over (entries are cheap to rebuild).
fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= CACHE_CAPACITY {
        map.clear();
    }
    map.insert(key, value);
}

/// The http:// URLs of `cert`'s CRL distribution points.
pub fn crl_urls(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else { return Vec::new() };
    points
        .iter()
        .filter_map(|p| p.distpoint().and_then(|d| d.fullname()))
        .flat_map(|names| names.iter().filter_map(|n| n.uri().map(str::to_string)).collect::<Vec<_>>())
        .collect()
}

/// Checks `cert` and every intermediate on its path up to an anchor (RFC 5280 §6.3 applies to
/// each certificate of the path but the anchor). The first one not good decides.
pub fn check_path(cert: &X509Ref, intermediates: &[X509], anchors: &[X509], fetch: &dyn Fetcher, now: i64) -> Status {
    let issuers: Vec<&X509Ref> = intermediates.iter().chain(anchors).map(|c| &**c).collect();
    let mut current = cert;
    for depth in 0..MAX_PATH {
        match (depth, check(current, &issuers, fetch, now)) {
            (_, Status::Good) => {}
            (0, other) => return other,
            (_, Status::Revoked { on }) => {
                return Status::Revoked {
                    on: format!("{on} (the intermediate CA {})", pki::name_line(current.subject_name())),
                }
            }
            (_, Status::Unknown(why)) => {
                return Status::Unknown(format!("intermediate CA {}: {why}", pki::name_line(current.subject_name())))
            }
        }
        // The next link is the intermediate that issued this one; an anchor ends the path. The path
        // was validated before, so names find it; signatures decide only between namesakes.
        if anchors.iter().any(|a| names_issuer(current, a)) {
            return Status::Good;
        }
        let candidates: Vec<&X509> =
            intermediates.iter().filter(|i| names_issuer(current, i) && !same_cert(i, current)).collect();
        let next = match candidates.as_slice() {
            [] => return Status::Good,
            [one] => *one,
            several => match several.iter().find(|i| issued(current, i)) {
                Some(signer) => *signer,
                None => return Status::Good,
            },
        };
        current = next;
    }
    Status::Unknown("the path to the anchor is too long to check".into())
}

const MAX_PATH: usize = 8;

fn same_cert(a: &X509Ref, b: &X509Ref) -> bool {
    a.to_der().ok() == b.to_der().ok()
}

/// Does `cert` name `issuer` as its issuer.
fn names_issuer(cert: &X509Ref, issuer: &X509Ref) -> bool {
    issuer.subject_name().try_cmp(cert.issuer_name()).is_ok_and(|o| o.is_eq())
}

/// Did `issuer` sign `cert`: the names match and the signature verifies.
fn issued(cert: &X509Ref, issuer: &X509Ref) -> bool {
    names_issuer(cert, issuer) && issuer.public_key().is_ok_and(|k| cert.verify(&k).unwrap_or(false))
}

/// Is `cert` revoked, by the CRLs of its distribution points, signed by whichever of `issuers`
/// signed `cert`.
pub fn check(cert: &X509Ref, issuers: &[&X509Ref], fetch: &dyn Fetcher, now: i64) -> Status {
    let digest = pki::cert_cache::sha256_of(cert);
    if let Some(digest) = &digest {
        let cached = caches().lock().ok().and_then(|c| c.statuses.get(digest).cloned());
        if let Some((until, status)) = cached {
            if now <= until {
                return status;
            }
        }
    }
    let urls = crl_urls(cert);
    if urls.is_empty() {
        return Status::Unknown("the certificate names no CRL distribution point".into());
    }
    let Some(issuer) = issuers.iter().find(|i| issued(cert, i)) else {
        return Status::Unknown("the issuer of the certificate is not known, so its CRL cannot be checked".into());
    };
    let mut reasons = Vec::new();
    for url in urls {
        match crl(&url, issuer, fetch, now) {
            Ok((until, crl)) => {
                let status = match crl.get_by_serial(cert.serial_number()) {
                    CrlStatus::Revoked(entry) => {
                        Status::Revoked { on: iso8601(pki::unix_time(entry.revocation_date())) }
                    }
                    CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => Status::Good,
                };
                if let (Some(digest), Ok(mut c)) = (digest, caches().lock()) {
                    bounded_insert(&mut c.statuses, digest, (until, status.clone()));
                }
                return status;
            }
            Err(e) => reasons.push(format!("{url}: {e}")),
        }
    }
    Status::Unknown(reasons.join("; "))
}

/// A current CRL from `url` signed by `issuer` and until when it may be used, from the cache
/// while it is current.
fn crl(url: &str, issuer: &X509Ref, fetch: &dyn Fetcher, now: i64) -> Result<(i64, Arc<X509Crl>), String> {
    // Keyed by URL and issuer: a cached CRL was verified against exactly this issuer.
    let key = format!("{url} {}", pki::fingerprint(issuer));
    if let Ok(c) = caches().lock() {
        if let Some((until, crl)) = c.crls.get(&key).filter(|(until, _)| now <= *until) {
            return Ok((*until, crl.clone()));
        }
        if let Some(failed) = c.failed.get(&key).filter(|f| now < f.until) {
            return Err(failed.why.clone());
        }
    }
    let fetched = fetch_crl(url, issuer, fetch, now);
    if let Ok(mut c) = caches().lock() {
        match &fetched {
            Ok((until, crl)) => bounded_insert(&mut c.crls, key, (*until, crl.clone())),
            Err(why) => {
                bounded_insert(&mut c.failed, key, Failed { until: now + RETRY_FAILED_AFTER, why: why.clone() })
            }
        }
    }
    fetched
}

fn fetch_crl(url: &str, issuer: &X509Ref, fetch: &dyn Fetcher, now: i64) -> Result<(i64, Arc<X509Crl>), String> {
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
    Ok((next_update, Arc::new(crl)))
}

fn signed_by(crl: &X509Crl, issuer: &X509Ref) -> bool {
    let same_name = crl.issuer_name().try_cmp(issuer.subject_name()).is_ok_and(|o| o.is_eq());
    same_name && issuer.public_key().is_ok_and(|k| crl.verify(&k).unwrap_or(false))
}

/// Forgets fetched CRLs, failures and statuses (tests, and an operator's refresh).
pub fn clear_cache() {
    if let Ok(mut c) = caches().lock() {
        *c = Caches::default();
    }
}
