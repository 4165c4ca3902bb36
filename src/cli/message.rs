//! `hisp message seal|open|inspect`: the security agent from the command line, either with the
//! node's database (keys, certificates, anchors) or standalone with files, like `openssl cms`.
//! (`hisp message track|list` are in `tracking`.)

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::output;
use super::{Context, Failure};
use crate::address::{Binding, DirectAddress};
use crate::dns::DnsClient;
use crate::fetch::HttpFetcher;
use crate::identities::{self, IdentityError};
use crate::pki;
use crate::smime::inspect::inspect;
use crate::smime::mime::{self, Entity};
use crate::smime::open::{open, OpenTrust, RecipientKey};
use crate::smime::seal::{envelope_of, seal, SealOptions, SignerIdentity};
use crate::smime::{ContentCipher, KeyTransport};
use crate::store::Store;
use crate::trust::revocation::{FailMode, Policy};
use crate::trust::{AnchorSource, FixedAnchors, StoreAnchors};

#[derive(Subcommand, Debug)]
pub(crate) enum MessageCommand {
    /// Wrap, sign and encrypt an RFC 5322 message for its To/Cc/Bcc recipients (and the sender).
    ///
    /// With the database: the sender (From) must be a hosted address with a certificate and key;
    /// recipients' certificates come from --recipient-cert or, for hosted recipients, the store.
    /// Standalone (no database): --signer-cert, --signer-key and one or more --recipient-cert.
    Seal(SealArgs),
    /// Decrypt, verify and unwrap a Direct message; print the original.
    ///
    /// With the database: the key of a hosted recipient decrypts, and the signer must chain to that
    /// domain's incoming anchors. Standalone: --recipient-cert, --recipient-key and --anchor.
    /// With --json a report is printed instead, and the original goes to --out if given.
    Open(OpenArgs),
    /// Describe an S/MIME message without keys: layers, algorithms, recipients, signer.
    Inspect {
        /// The message (default: standard input).
        #[arg(long = "in", value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// What became of each recipient of a message sent through this node: sent, processed,
    /// dispatched (timely and reliable), failed or timed out, with the timeline of its
    /// notifications (MDNs, DSNs, duplicates, late arrivals).
    Track {
        /// The message's Message-ID (angle brackets optional).
        message_id: String,
        /// The sender whose message it is, when several senders used the same Message-ID.
        #[arg(long, value_name = "ADDRESS")]
        sender: Option<String>,
    },
    /// Messages sent through this node (default) or delivered into its mailboxes.
    List {
        /// Messages the practices' EHRs sent, one line per recipient with its status.
        #[arg(long, conflicts_with = "received")]
        sent: bool,
        /// Messages (and notifications) delivered into hosted mailboxes, with verified senders.
        #[arg(long)]
        received: bool,
        /// Only since: a duration back from now (90s, 30m, 12h, 7d) or a date (2026-11-23, UTC).
        /// Default: 7d.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct SealArgs {
    /// The message to seal (default: standard input).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Where to write the sealed message (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Content encryption (default: smime.content_cipher from the config, else aes-256-cbc).
    #[arg(long)]
    cipher: Option<ContentCipher>,
    /// RSA key transport (default: smime.key_transport from the config, else rsa-pkcs1).
    #[arg(long)]
    key_transport: Option<KeyTransport>,
    /// Standalone: the sender's certificate (PEM/DER; a PEM file may carry intermediates after it).
    #[arg(long, value_name = "FILE", requires = "signer_key")]
    signer_cert: Option<PathBuf>,
    /// Standalone: the sender's private key (PEM/DER).
    #[arg(long, value_name = "FILE", requires = "signer_cert")]
    signer_key: Option<PathBuf>,
    /// A recipient's certificate (repeatable).
    #[arg(long, value_name = "FILE")]
    recipient_cert: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct OpenArgs {
    /// The message to open (default: standard input).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Where to write the original message (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Standalone: our certificate the message was encrypted to.
    #[arg(long, value_name = "FILE", requires = "recipient_key")]
    recipient_cert: Option<PathBuf>,
    /// Standalone: the private key of --recipient-cert.
    #[arg(long, value_name = "FILE", requires = "recipient_cert")]
    recipient_key: Option<PathBuf>,
    /// Standalone: a trust anchor for the signer (repeatable; PEM may hold several).
    #[arg(long, value_name = "FILE")]
    anchor: Vec<PathBuf>,
    /// When the signer's CRL cannot be had: `hard` refuses the message, `soft` opens it and
    /// reports why revocation was not checked (default: trust.revocation of the config, hard).
    #[arg(long, value_name = "MODE")]
    revocation: Option<FailMode>,
    /// DNS server for the CRL hosts, IP or IP:PORT (repeatable); overrides dns.servers.
    #[arg(long = "dns", value_name = "HOST:PORT")]
    dns: Vec<String>,
}

pub(super) fn run(ctx: &Context, command: MessageCommand) -> Result<(), Failure> {
    match command {
        MessageCommand::Seal(args) => seal_command(ctx, args),
        MessageCommand::Open(args) => open_command(ctx, args),
        MessageCommand::Track { message_id, sender } => super::tracking::track(ctx, &message_id, sender.as_deref()),
        MessageCommand::List { sent: _, received, since } => super::tracking::list(ctx, received, since.as_deref()),
        MessageCommand::Inspect { input } => {
            let report = inspect(&output::read_input(input.as_deref())?)?;
            if ctx.json {
                output::json(&report);
            } else {
                for (name, value) in [
                    ("From", &report.from),
                    ("To", &report.to),
                    ("Subject", &report.subject),
                    ("Message-ID", &report.message_id),
                ] {
                    if let Some(v) = value {
                        println!("{name}: {v}");
                    }
                }
                for (depth, layer) in report.layers.iter().enumerate() {
                    let indent = "  ".repeat(depth);
                    println!("{indent}- {}: {}", layer.kind, layer.content_type);
                    for (k, v) in &layer.details {
                        println!("{indent}    {k}: {v}");
                    }
                }
            }
            Ok(())
        }
    }
}

/// Who signs a sealed message: the key in files given (standalone), or the sender's stored key.
enum SealSigner<'a> {
    Files(&'a PathBuf, &'a PathBuf),
    Stored(crate::kek::Kek),
}

fn seal_command(ctx: &Context, args: SealArgs) -> Result<(), Failure> {
    // Database mode derives the KEK (argon2id, 19 MiB) before the message is read, so a large
    // message and the derivation's memory are never held at the same time.
    let signer = match (&args.signer_cert, &args.signer_key) {
        (Some(cert_path), Some(key_path)) => SealSigner::Files(cert_path, key_path),
        _ => SealSigner::Stored(ctx.kek()?),
    };
    let message = output::read_input(args.input.as_deref())?;
    let options = SealOptions {
        cipher: args.cipher.unwrap_or(ctx.config.smime.content_cipher),
        key_transport: args.key_transport.unwrap_or(ctx.config.smime.key_transport),
        outer_subject: ctx.config.smime.outer_subject.clone(),
    };
    let mut recipient_certs = Vec::new();
    for path in &args.recipient_cert {
        recipient_certs.extend(output::read_certs(path)?);
    }
    // The header block alone decides the envelope (either line ending parses).
    let (from, recipients) = envelope_of(&Entity::parse(&message).headers)?;
    // Every To/Cc/Bcc address needs a certificate bound to it: one left out would get a message
    // it cannot open (and its copy would be missing without a word).
    if !recipient_certs.is_empty() {
        let uncovered: Vec<String> = recipients
            .iter()
            .filter(|r| !recipient_certs.iter().any(|c| pki::binding::binding_for(c, r).is_some()))
            .map(ToString::to_string)
            .collect();
        if !uncovered.is_empty() {
            return Err(Failure::new(
                "no-certificate",
                format!(
                    "no --recipient-cert is bound to {}: give each recipient's certificate (address- or domain-bound)",
                    uncovered.join(", ")
                ),
            ));
        }
    }
    let now = ctx.now();
    let sealed =
        match signer {
            SealSigner::Files(cert_path, key_path) => {
                if recipient_certs.is_empty() {
                    return Err(Failure::usage("standalone sealing needs at least one --recipient-cert"));
                }
                let mut chain = output::read_certs(cert_path)?;
                let cert = chain.remove(0);
                let key = pki::load_key_file(key_path)?;
                seal(message, &SignerIdentity::new(cert, key, chain)?, &recipient_certs, options.clone(), now)?
            }
            SealSigner::Stored(kek) => {
                let store = ctx.store()?;
                if !store.has_address(&from)? {
                    return Err(Failure::new("not-hosted", format!("the sender {from} is not an address hosted here")));
                }
                let (cert, key_id) = identities::signing_cert(store, &from, now)?;
                let key = kek.open_key(&store.key(key_id)?.sealed)?;
                if recipient_certs.is_empty() {
                    for r in &recipients {
                        recipient_certs.push(identities::hosted_cert(store, r, now)?.ok_or_else(|| {
                            Failure::new(
                        "no-certificate",
                        format!("no certificate known for {r} (not hosted here): give it with --recipient-cert FILE"),
                    )
                        })?);
                    }
                }
                seal(message, &SignerIdentity::new(cert, key, Vec::new())?, &recipient_certs, options.clone(), now)?
            }
        };
    output::write_output(args.out.as_deref(), &sealed.message)?;
    let report = json!({
        "ok": true, "from": sealed.from, "recipients": sealed.recipients, "message_id": sealed.message_id,
        "content_encryption": options.cipher, "key_transport": options.key_transport, "bytes": sealed.message.len(),
    });
    if ctx.json && args.out.is_some() {
        output::json(&report);
    } else if args.out.is_some() {
        println!(
            "sealed {} from {} to {} ({} bytes)",
            sealed.message_id,
            sealed.from,
            sealed.recipients.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "),
            sealed.message.len()
        );
    }
    Ok(())
}

fn open_command(ctx: &Context, args: OpenArgs) -> Result<(), Failure> {
    let message = output::read_input(args.input.as_deref())?;
    let now = ctx.now();
    let fixed;
    let store_anchors;
    let (keys, anchors): (Vec<RecipientKey>, &dyn AnchorSource) = if let (Some(cert_path), Some(key_path)) =
        (&args.recipient_cert, &args.recipient_key)
    {
        let cert = pki::load_cert_file(cert_path)?;
        let key = pki::load_key_file(key_path)?;
        pki::check_key_matches(&cert, &key)?;
        let mut anchor_certs = Vec::new();
        for path in &args.anchor {
            anchor_certs.extend(output::read_certs(path)?);
        }
        fixed = FixedAnchors(anchor_certs);
        (vec![RecipientKey { cert, key, domain: None }], &fixed)
    } else {
        if !args.anchor.is_empty() {
            return Err(Failure::usage("--anchor is for standalone mode (with --recipient-cert and --recipient-key)"));
        }
        let store = ctx.store()?;
        store_anchors = StoreAnchors(store);
        (hosted_keys(ctx, store, &message)?, &store_anchors)
    };
    let resolver = DnsClient::new(ctx.dns_config(&args.dns)?);
    let fetch = HttpFetcher::new(&resolver);
    let revocation = Policy { fetch: &fetch, mode: args.revocation.unwrap_or(ctx.config.trust.revocation) };
    let opened = open(&message, &keys, &OpenTrust { anchors, revocation, now })?;
    if ctx.json {
        if let Some(out) = &args.out {
            output::write_output(Some(out), &opened.original)?;
        }
        let mut report = serde_json::to_value(&opened).unwrap_or_default();
        report["ok"] = json!(true);
        output::json(&report);
    } else {
        output::write_output(args.out.as_deref(), &opened.original)?;
        eprintln!(
            "opened: from {} signed by '{}' ({}-bound, {}, {}); {} / {}",
            opened.from,
            opened.signer.subject,
            match opened.signer.binding {
                Binding::Address => "address",
                Binding::Domain => "domain",
            },
            opened.signer.key,
            opened.digest,
            opened.content_encryption,
            opened.key_transport
        );
        if opened.revocation != "good" {
            eprintln!("warning: signer revocation {}", opened.revocation);
        }
    }
    Ok(())
}

/// Keys of the hosted addresses the message is addressed to (To, Cc), with their domains'
/// domain-bound keys; the KEK is unlocked only when there is a key to open.
fn hosted_keys(ctx: &Context, store: &dyn Store, message: &[u8]) -> Result<Vec<RecipientKey>, Failure> {
    let headers = Entity::parse(message).headers;
    let addressed: Vec<DirectAddress> = ["to", "cc"]
        .iter()
        .flat_map(|field| headers.all(field).flat_map(mime::addresses).collect::<Vec<_>>())
        .filter_map(|a| DirectAddress::parse(&a).ok())
        .collect();
    let mut kek = None;
    let mut open_key = |sealed: &[u8]| {
        let kek = match kek {
            Some(ref k) => k,
            None => kek.insert(ctx.kek().map_err(|f| IdentityError::Locked(f.message))?),
        };
        Ok(kek.open_key(sealed)?)
    };
    Ok(identities::recipient_keys(store, &mut open_key, &addressed)?)
}
