//! Accepting an invitation with its code: as a new account (a patient, who must enter the date
//! of birth the practice gave; a colleague joining the inviting practice, who confirms its name;
//! a colleague registering their own practice) or with an existing account. A code works once;
//! accepting again with the same account answers as the first time. A patient's third wrong
//! date of birth locks the invitation: the invitee is told to contact the sender, and the sender
//! is told.
//!
//! Everything else in a request is checked before the date of birth, so a request that is wrong
//! in any other way says nothing about the date.

use serde::{Deserialize, Serialize};

use super::code::{CodeError, InvitationCode};
use super::invitee::{self, FieldError};
use super::schedule;
use crate::onboarding::checks;
use crate::password::PasswordError;
use crate::store::accounts::{Acceptor, AccountRecord, NewAccount};
use crate::store::invitations::InvitationRecord;
use crate::store::{AccountRole, ContactKind, InvitationState, NodeStore, NoticeKind, Relationship, Role, StoreError};

/// Wrong dates of birth before an invitation locks.
pub(crate) const MAX_DOB_FAILURES: u32 = 3;

/// A new account by an invitation (the API's body, the CLI's flags).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Registration {
    pub code: String,
    pub password: String,
    /// Signs in with it; by default the address the invitation went to.
    pub email: Option<String>,
    /// By default the name the practice gave.
    pub name: Option<String>,
    /// A patient: exactly the date the practice gave (YYYY-MM-DD).
    pub date_of_birth: Option<String>,
    /// A colleague joining the inviting practice: its name, as they confirm it is theirs.
    pub confirm_practice: Option<String>,
    /// A colleague at another practice: that practice.
    pub practice: Option<PracticeDetails>,
    /// A colleague at another practice: clinician (the default) or staff.
    pub role: Option<String>,
}

/// A practice a colleague registers when they accept.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PracticeDetails {
    pub name: String,
    pub address: String,
    pub city: String,
    /// Two letters (US state or territory).
    pub state: String,
    /// 12345 or 12345-6789.
    pub zip: String,
    /// E.164.
    pub phone: String,
    pub fax: Option<String>,
    /// The EHR the practice uses, or "none".
    pub ehr: String,
    /// The organization's NPI, when it has one (its check digit is checked).
    pub npi: Option<String>,
}

/// Accepting with an account that exists: its sign-in proves who accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExistingAcceptance {
    pub code: String,
    pub email: String,
    pub password: String,
    /// For a patient's invitation.
    pub date_of_birth: Option<String>,
}

/// What a code opens, before accepting: what the form must ask for. Nothing about the invitee.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Preview {
    pub practice: String,
    pub relationship: Relationship,
    pub role: Option<Role>,
    /// The fields the registration needs besides the password: date_of_birth, confirm_practice,
    /// practice, email (when the invitation went by fax).
    pub needs: Vec<&'static str>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Accepted {
    pub invitation: i64,
    /// The inviting practice.
    pub practice: String,
    pub relationship: Relationship,
    pub account: AccountRecord,
}

impl Accepted {
    fn of(invitation: &InvitationRecord, account: AccountRecord) -> Accepted {
        Accepted {
            invitation: invitation.id,
            practice: invitation.practice.clone(),
            relationship: invitation.relationship,
            account,
        }
    }
}

/// What a used code answers anyone but the account that used it.
const USED: &str = "this invitation was already used: each code works once";

#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    #[error("{0}")]
    BadCode(#[from] CodeError),
    #[error("no invitation has this code: check it, or ask the practice to invite you again")]
    UnknownCode,
    /// Cancelled, expired, locked, or used by someone else: what to do now.
    #[error("{0}")]
    Closed(String),
    #[error("the date of birth does not match what the practice gave ({0} {tries} left)", tries = if *.0 == 1 { "try" } else { "tries" })]
    WrongDateOfBirth(u32),
    #[error("{}", super::invitee::describe(.0))]
    Invalid(Vec<FieldError>),
    #[error("the e-mail address or the password is wrong")]
    BadLogin,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) type Result<T> = std::result::Result<T, AcceptError>;

pub(crate) struct Accepting<'a> {
    pub store: &'a dyn NodeStore,
    pub now: i64,
}

impl Accepting<'_> {
    /// What the code's invitation asks of its invitee; only a pending invitation answers.
    pub(crate) fn preview(&self, code: &str) -> Result<Preview> {
        let invitation = self.pending(code)?;
        let mut needs = Vec::new();
        match invitation.relationship {
            Relationship::Patient => needs.push("date_of_birth"),
            Relationship::ColleagueHere => needs.push("confirm_practice"),
            Relationship::ColleagueElsewhere => needs.push("practice"),
        }
        if invitation.contact_kind == ContactKind::Fax {
            needs.push("email");
        }
        Ok(Preview {
            practice: invitation.practice.clone(),
            relationship: invitation.relationship,
            role: invitation.role,
            needs,
            expires_at: schedule::expires_at(invitation.created_at),
        })
    }

    /// A new account by the code's invitation.
    pub(crate) fn register(&self, r: &Registration) -> Result<Accepted> {
        let invitation = self.find(&r.code)?;
        if invitation.state == InvitationState::Accepted {
            let email = r.email.as_deref().map(invitee::email_address).transpose().ok().flatten();
            let email = email.or_else(|| default_email(&invitation));
            return self.again(&invitation, email.as_deref().unwrap_or(""), &r.password);
        }
        let invitation = self.still_open(invitation)?;
        let (account, details) = self.new_account(&invitation, r)?;
        self.check_date_of_birth(&invitation, r.date_of_birth.as_deref())?;
        let hash = crate::password::hash(&r.password)?;
        let account = NewAccount { password_hash: &hash, ..account.as_new() };
        let profile =
            details.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Conflict(e.to_string()))?;
        let acceptor = match (invitation.relationship, &details, &profile) {
            (Relationship::Patient, _, _) => Acceptor::Patient(account),
            (Relationship::ColleagueHere, _, _) => Acceptor::Member(account),
            (Relationship::ColleagueElsewhere, Some(details), Some(profile)) => {
                Acceptor::NewPractice { account, practice: &details.name, profile }
            }
            (Relationship::ColleagueElsewhere, _, _) => {
                let message = "your practice's details".to_string();
                return Err(AcceptError::Invalid(vec![FieldError { field: "practice", message }]));
            }
        };
        self.accept(&invitation, &acceptor)
    }

    /// The code's invitation accepted by an account that exists.
    pub(crate) fn accept_existing(&self, a: &ExistingAcceptance) -> Result<Accepted> {
        let invitation = self.find(&a.code)?;
        let email = invitee::email_address(&a.email).map_err(|_| AcceptError::BadLogin)?;
        if invitation.state == InvitationState::Accepted {
            return self.again(&invitation, &email, &a.password);
        }
        let invitation = self.still_open(invitation)?;
        let account = self.signed_in(&email, &a.password)?;
        self.accept_by(invitation, &account, a.date_of_birth.as_deref())
    }

    /// The code's invitation accepted by `account`, signed in to the portal.
    pub(crate) fn accept_signed_in(
        &self,
        code: &str,
        account: &AccountRecord,
        date_of_birth: Option<&str>,
    ) -> Result<Accepted> {
        let invitation = self.find(code)?;
        if invitation.state == InvitationState::Accepted
            && invitation.accepted_by.as_deref() == Some(account.id.to_string().as_str())
        {
            return Ok(Accepted::of(&invitation, account.clone()));
        }
        let invitation = self.still_open(invitation)?;
        self.accept_by(invitation, account, date_of_birth)
    }

    /// An open invitation accepted by an existing account, if it is one the invitation is for.
    fn accept_by(
        &self,
        invitation: InvitationRecord,
        account: &AccountRecord,
        date_of_birth: Option<&str>,
    ) -> Result<Accepted> {
        let fits = match invitation.relationship {
            Relationship::Patient => account.role == AccountRole::Patient,
            Relationship::ColleagueHere => false,
            Relationship::ColleagueElsewhere => account.role != AccountRole::Patient,
        };
        if !fits {
            let why = match invitation.relationship {
                Relationship::Patient => "this invitation is for a patient: accept it with a patient's account",
                Relationship::ColleagueHere => {
                    "this invitation makes a new member of the practice: register a new account with it"
                }
                Relationship::ColleagueElsewhere => {
                    "this invitation is for a colleague: accept it with a practice's account"
                }
            };
            return Err(AcceptError::Conflict(why.into()));
        }
        self.check_date_of_birth(&invitation, date_of_birth)?;
        self.accept(&invitation, &Acceptor::Existing(account.id))
    }

    fn accept(&self, invitation: &InvitationRecord, acceptor: &Acceptor) -> Result<Accepted> {
        let account = self.store.accept_invitation(invitation, acceptor, self.now).map_err(|e| match e {
            StoreError::Duplicate(what) => AcceptError::Conflict(format!("{what} is already registered here")),
            StoreError::Conflict(why) => AcceptError::Conflict(why),
            other => AcceptError::Store(other),
        })?;
        // What was held for them is in their mailbox now (the running node retries a failure).
        if let Err(e) = super::held::deliver_released(self.store, account.id, self.now) {
            tracing::error!("invitation #{}: held messages not yet in the mailbox: {e}", invitation.id);
        }
        Ok(Accepted::of(invitation, account))
    }

    /// An accepted invitation, accepted again: the same answer for the account that accepted
    /// it, a refusal for anyone else.
    fn again(&self, invitation: &InvitationRecord, email: &str, password: &str) -> Result<Accepted> {
        let used = || AcceptError::Closed(USED.into());
        let account = self.signed_in(email, password).map_err(|_| used())?;
        if invitation.accepted_by.as_deref() != Some(account.id.to_string().as_str()) {
            return Err(used());
        }
        Ok(Accepted::of(invitation, account))
    }

    fn signed_in(&self, email: &str, password: &str) -> Result<AccountRecord> {
        let account = self.store.account_by_email(email)?;
        // A missing account still costs a hash, so timing does not tell which accounts exist.
        let stored = account.as_ref().map_or(crate::password::decoy(), |a| a.password_hash.as_str());
        let right = crate::password::verify(password, stored);
        match account {
            Some(account) if right => Ok(account),
            _ => Err(AcceptError::BadLogin),
        }
    }

    /// The invitation a typed code belongs to, in whatever state.
    fn find(&self, code: &str) -> Result<InvitationRecord> {
        let code = InvitationCode::parse(code)?;
        self.store.invitation_by_code(code.as_str())?.ok_or(AcceptError::UnknownCode)
    }

    /// The code's invitation, still pending.
    fn pending(&self, code: &str) -> Result<InvitationRecord> {
        self.still_open(self.find(code)?)
    }

    /// Refuses an invitation that is no longer pending, saying what to do; one whose time is up
    /// is expired now, whether or not the schedule has run.
    fn still_open(&self, mut invitation: InvitationRecord) -> Result<InvitationRecord> {
        let practice = invitation.practice.clone();
        let expires_at = schedule::expires_at(invitation.created_at);
        if invitation.state == InvitationState::Pending && self.now >= expires_at {
            invitation.state = InvitationState::Expired;
            invitation.next_due_at = None;
            invitation.closed_at = Some(self.now);
            self.store.save_invitation(&invitation, &[], "invitation.expire", self.now)?;
        }
        let why = match invitation.state {
            InvitationState::Pending => return Ok(invitation),
            InvitationState::Expired => format!(
                "this invitation expired on {}: ask {practice} to invite you again",
                &crate::clock::iso8601(expires_at)[..10]
            ),
            InvitationState::Cancelled => format!("this invitation was cancelled: ask {practice} for a new one"),
            InvitationState::Locked => format!(
                "this invitation is locked after {MAX_DOB_FAILURES} dates of birth that did not match: contact \
                 {practice} to be invited again"
            ),
            InvitationState::Accepted => USED.into(),
        };
        Err(AcceptError::Closed(why))
    }

    /// A patient's date of birth, counted: the third wrong one locks the invitation.
    fn check_date_of_birth(&self, invitation: &InvitationRecord, given: Option<&str>) -> Result<()> {
        let Some(expected) = &invitation.date_of_birth else { return Ok(()) };
        let given = given.map(str::trim).unwrap_or("");
        let Some(given_day) = crate::clock::parse_date(given) else {
            let message = "the date of birth the practice gave, as YYYY-MM-DD".to_string();
            return Err(AcceptError::Invalid(vec![FieldError { field: "date_of_birth", message }]));
        };
        if crate::clock::parse_date(expected) == Some(given_day) {
            return Ok(());
        }
        let mut record = invitation.clone();
        record.dob_failures += 1;
        if record.dob_failures < MAX_DOB_FAILURES {
            self.store.save_invitation(&record, &[], "invitation.dob-mismatch", self.now)?;
            return Err(AcceptError::WrongDateOfBirth(MAX_DOB_FAILURES - record.dob_failures));
        }
        record.state = InvitationState::Locked;
        record.next_due_at = None;
        record.closed_at = Some(self.now);
        let notices = [NoticeKind::Locked, NoticeKind::SenderLocked];
        self.store.save_invitation(&record, &notices, "invitation.lock", self.now)?;
        Err(AcceptError::Closed(format!(
            "the date of birth did not match {MAX_DOB_FAILURES} times: this invitation is locked; contact {} to be \
             invited again",
            invitation.practice
        )))
    }

    /// The new account's fields, every problem listed; for a colleague elsewhere, their practice.
    fn new_account(
        &self,
        invitation: &InvitationRecord,
        r: &Registration,
    ) -> Result<(Fields, Option<PracticeDetails>)> {
        let mut errors = Vec::new();
        let mut fail = |field: &'static str, message: String| errors.push(FieldError { field, message });
        let email = match &r.email {
            Some(e) => invitee::email_address(e).map_err(|m| fail("email", m)).ok(),
            None => default_email(invitation).or_else(|| {
                fail("email", "the e-mail address to sign in with (the invitation came by fax)".into());
                None
            }),
        };
        let name = r.name.as_deref().map(str::trim).unwrap_or(&invitation.name).to_string();
        if let Err(e) = invitee::check_name(&name) {
            fail("name", e.into());
        }
        if let Err(e) =
            crate::password::check_new(&r.password, &[&name, email.as_deref().unwrap_or(""), &invitation.practice])
        {
            fail("password", e.to_string());
        }
        let mut details = None;
        let role = match invitation.relationship {
            Relationship::Patient => AccountRole::Patient,
            Relationship::ColleagueHere => {
                let confirmed = r.confirm_practice.as_deref().map(str::trim).unwrap_or("");
                if !confirmed.eq_ignore_ascii_case(&invitation.practice) {
                    fail(
                        "confirm_practice",
                        format!(
                            "this invitation joins you to {}: confirm it is your practice by its name",
                            invitation.practice
                        ),
                    );
                }
                match invitation.role {
                    Some(Role::Staff) => AccountRole::Staff,
                    _ => AccountRole::Clinician,
                }
            }
            Relationship::ColleagueElsewhere => {
                match &r.practice {
                    Some(p) => match practice_details(p) {
                        Ok(p) => details = Some(p),
                        Err(list) => errors.extend(list),
                    },
                    None => errors.push(FieldError {
                        field: "practice",
                        message: "your practice: name, address, city, state, zip, phone, fax (optional), ehr, npi \
                                  (optional)"
                            .into(),
                    }),
                }
                match r.role.as_deref().map(str::trim) {
                    None | Some("clinician") => AccountRole::Clinician,
                    Some("staff") => AccountRole::Staff,
                    Some(other) => {
                        errors.push(FieldError { field: "role", message: format!("{other:?}: clinician or staff") });
                        AccountRole::Clinician
                    }
                }
            }
        };
        if invitation.relationship != Relationship::Patient && r.date_of_birth.is_some() {
            errors
                .push(FieldError { field: "date_of_birth", message: "only a patient's invitation asks for it".into() });
        }
        match (errors.is_empty(), email) {
            (true, Some(email)) => Ok((Fields { role, name, email }, details)),
            _ => Err(AcceptError::Invalid(errors)),
        }
    }
}

/// A new account's checked fields.
struct Fields {
    role: AccountRole,
    name: String,
    email: String,
}

impl Fields {
    fn as_new(&self) -> NewAccount<'_> {
        NewAccount { role: self.role, name: &self.name, email: &self.email, password_hash: "" }
    }
}

/// The address the invitation went to, when it went by e-mail.
fn default_email(invitation: &InvitationRecord) -> Option<String> {
    (invitation.contact_kind == ContactKind::Email).then(|| invitation.contact.clone())
}

const STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA",
    "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR",
    "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI",
];

/// A practice's details, checked and tidied (trimmed; the state upper case; phones E.164).
pub(crate) fn practice_details(p: &PracticeDetails) -> std::result::Result<PracticeDetails, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut text = |field: &'static str, value: &str, max: usize| -> String {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
            errors.push(FieldError { field, message: format!("1 to {max} characters, no line breaks") });
        }
        value.to_string()
    };
    let name = text("practice.name", &p.name, 200);
    let address = text("practice.address", &p.address, 200);
    let city = text("practice.city", &p.city, 100);
    let ehr = text("practice.ehr", &p.ehr, 100);
    let state = p.state.trim().to_ascii_uppercase();
    if !STATES.contains(&state.as_str()) {
        errors.push(FieldError { field: "practice.state", message: "a two-letter US state or territory".into() });
    }
    let zip = p.zip.trim().to_string();
    let zip_ok = match zip.split_once('-') {
        Some((five, four)) => five.len() == 5 && four.len() == 4,
        None => zip.len() == 5,
    } && zip.chars().all(|c| c.is_ascii_digit() || c == '-');
    if !zip_ok {
        errors.push(FieldError { field: "practice.zip", message: "12345 or 12345-6789".into() });
    }
    let phone = invitee::fax_number(&p.phone).map_err(|_| {
        errors.push(FieldError {
            field: "practice.phone",
            message: "a phone number in E.164 form, e.g. +15555550123".into(),
        })
    });
    let fax = p.fax.as_deref().filter(|f| !f.trim().is_empty()).map(invitee::fax_number).transpose().map_err(|m| {
        errors.push(FieldError { field: "practice.fax", message: m });
    });
    let npi = p.npi.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(|n| n.replace([' ', '-'], ""));
    if let Some(npi) = &npi {
        if let Err(e) = checks::npi(npi) {
            errors.push(FieldError { field: "practice.npi", message: e.into() });
        }
    }
    match (errors.is_empty(), phone, fax) {
        (true, Ok(phone), Ok(fax)) => Ok(PracticeDetails { name, address, city, state, zip, phone, fax, ehr, npi }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests;
