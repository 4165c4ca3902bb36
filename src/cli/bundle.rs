//! `hisp bundle`: trust bundles per hosted domain. Adding one fetches it at once; a refresh that
//! fails keeps the last good anchors and records why.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::provision::{done, TrustUse};
use super::{output, Context, Failure};
use crate::bundle;
use crate::clock::iso8601;
use crate::dns::DnsClient;
use crate::fetch::HttpFetcher;
use crate::pki;
use crate::store::BundleRecord;

#[derive(Subcommand, Debug)]
pub(crate) enum BundleCommand {
    /// Add a trust bundle for a hosted domain and fetch it now (PKCS#7 certs-only, DER or PEM,
    /// optionally CMS-signed).
    Add {
        /// A name for the bundle, e.g. directtrust-accredited.
        #[arg(value_parser = super::output::plain_line)]
        name: String,
        /// Where to fetch it (http://).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        url: Option<String>,
        /// Or a file holding it.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The certificate that signs the bundle; a signed bundle is refused without it.
        #[arg(long, value_name = "CERT")]
        signer: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustUse,
        /// DNS server for the fetch (IP:PORT); overrides dns.servers.
        #[arg(long = "dns", value_name = "HOST:PORT")]
        dns: Vec<String>,
    },
    /// List the bundles, their anchors and how their last refresh went.
    List,
    /// Fetch the bundles again (or only NAME). A failure keeps the last good anchors.
    Refresh {
        /// Only this bundle (default: all).
        name: Option<String>,
        /// DNS server for the fetch (IP:PORT); overrides dns.servers.
        #[arg(long = "dns", value_name = "HOST:PORT")]
        dns: Vec<String>,
    },
    /// Remove a bundle and its anchors.
    Remove {
        /// The bundle's name (`hisp bundle list`).
        name: String,
    },
}

pub(super) fn run(ctx: &Context, command: BundleCommand) -> Result<(), Failure> {
    match command {
        BundleCommand::Add { name, url, file, signer, trust, dns } => {
            let source = match (url, file) {
                (Some(u), _) => u,
                (None, Some(f)) => f.display().to_string(),
                (None, None) => return Err(Failure::usage("give --url or --file")),
            };
            add(ctx, name, source, signer, trust, &dns)
        }
        BundleCommand::List => list(ctx),
        BundleCommand::Refresh { name, dns } => refresh(ctx, name.as_deref(), &dns),
        BundleCommand::Remove { name } => {
            ctx.store()?.remove_bundle(&name)?;
            done(ctx, &format!("removed bundle {name}"), json!({ "name": name }));
            Ok(())
        }
    }
}

/// Adds a bundle once it has been fetched and read: one that cannot be read now is not added.
fn add(
    ctx: &Context,
    name: String,
    source: String,
    signer: Option<PathBuf>,
    trust: TrustUse,
    dns: &[String],
) -> Result<(), Failure> {
    let store = ctx.store()?;
    trust.check("the bundle's anchors are")?;
    let TrustUse { domain, incoming, outgoing } = trust;
    let signer_der = signer.map(|p| pki::load_cert_file(&p).and_then(|c| Ok(c.to_der()?))).transpose()?;
    let record = BundleRecord::new(name.clone(), domain, source, signer_der, incoming, outgoing);
    let anchors = fetch(ctx, &record, dns).map_err(|e| Failure::new("bundle", format!("bundle {name}: {e}")))?;
    store.add_bundle(&record)?;
    store.bundle_refreshed(&name, Ok(&anchors))?;
    done(
        ctx,
        &format!("added bundle {name} with {} anchors", anchors.len()),
        json!({ "name": name, "anchors": anchors.len() }),
    );
    Ok(())
}

fn list(ctx: &Context) -> Result<(), Failure> {
    let bundles = ctx.store()?.bundles()?;
    if ctx.json {
        output::json(&bundles);
    } else {
        let rows: Vec<Vec<String>> = bundles.iter().map(row).collect();
        output::table(
            &["NAME", "DOMAIN", "USE", "ANCHORS", "LAST GOOD", "LAST ERROR", "SOURCE"],
            &rows,
            "no trust bundles (add one with `hisp bundle add NAME --url URL --domain D --incoming --outgoing`)",
        );
    }
    Ok(())
}

/// Fetches every bundle (or the one named) again; one that fails keeps its last good anchors, and
/// the command fails once all were tried.
fn refresh(ctx: &Context, name: Option<&str>, dns: &[String]) -> Result<(), Failure> {
    let store = ctx.store()?;
    let bundles: Vec<BundleRecord> =
        store.bundles()?.into_iter().filter(|b| name.is_none_or(|n| n == b.name)).collect();
    if let Some(n) = name {
        if bundles.is_empty() {
            return Err(Failure::new("not-found", format!("no bundle named {n}")));
        }
    }
    let mut results = Vec::new();
    let mut failed = 0;
    let client = DnsClient::new(ctx.dns_config(dns)?);
    let fetcher = HttpFetcher::new(&client);
    for b in &bundles {
        match bundle::refresh(store, b, &fetcher)? {
            Ok(count) => {
                results.push(json!({ "name": b.name, "ok": true, "anchors": count }));
                if !ctx.json {
                    println!("{}: {count} anchors", b.name);
                }
            }
            Err(e) => {
                failed += 1;
                results.push(json!({ "name": b.name, "ok": false, "error": e.to_string(), "anchors_kept": b.anchors }));
                if !ctx.json {
                    println!("{}: refresh failed, {} anchors of the last good copy kept: {e}", b.name, b.anchors);
                }
            }
        }
    }
    if ctx.json {
        output::json(&results);
    }
    if failed > 0 {
        return Err(Failure::new("bundle", format!("{failed} of {} bundles could not be refreshed", bundles.len())));
    }
    Ok(())
}

fn fetch(
    ctx: &Context,
    b: &BundleRecord,
    dns: &[String],
) -> Result<Vec<crate::store::BundleAnchor>, bundle::BundleError> {
    let signer = b.signer_der.as_deref().and_then(|d| openssl::x509::X509::from_der(d).ok());
    let client = DnsClient::new(ctx.dns_config(dns).map_err(|f| bundle::BundleError::Unreachable(f.message))?);
    let bytes = bundle::load(&b.source, &HttpFetcher::new(&client))?;
    bundle::anchors(&bytes, signer.as_ref())
}

fn row(b: &BundleRecord) -> Vec<String> {
    let usage = match (b.incoming, b.outgoing) {
        (true, true) => "in+out",
        (true, false) => "in",
        _ => "out",
    };
    vec![
        b.name.clone(),
        b.domain.to_string(),
        usage.into(),
        b.anchors.to_string(),
        b.last_good_at.map(iso8601).unwrap_or_else(|| "-".into()),
        b.last_error.clone().unwrap_or_else(|| "-".into()),
        b.source.clone(),
    ]
}
