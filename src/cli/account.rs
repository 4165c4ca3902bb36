//! `hisp account`: the portal's accounts of a practice's members. An account is made without a
//! password: its one-time link to set one goes by e-mail through `[notify.email]` (or, with
//! `--print-link`, to the operator, who hands it over). Passwords are never sent or shown.

use clap::Subcommand;
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::clock::iso8601;
use crate::network::password_mail::{LinkMail, LinkPurpose};
use crate::network::signin::SignIn;
use crate::store::accounts::AccountRecord;
use crate::store::{AccountRole, NodeStore};

#[derive(Subcommand, Debug)]
#[command(after_help = "A member's link to set a password works once, for [portal] link_valid_secs (72 hours). \
    Five failed sign-ins in a row lock an account for 15 minutes, doubling with each further failure; \
    `unlock` lifts the lock, and so does a password set by a link.")]
pub(crate) enum AccountCommand {
    /// A new member of a practice; a link to set the password is e-mailed to them.
    Add {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
        /// The member's name, as the practice's people know them.
        #[arg(long, value_parser = super::output::plain_line)]
        name: String,
        /// Where the link to set a password is sent (also their sign-in name).
        #[arg(long)]
        email: String,
        /// clinician, staff or admin (an admin manages the practice in the portal).
        #[arg(long, default_value = "clinician", value_parser = ["clinician", "staff", "admin"])]
        role: String,
        /// Print the link instead of e-mailing it (give it to the person yourself).
        #[arg(long)]
        print_link: bool,
    },
    /// The accounts of a practice: role, two-factor, lock.
    List {
        /// The practice's name (as written, any case) or one of its Direct domains.
        #[arg(long)]
        practice: String,
    },
    /// A new one-time link to set the account's password (the earlier ones stop working).
    Link {
        /// The e-mail address of the account.
        email: String,
        /// Print the link instead of e-mailing it (to hand it over another way).
        #[arg(long)]
        print_link: bool,
    },
    /// Lifts the lock that failed sign-ins put on the account.
    Unlock {
        /// The account's e-mail address.
        email: String,
    },
    /// Turns two-factor sign-in off for an account that lost its phone and its recovery codes
    /// (check who asks first); its sessions end. Where its practice requires two factors, it
    /// enrols again at its next sign-in.
    ResetTwoFactor {
        /// The account's e-mail address.
        email: String,
    },
}

pub(super) fn run(ctx: &Context, command: AccountCommand) -> Result<(), Failure> {
    let store = ctx.node_store()?;
    store.attach_fields(std::sync::Arc::new(ctx.kek()?))?;
    let now = ctx.now();
    let signing = SignIn { store, now };
    match command {
        AccountCommand::Add { practice, name, email, role, print_link } => {
            let record = store.practice(&practice)?;
            let role =
                AccountRole::parse(&role).ok_or_else(|| Failure::usage("--role is clinician, staff or admin"))?;
            let account = signing
                .add_member(record.id, role, &name, &email)
                .map_err(|errors| Failure::usage(crate::network::invitee::describe(&errors)))?;
            let sent = give_link(ctx, store, &account, LinkPurpose::Welcome, print_link)?;
            report(ctx, &account, &sent);
        }
        AccountCommand::List { practice } => {
            let record = store.practice(&practice)?;
            let mut rows = Vec::new();
            let mut listed = Vec::new();
            for account in store.members(record.id)? {
                let state = store.sign_in_state(account.id)?;
                let locked = state.locked_until.filter(|until| *until > now);
                rows.push(vec![
                    account.id.to_string(),
                    account.name.clone(),
                    account.email.clone(),
                    account.role.to_string(),
                    if state.totp_enabled { "on" } else { "off" }.into(),
                    if state.password_hash.is_none() { "not set".into() } else { "set".to_string() },
                    locked.map(iso8601).unwrap_or_default(),
                ]);
                listed.push(json!({
                    "account": account,
                    "two_factor": state.totp_enabled,
                    "password_set": state.password_hash.is_some(),
                    "locked_until": locked,
                    "failed_sign_ins": state.failed_signins,
                }));
            }
            if ctx.json {
                output::json(
                    &json!({ "practice": record.name, "two_factor_required": record.two_factor_required, "accounts": listed }),
                );
            } else {
                table(&["ID", "NAME", "E-MAIL", "ROLE", "2FA", "PASSWORD", "LOCKED UNTIL"], &rows, "no accounts");
            }
        }
        AccountCommand::Link { email, print_link } => {
            let account = by_email(store, &email)?;
            let sent = give_link(ctx, store, &account, LinkPurpose::Reset, print_link)?;
            report(ctx, &account, &sent);
        }
        AccountCommand::Unlock { email } => {
            let account = by_email(store, &email)?;
            store.unlock_account(account.id)?;
            done(ctx, &account, "unlocked");
        }
        AccountCommand::ResetTwoFactor { email } => {
            let account = by_email(store, &email)?;
            store.reset_totp(account.id)?;
            done(ctx, &account, "two-factor sign-in off; sessions ended");
        }
    }
    Ok(())
}

fn by_email(store: &dyn NodeStore, email: &str) -> Result<AccountRecord, Failure> {
    store
        .account_by_email(&email.trim().to_lowercase())?
        .ok_or_else(|| Failure::new("not-found", format!("no account signs in with {email}")))
}

/// Where the link went: e-mailed to the account, or the link itself for the operator.
enum Given {
    Emailed,
    Printed(String),
}

fn give_link(
    ctx: &Context,
    store: &dyn NodeStore,
    account: &AccountRecord,
    purpose: LinkPurpose,
    print_link: bool,
) -> Result<Given, Failure> {
    let config = &ctx.config;
    let now = ctx.now();
    let mailer = if print_link {
        None
    } else {
        let resolver = Box::new(crate::dns::DnsClient::new(ctx.dns_config(&[])?));
        let mailer = crate::network::password_mail::mailer(config, resolver).map_err(|e| Failure::new("config", e))?;
        Some(mailer.ok_or_else(|| {
            Failure::usage(format!(
                "the account #{} was made, but [notify.email] is not configured to e-mail its link: \
                 run `hisp account link {} --print-link` and hand the link over yourself",
                account.id, account.email
            ))
        })?)
    };
    let mail = LinkMail::issue(&SignIn { store, now }, config, account, purpose)?;
    let Some(mailer) = mailer else { return Ok(Given::Printed(mail.link)) };
    mailer
        .send(&mail, &account.email, now)
        .map_err(|e| Failure::new("notify", format!("the link could not be e-mailed to {}: {e}", account.email)))?;
    Ok(Given::Emailed)
}

fn report(ctx: &Context, account: &AccountRecord, given: &Given) {
    let link = match given {
        Given::Printed(link) => Some(link.as_str()),
        Given::Emailed => None,
    };
    if ctx.json {
        output::json(&json!({ "account": account, "link_emailed": link.is_none(), "link": link }));
        return;
    }
    println!("account #{} {} <{}> ({})", account.id, account.name, account.email, account.role);
    match link {
        Some(link) => println!("its one-time link to set a password (give it to them yourself):\n{link}"),
        None => println!("a one-time link to set a password was e-mailed to {}", account.email),
    }
}

fn done(ctx: &Context, account: &AccountRecord, what: &str) {
    if ctx.json {
        output::json(&json!({ "account": account, "done": what }));
    } else {
        println!("account #{} <{}>: {what}", account.id, account.email);
    }
}
