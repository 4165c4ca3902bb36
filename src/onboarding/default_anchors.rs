//! What a new practice trusts from its creation ([trust] new_practice_anchors, the node's own
//! development CA, new_practice_bundles), so a practice set up through the API can verify
//! addresses and send without an operator adding anchors by hand.

use openssl::x509::X509;

use crate::address::Domain;
use crate::config::TrustSettings;
use crate::fetch::Fetcher;
use crate::store::{AnchorRecord, BundleRecord, Store};

/// `domain`'s anchors (incoming and outgoing), each certificate once; read before the practice
/// is created, so an unreadable file creates nothing.
pub(crate) fn for_new_practice(
    store: &dyn Store,
    trust: &TrustSettings,
    domain: &Domain,
) -> Result<Vec<AnchorRecord>, String> {
    let mut certs = Vec::new();
    if trust.new_practice_own_ca {
        if let Some((der, _)) = store.ca().map_err(|e| e.to_string())? {
            certs.push(X509::from_der(&der).map_err(|e| format!("the node's CA: {e}"))?);
        }
    }
    for path in &trust.new_practice_anchors {
        let pem = std::fs::read(path)
            .map_err(|e| format!("[trust] new_practice_anchors: cannot read {}: {e}", path.display()))?;
        let read = X509::stack_from_pem(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("[trust] new_practice_anchors: {} holds no PEM certificate", path.display()))?;
        certs.extend(read);
    }
    let mut anchors: Vec<AnchorRecord> = Vec::new();
    for cert in certs {
        let anchor = AnchorRecord::of(&cert, domain, true, true).map_err(|e| e.to_string())?;
        if !anchors.iter().any(|a| a.sha256 == anchor.sha256) {
            anchors.push(anchor);
        }
    }
    Ok(anchors)
}

/// Subscribes the new practice's `domain` to each of [trust] new_practice_bundles: the bundle is
/// added and fetched now, its anchors trusted at once; one that cannot be fetched now is kept,
/// with why, and the running node tries it again within a minute. What became of each: its
/// name, and how many anchors it gave or why none.
/// What subscribing a new practice to one default bundle came to: the anchors it holds, or why
/// it holds none yet (the API and the CLI answer it as it is).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Subscription {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchors: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Subscription {
    fn of(name: String, outcome: Result<usize, String>) -> Subscription {
        let (anchors, error) = match outcome {
            Ok(n) => (Some(n), None),
            Err(why) => (None, Some(why)),
        };
        Subscription { name, anchors, error }
    }
}

pub(crate) fn subscribe_bundles(
    store: &dyn Store,
    trust: &TrustSettings,
    domain: &Domain,
    fetch: &dyn Fetcher,
) -> Vec<Subscription> {
    let mut out = Vec::new();
    for (i, bundle) in trust.new_practice_bundles.iter().enumerate() {
        let name = format!("{domain}-default-{}", i + 1);
        let signer_der = match &bundle.signer {
            None => None,
            Some(path) => match crate::pki::load_cert_file(path).and_then(|c| Ok(c.to_der()?)) {
                Ok(der) => Some(der),
                Err(e) => {
                    let why = format!("[trust] new_practice_bundles signer {}: {e}", path.display());
                    out.push(Subscription::of(name, Err(why)));
                    continue;
                }
            },
        };
        let record = BundleRecord::new(name.clone(), domain.clone(), bundle.url.clone(), signer_der, true, true);
        let outcome = match store.add_bundle(&record) {
            Err(e) => Err(e.to_string()),
            Ok(()) => match crate::bundle::refresh(store, &record, fetch) {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(format!("not fetched yet ({e}); the running node tries again")),
                Err(e) => Err(e.to_string()),
            },
        };
        out.push(Subscription::of(name, outcome));
    }
    out
}
