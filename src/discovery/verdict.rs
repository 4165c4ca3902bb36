//! One address looked up end to end (discovery, then each certificate assessed against the
//! anchors), and the "Verifying Address" verdict an EHR shows from it. `hisp discover`,
//! `hisp address verify` and the API's `/v1/addresses/{address}/verify` share it.

use std::time::Duration;

use openssl::x509::X509;
use serde::Serialize;

use super::assess::{self, Assessed, TrustContext};
use super::ldap::Ldap3Directory;
use super::{discover, Sources, Step};
use crate::address::DirectAddress;
use crate::dns::Resolver;
use crate::fetch::HttpFetcher;
use crate::trust::revocation::FailMode;

/// What a lookup found. Its JSON is the contract of `hisp discover --json`; keep its fields.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub address: String,
    pub step: Option<Step>,
    pub certificates: Vec<Assessed>,
    pub selected: Vec<String>,
    pub notes: Vec<String>,
    pub error: Option<String>,
}

/// The settings a lookup runs with.
pub(crate) struct Lookup<'a> {
    pub anchors: &'a [X509],
    pub resolver: &'a dyn Resolver,
    pub ldap_timeout: Duration,
    pub revocation: FailMode,
    pub now: i64,
}

pub(crate) fn lookup(address: &DirectAddress, how: &Lookup) -> Report {
    let fetch = HttpFetcher::new(how.resolver);
    let ldap = Ldap3Directory { resolver: how.resolver, timeout: how.ldap_timeout };
    let sources = Sources { dns: how.resolver, ldap: &ldap, fetch: &fetch };
    let mut report = Report {
        address: address.to_string(),
        step: None,
        certificates: Vec::new(),
        selected: Vec::new(),
        notes: Vec::new(),
        error: None,
    };
    match discover(address, &sources) {
        Ok(found) => {
            report.step = found.step;
            report.notes = found.notes;
            let trust = TrustContext { anchors: how.anchors, fetch: &fetch, now: how.now, revocation: how.revocation };
            if let Some(step) = found.step {
                report.certificates = found.found.iter().map(|f| assess::assess(f, step, address, &trust)).collect();
            }
            for c in &report.certificates {
                report.notes.extend(c.warnings.iter().map(|w| format!("{}: {w}", c.sha256)));
            }
            report.selected = report.certificates.iter().filter(|c| c.usable).map(|c| c.sha256.clone()).collect();
            report.selected.dedup();
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

/// Valid, or invalid with the one reason an EHR can show.
#[derive(Debug, Serialize)]
pub(crate) struct Verdict {
    pub address: String,
    pub valid: bool,
    pub reason: Option<String>,
    pub step: Option<Step>,
    pub selected: Vec<String>,
}

pub(crate) fn verdict(report: Report) -> Verdict {
    let reason = if !report.selected.is_empty() {
        None
    } else if let Some(e) = &report.error {
        Some(format!("DNS/LDAP unreachable: {e}"))
    } else if report.certificates.is_empty() {
        Some("no certificate published".to_string())
    } else {
        let mut problems: Vec<&str> =
            report.certificates.iter().flat_map(|c| c.problems.iter().map(String::as_str)).collect();
        problems.sort_unstable();
        problems.dedup();
        let why = if problems.contains(&"revoked") {
            "revoked"
        } else if problems.contains(&"untrusted") {
            "none trusted"
        } else if problems.contains(&"expired") {
            "expired"
        } else {
            "no usable certificate"
        };
        Some(format!("{why} ({})", problems.join(", ")))
    };
    Verdict { address: report.address, valid: reason.is_none(), reason, step: report.step, selected: report.selected }
}
