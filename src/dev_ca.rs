//! The development CA as the node keeps it: its certificate and sealed key in the store, the
//! certificates it issues, and the CRL it publishes from the store's revocations.

use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Crl, X509Ref, X509};

use crate::address::Owner;
use crate::kek::{Kek, KekError};
use crate::pki::ca::{self, EndEntity, RevokedSerial};
use crate::pki::PkiError;
use crate::store::{RevocationRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum DevCaError {
    #[error("there is no development CA: run `hisp ca init`")]
    Missing,
    #[error("certificate {0} was not issued by the development CA, so it cannot revoke it")]
    NotOurs(String),
    /// The owner's practice has not completed identity proofing.
    #[error("{0}")]
    NotVerified(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Identity(#[from] crate::identities::IdentityError),
}

impl From<openssl::error::ErrorStack> for DevCaError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        DevCaError::Pki(e.into())
    }
}

/// Where the CA publishes: `<base>/ca.cer` (AIA caIssuers) and `<base>/ca.crl` (CRL distribution point).
pub(crate) fn published_urls(base_url: &str) -> (String, String) {
    let base = base_url.trim_end_matches('/');
    (format!("{base}/ca.cer"), format!("{base}/ca.crl"))
}

pub(crate) struct DevCa {
    pub cert: X509,
    key: PKey<Private>,
}

impl DevCa {
    /// Creates the development CA (an RSA root named `name`, valid `days`) and keeps it in the
    /// store with its key sealed under the KEK. `replace` allows replacing an existing one.
    pub(crate) fn create(
        store: &dyn Store,
        kek: &Kek,
        name: &str,
        key_bits: u32,
        now: i64,
        days: u32,
        replace: bool,
    ) -> Result<DevCa, DevCaError> {
        let key = ca::generate_rsa(key_bits.max(2048))?;
        let cert = ca::create_root(&key, name, now - 300, days)?;
        let owner = Owner::parse(crate::store::DEV_CA_OWNER).map_err(|e| PkiError::Policy(e.to_string()))?;
        let key_id = store.add_key(&owner, &crate::pki::public_key_sha256(&key)?, &kek.seal_key(&key)?)?;
        store.set_ca(&cert.to_der()?, key_id, replace)?;
        Ok(DevCa { cert, key })
    }

    /// Issues `owner` a certificate with a new RSA key of `bits` and keeps both in the store (the
    /// key sealed under the KEK). Returns the certificate's SHA-256 and the certificate.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn issue_stored(
        &self,
        store: &dyn Store,
        kek: &Kek,
        owner: &Owner,
        bits: u32,
        now: i64,
        days: u32,
        base_url: &str,
    ) -> Result<(String, X509), DevCaError> {
        // The one place certificates are issued: only to a practice whose identity is proofed.
        crate::store::require_verified(store, owner.domain()).map_err(|e| match e {
            Ok(why) => DevCaError::NotVerified(why),
            Err(store_error) => store_error.into(),
        })?;
        let key = ca::generate_rsa(bits)?;
        let cert = self.issue(owner, &key, now, days, base_url)?;
        let sha = crate::identities::store_with_key(store, kek, owner, &cert, &key)?;
        Ok((sha, cert))
    }

    /// The store's development CA with its key unsealed.
    pub(crate) fn load(store: &dyn Store, kek: &Kek) -> Result<DevCa, DevCaError> {
        let (der, key_id) = store.ca()?.ok_or(DevCaError::Missing)?;
        let key = kek.open_key(&store.key(key_id)?.sealed)?;
        Ok(DevCa { cert: X509::from_der(&der)?, key })
    }

    /// The certificate (DER) only, for publishing; no key needed.
    pub(crate) fn certificate(store: &dyn Store) -> Result<X509, DevCaError> {
        let (der, _) = store.ca()?.ok_or(DevCaError::Missing)?;
        Ok(X509::from_der(&der)?)
    }

    /// Issues `owner` a DirectTrust end-entity certificate for `key`, valid from `now` for `days`
    /// (never past the CA's own expiry), pointing at the CA's published certificate and CRL.
    pub(crate) fn issue(
        &self,
        owner: &Owner,
        key: &PKey<Private>,
        now: i64,
        days: u32,
        base_url: &str,
    ) -> Result<X509, PkiError> {
        let not_after = (now + i64::from(days) * 86_400).min(crate::pki::unix_time(self.cert.not_after()));
        let (issuer_url, crl_url) = published_urls(base_url);
        let profile = EndEntity { owner, not_before: now - 300, not_after, crl_url: &crl_url, issuer_url: &issuer_url };
        ca::issue(&self.cert, &self.key, key, &profile)
    }

    /// Did this CA issue `cert` (its signature verifies under the CA's key).
    pub(crate) fn issued(&self, cert: &X509Ref) -> bool {
        cert.issuer_name().try_cmp(self.cert.subject_name()).is_ok_and(|o| o.is_eq())
            && self.cert.public_key().is_ok_and(|k| cert.verify(&k).unwrap_or(false))
    }

    /// Records the revocation of `cert` (which this CA must have issued) as of `now`.
    pub(crate) fn revoke(
        &self,
        store: &dyn Store,
        cert: &X509Ref,
        reason: &str,
        now: i64,
    ) -> Result<RevocationRecord, DevCaError> {
        let sha256 = crate::pki::fingerprint(cert);
        if !self.issued(cert) {
            return Err(DevCaError::NotOurs(sha256));
        }
        let record = RevocationRecord {
            serial: hex::encode(cert.serial_number().to_bn()?.to_vec()),
            sha256,
            subject: crate::pki::name_line(cert.subject_name()),
            not_after: crate::pki::unix_time(cert.not_after()),
            revoked_at: now,
            reason: reason.to_string(),
        };
        store.revoke(&record)?;
        Ok(record)
    }

    /// The CRL as of `now`, good for `days`: every revoked certificate not yet expired (RFC 5280
    /// §3.3 lets a CRL drop entries once the certificate has expired).
    pub(crate) fn crl(&self, store: &dyn Store, now: i64, days: u32) -> Result<X509Crl, DevCaError> {
        let mut revoked = Vec::new();
        for r in store.revocations()?.into_iter().filter(|r| r.not_after >= now) {
            let serial = (0..r.serial.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(r.serial.get(i..i + 2).unwrap_or("zz"), 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| PkiError::Policy(format!("the stored serial '{}' is not hex", r.serial)))?;
            revoked.push(RevokedSerial { serial, revoked_at: r.revoked_at });
        }
        Ok(ca::crl(&self.cert, &self.key, &revoked, now - 60, now + i64::from(days) * 86_400)?)
    }
}
