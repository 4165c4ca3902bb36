//! `hisp invite`: a practice invites patients and colleagues who have no Direct address, by
//! e-mail or fax, and follows its invitations. The running node (`hisp serve`) sends the notices,
//! the reminders (days 3, 15 and 30) and expires invitations after day 30.

use clap::{Args, Subcommand};

use super::output::{self, table};
use super::{Context, Failure};
use crate::clock::iso8601;
use crate::network::accept::{AcceptError, Accepted, Accepting, ExistingAcceptance, PracticeDetails, Registration};
use crate::network::invitations::{Invitations, Status, Summary};
use crate::network::invitee::InviteeRequest;
use crate::network::notices::masked;

#[derive(Subcommand, Debug)]
pub(crate) enum InviteCommand {
    /// Invite someone: a patient (with their date of birth, which they must enter to register),
    /// a colleague joining the practice (clinician or staff), or a colleague at another practice.
    ///
    /// The invitation carries the practice's name, a code (like 7KQ4-M2XD-9R0T) and a link; the
    /// code goes only to the invitee. Inviting the same person again replaces their pending
    /// invitation. A practice sends at most [invitations] per_practice_per_hour in an hour.
    #[command(after_help = "Examples:\n  hisp invite send --practice elm.example.org --name 'Ada Lovelace' \
        --email ada@example.org --relationship patient --date-of-birth 1970-05-17\n  \
        hisp invite send --practice elm.example.org --name 'Dr. Grace Hopper' --fax +15555550123 \
        --relationship colleague-elsewhere")]
    Send(SendArgs),
    /// The practice's invitations, newest first, with where each stands.
    List {
        #[command(flatten)]
        practice: PracticeArg,
        /// Only those in this state: sent, reminded, accepted, expired, cancelled, locked,
        /// notification-failed.
        #[arg(long, value_name = "STATE")]
        status: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One invitation and each of its notices (when sent, where, or why it failed).
    Show {
        /// The invitation's id (`hisp invite list`).
        id: i64,
        #[command(flatten)]
        practice: PracticeArg,
    },
    /// Send a reminder now (pending invitations; not while the last notice is still on its way).
    Remind {
        /// The invitation's id (`hisp invite list`).
        id: i64,
        #[command(flatten)]
        practice: PracticeArg,
    },
    /// Cancel a pending invitation: its code stops working and no reminder follows.
    Cancel {
        /// The invitation's id (`hisp invite list`).
        id: i64,
        #[command(flatten)]
        practice: PracticeArg,
    },
    /// What a code's invitation asks of its invitee: the inviting practice and the fields needed.
    Preview {
        /// The invitation code (7KQ4-M2XD-9R0T; any case).
        code: String,
    },
    /// Accept an invitation with its code: register a new account (the password on standard
    /// input), or with --existing accept it with an account that exists.
    ///
    /// A patient enters the date of birth the practice gave (the third wrong one locks the
    /// invitation); a colleague joining the practice confirms its name; a colleague at another
    /// practice gives that practice's details (a JSON file: name, address, city, state, zip,
    /// phone, fax, ehr, npi). A code works once; accepting again with the same account answers
    /// the same.
    Accept(AcceptArgs),
    /// Correct a patient's date of birth: the invitation is cancelled and a new one, with a new
    /// code, goes to the same person.
    Edit {
        /// The invitation's id (`hisp invite list`).
        id: i64,
        #[command(flatten)]
        practice: PracticeArg,
        /// The patient's corrected date of birth (YYYY-MM-DD): a new code is sent.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date_of_birth: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct PracticeArg {
    /// The practice (its name or Direct domain).
    #[arg(long)]
    practice: String,
}

#[derive(Args, Debug)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    practice: PracticeArg,
    /// The invitee's name (at most 200 characters).
    #[arg(long)]
    name: String,
    /// Where the invitation goes: an e-mail address...
    #[arg(long, conflicts_with = "fax", required_unless_present = "fax")]
    email: Option<String>,
    /// ...or a fax number in E.164 form (+15555550123).
    #[arg(long)]
    fax: Option<String>,
    /// patient, colleague-here (joins this practice) or colleague-elsewhere.
    #[arg(long)]
    relationship: String,
    /// For colleague-here: clinician or staff.
    #[arg(long)]
    role: Option<String>,
    /// For a patient: the date of birth they must enter to register.
    #[arg(long, value_name = "YYYY-MM-DD")]
    date_of_birth: Option<String>,
    /// The practice user sending it (one of its Direct addresses); by default the CLI's user.
    #[arg(long, value_name = "ADDRESS")]
    from: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct AcceptArgs {
    /// The code as the notice shows it (XXXX-XXXX-XXXX).
    code: String,
    /// Read the account's password from standard input (required).
    #[arg(long)]
    password_stdin: bool,
    /// Accept with the account that signs in with --email, instead of registering a new one.
    #[arg(long)]
    existing: bool,
    /// The account's e-mail address (by default, for a new account, where the invitation went).
    #[arg(long)]
    email: Option<String>,
    /// The new account's name (by default the one the practice gave).
    #[arg(long)]
    name: Option<String>,
    /// A patient's date of birth, exactly as the practice gave it.
    #[arg(long, value_name = "YYYY-MM-DD")]
    date_of_birth: Option<String>,
    /// A colleague joining the inviting practice: its name, to confirm it is theirs.
    #[arg(long, value_name = "NAME")]
    confirm_practice: Option<String>,
    /// A colleague at another practice: that practice's details (JSON).
    #[arg(long, value_name = "FILE")]
    practice_file: Option<std::path::PathBuf>,
    /// A colleague at another practice: clinician (default) or staff.
    #[arg(long)]
    role: Option<String>,
}

pub(super) fn run(ctx: &Context, command: InviteCommand) -> Result<(), Failure> {
    let store = ctx.node_store()?;
    store.attach_fields(std::sync::Arc::new(ctx.kek()?))?;
    let invitations = Invitations { store, config: &ctx.config.invitations, now: ctx.now() };
    let accepting = Accepting { store, now: ctx.now() };
    match command {
        InviteCommand::Preview { code } => {
            let preview = accepting.preview(&code).map_err(accept_failure)?;
            if ctx.json {
                output::json(&preview);
            } else {
                let role = preview.role.map(|r| format!(" ({r})")).unwrap_or_default();
                println!("{} invites you as {}{role}", preview.practice, preview.relationship);
                println!("  to register, give: password, {}", preview.needs.join(", "));
                println!("  expires: {}", iso8601(preview.expires_at));
            }
        }
        InviteCommand::Accept(args) => {
            let accepted = accept(&accepting, args)?;
            if ctx.json {
                output::json(&accepted);
            } else {
                let a = &accepted.account;
                let member = a.practice.as_deref().map(|p| format!(" of {p}")).unwrap_or_default();
                println!("accepted invitation #{} from {}", accepted.invitation, accepted.practice);
                println!("  account #{}: {} <{}>, {}{member}", a.id, a.name, a.email, a.role);
            }
        }
        InviteCommand::Send(args) => {
            let inviter = match &args.from {
                Some(address) => sender(ctx, &args.practice.practice, address)?,
                None => Context::actor(),
            };
            let request = InviteeRequest {
                name: args.name,
                email: args.email,
                fax: args.fax,
                relationship: args.relationship,
                role: args.role,
                date_of_birth: args.date_of_birth,
            };
            let sent = invitations.send(&args.practice.practice, &inviter, &request).map_err(failure)?;
            report(ctx, &sent, "invited");
        }
        InviteCommand::List { practice, status, limit } => {
            let status = status
                .map(|s| {
                    Status::parse(&s).ok_or_else(|| {
                        Failure::usage(format!(
                            "--status {s:?}: use sent, reminded, accepted, expired, cancelled, locked or \
                             notification-failed"
                        ))
                    })
                })
                .transpose()?;
            let list = invitations.list(&practice.practice, status, limit).map_err(failure)?;
            if ctx.json {
                output::json(&list);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list.iter().map(row).collect();
            table(&["ID", "STATUS", "RELATIONSHIP", "NAME", "CONTACT", "SENT", "EXPIRES"], &rows, "no invitations");
        }
        InviteCommand::Show { id, practice } => {
            let detail = invitations.show(&practice.practice, id).map_err(failure)?;
            if ctx.json {
                output::json(&detail);
                return Ok(());
            }
            describe(&detail.summary);
            for n in &detail.notices {
                let outcome = match (n.sent_at, &n.last_error) {
                    (Some(at), _) => format!("sent {} to {}", iso8601(at), n.sent_to.as_deref().unwrap_or("?")),
                    (None, Some(error)) => format!("{} after {} tries: {error}", n.state, n.attempts),
                    (None, None) => n.state.to_string(),
                };
                println!("  notice #{} {} (queued {}): {outcome}", n.id, n.kind, iso8601(n.created_at));
            }
        }
        InviteCommand::Remind { id, practice } => {
            report(ctx, &invitations.remind(&practice.practice, id).map_err(failure)?, "reminder queued for");
        }
        InviteCommand::Cancel { id, practice } => {
            report(ctx, &invitations.cancel(&practice.practice, id).map_err(failure)?, "cancelled");
        }
        InviteCommand::Edit { id, practice, date_of_birth } => {
            let sent = invitations.change_date_of_birth(&practice.practice, id, &date_of_birth).map_err(failure)?;
            report(ctx, &sent, &format!("invitation #{id} cancelled; invited again as"));
        }
    }
    Ok(())
}

fn accept(accepting: &Accepting, args: AcceptArgs) -> Result<Accepted, Failure> {
    if !args.password_stdin {
        return Err(Failure::usage("give the account's password on standard input with --password-stdin"));
    }
    let password = output::read_secret_line()?;
    if args.existing {
        let email = args.email.ok_or_else(|| Failure::usage("--existing needs the account's --email"))?;
        let request = ExistingAcceptance { code: args.code, email, password, date_of_birth: args.date_of_birth };
        return accepting.accept_existing(&request).map_err(accept_failure);
    }
    let practice = match &args.practice_file {
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| Failure::new("io", format!("{}: {e}", path.display())))?;
            let details: PracticeDetails = serde_json::from_slice(&text)
                .map_err(|e| Failure::usage(format!("{}: not the practice's details: {e}", path.display())))?;
            Some(details)
        }
        None => None,
    };
    let registration = Registration {
        code: args.code,
        password,
        email: args.email,
        name: args.name,
        date_of_birth: args.date_of_birth,
        confirm_practice: args.confirm_practice,
        practice,
        role: args.role,
    };
    accepting.register(&registration).map_err(accept_failure)
}

fn accept_failure(e: AcceptError) -> Failure {
    let code = match &e {
        AcceptError::BadCode(_) | AcceptError::Invalid(_) | AcceptError::Password(_) => "usage",
        AcceptError::UnknownCode => "unknown-code",
        AcceptError::Closed(_) => "invitation-closed",
        AcceptError::WrongDateOfBirth(_) => "date-of-birth",
        AcceptError::BadLogin => "unauthorized",
        AcceptError::Conflict(_) => "conflict",
        AcceptError::Store(_) => "store",
    };
    Failure::new(code, e.to_string())
}

/// `--from`: one of the practice's own addresses.
fn sender(ctx: &Context, practice: &str, address: &str) -> Result<String, Failure> {
    let address = crate::address::DirectAddress::parse(address.trim())?;
    let practice = ctx.store()?.practice(practice)?;
    if !practice.owns(ctx.store()?, &address)? {
        return Err(Failure::usage(format!("--from {address}: not an address of practice {}", practice.name)));
    }
    Ok(address.to_string())
}

fn failure(e: crate::network::invitations::InvitationError) -> Failure {
    use crate::network::invitations::InvitationError as E;
    match e {
        E::Invalid(_) => Failure::usage(e.to_string()),
        E::State(why) => Failure::new("state", why),
        E::Store(e) => e.into(),
        E::Crypto(e) => Failure::new("crypto", e.to_string()),
    }
}

fn report(ctx: &Context, summary: &Summary, what: &str) {
    if ctx.json {
        output::json(summary);
        return;
    }
    let r = &summary.record;
    println!("{what} invitation #{}: {} ({})", r.id, r.name, masked(r.contact_kind, &r.contact));
    describe(summary);
}

fn describe(summary: &Summary) {
    let r = &summary.record;
    println!("  status:       {}{}", summary.status.as_str(), reminded(summary));
    println!("  relationship: {}{}", r.relationship, r.role.map(|role| format!(" ({role})")).unwrap_or_default());
    println!("  invitee:      {} <{}>", r.name, r.contact);
    println!("  practice:     {} (sent by {})", r.practice, r.inviter);
    println!("  sent:         {}", iso8601(r.created_at));
    if summary.pending {
        println!("  expires:      {}", iso8601(summary.expires_at));
        if let Some(next) = r.next_due_at {
            println!("  next step:    {}", iso8601(next));
        }
        println!("  notice:       {} (the running node sends notices)", r.notice);
    }
}

fn reminded(summary: &Summary) -> String {
    match summary.record.reminders {
        0 => String::new(),
        n => format!(" ({n} reminder{})", if n == 1 { "" } else { "s" }),
    }
}

fn row(s: &Summary) -> Vec<String> {
    let r = &s.record;
    vec![
        r.id.to_string(),
        format!("{}{}", s.status.as_str(), reminded(s)),
        r.relationship.to_string(),
        r.name.clone(),
        r.contact.clone(),
        iso8601(r.created_at),
        if s.pending { iso8601(s.expires_at) } else { "-".into() },
    ]
}
