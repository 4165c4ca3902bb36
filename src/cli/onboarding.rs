//! `hisp practice` and `hisp proofing`: practices, their Direct domains and identity proofing.

use std::path::PathBuf;

use clap::Subcommand;

use super::output::{self, table};
use super::{Context, Failure};
use crate::address::Domain;
use crate::clock::iso8601;
use crate::onboarding::proofing::State;
use crate::onboarding::{self, domain_name, setup, Onboarding, OnboardingError, Status};

/// The practice a command is about: positional (`hisp proofing status "Smith Pediatrics"`) or,
/// as the other commands take it, `--practice`.
#[derive(clap::Args, Debug)]
pub(crate) struct PracticeRef {
    /// The practice's name (as written, any case) or one of its Direct domains.
    #[arg(value_name = "PRACTICE", required_unless_present = "practice_flag")]
    practice: Option<String>,
    /// The same, as a flag (as `hisp share`, `invite` and `account` take it).
    #[arg(long = "practice", id = "practice_flag", value_name = "PRACTICE", conflicts_with = "practice")]
    practice_flag: Option<String>,
}

impl std::ops::Deref for PracticeRef {
    type Target = str;

    fn deref(&self) -> &str {
        self.practice.as_deref().or(self.practice_flag.as_deref()).unwrap_or_default()
    }
}

impl std::fmt::Display for PracticeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum PracticeCommand {
    /// Add a practice with its Direct domain: by default its name without spaces under
    /// onboarding.parent_domain ("Smith Pediatrics" -> smithpediatrics.<parent>). Its identity
    /// proofing starts as not-started: until verified it gets no certificates and cannot send.
    Add {
        /// The practice's name, e.g. "Smith Pediatrics".
        name: String,
        /// The domain label under onboarding.parent_domain (default: from the name: its letters
        /// and digits, accents taken off; a name in another script gives its punycode label;
        /// cut to 63 characters).
        #[arg(long, conflicts_with = "domain")]
        label: Option<String>,
        /// A whole Direct domain instead (when no parent domain is configured).
        #[arg(long)]
        domain: Option<Domain>,
    },
    /// List practices, their domains, users and proofing state.
    List,
    /// A practice and where its identity proofing stands.
    Show {
        #[command(flatten)]
        practice: PracticeRef,
    },
    /// Mail the practice's users send by Direct to an address with no certificate (someone with
    /// no Direct address): "on" holds it, sealed, and invites the recipient by e-mail instead
    /// of bouncing it; it reaches their mailbox here when they accept. "off" (the default)
    /// bounces it with a failure notice that says why.
    InviteUnreachable {
        /// The practice's name (as written, any case) or one of its Direct domains.
        practice: String,
        /// "on" or "off".
        #[arg(value_parser = ["on", "off"])]
        setting: String,
    },
    /// Whether the practice's members must sign in to the portal with a second factor (a TOTP
    /// app): "required" sends each one without it to set it up at their next sign-in;
    /// "optional" (the default) leaves it to each.
    TwoFactor {
        /// The practice's name (as written, any case) or one of its Direct domains.
        practice: String,
        /// "required" or "optional".
        #[arg(value_parser = ["required", "optional"])]
        setting: String,
    },
    /// How the practice shares documents by link: the check a contact passes before seeing one
    /// (off: no sharing, the default; none; sms: a code texted to their mobile; date-of-birth) and
    /// the roles that may share (default clinician,admin). Its admins set it in the portal too.
    Sharing {
        #[command(flatten)]
        practice: PracticeRef,
        /// What a contact passes before first seeing a shared document: "sms" (a code to their mobile), "date-of-birth", "none", or "off" (no sharing).
        #[arg(long, value_parser = ["off", "none", "sms", "date-of-birth"])]
        check: String,
        /// The member roles that may share (comma-separated: clinician, staff, admin).
        #[arg(long, default_value = "clinician,admin")]
        roles: String,
        /// An expired link renews itself once its contact passes the check again ("on"), or the
        /// contact asks the practice for a new one ("off", the default).
        #[arg(long, value_parser = ["on", "off"], default_value = "off")]
        auto_renew: String,
    },
    /// Whether the practice's members may send invitations ("on", the default) or not ("off");
    /// its admins set it in the portal too.
    Invitations {
        /// The practice's name (as written, any case) or one of its Direct domains.
        practice: String,
        /// "on" or "off".
        #[arg(value_parser = ["on", "off"])]
        setting: String,
    },
}

#[derive(Subcommand, Debug)]
#[command(after_help = "PRACTICE is a practice's name or one of its domains. Steps: start (accept the \
    terms) -> section (each part of the form) -> send-code + confirm (the phone) -> submit (\"Verify \
    Identity\") -> verified, or failed with reasons -> retry. SSN, card and knowledge answers are \
    encrypted at rest and erased (last 4 digits kept) once decided.")]
pub(crate) enum ProofingCommand {
    /// Where a practice's proofing stands: state, each section (ready / incomplete), reasons.
    Status {
        #[command(flatten)]
        practice: PracticeRef,
    },
    /// Start proofing: the legal representative accepts the DirectTrust activation terms and the
    /// identity-verification agreement (both flags are required).
    Start {
        #[command(flatten)]
        practice: PracticeRef,
        /// The legal representative accepts the DirectTrust activation terms.
        #[arg(long)]
        accept_terms: bool,
        /// ...and the identity-verification agreement.
        #[arg(long)]
        accept_verification_agreement: bool,
    },
    /// Fill in one section of the form from JSON (a file, or - for standard input): business,
    /// representative, government_id, financial_id.
    Section {
        /// The practice's name (as written, any case) or one of its Direct domains.
        practice: String,
        /// business | representative | government_id | financial_id
        section: String,
        /// The section's fields as JSON (see Onboarding in the README).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Send a 6-digit confirmation code to the representative's phone (E.164, e.g. +15555550123)
    /// through onboarding.code_channel; it lasts 10 minutes and allows 5 tries.
    SendCode {
        #[command(flatten)]
        practice: PracticeRef,
        /// The phone the code is sent to, in E.164 (+15555550123).
        #[arg(long)]
        phone: String,
    },
    /// Enter the confirmation code.
    Confirm {
        /// The practice's name (as written, any case) or one of its Direct domains.
        practice: String,
        /// The 6-digit code sent to the phone.
        code: String,
    },
    /// "Verify Identity": submit the form (optionally filling sections first from a JSON file
    /// {"business": {..}, "representative": {..}, ..}); the rules decide, then onboarding.verifier.
    Submit {
        #[command(flatten)]
        practice: PracticeRef,
        /// All the sections as one JSON object, saved before submitting.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Approve a submitted enrollment (the manual verifier). With --out-of-band, verify a practice
    /// whose identity was proofed outside hisp (in person, by a registration authority), from any state.
    Approve {
        #[command(flatten)]
        practice: PracticeRef,
        /// Why: how the identity was verified (kept with the decision and in the audit log).
        #[arg(long, value_parser = super::output::plain_line)]
        reason: String,
        /// The identity was verified outside hisp (no form submitted): say how with --reason.
        #[arg(long)]
        out_of_band: bool,
    },
    /// Reject a submitted enrollment; the reason is shown to the practice.
    Reject {
        #[command(flatten)]
        practice: PracticeRef,
        /// Why (shown to the practice as the reason it failed).
        #[arg(long, value_parser = super::output::plain_line)]
        reason: String,
    },
    /// "Try Again" after a failure: the form becomes editable (erased identifiers must be re-entered).
    Retry {
        #[command(flatten)]
        practice: PracticeRef,
    },
}

impl From<OnboardingError> for Failure {
    fn from(e: OnboardingError) -> Failure {
        let code = match &e {
            OnboardingError::Store(crate::store::StoreError::NotFound(_)) => "not-found",
            OnboardingError::Store(_) => "store",
            OnboardingError::Kek(_) => "kek",
            OnboardingError::Proofing(onboarding::proofing::ProofingError::State(_)) => "proofing-state",
            OnboardingError::Proofing(_) | OnboardingError::Section(_) => "bad-input",
            OnboardingError::Unavailable(_) => "unavailable",
            OnboardingError::TooMany(_) => "too-many",
            OnboardingError::Damaged(..) => "damaged",
            OnboardingError::Certificates(_) => "ca",
        };
        Failure::new(code, e.to_string())
    }
}

pub(super) fn practice(ctx: &Context, command: PracticeCommand) -> Result<(), Failure> {
    let store = ctx.store()?;
    match command {
        PracticeCommand::Add { name, label, domain } => {
            let name = domain_name::practice_name(&name).map_err(Failure::usage)?;
            let domain = match domain {
                Some(domain) => domain,
                None => {
                    domain_name::for_practice(name, label.as_deref(), ctx.config.onboarding.parent_domain.as_deref())
                        .map_err(|e| Failure::usage(format!("{e} (--domain)")))?
                }
            };
            let anchors = onboarding::default_anchors::for_new_practice(store, &ctx.config.trust, &domain)
                .map_err(|e| Failure::new("config", e))?;
            store.add_practice(name, &domain, &anchors)?;
            let resolver = crate::dns::DnsClient::new(ctx.dns_config(&[])?);
            let fetch = crate::fetch::HttpFetcher::new(&resolver);
            let bundles = onboarding::default_anchors::subscribe_bundles(store, &ctx.config.trust, &domain, &fetch);
            if ctx.json {
                let mut value = serde_json::to_value(store.practice(domain.as_str())?).unwrap_or_default();
                value["bundles"] = serde_json::to_value(&bundles).unwrap_or_default();
                output::json(&value);
            } else {
                println!(
                    "added practice {name} with Direct domain {domain}, trusting {} anchor(s); identity proofing: not-started",
                    anchors.len()
                );
                for bundle in &bundles {
                    match (&bundle.anchors, &bundle.error) {
                        (Some(n), _) => println!("subscribed to bundle {}: {n} anchor(s)", bundle.name),
                        (None, why) => {
                            println!("subscribed to bundle {}: {}", bundle.name, why.as_deref().unwrap_or(""))
                        }
                    }
                }
            }
        }
        PracticeCommand::List => {
            let practices = store.practices()?;
            if ctx.json {
                output::json(&practices);
                return Ok(());
            }
            let rows = practices
                .iter()
                .map(|p| vec![p.name.clone(), p.domains.join(" "), p.addresses.to_string(), p.proofing.to_string()])
                .collect::<Vec<_>>();
            table(&["PRACTICE", "DOMAINS", "USERS", "PROOFING"], &rows, "no practices");
        }
        PracticeCommand::Show { practice } => {
            let status = with_onboarding(ctx, |o| o.status(&practice))?;
            let record = store.practice(&practice)?;
            if ctx.json {
                output::json(&serde_json::json!({ "practice": record, "proofing": status }));
                return Ok(());
            }
            println!(
                "practice   {}\ndomains    {}\nusers      {}\ninvites unreachable recipients: {}",
                record.name,
                record.domains.join(" "),
                record.addresses,
                if record.invite_unreachable { "on" } else { "off" }
            );
            print_status(&status);
        }
        PracticeCommand::InviteUnreachable { practice, setting } => {
            let record = store.practice(&practice)?;
            store.set_invite_unreachable(record.id, setting == "on")?;
            if ctx.json {
                output::json(&store.practice(&practice)?);
            } else {
                println!("{}: invites recipients without a Direct address: {setting}", record.name);
            }
        }
        PracticeCommand::Sharing { practice, check, roles, auto_renew } => {
            let record = store.practice(&practice)?;
            let check = crate::store::ShareCheck::parse(&check)
                .ok_or_else(|| Failure::usage("--check: off, none, sms or date-of-birth"))?;
            let roles = crate::network::share_contacts::roles(&roles).map_err(Failure::usage)?;
            ctx.node_store()?.set_sharing(record.id, check, &roles, auto_renew == "on")?;
            let record = store.practice(&practice)?;
            if ctx.json {
                output::json(&record);
            } else {
                let roles: Vec<&str> = record.share_roles.iter().map(|r| r.as_str()).collect();
                let renew = if record.share_auto_renew { "renewed after the check" } else { "renewed by the practice" };
                println!(
                    "{}: sharing by link {}; roles: {}; expired links {renew}",
                    record.name,
                    record.share_check,
                    roles.join(", ")
                );
            }
        }
        PracticeCommand::Invitations { practice, setting } => {
            let record = store.practice(&practice)?;
            ctx.node_store()?.set_invitations_allowed(record.id, setting == "on")?;
            if ctx.json {
                output::json(&store.practice(&practice)?);
            } else {
                println!("{}: invitations {setting}", record.name);
            }
        }
        PracticeCommand::TwoFactor { practice, setting } => {
            let record = store.practice(&practice)?;
            ctx.node_store()?.set_two_factor_required(record.id, setting == "required")?;
            if ctx.json {
                output::json(&store.practice(&practice)?);
            } else {
                println!("{}: two-factor sign-in {setting}", record.name);
            }
        }
    }
    Ok(())
}

/// Runs `f` with the configured verifier and code channel.
fn with_onboarding<T>(ctx: &Context, f: impl FnOnce(&Onboarding) -> Result<T, OnboardingError>) -> Result<T, Failure> {
    let dns = ctx.dns_config(&[])?;
    let config = &ctx.config.onboarding;
    let verifier = setup::verifier(config, &dns).map_err(|e| Failure::new("config", e))?;
    let channel = setup::channel(config, ctx.config.notify.email.as_ref(), &dns, &ctx.config.server.hostname)
        .map_err(|e| Failure::new("config", e))?;
    let kek = ctx.kek()?;
    let onboarding = Onboarding {
        store: ctx.store()?,
        kek: &kek,
        ca: &ctx.config.ca,
        verifier: &*verifier,
        channel: &*channel,
        now: ctx.now(),
    };
    Ok(f(&onboarding)?)
}

fn read_json(path: &std::path::Path) -> Result<serde_json::Value, Failure> {
    let bytes = output::read_input(Some(path))?;
    serde_json::from_slice(&bytes).map_err(|e| Failure::new("bad-input", format!("{}: not JSON: {e}", path.display())))
}

pub(super) fn proofing(ctx: &Context, command: ProofingCommand) -> Result<(), Failure> {
    let admin = Context::actor();
    let status = match command {
        ProofingCommand::Status { practice } => with_onboarding(ctx, |o| o.status(&practice))?,
        ProofingCommand::Start { practice, accept_terms, accept_verification_agreement } => {
            with_onboarding(ctx, |o| o.accept_terms(&practice, accept_terms, accept_verification_agreement))?
        }
        ProofingCommand::Section { practice, section, file } => {
            let json = read_json(&file)?;
            with_onboarding(ctx, |o| o.save_section(&practice, &section, &json))?
        }
        ProofingCommand::SendCode { practice, phone } => with_onboarding(ctx, |o| o.send_code(&practice, &phone))?,
        ProofingCommand::Confirm { practice, code } => with_onboarding(ctx, |o| o.confirm(&practice, &code))?,
        ProofingCommand::Submit { practice, file } => {
            let form = file.as_deref().map(read_json).transpose()?;
            with_onboarding(ctx, |o| {
                if let Some(form) = &form {
                    let sections = form.as_object().ok_or_else(|| {
                        OnboardingError::Section(onboarding::enrollment::SectionError::Field {
                            field: "".into(),
                            message: "the form is a JSON object of sections".into(),
                        })
                    })?;
                    for (name, value) in sections {
                        o.save_section(&practice, name, value)?;
                    }
                }
                o.submit(&practice)
            })?
        }
        ProofingCommand::Approve { practice, reason, out_of_band } => with_onboarding(ctx, |o| {
            if out_of_band {
                o.attest(&practice, &reason, &admin)
            } else {
                o.decide(&practice, true, &reason, &admin)
            }
        })?,
        ProofingCommand::Reject { practice, reason } => {
            with_onboarding(ctx, |o| o.decide(&practice, false, &reason, &admin))?
        }
        ProofingCommand::Retry { practice } => with_onboarding(ctx, |o| o.retry(&practice))?,
    };
    // A decision that verifies the practice brings its users' certificates (Onboarding::save).
    if ctx.json {
        output::json(&status);
    } else {
        print_status(&status);
        for address in &status.certificates_issued {
            println!("certificate issued for {address}");
        }
    }
    Ok(())
}

fn print_status(s: &Status) {
    println!("proofing   {}", s.state.as_str());
    // The form matters while it is being filled in; once decided, the decision does.
    let filling = matches!(s.state, State::TermsAccepted | State::InProgress | State::Failed);
    for section in s.sections.iter().filter(|_| filling) {
        let shown = if section.status == "ready" {
            "Ready to be Submitted".to_string()
        } else {
            let invalid = section.invalid.iter().map(ToString::to_string);
            format!("incomplete: {}", section.missing.iter().cloned().chain(invalid).collect::<Vec<_>>().join(", "))
        };
        println!("  {:<15} {shown}", section.section);
    }
    if let Some(code) = &s.code {
        println!("code       sent; expires {}, {} tries left", iso8601(code.expires_at), code.tries_left);
    }
    for reason in &s.reasons {
        println!("reason     {reason}");
    }
    if let (Some(by), Some(at)) = (&s.decided_by, s.decided_at) {
        println!("decided    by {by} at {}", iso8601(at));
    }
}
