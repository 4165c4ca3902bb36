//! The anchors a new practice trusts from its creation ([trust] new_practice_anchors and the
//! node's own development CA), so a practice set up through the API can verify addresses and send
//! without an operator adding anchors by hand.

use openssl::x509::X509;

use crate::address::Domain;
use crate::config::TrustSettings;
use crate::store::{AnchorRecord, Store};

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
