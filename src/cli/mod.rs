//! The command line: parsing (clap) and dispatch. Each command group has its own module.

mod account;
mod backup;
mod bundle;
mod certs;
mod contacts;
mod context;
mod discover;
mod failure;
mod http_cert;
mod import;
mod invite;
mod message;
mod onboarding;
mod output;
mod provision;
mod secure;
mod serve;
mod share;
mod tokens;
mod tracking;
mod xdm;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub(crate) use context::Context;
pub(crate) use failure::Failure;

#[derive(Parser, Debug)]
#[command(
    name = "hisp",
    version,
    about = "A DirectTrust (Direct Project) HISP node: provisioning, certificates and the S/MIME security agent",
    long_about = "A DirectTrust (Direct Project) HISP node.\n\n\
        Provision practice domains, Direct addresses, keys, certificates and trust anchors in a SQLite \
        database, and seal (sign + encrypt) or open (decrypt + verify) Direct messages.\n\n\
        Private keys are encrypted at rest under a key-encryption key (HISP_KEK, or keys.kek_file in the config).",
    after_help = "Exit status: 0 success, 1 failure (the reason is printed), 2 usage error."
)]
pub(crate) struct Cli {
    /// Configuration file (TOML); unknown keys are an error.
    #[arg(long, global = true, env = "HISP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database file; overrides database.path from the config (default ./data/hisp.db).
    #[arg(long, global = true, env = "HISP_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create the database (0600, in a 0700 directory) and apply the schema. The only command that
    /// creates or migrates a database: every other one refuses a file that is not a hisp database
    /// of this version's schema.
    Init {
        /// Migrate the existing hisp database to this version's schema instead (back it up first
        /// with `hisp backup`).
        #[arg(long)]
        upgrade: bool,
    },
    /// Practice Direct domains hosted by this node.
    #[command(subcommand)]
    Domain(provision::DomainCommand),
    /// Direct addresses (EHR users) within hosted domains.
    #[command(subcommand)]
    Address(provision::AddressCommand),
    /// The built-in development CA (for test and demo nodes; use a DirectTrust CA in production).
    #[command(subcommand)]
    Ca(certs::CaCommand),
    /// Certificates and private keys of hosted addresses and domains.
    #[command(subcommand)]
    Cert(certs::CertCommand),
    /// Practices: their Direct domain (derived from the name) and users, and proofing state.
    #[command(subcommand)]
    Practice(onboarding::PracticeCommand),
    /// A practice's identity proofing: terms, the enrollment form, the confirmation code, the
    /// decision. Until verified a practice gets no certificates and its users cannot send.
    #[command(subcommand)]
    Proofing(onboarding::ProofingCommand),
    /// Invitations (Refer & Share): invite patients and colleagues without a Direct address by
    /// e-mail or fax, follow, remind, cancel.
    #[command(subcommand)]
    Invite(invite::InviteCommand),
    /// The address book: connected practices and patients, what a practice lists for them,
    /// each account's contacts.
    #[command(subcommand)]
    Contacts(contacts::ContactsCommand),
    /// Secure messages between accounts of connected parties, kept on this node (sealed at rest).
    #[command(subcommand)]
    Secure(secure::SecureCommand),
    /// Portal accounts of a practice's members: add one (a one-time link to set its password is
    /// e-mailed), list, new link, unlock, reset two-factor.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Sharing documents by link with people outside the network: the practice's contacts.
    #[command(subcommand)]
    Share(share::ShareCommand),
    /// Bearer tokens for the REST API ([http]), one per EHR integration.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// The REST API's TLS certificate, for EHR clients to trust.
    #[command(subcommand)]
    Http(http_cert::HttpCommand),
    /// Trust anchors per hosted domain (incoming: whom we accept mail from; outgoing: whom we send to).
    #[command(subcommand)]
    Anchor(provision::AnchorCommand),
    /// Trust bundles (PKCS#7 sets of anchors, as DirectTrust publishes them) per hosted domain.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Seal, open and inspect S/MIME Direct messages.
    #[command(subcommand)]
    Message(message::MessageCommand),
    /// IHE XDM packages (ZIP files of documents with their metadata): check and show one, unpack
    /// its checked documents, make one.
    #[command(subcommand)]
    Xdm(xdm::XdmCommand),
    /// Find an address's certificates (DNS CERT, then LDAP) and say which are usable.
    #[command(after_help = "Steps, in order, stopping at the first that finds any certificate: \
        dns-address (CERT at user.domain), dns-domain (CERT at domain), ldap-address and ldap-domain \
        (servers from _ldap._tcp SRV). Exit status: 0 a usable certificate was selected, 3 none, 2 usage error.")]
    Discover(discover::LookupArgs),
    /// Run the node: SMTP submission (EHRs) and backbone (peer HISPs), the durable queue and its
    /// workers (discover, seal, deliver; open, deliver into Maildir). Runs until stopped.
    #[command(after_help = "SIGTERM or SIGINT stops the node in order: new connections get 421, SMTP \
        sessions waiting for a command get 421 and close, sessions receiving a message answer it first, \
        REST API requests under way are answered and idle API connections closed, the messages being \
        processed get up to [server] stop_grace_secs (30) to finish, and what is still being \
        processed then goes back to the queue (not counted as a crash). Exit status 0 after an \
        orderly stop. A second signal during the grace time exits at once (status 1), as kill -9 would.")]
    Serve(serve::ServeArgs),
    /// The mail queue: list, show, retry, remove.
    #[command(subcommand)]
    Queue(serve::QueueCommand),
    /// The demo: two practices on two nodes in this process exchange the HL7 C-CDA referral note
    /// (SMTP submission with AUTH, discovery in DNS, seal, delivery, open, Maildir); prints the
    /// timeline. Needs nothing but this binary; exits 0 when the document arrives intact.
    Demo {
        /// Use the 8 ports from this one up (node A's submission, backbone, CA publishing and DNS,
        /// then node B's) instead of free ones chosen at random; refused if one is taken.
        #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1024..=65528))]
        base_port: Option<u16>,
        /// Keep the demo's directory (databases, mailboxes) and say where, instead of removing it.
        #[arg(long)]
        keep: bool,
    },
    /// Copy the node's database, consistently, while it runs (SQLite's online backup), to a new
    /// file (0600); restore it with `hisp restore`.
    Backup(backup::BackupArgs),
    /// Put a backup in place as the database (--db / HISP_DB), which must not exist: stop
    /// `hisp serve` and move the old database away first. Needs the HISP_KEK of the node backed up.
    Restore(backup::RestoreArgs),
    /// Show the audit log: who changed what, when.
    Audit {
        /// How many entries, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// Runs the command line and returns the process exit status.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let json = cli.json;
    match dispatch(cli) {
        Ok(status) => status,
        Err(failure) => {
            failure.report(json);
            if failure.code == "usage" {
                2
            } else {
                1
            }
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32, Failure> {
    if let Command::Demo { base_port, keep } = cli.command {
        return crate::demo::run(base_port, keep).map(|()| 0).map_err(|e| Failure::new("demo", e));
    }
    let ctx = Context::new(cli.config.as_deref(), cli.db.clone(), cli.json)?;
    // Every command logs as the daemon does (a code sent to the log channel, a warning).
    let format = crate::logging::Format::parse(&ctx.config.server.log_format).map_err(Failure::usage)?;
    crate::logging::init(format).map_err(Failure::usage)?;
    let done = |r: Result<(), Failure>| r.map(|()| 0);
    match cli.command {
        Command::Init { upgrade } => done(provision::init(&ctx, upgrade)),
        Command::Domain(c) => done(provision::domain(&ctx, c)),
        Command::Address(c) => provision::address(&ctx, c),
        Command::Practice(c) => done(onboarding::practice(&ctx, c)),
        Command::Proofing(c) => done(onboarding::proofing(&ctx, c)),
        Command::Token(c) => done(tokens::run(&ctx, c)),
        Command::Http(c) => done(http_cert::http(&ctx, c)),
        Command::Backup(a) => done(backup::backup(&ctx, a)),
        Command::Restore(a) => done(backup::restore(&ctx, a)),
        Command::Invite(c) => done(invite::run(&ctx, c)),
        Command::Contacts(c) => done(contacts::run(&ctx, c)),
        Command::Secure(c) => done(secure::run(&ctx, c)),
        Command::Account(c) => done(account::run(&ctx, c)),
        Command::Share(c) => done(share::run(&ctx, c)),
        Command::Anchor(c) => done(provision::anchor(&ctx, c)),
        Command::Bundle(c) => done(bundle::run(&ctx, c)),
        Command::Ca(c) => done(certs::ca(&ctx, c)),
        Command::Cert(c) => done(certs::cert(&ctx, c)),
        Command::Message(c) => done(message::run(&ctx, c)),
        Command::Xdm(c) => done(xdm::run(&ctx, c)),
        Command::Discover(args) => discover::discover(&ctx, &args),
        Command::Demo { .. } => Ok(0),
        Command::Serve(args) => done(serve::serve(&ctx, args)),
        Command::Queue(c) => done(serve::queue(&ctx, c)),
        Command::Audit { limit } => done(provision::audit(&ctx, limit)),
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// Every argument and option of every command, as "command path: --name".
    fn undocumented(command: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path}: {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() && sub.get_long_about().is_none() && sub.get_name() != "help" {
                out.push(format!("{path} {}: (no description)", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_command_argument_and_option_says_what_it_is() {
        let mut missing = Vec::new();
        undocumented(&super::Cli::command(), "hisp", &mut missing);
        assert!(missing.is_empty(), "{} without help:\n{}", missing.len(), missing.join("\n"));
    }
}
