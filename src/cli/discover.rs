//! `hisp discover` and `hisp address verify`: find an address's certificates and say which are
//! usable. The JSON of `discover` is a contract (a conformance suite reads it); keep its fields.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use openssl::x509::X509;
use serde::Serialize;

use super::{output, Context, Failure};
use crate::address::{DirectAddress, Domain};
use crate::discovery::assess::{self, Assessed, TrustContext};
use crate::discovery::cache::CachingResolver;
use crate::discovery::ldap::Ldap3Directory;
use crate::discovery::{self, Sources, Step};
use crate::dns::{DnsClient, Resolver};
use crate::fetch::HttpFetcher;
use crate::store::Direction;
use crate::trust::{AnchorSource, StoreAnchors};

/// Exit status when no usable certificate was selected.
pub const EXIT_NONE_USABLE: i32 = 3;

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// The Direct address to look up (user@domain).
    pub address: DirectAddress,
    /// Trust these anchors (PEM or DER; repeatable) instead of the store's; no database needed.
    #[arg(long = "anchor", value_name = "FILE")]
    pub anchors: Vec<PathBuf>,
    /// DNS server to ask, IP or IP:PORT (repeatable); overrides dns.servers of the config.
    #[arg(long = "dns", value_name = "HOST:PORT")]
    pub dns: Vec<String>,
    /// The hosted domain whose outgoing anchors apply (needed when the store hosts several).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<Domain>,
    /// Ask the servers afresh instead of using cached answers (for diagnosis).
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Serialize)]
struct Report {
    address: String,
    step: Option<Step>,
    certificates: Vec<Assessed>,
    selected: Vec<String>,
    notes: Vec<String>,
    error: Option<String>,
}

fn anchors(ctx: &Context, args: &LookupArgs) -> Result<Vec<X509>, Failure> {
    if !args.anchors.is_empty() {
        let mut all = Vec::new();
        for path in &args.anchors {
            // An --anchor that cannot be read is a usage error here: exit 2 is part of the contract.
            let certs =
                output::read_certs(path).map_err(|f| if f.code == "io" { Failure::usage(f.message) } else { f })?;
            all.extend(certs);
        }
        return Ok(all);
    }
    let store = ctx
        .store()
        .map_err(|f| Failure::usage(format!("{} (or give the anchors to trust with --anchor FILE)", f.message)))?;
    let domain = match &args.domain {
        Some(d) => d.clone(),
        None => {
            let hosted = store.domains()?;
            match hosted.as_slice() {
                [one] => one.domain.clone(),
                [] => {
                    return Err(Failure::usage("no hosted domain: give --anchor FILE, or add a domain and its anchors"))
                }
                _ => {
                    return Err(Failure::usage(
                        "several hosted domains: say whose outgoing anchors apply with --domain",
                    ))
                }
            }
        }
    };
    StoreAnchors(store).anchors(Some(&domain), Direction::Outgoing).map_err(|e| Failure::new("store", e))
}

fn lookup(ctx: &Context, args: &LookupArgs) -> Result<Report, Failure> {
    let anchors = anchors(ctx, args)?;
    let client = DnsClient::new(ctx.dns_config(&args.dns)?);
    let cached;
    let resolver: &dyn Resolver = if args.no_cache {
        &client
    } else {
        cached = CachingResolver::new(client);
        &cached
    };
    let fetch = HttpFetcher::new(resolver);
    let ldap = Ldap3Directory { resolver, timeout: Duration::from_millis(ctx.config.dns.timeout_ms.max(1000)) };
    let sources = Sources { dns: resolver, ldap: &ldap, fetch: &fetch };
    let mut report = Report {
        address: args.address.to_string(),
        step: None,
        certificates: Vec::new(),
        selected: Vec::new(),
        notes: Vec::new(),
        error: None,
    };
    match discovery::discover(&args.address, &sources) {
        Ok(found) => {
            report.step = found.step;
            report.notes = found.notes;
            let trust = TrustContext {
                anchors: &anchors,
                fetch: &fetch,
                now: ctx.now(),
                revocation: ctx.config.trust.revocation,
            };
            if let Some(step) = found.step {
                report.certificates =
                    found.found.iter().map(|f| assess::assess(f, step, &args.address, &trust)).collect();
            }
            for c in &report.certificates {
                report.notes.extend(c.warnings.iter().map(|w| format!("{}: {w}", c.sha256)));
            }
            report.selected = report.certificates.iter().filter(|c| c.usable).map(|c| c.sha256.clone()).collect();
            report.selected.dedup();
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    Ok(report)
}

pub fn discover(ctx: &Context, args: &LookupArgs) -> Result<i32, Failure> {
    let report = lookup(ctx, args)?;
    if ctx.json {
        output::json(&report);
    } else {
        print_report(&report);
    }
    Ok(if report.selected.is_empty() { EXIT_NONE_USABLE } else { 0 })
}

fn print_report(r: &Report) {
    let usable = r.selected.len();
    match (&r.error, r.step) {
        (Some(e), _) => println!("{}: lookup failed: {e}", r.address),
        (None, None) => println!(
            "{}: no certificate published (no CERT record for the address or its domain, no LDAP entry)",
            r.address
        ),
        (None, Some(step)) => println!(
            "{}: {} certificate(s) found at step {}, {usable} usable{}",
            r.address,
            r.certificates.len(),
            step.as_str(),
            if usable == 0 {
                " - the search ends here: later steps are not asked when a step found certificates"
            } else {
                ""
            }
        ),
    }
    for c in &r.certificates {
        let mark = if c.usable { "usable  " } else { "UNUSABLE" };
        println!("  {mark} {} {}", c.sha256, if c.subject.is_empty() { "(unparseable)" } else { &c.subject });
        println!("           from {}", c.origin);
        for (code, detail) in c.problems.iter().zip(&c.details) {
            println!("           {code}: {detail}");
        }
        for warning in &c.warnings {
            println!("           warning: {warning}");
        }
    }
    for note in &r.notes {
        println!("  note: {note}");
    }
}

#[derive(Serialize)]
struct Verdict {
    address: String,
    valid: bool,
    reason: Option<String>,
    step: Option<Step>,
    selected: Vec<String>,
}

/// The "Verifying Address" check: valid, or invalid with the one reason an EHR can show.
pub fn verify(ctx: &Context, args: &LookupArgs) -> Result<i32, Failure> {
    let report = lookup(ctx, args)?;
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
    let verdict = Verdict {
        address: report.address,
        valid: reason.is_none(),
        reason,
        step: report.step,
        selected: report.selected,
    };
    if ctx.json {
        output::json(&verdict);
    } else {
        match &verdict.reason {
            None => println!("valid"),
            Some(r) => println!("invalid: {r}"),
        }
    }
    Ok(if verdict.valid { 0 } else { EXIT_NONE_USABLE })
}
