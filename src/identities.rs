//! The node's own identities as the store holds them: whose key signs a sender's mail, which
//! certificate a hosted recipient is reached by, and which keys may open mail for an address.

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::address::{DirectAddress, Owner};
use crate::kek::{Kek, KekError};
use crate::smime::open::RecipientKey;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    #[error("{0}")]
    NoCertificate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kek(#[from] KekError),
    /// The key-encryption key could not be had.
    #[error("{0}")]
    Locked(String),
    #[error("crypto error: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error(transparent)]
    Address(#[from] crate::address::AddressError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
}

impl IdentityError {
    /// What a hosted identity that cannot be had means for a message: no certificate, or one
    /// that cannot be read, will not appear by itself (permanent); a store or key-encryption key
    /// that cannot be had now may be later (temporary, the detail for the log only).
    pub(crate) fn failure(&self) -> crate::failure::Failure {
        use crate::failure::{Code, Failure};
        match self {
            IdentityError::Store(e) => e.failure(),
            IdentityError::Kek(_) | IdentityError::Locked(_) | IdentityError::Crypto(_) => Failure::local(self),
            IdentityError::NoCertificate(_) | IdentityError::Address(_) | IdentityError::Pki(_) => {
                Failure::permanent(Code::REFUSED, self.to_string())
            }
        }
    }
}

/// The address's own owner first (address-bound), then its domain (domain-bound).
fn owners(address: &DirectAddress) -> [Owner; 2] {
    [Owner::Address(address.clone()), Owner::Domain(address.domain().clone())]
}

/// The sender's newest valid, unrevoked certificate with a key (address-bound first, else
/// domain-bound), and the key's id in the store.
pub(crate) fn signing_cert(store: &dyn Store, from: &DirectAddress, now: i64) -> Result<(X509, i64), IdentityError> {
    for owner in owners(from) {
        for record in store.certificates(Some(&owner))? {
            if let (Some(key_id), true) = (record.key_id, record.usable_at(now)) {
                return Ok((crate::pki::cert_cache::parse(&record.der)?.cert.clone(), key_id));
            }
        }
    }
    Err(IdentityError::NoCertificate(format!(
        "{from} has no valid certificate with a key: `hisp cert issue {from}` or `hisp cert import`"
    )))
}

/// A hosted recipient's certificate: address-bound first, else domain-bound.
pub(crate) fn hosted_cert(
    store: &dyn Store,
    recipient: &DirectAddress,
    now: i64,
) -> Result<Option<X509>, IdentityError> {
    for owner in owners(recipient) {
        if let Some(record) = store.certificates(Some(&owner))?.into_iter().find(|c| c.usable_at(now)) {
            return Ok(Some(crate::pki::cert_cache::parse(&record.der)?.cert.clone()));
        }
    }
    Ok(None)
}

/// Unseals a private key as the store holds it.
pub(crate) type KeyOpener<'a> = dyn FnMut(&[u8]) -> Result<PKey<Private>, IdentityError> + 'a;

/// Every key that may open mail for these hosted addresses (theirs and their domains'), each with
/// the local domain whose anchors decide trust. `open_key` unseals a stored key; it is called only
/// for keys that are there (so a caller can unlock the KEK lazily).
pub(crate) fn recipient_keys(
    store: &dyn Store,
    open_key: &mut KeyOpener,
    addresses: &[DirectAddress],
) -> Result<Vec<RecipientKey>, IdentityError> {
    let mut wanted: Vec<Owner> = Vec::new();
    for address in addresses {
        if store.has_domain(address.domain())? {
            for owner in owners(address) {
                if !wanted.contains(&owner) {
                    wanted.push(owner);
                }
            }
        }
    }
    let mut records = Vec::new();
    for owner in &wanted {
        records.extend(store.certificates(Some(owner))?.into_iter().filter(|r| r.key_id.is_some()));
    }
    let mut keys = Vec::new();
    for record in records {
        let Some(key_id) = record.key_id else { continue };
        let cert = crate::pki::cert_cache::parse(&record.der)?.cert.clone();
        let key = open_key(&store.key(key_id)?.sealed)?;
        let domain = Owner::parse(&record.owner)?.domain().clone();
        keys.push(RecipientKey { cert, key, domain: Some(domain) });
    }
    Ok(keys)
}

/// Keeps `cert` for `owner` with its private key (sealed under the KEK; a key already stored, as
/// after `hisp cert csr`, is reused). Returns the certificate's SHA-256.
pub(crate) fn store_with_key(
    store: &dyn Store,
    kek: &Kek,
    owner: &Owner,
    cert: &openssl::x509::X509Ref,
    key: &openssl::pkey::PKeyRef<Private>,
) -> Result<String, IdentityError> {
    let public = crate::pki::public_key_sha256(key)?;
    let key_id = match store.key_for_public(&public)? {
        Some(existing) => existing.id,
        None => store.add_key(owner, &public, &kek.seal_key(key)?)?,
    };
    let record = crate::store::NewCert::of(cert)?;
    store.add_certificate(owner, &record, Some(key_id))?;
    Ok(record.sha256)
}

/// The node's TLS certificate and key when none is configured: self-signed for `hostname` (and
/// localhost), made once and kept in the store (the key sealed under the KEK), so that a client
/// that trusts it (`hisp http cert export`, curl's `--cacert`) keeps trusting it across restarts.
/// Made again only for another host name or in its last 30 days. The flag: made just now.
pub(crate) fn self_signed_tls(
    store: &dyn Store,
    kek: &Kek,
    hostname: &str,
    now: i64,
) -> Result<(X509, PKey<Private>, bool), IdentityError> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    const DAYS: u32 = 3650;
    let meta_key = format!("tls.self-signed.{}", hostname.to_ascii_lowercase());
    let stored = store.meta(&meta_key)?.and_then(|value| {
        let value: serde_json::Value = serde_json::from_slice(&value).ok()?;
        let cert = X509::from_der(&STANDARD.decode(value["cert"].as_str()?).ok()?).ok()?;
        let key = kek.open_key(&STANDARD.decode(value["key"].as_str()?).ok()?).ok()?;
        let fresh = crate::pki::unix_time(cert.not_after()) > now + 30 * 86_400;
        fresh.then_some((cert, key))
    });
    if let Some((cert, key)) = stored {
        return Ok((cert, key, false));
    }
    let key = crate::pki::ca::generate_rsa(2048)?;
    let cert = crate::pki::ca::self_signed_server(&key, hostname, now - 300, DAYS)?;
    let value = serde_json::json!({
        "cert": STANDARD.encode(cert.to_der()?),
        "key": STANDARD.encode(kek.seal_key(&key)?),
    });
    store.set_meta(&meta_key, value.to_string().as_bytes())?;
    Ok((cert, key, true))
}
