//! Which discovered certificates are usable for sending to an address, and why the others are not:
//! bound to the address (or its domain, for a domain step), inside its validity period, an
//! acceptable key, fit to receive mail (the DirectTrust end-entity profile, `trust::purpose`), and
//! a path to one of the sending domain's outgoing anchors, with intermediates fetched through AIA
//! caIssuers when the path needs them.

use openssl::nid::Nid;
use openssl::x509::{X509Ref, X509};
use serde::Serialize;

use super::{Found, Step};
use crate::address::DirectAddress;
use crate::fetch::Fetcher;
use crate::pki::{self, cert_cache};
use crate::smime::policy;
use crate::trust::chain::{self, ChainError};
use crate::trust::purpose::{self, Use};
use crate::trust::revocation::{self, FailMode, Status};

/// How many AIA hops are followed from a certificate towards an anchor.
const MAX_AIA_DEPTH: usize = 4;

#[derive(Debug, Clone, Serialize)]
pub struct Assessed {
    pub sha256: String,
    pub subject: String,
    pub source: &'static str,
    pub binding: &'static str,
    pub usable: bool,
    pub problems: Vec<String>,
    /// Where it was found.
    #[serde(skip)]
    pub origin: String,
    /// Human-readable details of each problem, for the report.
    #[serde(skip)]
    pub details: Vec<String>,
    /// What did not make it unusable but an operator should know.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

pub struct TrustContext<'a> {
    pub anchors: &'a [X509],
    pub fetch: &'a dyn Fetcher,
    pub now: i64,
    pub revocation: FailMode,
}

/// The failure when none of a recipient's certificates is usable: temporary when one of them
/// could not have its revocation checked (a CRL that cannot be had now may be had later), else
/// permanent, naming each certificate and its problems.
pub fn none_usable(recipient: &DirectAddress, unusable: &[Assessed]) -> crate::failure::Failure {
    use crate::failure::{Code, Failure};
    let each: Vec<String> = unusable.iter().map(|a| format!("{} ({})", a.subject, a.details.join("; "))).collect();
    let text = format!("no usable certificate for {recipient}: {}", each.join(", "));
    if unusable.iter().any(|a| a.problems.iter().any(|p| p == "revocation-unknown")) {
        Failure::temporary(Code::SECURITY, text)
    } else {
        Failure::permanent(Code::REFUSED, text)
    }
}

pub fn assess(found: &Found, step: Step, address: &DirectAddress, trust: &TrustContext) -> Assessed {
    let mut out = Assessed {
        sha256: String::new(),
        subject: String::new(),
        source: step.source(),
        binding: step.binding(),
        usable: false,
        problems: Vec::new(),
        origin: found.origin.clone(),
        details: Vec::new(),
        warnings: Vec::new(),
    };
    let Some(parsed) = certificate(found) else {
        out.sha256 = pki::sha256_hex(&found.data);
        out.problems.push("unparseable".into());
        out.details.push("not an X.509 certificate".into());
        return out;
    };
    out.sha256 = parsed.sha256.clone();
    out.subject = parsed.subject.clone();
    let cert = &parsed.cert;
    let mut problem = |code: &str, detail: String| {
        out.problems.push(code.to_string());
        out.details.push(detail);
    };

    let bound = match step.binding() {
        "address" => parsed.names.binding_for(address) == Some(crate::address::Binding::Address),
        _ => parsed.names.is_domain_bound(address.domain()),
    };
    if !bound {
        let names = parsed.names.all().join(", ");
        problem("not-bound", format!("bound to [{names}], not {} {}", step.binding(), target(step, address)));
    }
    if let Err(e) = cert
        .public_key()
        .map_err(|e| e.to_string())
        .and_then(|k| policy::check_key(&k, "certificate", true).map_err(|e| e.to_string()))
    {
        problem("weak-key", e);
    }
    if let Err(why) = purpose::check(cert, Use::Encryption) {
        problem("wrong-purpose", why);
    }
    match path(cert, trust) {
        Ok(intermediates) => {
            match revocation::check_path(cert, &intermediates, trust.anchors, trust.fetch, trust.now) {
                Status::Good => {}
                Status::Revoked { on } => problem("revoked", format!("revoked on {on}")),
                Status::Unknown(why) if trust.revocation == FailMode::Hard => {
                    problem("revocation-unknown", format!("revocation could not be checked: {why}"))
                }
                Status::Unknown(why) => {
                    out.warnings.push(format!("revocation could not be checked (soft fail): {why}"))
                }
            }
        }
        Err(ChainError::Expired { not_after }) => problem("expired", format!("expired on {not_after}")),
        Err(ChainError::NotYetValid { not_before }) => problem("not-yet-valid", format!("valid from {not_before}")),
        Err(ChainError::Untrusted(reason)) => problem("untrusted", reason),
    }
    out.usable = out.problems.is_empty();
    out
}

/// The certificate a discovery step found. DER (CERT PKIX records, LDAP) goes straight to the
/// parsed-certificate cache; PEM or PKCS#7 (what an IPKIX URL may serve) is decoded first.
pub fn certificate(found: &Found) -> Option<std::sync::Arc<cert_cache::Parsed>> {
    cert_cache::parse(&found.data).ok().or_else(|| {
        pki::load_certs(&found.data, &found.origin)
            .ok()
            .and_then(|certs| certs.into_iter().next())
            .and_then(|c| c.to_der().ok())
            .and_then(|der| cert_cache::parse(&der).ok())
    })
}

fn target(step: Step, address: &DirectAddress) -> String {
    match step.binding() {
        "address" => address.to_string(),
        _ => address.domain().to_string(),
    }
}

/// A path to the anchors; when none can be built from what we hold, the intermediates named by
/// AIA caIssuers are fetched, hop by hop, and the path tried again. Returns the intermediates held.
fn path(cert: &X509Ref, trust: &TrustContext) -> Result<Vec<X509>, ChainError> {
    let mut intermediates: Vec<X509> = Vec::new();
    let mut result = chain::verify(cert, &intermediates, trust.anchors, trust.now);
    let mut frontier = vec![cert.to_owned()];
    for _ in 0..MAX_AIA_DEPTH {
        if !matches!(result, Err(ChainError::Untrusted(_))) {
            break;
        }
        let mut fetched = Vec::new();
        for c in &frontier {
            for url in ca_issuer_urls(c) {
                if let Ok(bytes) = trust.fetch.get(&url) {
                    fetched.extend(pki::load_certs(&bytes, &url).unwrap_or_default());
                }
            }
        }
        fetched.retain(|f| !intermediates.iter().any(|i| i.to_der().ok() == f.to_der().ok()));
        if fetched.is_empty() {
            break;
        }
        intermediates.extend(fetched.iter().cloned());
        frontier = fetched;
        result = chain::verify(cert, &intermediates, trust.anchors, trust.now);
    }
    result.map(|()| intermediates)
}

pub fn ca_issuer_urls(cert: &X509Ref) -> Vec<String> {
    cert.authority_info()
        .map(|aia| {
            aia.iter()
                .filter(|d| d.method().nid() == Nid::AD_CA_ISSUERS)
                .filter_map(|d| d.location().uri().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};

    #[test]
    fn a_ca_certificate_bound_to_the_address_is_unusable_for_the_wrong_purpose() {
        let now = crate::clock::parse_date("2026-11-23").unwrap();
        let root_key = ca::generate_rsa(2048).unwrap();
        let root = ca::create_root(&root_key, "assess test CA", now - 86_400, 30).unwrap();
        let key = ca::generate_rsa(2048).unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&ca::random_serial().unwrap()).unwrap();
        let mut subject = openssl::x509::X509Name::builder().unwrap();
        subject.append_entry_by_text("CN", "bob@b.example.org").unwrap();
        b.set_subject_name(&subject.build()).unwrap();
        b.set_issuer_name(root.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(root.not_before()).unwrap();
        b.set_not_after(root.not_after()).unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
        let san = SubjectAlternativeName::new().email("bob@b.example.org").build(&b.x509v3_context(Some(&root), None));
        b.append_extension(san.unwrap()).unwrap();
        b.sign(&root_key, openssl::hash::MessageDigest::sha256()).unwrap();
        let found = Found { data: b.build().to_der().unwrap(), origin: "bob.b.example.org".into() };
        let fetch = crate::fetch::StaticFetcher::default();
        let trust = TrustContext { anchors: &[root], fetch: &fetch, now, revocation: FailMode::Soft };
        let address = DirectAddress::parse("bob@b.example.org").unwrap();
        let assessed = assess(&found, Step::DnsAddress, &address, &trust);
        assert!(!assessed.usable);
        assert_eq!(assessed.problems, ["wrong-purpose"], "{:?}", assessed.details);
        assert!(assessed.details[0].contains("CA certificate"), "{:?}", assessed.details);
    }
}
