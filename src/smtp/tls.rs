//! TLS for STARTTLS, both ways: TLS 1.2 or newer only (DESIGN.md §2).

use std::path::Path;

use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509;

use crate::pki::{self, PkiError};

/// The server side, with a certificate and key from PEM files.
pub(crate) fn acceptor_from_files(cert: &Path, key: &Path) -> Result<SslAcceptor, PkiError> {
    let (chain, key) = chain_and_key(cert, key)?;
    acceptor(&chain, &key)
}

/// A certificate chain (the leaf first) and its key, from PEM files.
pub(crate) fn chain_and_key(cert: &Path, key: &Path) -> Result<(Vec<X509>, PKey<Private>), PkiError> {
    let chain = pki::load_certs(
        &std::fs::read(cert).map_err(|_| PkiError::NoCertificate(cert.display().to_string()))?,
        &cert.display().to_string(),
    )?;
    Ok((chain, pki::load_key_file(key)?))
}

/// The server side with `chain` (the leaf first) and its key.
pub(crate) fn acceptor(chain: &[X509], key: &PKey<Private>) -> Result<SslAcceptor, PkiError> {
    Ok(builder(chain, key)?.build())
}

/// As `acceptor`, and every client must present a certificate (and prove it holds its key). Any
/// certificate passes the handshake: the service pins the ones it knows by fingerprint, rather
/// than letting a chain to some anchor decide who the client is.
pub(crate) fn acceptor_with_client_certificates(chain: &[X509], key: &PKey<Private>) -> Result<SslAcceptor, PkiError> {
    let mut b = builder(chain, key)?;
    b.set_verify_callback(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT, |_, _| true);
    Ok(b.build())
}

fn builder(chain: &[X509], key: &PKey<Private>) -> Result<openssl::ssl::SslAcceptorBuilder, PkiError> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    let (leaf, rest) = chain.split_first().ok_or_else(|| PkiError::NoCertificate("TLS certificate".into()))?;
    b.set_certificate(leaf)?;
    for c in rest {
        b.add_extra_chain_cert(c.clone())?;
    }
    b.set_private_key(key)?;
    b.check_private_key()?;
    Ok(b)
}

/// The client side: `verify` checks the peer's chain (against `anchors`, or the system's) and name.
pub(crate) fn connector(verify: bool, anchors: Option<&Path>) -> Result<SslConnector, PkiError> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    if verify {
        if let Some(path) = anchors {
            b.set_ca_file(path)?;
        }
        b.set_verify(SslVerifyMode::PEER);
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }
    Ok(b.build())
}
