//! `hisp contacts`: the address book. A practice's connected organizations (by accepted
//! invitations) and their profiles, the members the practice lists for them to see, and each
//! account's own contacts among the listed members of connected practices.

use clap::Subcommand;
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::address::DirectAddress;
use crate::clock::iso8601;
use crate::network::address_book::search;
use crate::store::address_book::{ListingRecord, Member, Viewer};

#[derive(Subcommand, Debug)]
pub(crate) enum ContactsCommand {
    /// The practices and patients a practice is connected to (or, with --account, the practices
    /// an account's practice or a patient is connected to).
    Orgs {
        #[command(flatten)]
        who: Who,
    },
    /// A connected practice's profile: its details and the members it lists.
    Profile {
        /// The connection's number (from `hisp contacts orgs`).
        connection: i64,
        #[command(flatten)]
        who: Who,
    },
    /// The practice's members (accounts of its clinicians and staff).
    Members {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
    /// What the practice lists for connected practices and patients to see.
    Listed {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
    /// List a member for connected practices and patients: an account, or one of the practice's
    /// Direct addresses (a user's, or a shared inbox).
    Expose {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
        /// A member to list (their account id)...
        #[arg(long, conflicts_with = "address", required_unless_present = "address")]
        account: Option<i64>,
        /// ...or one of the practice's Direct addresses (a shared inbox).
        #[arg(long)]
        address: Option<String>,
        /// What others see beside it, e.g. "Referrals inbox".
        #[arg(long)]
        label: Option<String>,
    },
    /// Stop listing a member (it leaves everyone's contacts).
    Hide {
        /// The listing's id (`hisp contacts listed`).
        listing: i64,
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
    /// An account's contacts, by name; --search finds by the beginnings of words.
    List {
        /// The member whose contacts to show (their account id).
        #[arg(long)]
        account: i64,
        /// Only those whose words begin with these.
        #[arg(long)]
        search: Option<String>,
    },
    /// Add a listed member of a connected practice to an account's contacts.
    Add {
        /// The listing to add (from `hisp contacts profile`).
        listing: i64,
        /// The member adding it (their account id).
        #[arg(long)]
        account: i64,
    },
    /// Remove a member from an account's contacts.
    Remove {
        /// The listing to remove from the member's contacts.
        listing: i64,
        /// The member (their account id).
        #[arg(long)]
        account: i64,
    },
}

/// Whose side to look from: a practice, or an account (a patient's, or a practice member's).
#[derive(clap::Args, Debug)]
pub(crate) struct Who {
    /// As this practice sees them: its name (as written, any case) or one of its Direct domains...
    #[arg(long, conflicts_with = "account", required_unless_present = "account")]
    practice: Option<String>,
    /// ...or as this account sees them (a patient's, or a member's: their account id).
    #[arg(long)]
    account: Option<i64>,
}

impl Who {
    fn viewer(&self, store: &dyn crate::store::NodeStore) -> Result<Viewer, Failure> {
        match (&self.practice, self.account) {
            (Some(name), _) => Ok(Viewer::Practice(store.practice(name)?.id)),
            (None, Some(id)) => {
                let account = store.account(id)?;
                Ok(match account.practice_id {
                    Some(practice) => Viewer::Practice(practice),
                    None => Viewer::Patient(account.id),
                })
            }
            (None, None) => Err(Failure::usage("give --practice or --account")),
        }
    }
}

pub(super) fn run(ctx: &Context, command: ContactsCommand) -> Result<(), Failure> {
    let store = ctx.node_store()?;
    store.attach_fields(std::sync::Arc::new(ctx.kek()?))?;
    let practice_id = |name: &str| -> Result<i64, Failure> { Ok(store.practice(name)?.id) };
    match command {
        ContactsCommand::Orgs { who } => {
            let list = match who.viewer(store)? {
                Viewer::Practice(id) => store.connections(id)?,
                Viewer::Patient(id) => store.patient_connections(id)?,
            };
            if ctx.json {
                output::json(&list);
                return Ok(());
            }
            let rows: Vec<Vec<String>> =
                list.iter().map(|c| vec![c.id.to_string(), c.kind.into(), c.name.clone(), iso8601(c.since)]).collect();
            table(&["CONNECTION", "KIND", "NAME", "SINCE"], &rows, "not connected to anyone yet");
        }
        ContactsCommand::Profile { connection, who } => {
            let profile = store.profile(who.viewer(store)?, connection)?;
            if ctx.json {
                output::json(&profile);
                return Ok(());
            }
            println!("{}", profile.name);
            if let Some(details) = &profile.details {
                for field in ["address", "city", "state", "zip", "phone", "fax", "ehr", "npi"] {
                    if let Some(value) = details[field].as_str() {
                        println!("  {field:<8} {value}");
                    }
                }
            }
            for domain in &profile.domains {
                println!("  domain   {domain}");
            }
            listings(&profile.members, "it lists no members");
        }
        ContactsCommand::Members { practice } => {
            let list = store.members(practice_id(&practice)?)?;
            if ctx.json {
                output::json(&list);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|a| vec![a.id.to_string(), a.name.clone(), a.email.clone(), a.role.to_string()])
                .collect();
            table(&["ACCOUNT", "NAME", "E-MAIL", "ROLE"], &rows, "no accounts (invite colleague-here)");
        }
        ContactsCommand::Listed { practice } => {
            let list = store.listings(practice_id(&practice)?)?;
            if ctx.json {
                output::json(&list);
                return Ok(());
            }
            listings(&list, "nothing listed: `hisp contacts expose` lists a member");
        }
        ContactsCommand::Expose { practice, account, address, label } => {
            let label = label.as_deref().map(str::trim).filter(|l| !l.is_empty());
            if label.is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control)) {
                return Err(Failure::usage("--label: at most 100 characters, no line breaks"));
            }
            let address = address.map(|a| DirectAddress::parse(a.trim())).transpose()?;
            let member = match (&account, &address) {
                (Some(id), _) => Member::Account(*id),
                (None, Some(a)) => Member::Address(a),
                (None, None) => return Err(Failure::usage("give --account or --address")),
            };
            let listed = store.list_member(practice_id(&practice)?, member, label)?;
            done(ctx, &listed, "listed");
        }
        ContactsCommand::Hide { listing, practice } => {
            store.unlist_member(practice_id(&practice)?, listing)?;
            if ctx.json {
                output::json(&json!({ "hidden": listing }));
            } else {
                println!("listing #{listing} hidden");
            }
        }
        ContactsCommand::List { account, search: query } => {
            store.account(account)?;
            let list = search(store.contacts(account)?, query.as_deref().unwrap_or(""));
            if ctx.json {
                output::json(&list);
                return Ok(());
            }
            listings(&list, "no contacts");
        }
        ContactsCommand::Add { listing, account } => {
            let added = store.add_contact(account, listing)?;
            done(ctx, &added, "added to the contacts of");
        }
        ContactsCommand::Remove { listing, account } => {
            store.remove_contact(account, listing)?;
            if ctx.json {
                output::json(&json!({ "removed": listing, "account": account }));
            } else {
                println!("listing #{listing} removed from the contacts of account #{account}");
            }
        }
    }
    Ok(())
}

fn done(ctx: &Context, listing: &ListingRecord, what: &str) {
    if ctx.json {
        output::json(listing);
    } else {
        println!("{what}: listing #{} {} ({})", listing.id, listing.name, listing.practice);
    }
}

fn listings(list: &[ListingRecord], empty: &str) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|l| {
            vec![
                l.id.to_string(),
                l.name.clone(),
                l.label.clone().unwrap_or_default(),
                l.role.map(|r| r.to_string()).unwrap_or_else(|| l.kind.clone()),
                l.practice.clone(),
            ]
        })
        .collect();
    table(&["LISTING", "NAME", "LABEL", "ROLE", "PRACTICE"], &rows, empty);
}
