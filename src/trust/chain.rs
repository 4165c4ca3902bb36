//! Path validation from a certificate to a set of anchors, at a given instant.

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509Ref, X509StoreContext, X509VerifyResult, X509};

use crate::clock::iso8601;
use crate::pki;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    Expired { not_after: String },
    NotYetValid { not_before: String },
    Untrusted(String),
}

/// Checks `cert`'s own validity period, then builds a path through `intermediates` to one of
/// `anchors`, with every certificate on it valid at `at` (unix seconds).
pub fn verify(
    cert: &X509Ref,
    intermediates: &[X509],
    anchors: &[X509],
    at: i64,
) -> Result<(), ChainError> {
    let not_before = pki::unix_time(cert.not_before());
    let not_after = pki::unix_time(cert.not_after());
    if at > not_after {
        return Err(ChainError::Expired {
            not_after: iso8601(not_after),
        });
    }
    if at < not_before {
        return Err(ChainError::NotYetValid {
            not_before: iso8601(not_before),
        });
    }
    if anchors.is_empty() {
        return Err(ChainError::Untrusted(
            "no trust anchors are configured".into(),
        ));
    }
    let untrusted = |e: openssl::error::ErrorStack| ChainError::Untrusted(e.to_string());
    let mut builder = X509StoreBuilder::new().map_err(untrusted)?;
    for anchor in anchors {
        builder.add_cert(anchor.clone()).map_err(untrusted)?;
    }
    let mut param = X509VerifyParam::new().map_err(untrusted)?;
    param.set_time(at as libc::time_t);
    builder.set_param(&param).map_err(untrusted)?;
    let store = builder.build();
    let mut chain = Stack::new().map_err(untrusted)?;
    for c in intermediates {
        chain.push(c.clone()).map_err(untrusted)?;
    }
    let mut context = X509StoreContext::new().map_err(untrusted)?;
    let result = context
        .init(&store, cert, &chain, |ctx| {
            Ok((ctx.verify_cert()?, ctx.error()))
        })
        .map_err(untrusted)?;
    match result {
        (true, _) => Ok(()),
        (false, error) => Err(ChainError::Untrusted(describe(error))),
    }
}

fn describe(error: X509VerifyResult) -> String {
    match error.as_raw() {
        20 | 2 => "no trusted issuer (the issuing CA is not an anchor for this domain)".into(),
        18 | 19 => "self-signed certificate that is not an anchor".into(),
        _ => error.error_string().to_string(),
    }
}
