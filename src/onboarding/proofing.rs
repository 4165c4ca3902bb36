//! A practice's identity proofing as a state machine, without I/O:
//!
//! not-started -> terms-accepted -> in-progress (sections incomplete / ready, the confirmation
//! code) -> submitted -> verified | failed (reasons) -> (try again) in-progress -> ...
//!
//! Proofing happens once per practice: `verified` is final. Whatever decides (the rules, an
//! admin, an identity-verification service), the SSN, card number and knowledge answers are
//! erased at the decision.

use serde::{Deserialize, Serialize};

use super::code::PendingCode;
use super::enrollment::{Enrollment, Section, SECTIONS};

pub(crate) use crate::store::ProofingState as State;

/// Why a decision went the way it did; `field` names the form field ("" for the whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reason {
    pub field: String,
    pub message: String,
}

impl Reason {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Reason {
        Reason { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// What a verifier decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Verified,
    Failed(Vec<Reason>),
    /// Someone else decides later (an admin, a service that answers asynchronously).
    Pending,
}

/// The sealed part of the record: the form and the confirmation step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Private {
    pub terms_accepted_at: Option<i64>,
    pub enrollment: Enrollment,
    pub confirmation_phone: Option<String>,
    pub confirmed_at: Option<i64>,
    pub code: Option<PendingCode>,
    /// When the last codes were sent (the last hour's, for the limit on sending them).
    #[serde(default)]
    pub codes_sent: Vec<i64>,
    pub submitted_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Proofing {
    pub state: State,
    pub private: Private,
    pub reasons: Vec<Reason>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProofingError {
    /// The step does not fit the current state (an API answers 409).
    #[error("{0}")]
    State(String),
    /// The input is wrong (an API answers 422 naming the field).
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

fn wrong_state(what: &str, state: State) -> ProofingError {
    let why = match state {
        State::NotStarted => "accept the DirectTrust activation terms and the identity-verification agreement first",
        State::Submitted => "the enrollment is submitted and awaits its decision",
        State::Verified => "the practice's identity is already verified (proofing happens once per practice)",
        State::Failed => "validation failed: try again first",
        State::TermsAccepted | State::InProgress => "the enrollment is not submitted",
    };
    ProofingError::State(format!("cannot {what}: {why}"))
}

/// A section's readiness, for status displays.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct SectionStatus {
    pub section: &'static str,
    /// "ready" ("Ready to be Submitted": every field there and valid) or "incomplete".
    pub status: &'static str,
    pub missing: Vec<String>,
    /// Fields that are there but break a rule (an NPI whose check digit is wrong, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<Reason>,
    /// What the representative still has to do for this section, in words (empty when ready).
    pub message: String,
}

impl Proofing {
    fn editable(&self, what: &str) -> Result<(), ProofingError> {
        match self.state {
            State::TermsAccepted | State::InProgress => Ok(()),
            other => Err(wrong_state(what, other)),
        }
    }

    pub(crate) fn accept_terms(
        &mut self,
        activation_terms: bool,
        verification_agreement: bool,
        now: i64,
    ) -> Result<(), ProofingError> {
        if !matches!(self.state, State::NotStarted | State::TermsAccepted) {
            return Err(wrong_state("accept the terms", self.state));
        }
        for (field, accepted) in
            [("activation_terms", activation_terms), ("identity_verification_agreement", verification_agreement)]
        {
            if !accepted {
                return Err(ProofingError::Field { field: field.into(), message: "must be accepted".into() });
            }
        }
        if self.state == State::NotStarted {
            self.private.terms_accepted_at = Some(now);
            self.state = State::TermsAccepted;
        }
        Ok(())
    }

    pub(crate) fn save_section(&mut self, section: Section) -> Result<(), ProofingError> {
        self.editable(&format!("change section {}", section.name()))?;
        self.private.enrollment.set(section);
        self.state = State::InProgress;
        Ok(())
    }

    /// Starts the confirmation step for `phone` (E.164): the returned code is to be sent there.
    pub(crate) fn start_confirmation(&mut self, phone: &str, code: PendingCode) -> Result<(), ProofingError> {
        self.editable("send a confirmation code")?;
        super::checks::e164(phone)
            .map_err(|m| ProofingError::Field { field: "confirmation.phone".into(), message: m.into() })?;
        self.private.confirmation_phone = Some(phone.to_string());
        self.private.confirmed_at = None;
        self.private.code = Some(code);
        self.state = State::InProgress;
        Ok(())
    }

    /// Checks a confirmation code. A wrong guess is counted even though it is an error: the
    /// caller saves the record either way.
    pub(crate) fn confirm(&mut self, code: &str, now: i64) -> Result<(), ProofingError> {
        self.editable("confirm a code")?;
        let refuse = |m: String| Err(ProofingError::Field { field: "confirmation.code".into(), message: m });
        let Some(pending) = self.private.code.as_mut() else {
            return refuse("no code was sent, or it was used up: ask for a new one".into());
        };
        match pending.check(code, now) {
            Ok(()) => {
                self.private.code = None;
                self.private.confirmed_at = Some(now);
                Ok(())
            }
            Err(why) => {
                if pending.spent(now) {
                    self.private.code = None;
                }
                refuse(why)
            }
        }
    }

    /// Each section's readiness at `now`: every field there, and none breaking a rule.
    pub(crate) fn sections(&self, now: i64) -> Vec<SectionStatus> {
        let broken = super::verifier::rules(&self.private.enrollment, now);
        SECTIONS
            .iter()
            .map(|&section| {
                let missing = if section == "confirmation" {
                    if self.private.confirmed_at.is_some() {
                        vec![]
                    } else {
                        vec!["confirmation.code".to_string()]
                    }
                } else {
                    self.private.enrollment.missing(section)
                };
                let prefix = format!("{section}.");
                let invalid: Vec<Reason> = broken.iter().filter(|r| r.field.starts_with(&prefix)).cloned().collect();
                let ready = missing.is_empty() && invalid.is_empty();
                let message = if ready {
                    String::new()
                } else {
                    let mut said = if section == "confirmation" {
                        vec!["confirm the code sent to the phone".to_string()]
                    } else {
                        self.private.enrollment.what_is_missing(section)
                    };
                    said.extend(invalid.iter().map(|r| r.message.clone()));
                    said.join("; ")
                };
                SectionStatus { section, status: if ready { "ready" } else { "incomplete" }, missing, invalid, message }
            })
            .collect()
    }

    /// Submits the form ("Verify Identity"): every field must be there (the rules then decide
    /// whether they are valid, with reasons the representative can act on).
    pub(crate) fn submit(&mut self, now: i64) -> Result<(), ProofingError> {
        self.editable("submit")?;
        let missing: Vec<String> = self.sections(now).into_iter().flat_map(|s| s.missing).collect();
        if !missing.is_empty() {
            return Err(ProofingError::Field {
                field: missing[0].clone(),
                message: format!("not ready to be submitted; missing: {}", missing.join(", ")),
            });
        }
        self.private.submitted_at = Some(now);
        self.reasons.clear();
        self.state = State::Submitted;
        Ok(())
    }

    /// Records a decision about a submitted form; `by` is the verifier or the admin.
    pub(crate) fn decide(&mut self, decision: Decision, by: &str, now: i64) -> Result<(), ProofingError> {
        if self.state != State::Submitted {
            return Err(wrong_state("decide", self.state));
        }
        match decision {
            Decision::Pending => return Ok(()),
            Decision::Verified => {
                self.state = State::Verified;
                self.reasons.clear();
            }
            Decision::Failed(reasons) => {
                self.state = State::Failed;
                self.reasons = if reasons.is_empty() { vec![Reason::new("", "rejected")] } else { reasons };
            }
        }
        self.concluded(by, now);
        Ok(())
    }

    /// An operator vouches that the practice was proofed outside hisp (in person, by a
    /// DirectTrust-accredited registration authority); the reason is kept.
    pub(crate) fn attest(&mut self, reason: &str, by: &str, now: i64) -> Result<(), ProofingError> {
        if self.state == State::Verified {
            return Err(wrong_state("verify", self.state));
        }
        if reason.trim().is_empty() {
            return Err(ProofingError::Field {
                field: "reason".into(),
                message: "say how the identity was verified".into(),
            });
        }
        self.state = State::Verified;
        self.reasons = vec![Reason::new("", format!("verified out of band: {reason}"))];
        self.concluded(by, now);
        Ok(())
    }

    fn concluded(&mut self, by: &str, now: i64) {
        self.private.enrollment.erase_sensitive();
        self.private.code = None;
        self.decided_by = Some(by.to_string());
        self.decided_at = Some(now);
    }

    /// "Try Again" after a failure: the form is editable again (erased identifiers must be
    /// given again).
    pub(crate) fn retry(&mut self) -> Result<(), ProofingError> {
        if self.state != State::Failed {
            return Err(ProofingError::State(format!(
                "cannot try again: proofing is {}, not failed",
                self.state.as_str()
            )));
        }
        self.state = State::InProgress;
        self.decided_at = None;
        self.decided_by = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filled() -> Proofing {
        let mut p = Proofing::default();
        p.accept_terms(true, true, 1).unwrap();
        for (name, data) in [
            ("business", json!({"name": "Smith Pediatrics"})),
            (
                "representative",
                json!({"first_name": "Jane", "last_name": "Smith", "date_of_birth": "1975-06-01",
                       "personal_email": "jane@example.org",
                       "home_address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"}}),
            ),
            ("government_id", json!({"ssn": "123-45-6789"})),
            ("financial_id", json!({"card_number": "4111111111111111"})),
        ] {
            p.save_section(Section::parse(name, &data).unwrap()).unwrap();
        }
        p
    }

    #[test]
    fn nothing_happens_before_the_terms_are_accepted() {
        let mut p = Proofing::default();
        let section = Section::parse("business", &json!({"name": "x"})).unwrap();
        assert!(matches!(p.save_section(section), Err(ProofingError::State(_))));
        assert!(
            matches!(p.accept_terms(true, false, 1), Err(ProofingError::Field { field, .. }) if field == "identity_verification_agreement")
        );
        assert_eq!(p.state, State::NotStarted);
        p.accept_terms(true, true, 1).unwrap();
        assert_eq!(p.state, State::TermsAccepted);
    }

    #[test]
    fn submit_needs_every_section_and_the_confirmation() {
        let mut p = filled();
        let err = p.submit(5).unwrap_err();
        assert!(matches!(&err, ProofingError::Field { field, .. } if field == "confirmation.code"), "{err}");
        let (code, pending) = PendingCode::new(10).unwrap();
        p.start_confirmation("+15555550123", pending).unwrap();
        p.confirm(&code, 20).unwrap();
        let now = crate::clock::parse_date("2026-11-23").unwrap();
        assert!(p.sections(now).iter().all(|s| s.status == "ready"), "{:?}", p.sections(now));
        // A field that is there but breaks a rule keeps its section from being ready.
        let mut wrong = p.clone();
        wrong.save_section(Section::parse("government_id", &json!({"npi": "1234567890"})).unwrap()).unwrap();
        let government = wrong.sections(now).into_iter().find(|s| s.section == "government_id").unwrap();
        assert_eq!(government.status, "incomplete");
        assert!(government.missing.is_empty());
        assert_eq!(government.invalid[0].field, "government_id.npi");
        p.submit(30).unwrap();
        assert_eq!(p.state, State::Submitted);
        assert!(p.save_section(Section::parse("business", &json!({"name": "y"})).unwrap()).is_err());
    }

    #[test]
    fn a_failure_erases_identifiers_and_can_be_tried_again() {
        let mut p = filled();
        let (code, pending) = PendingCode::new(10).unwrap();
        p.start_confirmation("+15555550123", pending).unwrap();
        p.confirm(&code, 20).unwrap();
        p.submit(30).unwrap();
        p.decide(Decision::Failed(vec![Reason::new("government_id.ssn", "never issued")]), "rules", 31).unwrap();
        assert_eq!(p.state, State::Failed);
        assert_eq!(p.private.enrollment.government_id.as_ref().unwrap().ssn, None);
        assert_eq!(p.private.enrollment.government_id.as_ref().unwrap().ssn_last4.as_deref(), Some("6789"));
        assert!(p.submit(32).is_err(), "no resubmitting without Try Again");
        p.retry().unwrap();
        assert_eq!(p.state, State::InProgress);
        assert!(p.submit(33).is_err(), "the erased SSN must be given again");
        p.save_section(Section::parse("government_id", &json!({"npi": "1234567893"})).unwrap()).unwrap();
        let missing = p.submit(34).unwrap_err();
        assert!(matches!(&missing, ProofingError::Field { field, .. } if field == "financial_id"), "{missing}");
        p.save_section(Section::parse("financial_id", &json!({"phone": "+15555550123"})).unwrap()).unwrap();
        p.submit(34).unwrap();
        p.decide(Decision::Verified, "rules", 35).unwrap();
        assert_eq!(p.state, State::Verified);
        assert!(p.retry().is_err() && p.attest("again", "admin", 36).is_err(), "verified is final");
    }

    #[test]
    fn pending_leaves_it_submitted_and_attesting_needs_a_reason() {
        let mut p = Proofing::default();
        assert!(p.attest(" ", "cli:admin", 1).is_err());
        p.attest("in person, contract 42", "cli:admin", 1).unwrap();
        assert_eq!(p.state, State::Verified);
        let mut q = filled();
        let (code, pending) = PendingCode::new(10).unwrap();
        q.start_confirmation("+15555550123", pending).unwrap();
        q.confirm(&code, 11).unwrap();
        q.submit(12).unwrap();
        q.decide(Decision::Pending, "manual", 13).unwrap();
        assert_eq!(q.state, State::Submitted);
        assert_eq!(q.private.enrollment.government_id.as_ref().unwrap().ssn.as_deref(), Some("123-45-6789"));
    }
}
