//! `hisp share`: sharing documents by link (issue 24): the contacts a practice shares with (people
//! outside the network), and the shares themselves: make one (its link e-mailed through
//! `[notify.email]`), list them, show one with its trail, revoke a link, send a fresh one.

use clap::Subcommand;
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::network::share_contacts::{self, ContactError, ContactRequest};
use crate::network::shares::{self, Made, ShareError, Source};
use crate::store::accounts::AccountRecord;
use crate::store::sharing::{ShareContactRecord, ShareRecord};
use crate::store::{NodeStore, PracticeRecord};

#[derive(Subcommand, Debug)]
pub(crate) enum ShareCommand {
    /// The contacts a practice shares documents with.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Share a document (one of the practice's, or a file) with one of its contacts, as a member
    /// whose role the practice lets share; the link is e-mailed to the contact.
    #[command(after_help = "The e-mail holds the practice's name and the link, nothing about the document. \
        Unused, the link expires after 24 hours; its first use (after the practice's check) binds it to \
        that browser until revoked.")]
    Create {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
        /// The contact's id (`hisp share contact list`).
        #[arg(long)]
        contact: i64,
        /// The e-mail address of the member sharing.
        #[arg(long)]
        by: String,
        /// One of the practice's documents (its id, as `GET /v1/documents` lists them)...
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        document: Option<i64>,
        /// ...or a file.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The file's media type (read from its bytes for PDF and XML).
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
    },
    /// The practice's shares, newest first, with where each stands.
    List {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
    /// One share and its trail: sent, opened, checked, viewed, downloaded, revoked.
    Show {
        /// The share's id (`hisp share list`).
        id: i64,
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
    /// Revoke a share's link: it no longer opens the document, even where it was opened before.
    Revoke {
        /// The share's id (`hisp share list`).
        id: i64,
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
        /// The e-mail address of the member revoking it.
        #[arg(long)]
        by: String,
    },
    /// Send a fresh link (the earlier one stops working): a new 24 hours and a new check.
    Resend {
        /// The share's id (`hisp share list`).
        id: i64,
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
        /// The e-mail address of the member sending it.
        #[arg(long)]
        by: String,
    },
}

#[derive(Subcommand, Debug)]
#[command(after_help = "A document is shared only with a contact the practice has added. The link goes to the \
    contact's e-mail address; the SMS code, when the practice asks for one, to their mobile (E.164).")]
pub(crate) enum ContactCommand {
    /// Add a contact (one per e-mail address and practice).
    Add {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// The practice's contacts, by name.
    List {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
    /// Change a contact: every field anew.
    Edit {
        /// The contact's id (`hisp share contact list`).
        id: i64,
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Remove a contact, and the documents shared with them (their links stop working).
    Remove {
        /// The contact's id (`hisp share contact list`).
        id: i64,
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct Fields {
    /// The contact's name.
    #[arg(long)]
    name: String,
    /// The organization the contact is with (a law firm, a school).
    #[arg(long)]
    organization: Option<String>,
    /// Where the links of shared documents go.
    #[arg(long)]
    email: String,
    /// E.164, e.g. +15555550123 (for the SMS code).
    #[arg(long)]
    mobile: Option<String>,
    /// YYYY-MM-DD (for a patient, when the practice checks the date of birth).
    #[arg(long)]
    date_of_birth: Option<String>,
}

impl Fields {
    fn request(self) -> ContactRequest {
        ContactRequest {
            name: self.name,
            organization: self.organization,
            email: self.email,
            mobile: self.mobile,
            date_of_birth: self.date_of_birth,
        }
    }
}

fn failure(e: ContactError) -> Failure {
    match e {
        ContactError::Invalid(_) => Failure::usage(e.to_string()),
        ContactError::Store(e) => e.into(),
    }
}

fn share_failure(e: ShareError) -> Failure {
    match e {
        ShareError::Forbidden(_) | ShareError::Invalid { .. } => Failure::usage(e.to_string()),
        ShareError::Store(e) => e.into(),
        e @ ShareError::Kek(_) => Failure::new("kek", e.to_string()),
    }
}

/// The member of `practice` with this e-mail address.
fn member(store: &dyn NodeStore, practice: &PracticeRecord, email: &str) -> Result<AccountRecord, Failure> {
    let account = store.account_by_email(&email.trim().to_lowercase())?;
    account
        .filter(|a| a.practice_id == Some(practice.id))
        .ok_or_else(|| Failure::usage(format!("--by: {email} is not a member of {}", practice.name)))
}

/// The mailer for links; refused before anything is made when there is none.
fn link_mailer(ctx: &Context) -> Result<crate::network::password_mail::Mailer, Failure> {
    let resolver = Box::new(crate::dns::DnsClient::new(ctx.dns_config(&[])?));
    crate::network::password_mail::mailer(&ctx.config, resolver)
        .map_err(|e| Failure::new("config", e))?
        .ok_or_else(|| Failure::usage("[notify.email] is not configured, so no link can reach a contact"))
}

fn email(ctx: &Context, mailer: &crate::network::password_mail::Mailer, made: &Made) -> Result<(), Failure> {
    shares::email_link(mailer, &ctx.config, made, ctx.now()).map_err(|e| {
        Failure::new(
            "notify",
            format!(
                "share #{} is made, but its link could not be e-mailed to {}: {e}. Send a fresh one with \
                 `hisp share resend {}`",
                made.share.id, made.share.contact_email, made.share.id
            ),
        )
    })
}

fn report(ctx: &Context, share: &ShareRecord, emailed: bool) {
    if ctx.json {
        output::json(&json!({ "share": shares::report(share, ctx.now()), "link_emailed": emailed }));
        return;
    }
    println!(
        "share #{} {} with {} <{}>: {}",
        share.id,
        share.filename,
        share.contact_name,
        share.contact_email,
        shares::state(share, ctx.now())
    );
    if emailed {
        println!("its link is e-mailed to {}", share.contact_email);
    }
}

fn run_share(ctx: &Context, store: &dyn NodeStore, command: ShareCommand, now: i64) -> Result<(), Failure> {
    match command {
        ShareCommand::Contact(command) => run_contact(ctx, store, command, now)?,
        ShareCommand::Create { practice, contact, by, document, file, content_type } => {
            let practice = store.practice(&practice)?;
            let member = member(store, &practice, &by)?;
            let mailer = link_mailer(ctx)?;
            let (name, bytes) = match &file {
                Some(path) => {
                    let meta =
                        std::fs::metadata(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
                    if meta.len() > shares::MAX_UPLOAD_BYTES as u64 {
                        let mb = shares::MAX_UPLOAD_BYTES >> 20;
                        return Err(Failure::usage(format!("{}: larger than {mb} MiB", path.display())));
                    }
                    let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
                    (path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), bytes)
                }
                None => (String::new(), Vec::new()),
            };
            let source = match document {
                Some(id) => Source::Document(id),
                None => Source::Upload { filename: &name, content_type: &content_type, content: &bytes },
            };
            let kek = ctx.kek()?;
            let made = shares::create(store, &kek, &practice, &member, contact, source, now).map_err(share_failure)?;
            email(ctx, &mailer, &made)?;
            report(ctx, &made.share, true);
        }
        ShareCommand::List { practice } => {
            let practice = store.practice(&practice)?;
            let list = store.shares(practice.id)?;
            if ctx.json {
                let list: Vec<_> = list.iter().map(|s| shares::report(s, now)).collect();
                output::json(&json!({ "shares": list }));
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        s.filename.clone(),
                        s.contact_name.clone(),
                        s.shared_by_name.clone(),
                        crate::clock::iso8601(s.link_sent_at),
                        shares::state(s, now).to_string(),
                    ]
                })
                .collect();
            table(&["ID", "FILE", "CONTACT", "SHARED BY", "LINK SENT", "STATE"], &rows, "nothing shared");
        }
        ShareCommand::Show { id, practice } => {
            let practice = store.practice(&practice)?;
            let share = store.share(practice.id, id)?;
            let trail = store.share_events(id)?;
            if ctx.json {
                output::json(&json!({ "share": shares::report(&share, now), "trail": trail }));
                return Ok(());
            }
            report(ctx, &share, false);
            let rows: Vec<Vec<String>> = trail
                .iter()
                .map(|e| vec![crate::clock::iso8601(e.at), e.event.to_string(), e.client.clone()])
                .collect();
            table(&["WHEN", "EVENT", "CLIENT"], &rows, "no events");
        }
        ShareCommand::Revoke { id, practice, by } => {
            let practice = store.practice(&practice)?;
            let member = member(store, &practice, &by)?;
            let share = shares::revoke(store, &practice, &member, id, now).map_err(share_failure)?;
            report(ctx, &share, false);
        }
        ShareCommand::Resend { id, practice, by } => {
            let practice = store.practice(&practice)?;
            let member = member(store, &practice, &by)?;
            let mailer = link_mailer(ctx)?;
            let made = shares::resend(store, &practice, &member, id, now).map_err(share_failure)?;
            email(ctx, &mailer, &made)?;
            report(ctx, &made.share, true);
        }
    }
    Ok(())
}

pub(super) fn run(ctx: &Context, command: ShareCommand) -> Result<(), Failure> {
    let store = ctx.node_store()?;
    store.attach_fields(std::sync::Arc::new(ctx.kek()?))?;
    run_share(ctx, store, command, ctx.now())
}

fn run_contact(ctx: &Context, store: &dyn NodeStore, command: ContactCommand, now: i64) -> Result<(), Failure> {
    match command {
        ContactCommand::Add { practice, fields } => {
            let practice = store.practice(&practice)?;
            let added = share_contacts::add(store, practice.id, &fields.request(), now).map_err(failure)?;
            one(ctx, &added);
        }
        ContactCommand::List { practice } => {
            let practice = store.practice(&practice)?;
            let contacts = store.share_contacts(practice.id)?;
            if ctx.json {
                output::json(&json!({ "contacts": contacts }));
                return Ok(());
            }
            let rows: Vec<Vec<String>> = contacts
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.name.clone(),
                        c.organization.clone().unwrap_or_default(),
                        c.email.clone(),
                        c.mobile.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(&["ID", "NAME", "ORGANIZATION", "E-MAIL", "MOBILE"], &rows, "no contacts");
        }
        ContactCommand::Edit { id, practice, fields } => {
            let practice = store.practice(&practice)?;
            let changed = share_contacts::update(store, practice.id, id, &fields.request(), now).map_err(failure)?;
            one(ctx, &changed);
        }
        ContactCommand::Remove { id, practice } => {
            let practice = store.practice(&practice)?;
            store.remove_share_contact(practice.id, id)?;
            if ctx.json {
                output::json(&json!({ "removed": id }));
            } else {
                println!("contact #{id} removed");
            }
        }
    }
    Ok(())
}

fn one(ctx: &Context, c: &ShareContactRecord) {
    if ctx.json {
        output::json(c);
        return;
    }
    let organization = c.organization.as_deref().map(|o| format!(", {o}")).unwrap_or_default();
    let mobile = c.mobile.as_deref().map(|m| format!(", mobile {m}")).unwrap_or_default();
    println!("contact #{} {}{organization} <{}>{mobile}", c.id, c.name, c.email);
}
