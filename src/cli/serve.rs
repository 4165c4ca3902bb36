//! `hisp serve` (the daemon) and `hisp queue` (what it has yet to deliver).

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::clock::{iso8601, SystemClock};
use crate::serve::{self, Setup};

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// DNS server for every lookup of the node, IP or IP:PORT (repeatable); overrides dns.servers.
    #[arg(long = "dns", value_name = "HOST:PORT")]
    dns: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum QueueCommand {
    /// Messages not yet finished (or quarantined); --all for every message kept.
    List {
        /// Every message kept, finished ones too.
        #[arg(long)]
        all: bool,
    },
    /// One message and the state of each recipient.
    Show {
        /// The message's queue id (`hisp queue list`).
        id: i64,
    },
    /// Make a message's waiting or failed recipients due now (and lift a quarantine).
    Retry {
        /// The message's queue id (`hisp queue list`).
        id: i64,
    },
    /// Remove a message from the queue: its recipients that are still waiting never get it.
    /// Says which and asks, or needs --yes; recorded in the audit log.
    Remove {
        /// The message's queue id (`hisp queue list`).
        id: i64,
        /// Go ahead without asking.
        #[arg(long)]
        yes: bool,
    },
}

pub(super) fn serve(ctx: &Context, args: ServeArgs) -> Result<(), Failure> {
    // Check the database and the KEK before anything listens.
    ctx.store()?;
    let kek = ctx.kek()?;
    let setup = Setup {
        config: ctx.config.clone(),
        db: ctx.db_path.clone(),
        kek,
        dns: ctx.dns_config(&args.dns)?,
        clock: Arc::new(SystemClock),
    };
    // Before any thread starts, so that every one inherits the mask and only the wait below
    // takes SIGTERM and SIGINT.
    serve::stop_signal::block().map_err(|e| Failure::new("serve", format!("cannot block the stop signals: {e}")))?;
    let grace = Duration::from_secs(ctx.config.server.stop_grace_secs);
    let running = serve::start(setup).map_err(|e| Failure::new("serve", e))?;
    let report = json!({
        "submission": running.submission.map(|a| a.to_string()),
        "backbone": running.backbone.map(|a| a.to_string()),
        "http": running.http.map(|a| a.to_string()),
        "api": running.api.map(|a| a.to_string()),
        "portal": running.portal.map(|a| a.to_string()),
        "xdr": running.xdr.map(|a| a.to_string()),
        "dns": running.dns.map(|a| a.to_string()),
        "api_self_signed_sha256": running.api_self_signed,
        "recovered_in_flight": running.recovered.0,
        "quarantined_at_start": running.recovered.1,
        "set_aside_addresses": running.set_aside.iter().map(|(a, why)| json!({"address": a, "reason": why})).collect::<Vec<_>>(),
    });
    // On stderr whatever the output format: an operator must see these at every start.
    for (address, reason) in &running.set_aside {
        tracing::warn!("address {address:?} was set aside by an upgrade and receives no mail: {reason}");
    }
    if ctx.json {
        output::json(&report);
    } else {
        for (name, addr) in [
            ("submission", running.submission),
            ("backbone", running.backbone),
            ("CA publishing (HTTP)", running.http),
            ("EHR API (HTTPS)", running.api),
            ("portal (HTTPS)", running.portal),
            ("XDR (HTTPS, client certificates)", running.xdr),
            ("DNS publishing", running.dns),
        ] {
            if let Some(addr) = addr {
                println!("hisp: {name} listening on {addr}");
            }
        }
        if let (Some(_), Some(sha256)) = (running.api, &running.api_self_signed) {
            println!(
                "hisp: the API's TLS certificate is the node's own, self-signed (SHA-256 {sha256}): give clients \
                 `hisp http cert export` (curl --cacert), or set [http] tls_cert_file and tls_key_file"
            );
        }
        if running.recovered.0 > 0 {
            println!(
                "hisp: resumed {} recipient(s) left in flight by the last run ({} message(s) quarantined)",
                running.recovered.0, running.recovered.1
            );
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let signal =
        serve::stop_signal::wait().map_err(|e| Failure::new("serve", format!("waiting for a stop signal: {e}")))?;
    tracing::info!("{signal}: stopping (up to {} s for the messages being processed)", grace.as_secs());
    // A second stop signal during the grace time ends the process at once, as `kill -9` would.
    let _ = std::thread::Builder::new().name("stop-now".into()).spawn(|| {
        if let Ok(signal) = serve::stop_signal::wait() {
            tracing::warn!("{signal} again: exiting now (what was being processed is resumed at the next start)");
            std::process::exit(1);
        }
    });
    let stopped = running.stop(grace).map_err(|e| Failure::new("serve", format!("stopping: {e}")))?;
    tracing::info!(
        released = stopped.released,
        sessions_cut = stopped.sessions_cut,
        api_cut = stopped.api_cut,
        "stopped; {} recipient(s) still being processed went back to the queue; cut off: \
         {} SMTP session(s) receiving a message, {} API request(s) under way",
        stopped.released,
        stopped.sessions_cut,
        stopped.api_cut
    );
    Ok(())
}

pub(super) fn queue(ctx: &Context, command: QueueCommand) -> Result<(), Failure> {
    ctx.store()?;
    let queue = crate::store::queue::open(&ctx.db_path)?;
    match command {
        QueueCommand::List { all } => {
            let entries = queue.list(all)?;
            if ctx.json {
                output::json(&entries);
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .flat_map(|e| {
                        e.recipients.iter().map(move |r| {
                            vec![
                                e.id.to_string(),
                                format!("{:?}", e.flow).to_lowercase(),
                                iso8601(e.received_at),
                                if e.mail_from.is_empty() { "<>".into() } else { e.mail_from.clone() },
                                r.recipient.clone(),
                                if e.quarantined.is_some() { "quarantined".into() } else { r.status.to_string() },
                                r.attempts.to_string(),
                                r.last_error.clone().unwrap_or_default(),
                            ]
                        })
                    })
                    .collect();
                table(
                    &["ID", "FLOW", "RECEIVED", "FROM", "TO", "STATUS", "TRIES", "LAST"],
                    &rows,
                    "the queue is empty",
                );
            }
        }
        QueueCommand::Show { id } => {
            let entry = queue.show(id)?;
            if ctx.json {
                output::json(&entry);
            } else {
                println!(
                    "message {} ({:?}), {} bytes, received {}",
                    entry.id,
                    entry.flow,
                    entry.size,
                    iso8601(entry.received_at)
                );
                println!("from: {}\nmessage-id: {}", entry.mail_from, entry.message_id);
                if let Some(why) = &entry.quarantined {
                    println!("quarantined: {why}");
                }
                for r in &entry.recipients {
                    println!(
                        "  {} {} (tries {}, next {}): {}",
                        r.recipient,
                        r.status,
                        r.attempts,
                        iso8601(r.next_attempt_at),
                        r.last_error.clone().unwrap_or_default()
                    );
                }
            }
        }
        QueueCommand::Retry { id } => {
            let n = queue.retry(id, ctx.now())?;
            super::provision::done(
                ctx,
                &format!("message {id}: {n} recipient(s) due now"),
                json!({ "id": id, "due": n }),
            );
        }
        QueueCommand::Remove { id, yes } => {
            let entry = queue.show(id)?;
            let waiting: Vec<&str> = entry
                .recipients
                .iter()
                .filter(|r| !matches!(r.status.as_str(), "sent" | "delivered" | "failed"))
                .map(|r| r.recipient.as_str())
                .collect();
            let what = format!(
                "queue message {id} from {} ({} waiting: {})",
                entry.mail_from,
                waiting.len(),
                if waiting.is_empty() { "none".to_string() } else { waiting.join(", ") }
            );
            output::confirm(&what, yes)?;
            queue.remove(id)?;
            ctx.store()?.note("queue.remove", &format!("queue message #{id}"), "removed by the operator")?;
            super::provision::done(ctx, &format!("removed message {id}"), json!({ "id": id }));
        }
    }
    Ok(())
}
