//! Path validation from a certificate to a set of anchors, at a given instant.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509Ref, X509StoreContext, X509VerifyResult, X509};

use crate::clock::iso8601;
use crate::pki::{self, cert_cache};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    Expired { not_after: String },
    NotYetValid { not_before: String },
    Untrusted(String),
}

/// Paths already validated: the same peers sign message after message, and building a path costs
/// more than verifying the message's signature. Keyed by the certificate, the intermediates offered
/// and the anchor set; holds the window in which every certificate on the path is valid, so a hit
/// is still checked against the time. Only successes are kept. (Revocation is checked apart from
/// path building, so a cached path never hides a revoked certificate.)
/// Path key -> (valid from, valid until), unix seconds.
type ValidatedPaths = Mutex<HashMap<Vec<u8>, (i64, i64)>>;

fn validated() -> &'static ValidatedPaths {
    static VALIDATED: OnceLock<ValidatedPaths> = OnceLock::new();
    VALIDATED.get_or_init(|| Mutex::new(HashMap::new()))
}

const CACHE_CAPACITY: usize = 4096;

fn path_key(cert: &X509Ref, intermediates: &[X509], anchors: &[X509]) -> Option<Vec<u8>> {
    let mut key = Vec::with_capacity(32 * (1 + intermediates.len() + anchors.len()) + 2);
    key.extend_from_slice(&cert_cache::sha256_of(cert)?);
    for (tag, group) in [(b'i', intermediates), (b'a', anchors)] {
        let mut digests = group.iter().map(|c| cert_cache::sha256_of(c)).collect::<Option<Vec<_>>>()?;
        digests.sort();
        key.push(tag);
        key.extend(digests.iter().flatten());
    }
    Some(key)
}

/// Checks `cert`'s own validity period, then builds a path through `intermediates` to one of
/// `anchors`, with every certificate on it valid at `at` (unix seconds).
pub fn verify(cert: &X509Ref, intermediates: &[X509], anchors: &[X509], at: i64) -> Result<(), ChainError> {
    let key = path_key(cert, intermediates, anchors);
    if let Some(key) = &key {
        let window = validated().lock().ok().and_then(|c| c.get(key).copied());
        if window.is_some_and(|(from, until)| from <= at && at <= until) {
            return Ok(());
        }
    }
    let window = build_path(cert, intermediates, anchors, at)?;
    if let (Some(key), Ok(mut cache)) = (key, validated().lock()) {
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, window);
    }
    Ok(())
}

/// Forgets every validated path (benchmarks of the cold path).
pub fn clear_cache() {
    if let Ok(mut c) = validated().lock() {
        c.clear();
    }
}

/// Path building proper; returns the window in which every certificate on the path is valid.
fn build_path(cert: &X509Ref, intermediates: &[X509], anchors: &[X509], at: i64) -> Result<(i64, i64), ChainError> {
    let not_before = pki::unix_time(cert.not_before());
    let not_after = pki::unix_time(cert.not_after());
    if at > not_after {
        return Err(ChainError::Expired { not_after: iso8601(not_after) });
    }
    if at < not_before {
        return Err(ChainError::NotYetValid { not_before: iso8601(not_before) });
    }
    if anchors.is_empty() {
        return Err(ChainError::Untrusted("no trust anchors are configured".into()));
    }
    let untrusted = |e: openssl::error::ErrorStack| ChainError::Untrusted(e.to_string());
    let mut builder = X509StoreBuilder::new().map_err(untrusted)?;
    for anchor in anchors {
        builder.add_cert(anchor.clone()).map_err(untrusted)?;
    }
    let mut param = X509VerifyParam::new().map_err(untrusted)?;
    param.set_time(at as libc::time_t);
    builder.set_param(&param).map_err(untrusted)?;
    let store = builder.build();
    let mut chain = Stack::new().map_err(untrusted)?;
    for c in intermediates {
        chain.push(c.clone()).map_err(untrusted)?;
    }
    let mut context = X509StoreContext::new().map_err(untrusted)?;
    let result = context
        .init(&store, cert, &chain, |ctx| {
            let ok = ctx.verify_cert()?;
            let window = ctx.chain().map(|path| {
                path.iter().fold((i64::MIN, i64::MAX), |(from, until), c| {
                    (from.max(pki::unix_time(c.not_before())), until.min(pki::unix_time(c.not_after())))
                })
            });
            Ok((ok, ctx.error(), window))
        })
        .map_err(untrusted)?;
    match result {
        (true, _, Some(window)) => Ok(window),
        (true, _, None) => Ok((not_before, not_after)),
        (false, error, _) => Err(ChainError::Untrusted(describe(error))),
    }
}

fn describe(error: X509VerifyResult) -> String {
    match error.as_raw() {
        20 | 2 => "no trusted issuer (the issuing CA is not an anchor for this domain)".into(),
        18 | 19 => "self-signed certificate that is not an anchor".into(),
        _ => error.error_string().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Owner;
    use crate::pki::ca;

    #[test]
    fn a_cached_path_still_ends_with_its_validity_window() {
        let day = 86_400;
        let ca_key = ca::generate_rsa(2048).unwrap();
        // The CA expires after 10 days; the end entity would live for a year.
        let root = ca::create_root(&ca_key, "short-lived CA", 0, 10).unwrap();
        let key = ca::generate_rsa(2048).unwrap();
        let owner = Owner::parse("a@a.example.org").unwrap();
        let profile = ca::EndEntity {
            owner: &owner,
            not_before: 0,
            not_after: 365 * day,
            crl_url: "http://x.invalid/c",
            issuer_url: "http://x.invalid/i",
        };
        let cert = ca::issue(&root, &ca_key, &key, &profile).unwrap();
        let anchors = [root];
        assert_eq!(verify(&cert, &[], &anchors, day), Ok(()));
        assert_eq!(verify(&cert, &[], &anchors, 2 * day), Ok(()), "served from the cache");
        assert!(matches!(verify(&cert, &[], &anchors, 20 * day), Err(ChainError::Untrusted(_))), "the CA has expired");
        assert!(matches!(verify(&cert, &[], &[], day), Err(ChainError::Untrusted(_))), "other anchors, other key");
    }
}
