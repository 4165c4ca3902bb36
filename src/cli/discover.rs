//! `hisp discover` and `hisp address verify`: find an address's certificates and say which are
//! usable. The JSON of `discover` is a contract (a conformance suite reads it); keep its fields.

use std::path::PathBuf;
use std::time::Duration;

use super::{output, Context, Failure};
use crate::address::{DirectAddress, Domain};
use crate::discovery::cache::CachingResolver;
use crate::discovery::verdict::{self, Lookup, Report};
use crate::dns::{DnsClient, Resolver};
use crate::store::Direction;
use crate::trust::{AnchorSource, StoreAnchors};
use clap::Args;
use openssl::x509::X509;

/// Exit status when no usable certificate was selected.
pub(super) const EXIT_NONE_USABLE: i32 = 3;

#[derive(Args, Debug)]
pub(crate) struct LookupArgs {
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
    let how = Lookup {
        anchors: &anchors,
        resolver,
        ldap_timeout: Duration::from_millis(ctx.config.dns.timeout_ms.max(1000)),
        revocation: ctx.config.trust.revocation,
        now: ctx.now(),
    };
    Ok(verdict::lookup(&args.address, &how))
}

pub(super) fn discover(ctx: &Context, args: &LookupArgs) -> Result<i32, Failure> {
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

/// The "Verifying Address" check: valid, or invalid with the one reason an EHR can show.
pub(super) fn verify(ctx: &Context, args: &LookupArgs) -> Result<i32, Failure> {
    let verdict = verdict::verdict(lookup(ctx, args)?);
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
