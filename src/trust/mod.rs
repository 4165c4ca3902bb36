//! Trust decisions: is a certificate bound to an address, and does it chain to an anchor.

pub mod chain;
pub(crate) mod purpose;
pub mod revocation;

use openssl::x509::X509;

use crate::address::Domain;
use crate::store::{Direction, Store};

/// Where the trust anchors for a local domain come from.
pub trait AnchorSource {
    fn anchors(&self, local_domain: Option<&Domain>, direction: Direction) -> Result<Vec<X509>, String>;
}

/// The same anchors for every domain (standalone mode: `--anchor FILE`).
pub struct FixedAnchors(pub Vec<X509>);

impl AnchorSource for FixedAnchors {
    fn anchors(&self, _: Option<&Domain>, _: Direction) -> Result<Vec<X509>, String> {
        Ok(self.0.clone())
    }
}

/// The anchors configured in the store for each local domain and direction, and those of the
/// domain's trust bundles.
pub(crate) struct StoreAnchors<'a>(pub &'a dyn Store);

impl AnchorSource for StoreAnchors<'_> {
    fn anchors(&self, local_domain: Option<&Domain>, direction: Direction) -> Result<Vec<X509>, String> {
        let local_domain = local_domain.ok_or("no local domain for the key that decrypted the message")?;
        let mut records = self.0.anchors(Some(local_domain)).map_err(|e| e.to_string())?;
        records.extend(self.0.bundle_anchors(Some(local_domain)).map_err(|e| e.to_string())?);
        // Through the parsed-certificate cache: a bundle may hold a hundred anchors.
        Ok(records
            .iter()
            .filter(|a| direction.applies(a))
            .filter_map(|a| crate::pki::cert_cache::parse(&a.der).ok().map(|p| p.cert.clone()))
            .collect())
    }
}
