//! `hisp secure`: secure messages between accounts of connected parties, kept on this node
//! (sealed at rest): send, reply, the inbox and sent boxes, read a message and save its files.

use base64::Engine;
use clap::Subcommand;
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::clock::iso8601;
use crate::network::messages::{self, FileRequest, MessageError, SecureRequest};
use crate::store::secure::MailboxItem;

#[derive(Subcommand, Debug)]
pub(crate) enum SecureCommand {
    /// Write to accounts of your practice, of connected practices, or connected patients.
    Send {
        /// The account writing.
        #[arg(long)]
        account: i64,
        /// A recipient account (repeat for more).
        #[arg(long = "to", required = true)]
        to: Vec<i64>,
        /// The message's subject (no PHI is needed here: the recipient is told only that a message waits).
        #[arg(long)]
        subject: String,
        /// The text (read from this file; "-" for standard input).
        #[arg(long, value_name = "FILE")]
        body_file: Option<std::path::PathBuf>,
        /// A file to attach (repeat for more).
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<std::path::PathBuf>,
        /// Send as the practice: one of its Direct addresses (a shared inbox) shown as the sender.
        #[arg(long, value_name = "ADDRESS")]
        as_practice: Option<String>,
    },
    /// Answer a message: to its sender (or, answering your own, to its recipients).
    Reply {
        /// The secure message to answer.
        message: i64,
        /// The member answering (their account id).
        #[arg(long)]
        account: i64,
        /// The reply's text, from this file (default: standard input).
        #[arg(long, value_name = "FILE")]
        body_file: Option<std::path::PathBuf>,
    },
    /// What reached the account, newest first.
    Inbox {
        /// Whose inbox (their account id).
        #[arg(long)]
        account: i64,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// What the account sent, newest first.
    Sent {
        /// Whose sent messages (their account id).
        #[arg(long)]
        account: i64,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Read a message (marking it read); --save writes its attachments into a directory.
    Read {
        /// The secure message's id.
        message: i64,
        /// The member reading (their account id).
        #[arg(long)]
        account: i64,
        /// Save its attachments into this directory (files 0600).
        #[arg(long, value_name = "DIR")]
        save: Option<std::path::PathBuf>,
    },
}

pub(super) fn run(ctx: &Context, command: SecureCommand) -> Result<(), Failure> {
    let store = ctx.node_store()?;
    store.attach_fields(std::sync::Arc::new(ctx.kek()?))?;
    let now = ctx.now();
    match command {
        SecureCommand::Send { account, to, subject, body_file, attach, as_practice } => {
            let mut attachments = Vec::new();
            for path in &attach {
                let bytes = std::fs::read(path).map_err(|e| Failure::new("io", format!("{}: {e}", path.display())))?;
                let filename = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                attachments.push(FileRequest {
                    filename,
                    content_type: "application/octet-stream".into(),
                    content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                });
            }
            let request = SecureRequest { to, subject, body: body(body_file)?, attachments, as_practice };
            let id = messages::send(store, account, &request, now).map_err(failure)?;
            sent(ctx, id);
        }
        SecureCommand::Reply { message, account, body_file } => {
            let id = messages::reply(store, account, message, &body(body_file)?, &[], now).map_err(failure)?;
            sent(ctx, id);
        }
        SecureCommand::Inbox { account, limit } => listing(ctx, &store.secure_inbox(account, limit)?),
        SecureCommand::Sent { account, limit } => listing(ctx, &store.secure_sent(account, limit)?),
        SecureCommand::Read { message, account, save } => {
            let read = store.secure_message(account, message, now)?;
            if let Some(dir) = &save {
                std::fs::create_dir_all(dir).map_err(|e| Failure::new("io", format!("{}: {e}", dir.display())))?;
                for a in &read.attachments {
                    let (_, content) = store.secure_attachment(account, message, a.id)?;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(content.as_bytes())
                        .map_err(|e| Failure::new("store", e.to_string()))?;
                    // Checked when it was sent; checked again before it names a file.
                    let plain = messages::plain_filename(&a.filename);
                    let name = if plain { a.filename.clone() } else { format!("attachment-{}", a.id) };
                    let path = dir.join(name);
                    output::write_output(Some(&path), &bytes)?;
                }
            }
            if ctx.json {
                output::json(&read);
                return Ok(());
            }
            let shown = read.as_address.as_deref().map(|a| format!(" (as {a})")).unwrap_or_default();
            println!("message #{} from {}{shown}, {}", read.id, read.from.name, iso8601(read.created_at));
            let to: Vec<&str> = read.to.iter().map(|p| p.name.as_str()).collect();
            println!("to: {}\nsubject: {}\n\n{}", to.join(", "), read.subject, read.body);
            for a in &read.attachments {
                println!("attachment #{}: {} ({}, {} bytes)", a.id, a.filename, a.content_type, a.size);
            }
        }
    }
    Ok(())
}

fn body(file: Option<std::path::PathBuf>) -> Result<String, Failure> {
    match file {
        None => Ok(String::new()),
        Some(path) => {
            let bytes = output::read_input(Some(&path))?;
            String::from_utf8(bytes).map_err(|_| Failure::usage("the body is not UTF-8 text"))
        }
    }
}

fn failure(e: MessageError) -> Failure {
    match e {
        MessageError::Invalid(_) => Failure::usage(e.to_string()),
        MessageError::Store(e) => e.into(),
    }
}

fn sent(ctx: &Context, id: i64) {
    if ctx.json {
        output::json(&json!({ "message": id }));
    } else {
        println!("sent message #{id}");
    }
}

fn listing(ctx: &Context, items: &[MailboxItem]) {
    if ctx.json {
        output::json(items);
        return;
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                if m.read_at.is_some() { "read".into() } else { "new".into() },
                m.as_address.clone().unwrap_or_else(|| m.from.name.clone()),
                m.subject.clone(),
                m.attachments.to_string(),
                iso8601(m.created_at),
            ]
        })
        .collect();
    table(&["MESSAGE", "STATE", "FROM", "SUBJECT", "FILES", "DATE"], &rows, "no messages");
}
