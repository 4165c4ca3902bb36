//! A verified practice's users get their certificates: each address without a usable one is
//! issued one by the node's development CA, when the node runs one (a node whose certificates
//! come from a real CA issues them with `hisp cert csr` / `hisp cert import` instead).

use crate::address::{DirectAddress, Owner};
use crate::config::CaConfig;
use crate::dev_ca::DevCa;
use crate::kek::Kek;
use crate::store::Store;

/// Issues a certificate to each of `addresses` that has no usable one (with its key); returns
/// those that got one. Nothing when the node runs no development CA; the CA itself refuses an
/// address whose practice is not verified.
pub(crate) fn issue_missing(
    store: &dyn Store,
    kek: &Kek,
    ca: &CaConfig,
    addresses: &[DirectAddress],
    now: i64,
) -> Result<Vec<DirectAddress>, String> {
    if store.ca().map_err(|e| e.to_string())?.is_none() {
        return Ok(Vec::new());
    }
    let mut dev_ca = None;
    let mut issued = Vec::new();
    for address in addresses {
        let owner = Owner::Address(address.clone());
        let certs = store.certificates(Some(&owner)).map_err(|e| e.to_string())?;
        if certs.iter().any(|c| c.usable_at(now) && c.key_id.is_some()) {
            continue;
        }
        let dev_ca = match &mut dev_ca {
            Some(loaded) => loaded,
            None => dev_ca.insert(DevCa::load(store, kek).map_err(|e| e.to_string())?),
        };
        dev_ca
            .issue_stored(store, kek, &owner, ca.key_bits, now, ca.validity_days, &ca.base_url)
            .map_err(|e| format!("certificate for {address}: {e}"))?;
        issued.push(address.clone());
    }
    Ok(issued)
}
