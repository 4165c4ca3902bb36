//! `hisp share`: sharing documents by link (issue 24). So far its contacts: the people outside
//! the network a practice shares with.

use clap::Subcommand;
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::network::share_contacts::{self, ContactError, ContactRequest};
use crate::store::sharing::ShareContactRecord;

#[derive(Subcommand, Debug)]
pub(crate) enum ShareCommand {
    /// The contacts a practice shares documents with.
    #[command(subcommand)]
    Contact(ContactCommand),
}

#[derive(Subcommand, Debug)]
#[command(after_help = "A document is shared only with a contact the practice has added. The link goes to the \
    contact's e-mail address; the SMS code, when the practice asks for one, to their mobile (E.164).")]
pub(crate) enum ContactCommand {
    /// Add a contact (one per e-mail address and practice).
    Add {
        #[arg(long)]
        practice: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// The practice's contacts, by name.
    List {
        #[arg(long)]
        practice: String,
    },
    /// Change a contact: every field anew.
    Edit {
        id: i64,
        #[arg(long)]
        practice: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Remove a contact.
    Remove {
        id: i64,
        #[arg(long)]
        practice: String,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct Fields {
    #[arg(long)]
    name: String,
    #[arg(long)]
    organization: Option<String>,
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

pub(super) fn run(ctx: &Context, command: ShareCommand) -> Result<(), Failure> {
    let store = ctx.node_store()?;
    store.attach_fields(std::sync::Arc::new(ctx.kek()?))?;
    let now = ctx.now();
    let ShareCommand::Contact(command) = command;
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
