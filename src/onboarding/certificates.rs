//! A verified practice's users get their certificates: each address without a usable one is
//! issued one by the node's development CA, when the node runs one (a node whose certificates
//! come from a real CA issues them with `hisp cert csr` / `hisp cert import` instead).
//!
//! The certificates are made first, in memory, and kept afterwards with what allowed them (a
//! verification, a new user of a verified practice), so a failure leaves nothing half done.

use crate::address::{DirectAddress, Owner};
use crate::config::CaConfig;
use crate::dev_ca::DevCa;
use crate::kek::Kek;
use crate::store::{NewCert, NewIdentity, Store};

/// For each of `addresses` without a usable certificate, a new key and a certificate from the
/// node's development CA; nothing when the node runs no CA. Nothing is stored.
pub(crate) fn missing(
    store: &dyn Store,
    kek: &Kek,
    ca: &CaConfig,
    addresses: &[DirectAddress],
    now: i64,
) -> Result<Vec<NewIdentity>, String> {
    if store.ca().map_err(|e| e.to_string())?.is_none() {
        return Ok(Vec::new());
    }
    let dev_ca = DevCa::load(store, kek).map_err(|e| e.to_string())?;
    let mut made = Vec::new();
    for address in addresses {
        let owner = Owner::Address(address.clone());
        let certs = store.certificates(Some(&owner)).map_err(|e| e.to_string())?;
        if certs.iter().any(|c| c.usable_at(now) && c.key_id.is_some()) {
            continue;
        }
        let identity = || -> Result<NewIdentity, String> {
            let key = crate::pki::ca::generate_rsa(ca.key_bits).map_err(|e| e.to_string())?;
            let cert = dev_ca.issue(&owner, &key, now, ca.validity_days, &ca.base_url).map_err(|e| e.to_string())?;
            Ok(NewIdentity {
                owner: owner.clone(),
                public_key_sha256: crate::pki::public_key_sha256(&key).map_err(|e| e.to_string())?,
                sealed_key: kek.seal_key(&key).map_err(|e| e.to_string())?,
                cert: NewCert::of(&cert).map_err(|e| e.to_string())?,
            })
        };
        made.push(identity().map_err(|e| format!("certificate for {address}: {e}"))?);
    }
    Ok(made)
}

/// Keeps what [`missing`] made for a practice already verified (the store refuses an address it
/// does not host).
pub(crate) fn keep(store: &dyn Store, made: &[NewIdentity]) -> Result<(), String> {
    for identity in made {
        let key_id = store
            .add_key(&identity.owner, &identity.public_key_sha256, &identity.sealed_key)
            .map_err(|e| e.to_string())?;
        store.add_certificate(&identity.owner, &identity.cert, Some(key_id)).map_err(|e| e.to_string())?;
    }
    Ok(())
}
