//! `hisp init`, `domain`, `address`, `anchor` and `audit`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::address::{DirectAddress, Domain};
use crate::clock::iso8601;
use crate::password;
use crate::store::AnchorRecord;

#[derive(Subcommand, Debug)]
pub(crate) enum DomainCommand {
    /// Host a practice's Direct domain, e.g. smithpeds.direct.example.org.
    Add {
        /// The Direct domain to host, e.g. smithpeds.direct.example.org.
        domain: Domain,
        /// The practice this domain belongs to (default: the domain itself).
        #[arg(long, value_parser = output::plain_line)]
        practice: Option<String>,
    },
    /// List hosted domains.
    List,
    /// Stop hosting a domain. With --cascade, says what goes with it (addresses, certificates,
    /// keys, anchors, bundles; with its practice's last domain, the practice's referrals,
    /// documents, API tokens, shares and webhooks) and asks, or needs --yes.
    Remove {
        /// The domain.
        /// The domain that stops trusting it.
        domain: Domain,
        /// Also remove its addresses, certificates, keys and anchors (and what its practice keeps,
        /// when this is its last domain).
        #[arg(long)]
        cascade: bool,
        /// Go ahead without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AddressCommand {
    /// The "Verifying Address" check an EHR shows while a user types a recipient: prints `valid`
    /// or `invalid: <reason>`. Exit status 0 valid, 3 invalid, 2 usage error.
    Verify(super::discover::LookupArgs),
    /// Make a username within a hosted domain a Direct address (user@domain).
    Add {
        /// The Direct address, in a hosted domain.
        address: DirectAddress,
        /// Read the user's SMTP password (12+ characters) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Add many addresses from a CSV file (100,000 in a run are usual), committed in batches.
    /// Bad rows are refused with their line numbers and the rest go on; exit status 1 when any
    /// row was refused. Running the same file again adds only what is missing.
    Import(super::import::ImportArgs),
    /// List addresses.
    List {
        /// Only addresses of this domain.
        /// Only this domain's.
        #[arg(long)]
        domain: Option<Domain>,
    },
    /// Remove an address with its certificates, keys and listings (its mail directory stays):
    /// says what goes and asks, or needs --yes.
    Remove {
        /// The address.
        address: DirectAddress,
        /// Go ahead without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Set a new password, read from the first line of standard input.
    Passwd {
        /// The Direct address.
        address: DirectAddress,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Which hosted domain trusts an anchor (or a bundle's anchors), and for what.
#[derive(clap::Args, Debug)]
pub(crate) struct TrustUse {
    /// The hosted domain.
    #[arg(long)]
    pub domain: Domain,
    /// Accept mail signed by certificates chaining to the anchor.
    #[arg(long)]
    pub incoming: bool,
    /// Send mail to certificates chaining to the anchor.
    #[arg(long)]
    pub outgoing: bool,
}

impl TrustUse {
    /// At least one direction; `what` names the thing trusted ("the anchor is").
    pub(crate) fn check(&self, what: &str) -> Result<(), Failure> {
        if self.incoming || self.outgoing {
            Ok(())
        } else {
            Err(Failure::usage(format!(
                "say what {what} trusted for: --incoming (mail we receive), --outgoing (mail we send), or both"
            )))
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum AnchorCommand {
    /// Trust the CA certificate(s) in FILE (PEM, possibly several, or DER) for a hosted domain.
    Add {
        /// The anchor certificate(s): PEM (several allowed), DER or PKCS#7.
        file: PathBuf,
        #[command(flatten)]
        trust: TrustUse,
    },
    /// List anchors.
    List {
        /// Only this domain's.
        #[arg(long)]
        domain: Option<Domain>,
    },
    /// Stop trusting an anchor (by its SHA-256 fingerprint) for a domain.
    Remove {
        /// The anchor's SHA-256 fingerprint (`hisp anchor list`).
        sha256: String,
        /// The domain that stops trusting it.
        #[arg(long)]
        domain: Domain,
    },
}

pub(super) fn init(ctx: &Context, upgrade: bool) -> Result<(), Failure> {
    if upgrade {
        let (before, after) = crate::store::upgrade(&ctx.db_path)?;
        if ctx.json {
            output::json(&json!({ "ok": true, "database": ctx.db_path, "schema_version": after, "was": before }));
        } else if before == after {
            println!("{} is at schema version {after} already", ctx.db_path.display());
        } else {
            println!("upgraded {} from schema version {before} to {after}", ctx.db_path.display());
        }
        return Ok(());
    }
    if ctx.db_path.exists() {
        return Err(Failure::new(
            "exists",
            format!(
                "{} already exists: `hisp init --upgrade` migrates an existing hisp database to this version",
                ctx.db_path.display()
            ),
        ));
    }
    let store = ctx.create_store()?;
    let version = store.schema_version()?;
    if ctx.json {
        output::json(&json!({ "ok": true, "database": ctx.db_path, "schema_version": version }));
    } else {
        println!("created {} (schema version {version})", ctx.db_path.display());
    }
    Ok(())
}

pub(super) fn domain(ctx: &Context, command: DomainCommand) -> Result<(), Failure> {
    let store = ctx.store()?;
    match command {
        DomainCommand::Add { domain, practice } => {
            let practice = practice.unwrap_or_else(|| domain.to_string());
            if practice.trim().is_empty() {
                return Err(Failure::usage("--practice must not be empty"));
            }
            store.add_domain(&domain, practice.trim())?;
            done(
                ctx,
                &format!("added domain {domain} (practice {practice})"),
                json!({ "domain": domain, "practice": practice }),
            );
        }
        DomainCommand::List => {
            let domains = store.domains()?;
            if ctx.json {
                output::json(&domains);
            } else {
                let rows: Vec<Vec<String>> = domains
                    .iter()
                    .map(|d| {
                        vec![d.domain.to_string(), d.practice.clone(), d.addresses.to_string(), iso8601(d.created_at)]
                    })
                    .collect();
                table(
                    &["DOMAIN", "PRACTICE", "ADDRESSES", "CREATED"],
                    &rows,
                    "no domains (add one with `hisp domain add DOMAIN`)",
                );
            }
        }
        DomainCommand::Remove { domain, cascade, yes } => {
            let removal = store.domain_removal(&domain)?;
            if cascade {
                let what = format!("domain {domain} and {}", output::tally(&removal, "nothing else"));
                output::confirm(&what, yes)?;
            }
            store.remove_domain(&domain, cascade)?;
            let removed: serde_json::Map<String, serde_json::Value> =
                removal.iter().map(|(what, n)| (what.to_string(), json!(n))).collect();
            done(
                ctx,
                &format!("removed domain {domain} ({})", output::tally(&removal, "nothing else")),
                json!({ "domain": domain, "removed": removed }),
            );
        }
    }
    Ok(())
}

fn new_password(password_stdin: bool) -> Result<String, Failure> {
    if !password_stdin {
        return Err(Failure::usage("give the password on standard input with --password-stdin"));
    }
    Ok(password::hash(&output::read_secret_line()?)?)
}

/// Returns the exit status (`verify` has its own).
pub(super) fn address(ctx: &Context, command: AddressCommand) -> Result<i32, Failure> {
    if let AddressCommand::Verify(args) = &command {
        return super::discover::verify(ctx, args);
    }
    let store = ctx.store()?;
    match command {
        AddressCommand::Verify(_) => {} // answered above
        AddressCommand::Import(args) => return super::import::run(ctx, &args),
        AddressCommand::Add { address, password_stdin } => {
            let hash = if password_stdin { Some(new_password(true)?) } else { None };
            store.add_address(&address, hash.as_deref())?;
            let note = if hash.is_some() {
                ""
            } else {
                " (no password yet: it cannot submit mail until `hisp address passwd`)"
            };
            done(
                ctx,
                &format!("added address {address}{note}"),
                json!({ "address": address, "has_password": hash.is_some() }),
            );
        }
        AddressCommand::List { domain } => {
            let addresses = store.addresses(domain.as_ref())?;
            if ctx.json {
                output::json(&addresses);
            } else {
                let rows: Vec<Vec<String>> = addresses
                    .iter()
                    .map(|a| {
                        vec![
                            a.address.to_string(),
                            if a.has_password { "yes" } else { "no" }.into(),
                            iso8601(a.created_at),
                        ]
                    })
                    .collect();
                table(&["ADDRESS", "PASSWORD", "CREATED"], &rows, "no addresses");
            }
        }
        AddressCommand::Remove { address, yes } => {
            let removal = store.address_removal(&address)?;
            output::confirm(&format!("address {address} and {}", output::tally(&removal, "nothing else")), yes)?;
            store.remove_address(&address)?;
            done(
                ctx,
                &format!(
                    "removed address {address} ({}); its mail directory stays",
                    output::tally(&removal, "nothing else")
                ),
                json!({ "address": address }),
            );
        }
        AddressCommand::Passwd { address, password_stdin } => {
            let hash = new_password(password_stdin)?;
            store.set_password(&address, &hash)?;
            done(ctx, &format!("password set for {address}"), json!({ "address": address }));
        }
    }
    Ok(0)
}

pub(super) fn anchor(ctx: &Context, command: AnchorCommand) -> Result<(), Failure> {
    let store = ctx.store()?;
    match command {
        AnchorCommand::Add { file, trust } => {
            trust.check("the anchor is")?;
            let TrustUse { domain, incoming, outgoing } = trust;
            let certs = output::read_certs(&file)?;
            let mut added = Vec::new();
            for cert in &certs {
                let record = AnchorRecord::of(cert, &domain, incoming, outgoing)?;
                if record.not_after < ctx.now() {
                    eprintln!("warning: anchor '{}' expired on {}", record.subject, iso8601(record.not_after));
                }
                store.add_anchor(&record)?;
                added.push(json!({ "sha256": record.sha256, "subject": record.subject }));
                if !ctx.json {
                    println!("added anchor {} ({}) for {domain}", record.subject, record.sha256);
                }
            }
            if ctx.json {
                output::json(
                    &json!({ "ok": true, "domain": domain, "incoming": incoming, "outgoing": outgoing, "anchors": added }),
                );
            }
        }
        AnchorCommand::List { domain } => {
            let anchors = store.anchors(domain.as_ref())?;
            if ctx.json {
                let list: Vec<_> = anchors
                    .iter()
                    .map(|a| {
                        json!({ "domain": a.domain, "subject": a.subject, "sha256": a.sha256,
                                "not_after": iso8601(a.not_after), "incoming": a.incoming, "outgoing": a.outgoing })
                    })
                    .collect();
                output::json(&list);
            } else {
                let flag = |b: bool, s: &str| if b { s.to_string() } else { "-".into() };
                let rows: Vec<Vec<String>> = anchors
                    .iter()
                    .map(|a| {
                        vec![
                            a.domain.to_string(),
                            a.subject.clone(),
                            flag(a.incoming, "in"),
                            flag(a.outgoing, "out"),
                            iso8601(a.not_after),
                            a.sha256.clone(),
                        ]
                    })
                    .collect();
                table(&["DOMAIN", "SUBJECT", "IN", "OUT", "EXPIRES", "SHA256"], &rows, "no anchors");
            }
        }
        AnchorCommand::Remove { sha256, domain } => {
            store.remove_anchor(&domain, &sha256.to_ascii_lowercase())?;
            done(ctx, &format!("removed anchor {sha256} from {domain}"), json!({ "domain": domain, "sha256": sha256 }));
        }
    }
    Ok(())
}

pub(super) fn audit(ctx: &Context, limit: usize) -> Result<(), Failure> {
    let entries = ctx.store()?.audit_log(limit)?;
    if ctx.json {
        output::json(&entries);
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let shown = |t: &str| crate::printable::printable(t, 2000);
                vec![iso8601(e.at), shown(&e.actor), shown(&e.action), shown(&e.subject), shown(&e.detail)]
            })
            .collect();
        table(&["WHEN", "WHO", "WHAT", "SUBJECT", "DETAIL"], &rows, "the audit log is empty");
    }
    Ok(())
}

/// Reports a completed change.
pub(super) fn done(ctx: &Context, text: &str, mut value: serde_json::Value) {
    if ctx.json {
        value["ok"] = json!(true);
        output::json(&value);
    } else {
        println!("{text}");
    }
}
