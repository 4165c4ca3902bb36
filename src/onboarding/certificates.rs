//! A verified practice's users get their certificates: each address without a usable one is
//! issued one by the node's development CA, when the node runs one (a node whose certificates
//! come from a real CA issues them with `hisp cert csr` / `hisp cert import` instead).

use crate::address::{DirectAddress, Owner};
use crate::config::CaConfig;
use crate::kek::Kek;
use crate::pki::dev_ca::DevCa;
use crate::store::{PracticeRecord, Store};

/// Issues the missing certificates; returns the addresses that got one.
pub fn issue_missing(
    store: &dyn Store,
    kek: &Kek,
    ca: &CaConfig,
    practice: &PracticeRecord,
    now: i64,
) -> Result<Vec<DirectAddress>, String> {
    if practice.proofing != super::proofing::State::Verified.as_str()
        || store.ca().map_err(|e| e.to_string())?.is_none()
    {
        return Ok(Vec::new());
    }
    let mut dev_ca = None;
    let mut issued = Vec::new();
    for domain in &practice.domains {
        let domain = crate::address::Domain::parse(domain).map_err(|e| e.to_string())?;
        for record in store.addresses(Some(&domain)).map_err(|e| e.to_string())? {
            let owner = Owner::Address(record.address.clone());
            let certs = store.certificates(Some(&owner)).map_err(|e| e.to_string())?;
            if certs.iter().any(|c| c.usable_at(now) && c.key_id.is_some()) {
                continue;
            }
            if dev_ca.is_none() {
                dev_ca = Some(DevCa::load(store, kek).map_err(|e| e.to_string())?);
            }
            let ca_now = dev_ca.as_ref().expect("loaded above");
            ca_now
                .issue_stored(store, kek, &owner, ca.key_bits, now, ca.validity_days, &ca.base_url)
                .map_err(|e| format!("certificate for {}: {e}", record.address))?;
            issued.push(record.address);
        }
    }
    Ok(issued)
}
