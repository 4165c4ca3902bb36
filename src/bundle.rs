//! Trust bundles (DirectTrust distributes its anchors this way): a PKCS#7 certs-only object
//! (.p7b, DER or PEM), or the same wrapped in CMS SignedData by the bundle's publisher (.p7m). A
//! signed bundle is only taken when its signature verifies against the configured signing
//! certificate; a bundle that is signed but has no signer configured is refused, since nothing
//! could tell a forged one apart.

use openssl::x509::X509;

use crate::fetch::{Fetcher, Missed};
use crate::pki;
use crate::smime::open::identifies;
use crate::smime::structure::{self, ContentInfo};
use crate::store::BundleAnchor;

/// Why a refresh failed, in the words `hisp bundle list` shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("bad format: {0}")]
    BadFormat(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
}

/// Reads the bundle at `source`: an http:// URL (through `fetch`) or a file.
pub(crate) fn load(source: &str, fetch: &dyn Fetcher) -> Result<Vec<u8>, BundleError> {
    if source.starts_with("http://") || source.starts_with("https://") {
        return fetch.get(source).map_err(|e| match e.kind {
            Missed::NotFound => BundleError::NotFound(e.text),
            Missed::TimedOut => BundleError::Timeout(e.text),
            Missed::Failed => BundleError::Unreachable(e.text),
        });
    }
    std::fs::read(source).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BundleError::NotFound(source.to_string()),
        _ => BundleError::Unreachable(format!("{source}: {e}")),
    })
}

/// The anchors in a bundle, checked against `signer` when the bundle is signed.
pub fn anchors(bytes: &[u8], signer: Option<&X509>) -> Result<Vec<BundleAnchor>, BundleError> {
    let der = pem_to_der(bytes)?;
    let bad = |e: crate::der::DerError| BundleError::BadFormat(format!("not PKCS#7: {}", e.0));
    let ContentInfo::Signed(signed) = structure::parse(&der).map_err(bad)? else {
        return Err(BundleError::BadFormat("not a PKCS#7 SignedData".into()));
    };
    let certificates = if signed.signers.is_empty() {
        if signer.is_some() {
            return Err(BundleError::BadSignature("a signed bundle is expected, and this one is not signed".into()));
        }
        signed.certificates
    } else {
        let signer = signer.ok_or_else(|| {
            BundleError::BadSignature("the bundle is signed: give its signing certificate with --signer".into())
        })?;
        let info = &signed.signers[0];
        if !info.id.as_ref().is_some_and(|id| identifies(id, signer)) {
            return Err(BundleError::BadSignature("signed by another certificate than the configured signer".into()));
        }
        let content = crate::smime::verify::verify(&signed, info, signer, None)
            .map_err(|e| BundleError::BadSignature(e.to_string()))?;
        return anchors(&content, None);
    };
    let mut out = Vec::new();
    for der in certificates {
        let cert = X509::from_der(&der).map_err(|_| BundleError::BadFormat("a certificate does not parse".into()))?;
        out.push(BundleAnchor {
            subject: pki::name_line(cert.subject_name()),
            sha256: pki::sha256_hex(&der),
            not_after: pki::unix_time(cert.not_after()),
            der,
        });
    }
    if out.is_empty() {
        return Err(BundleError::BadFormat("the bundle holds no certificate".into()));
    }
    Ok(out)
}

fn pem_to_der(bytes: &[u8]) -> Result<Vec<u8>, BundleError> {
    let text = String::from_utf8_lossy(bytes);
    let Some(start) = text.find("-----BEGIN ") else { return Ok(bytes.to_vec()) };
    let body_start = text[start..].find('\n').map(|i| start + i + 1).unwrap_or(text.len());
    let end = text[body_start..].find("-----END ").map(|i| body_start + i).unwrap_or(text.len());
    crate::smime::mime::decode_base64(text[body_start..end].as_bytes()).map_err(BundleError::BadFormat)
}

/// Fetches bundle `b` afresh, checks it, and records the outcome in the store: the new anchors
/// replace the old, or a failure keeps the last good anchors and records why. The inner result is
/// the refresh's (how many anchors, or why not); the outer one the store's.
pub(crate) fn refresh(
    store: &dyn crate::store::Store,
    b: &crate::store::BundleRecord,
    fetch: &dyn Fetcher,
) -> Result<Result<usize, BundleError>, crate::store::StoreError> {
    let signer = b.signer_der.as_deref().and_then(|d| X509::from_der(d).ok());
    let fetched = load(&b.source, fetch).and_then(|bytes| anchors(&bytes, signer.as_ref()));
    match fetched {
        Ok(anchors) => {
            store.bundle_refreshed(&b.name, Ok(&anchors))?;
            Ok(Ok(anchors.len()))
        }
        Err(e) => {
            store.bundle_refreshed(&b.name, Err(&e.to_string()))?;
            Ok(Err(e))
        }
    }
}
