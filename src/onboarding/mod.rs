//! Practice onboarding: a practice's Direct domain and users, and its identity proofing, which
//! must be verified before the practice gets certificates or its users may send.
//!
//! [`Onboarding`] runs each proofing step against the store: it reads the record (opening its
//! sealed part with the KEK), lets [`proofing::Proofing`] decide, and saves the result with an
//! audit entry, refusing to overwrite a record someone else changed meanwhile.

pub(crate) mod certificates;
pub(crate) mod checks;
pub(crate) mod code;
pub(crate) mod default_anchors;
pub(crate) mod domain_name;
pub(crate) mod enrollment;
pub(crate) mod proofing;
pub(crate) mod referral;
pub(crate) mod setup;
pub(crate) mod verifier;
pub(crate) mod xdm_received;

use serde::Serialize;

use crate::config::CaConfig;
use crate::kek::{Kek, KekError};
use crate::store::{PracticeRecord, Store, StoreError, StoredProofing};
use code::{CodeChannel, PendingCode, Recipient};
use enrollment::{Section, SectionError};
use proofing::{Decision, Private, Proofing, ProofingError, Reason, SectionStatus, State};
use verifier::{Submission, Verifier};

#[derive(Debug, thiserror::Error)]
pub(crate) enum OnboardingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error(transparent)]
    Proofing(#[from] ProofingError),
    #[error(transparent)]
    Section(#[from] SectionError),
    /// The verifier or the code channel could not be reached: nothing changed, try again later.
    #[error("{0}")]
    Unavailable(String),
    /// Asked too often (confirmation codes sent): nothing changed; try again when it says.
    #[error("{0}")]
    TooMany(String),
    #[error("the proofing record of {0} is damaged: {1}")]
    Damaged(String, String),
    /// Verified, but a user's certificate could not be made: the decision is not saved.
    #[error("the practice stays unverified because its users' certificates could not be issued: {0}")]
    Certificates(String),
}

pub(crate) type Result<T> = std::result::Result<T, OnboardingError>;

/// Where a practice's proofing stands, as the CLI and the API show it (no SSN, card number or
/// knowledge answer in it).
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    pub practice: String,
    pub domains: Vec<String>,
    pub state: State,
    pub sections: Vec<SectionStatus>,
    /// Why it failed, or how it was verified.
    pub reasons: Vec<Reason>,
    pub terms_accepted_at: Option<i64>,
    pub submitted_at: Option<i64>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    /// The confirmation code waiting to be entered, if any.
    pub code: Option<CodeStatus>,
    pub confirmed_phone: Option<String>,
    /// The form, masked.
    pub enrollment: serde_json::Value,
    /// The addresses this step gave a certificate (the verification's, when the node runs a CA).
    pub certificates_issued: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CodeStatus {
    pub expires_at: i64,
    pub tries_left: u32,
}

/// Everything a proofing step needs.
pub(crate) struct Onboarding<'a> {
    pub store: &'a dyn Store,
    pub kek: &'a Kek,
    /// How the node's development CA issues the certificates a verification brings.
    pub ca: &'a CaConfig,
    pub verifier: &'a dyn Verifier,
    pub channel: &'a dyn CodeChannel,
    pub now: i64,
}

/// A loaded record: the practice, what was stored, what it says.
struct Loaded {
    practice: PracticeRecord,
    stored: StoredProofing,
    proofing: Proofing,
}

impl Onboarding<'_> {
    fn load(&self, practice: &str) -> Result<Loaded> {
        let practice = self.store.practice(practice)?;
        let stored = self.store.proofing(practice.id)?;
        let damaged = |e: String| OnboardingError::Damaged(practice.name.clone(), e);
        let private = match &stored.sealed {
            Some(sealed) => {
                let plain = self.kek.open_proofing(sealed)?;
                serde_json::from_slice::<Private>(&plain).map_err(|e| damaged(e.to_string()))?
            }
            None => Private::default(),
        };
        let mut private = private;
        // The business is the practice: its name is filled in, to be changed if it differs.
        if private.enrollment.business.is_none() {
            private.enrollment.business = Some(enrollment::Business { name: practice.name.clone() });
        }
        let proofing = Proofing {
            state: stored.state,
            private,
            reasons: serde_json::from_str(&stored.reasons).map_err(|e| damaged(e.to_string()))?,
            decided_by: stored.decided_by.clone(),
            decided_at: stored.decided_at,
        };
        Ok(Loaded { practice, stored, proofing })
    }

    /// Saves `proofing`; when it has just become verified, with the users' certificates (all of
    /// them or, failing one, nothing). The addresses given one.
    fn save(&self, loaded: &Loaded, proofing: &Proofing, action: &str, detail: &str) -> Result<Vec<String>> {
        let issued = if proofing.state == State::Verified && loaded.proofing.state != State::Verified {
            let addresses = loaded.practice.addresses(self.store)?;
            certificates::missing(self.store, self.kek, self.ca, &addresses, self.now)
                .map_err(OnboardingError::Certificates)?
        } else {
            Vec::new()
        };
        let plain = serde_json::to_vec(&proofing.private).map_err(|e| OnboardingError::Unavailable(e.to_string()))?;
        let record = StoredProofing {
            state: proofing.state,
            version: loaded.stored.version,
            sealed: Some(self.kek.seal_proofing(&plain)?),
            reasons: serde_json::to_string(&proofing.reasons).unwrap_or_else(|_| "[]".into()),
            decided_by: proofing.decided_by.clone(),
            decided_at: proofing.decided_at,
        };
        self.store.save_proofing(loaded.practice.id, &record, &issued, action, detail)?;
        Ok(issued.iter().map(|i| i.owner.to_string()).collect())
    }

    /// Runs `step` on the record and saves what it changed, also when the step refused (a
    /// wrong confirmation code still counts as a try).
    fn step(
        &self,
        practice: &str,
        action: &str,
        step: impl FnOnce(&mut Proofing) -> std::result::Result<String, ProofingError>,
    ) -> Result<Status> {
        let loaded = self.load(practice)?;
        let mut proofing = loaded.proofing.clone();
        let outcome = step(&mut proofing);
        let mut issued = Vec::new();
        if proofing != loaded.proofing {
            let detail = match &outcome {
                Ok(detail) => detail.clone(),
                Err(e) => format!("refused: {e}"),
            };
            issued = self.save(&loaded, &proofing, action, &detail)?;
        }
        outcome?;
        Ok(Status { certificates_issued: issued, ..status_of(loaded.practice, &proofing, self.now) })
    }

    pub(crate) fn status(&self, practice: &str) -> Result<Status> {
        let Loaded { practice, proofing, .. } = self.load(practice)?;
        Ok(status_of(practice, &proofing, self.now))
    }

    pub(crate) fn accept_terms(
        &self,
        practice: &str,
        activation_terms: bool,
        verification_agreement: bool,
    ) -> Result<Status> {
        self.step(practice, "proofing.terms", |p| {
            p.accept_terms(activation_terms, verification_agreement, self.now)?;
            Ok("accepted the activation terms and the identity-verification agreement".into())
        })
    }

    /// Saves one section of the form (its JSON).
    pub(crate) fn save_section(&self, practice: &str, name: &str, json: &serde_json::Value) -> Result<Status> {
        let section = Section::parse(name, json)?;
        self.step(practice, "proofing.section", |p| {
            p.save_section(section)?;
            Ok(format!("saved section {name}"))
        })
    }

    /// Sends a new confirmation code to `phone` through the channel; it replaces any earlier one.
    /// Nothing is saved unless the channel took the code.
    pub(crate) fn send_code(&self, practice: &str, phone: &str) -> Result<Status> {
        let loaded = self.load(practice)?;
        let mut proofing = loaded.proofing.clone();
        // A code goes to a phone or mailbox the form names: not without limit.
        let sent = &mut proofing.private.codes_sent;
        sent.retain(|&at| at > self.now - 3600);
        if sent.len() >= code::MAX_CODES_PER_HOUR {
            let next = sent.iter().min().map_or(self.now, |first| first + 3600);
            return Err(OnboardingError::TooMany(format!(
                "{} confirmation codes were sent for this practice in the last hour; the next may be sent at {}",
                sent.len(),
                crate::clock::iso8601(next)
            )));
        }
        sent.push(self.now);
        let (code, pending) = PendingCode::new(self.now).map_err(|e| OnboardingError::Unavailable(e.to_string()))?;
        proofing.start_confirmation(phone, pending)?;
        let email = proofing.private.enrollment.representative.as_ref().map(|r| r.personal_email.clone());
        let to =
            Recipient { practice: &loaded.practice.name, phone, email: email.as_deref().filter(|e| !e.is_empty()) };
        let went = self.channel.send(&to, &code).map_err(|e| {
            OnboardingError::Unavailable(format!("the confirmation code could not be sent: {e}; ask for a new one"))
        })?;
        self.save(&loaded, &proofing, "proofing.code", &format!("code for {} sent by {went}", masked_phone(phone)))?;
        Ok(status_of(loaded.practice, &proofing, self.now))
    }

    pub(crate) fn confirm(&self, practice: &str, code: &str) -> Result<Status> {
        self.step(practice, "proofing.confirm", |p| {
            p.confirm(code, self.now)?;
            Ok("confirmation code entered correctly".into())
        })
    }

    /// "Verify Identity": submits the form; the rules decide first, then the verifier.
    pub(crate) fn submit(&self, practice: &str) -> Result<Status> {
        let loaded = self.load(practice)?;
        let mut proofing = loaded.proofing.clone();
        proofing.submit(self.now)?;
        let broken = verifier::rules(&proofing.private.enrollment, self.now);
        let (decision, by) = if !broken.is_empty() {
            (Decision::Failed(broken), "rules")
        } else {
            let submission = Submission {
                practice: &loaded.practice.name,
                domain: loaded.practice.domains.first().map_or("", String::as_str),
                enrollment: &proofing.private.enrollment,
                confirmed_phone: proofing.private.confirmation_phone.as_deref(),
            };
            let decision = self.verifier.verify(&submission).map_err(|e| {
                OnboardingError::Unavailable(format!("identity verification is unavailable: {e}; submit again later"))
            })?;
            (decision, self.verifier.name())
        };
        let detail = describe(&decision, by);
        proofing.decide(decision, by, self.now)?;
        let issued = self.save(&loaded, &proofing, "proofing.submit", &detail)?;
        Ok(Status { certificates_issued: issued, ..status_of(loaded.practice, &proofing, self.now) })
    }

    /// An admin's decision on a submitted form.
    pub(crate) fn decide(&self, practice: &str, approve: bool, reason: &str, admin: &str) -> Result<Status> {
        if reason.trim().is_empty() {
            return Err(ProofingError::Field {
                field: "reason".into(),
                message: "give the reason for the decision".into(),
            }
            .into());
        }
        let decision = if approve { Decision::Verified } else { Decision::Failed(vec![Reason::new("", reason)]) };
        let detail = format!("{}: {reason}", describe(&decision, admin));
        self.step(practice, "proofing.decision", |p| {
            p.decide(decision, admin, self.now)?;
            if approve {
                p.reasons = vec![Reason::new("", reason)];
            }
            Ok(detail)
        })
    }

    /// An operator vouches for a proofing done outside hisp.
    pub(crate) fn attest(&self, practice: &str, reason: &str, admin: &str) -> Result<Status> {
        self.step(practice, "proofing.attest", |p| {
            p.attest(reason, admin, self.now)?;
            Ok(format!("verified out of band: {reason}"))
        })
    }

    pub(crate) fn retry(&self, practice: &str) -> Result<Status> {
        self.step(practice, "proofing.retry", |p| {
            p.retry()?;
            Ok("try again".into())
        })
    }
}

fn describe(decision: &Decision, by: &str) -> String {
    match decision {
        Decision::Verified => format!("verified by {by}"),
        Decision::Pending => format!("submitted; awaiting {by}"),
        Decision::Failed(reasons) => {
            format!("failed ({by}): {}", reasons.iter().map(Reason::to_string).collect::<Vec<_>>().join("; "))
        }
    }
}

/// `+1555***0123`: enough to recognise in the audit log, not enough to call.
fn masked_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 8 {
        return "***".into();
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***{tail}")
}

/// What a step leaves, as it is shown: from the record in hand, not read back from the store.
fn status_of(practice: PracticeRecord, proofing: &Proofing, now: i64) -> Status {
    Status {
        practice: practice.name,
        domains: practice.domains,
        state: proofing.state,
        sections: proofing.sections(now),
        reasons: proofing.reasons.clone(),
        terms_accepted_at: proofing.private.terms_accepted_at,
        submitted_at: proofing.private.submitted_at,
        decided_by: proofing.decided_by.clone(),
        decided_at: proofing.decided_at,
        code: proofing
            .private
            .code
            .as_ref()
            .map(|c| CodeStatus { expires_at: c.expires_at, tries_left: code::MAX_TRIES.saturating_sub(c.tries) }),
        confirmed_phone: proofing.private.confirmed_at.and(proofing.private.confirmation_phone.clone()),
        enrollment: proofing.private.enrollment.masked(),
        certificates_issued: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::{DirectAddress, Domain, Owner};
    use crate::dev_ca::DevCa;
    use code::NoChannel;
    use verifier::RulesVerifier;

    const NOW: i64 = 1_796_000_000;

    #[test]
    fn a_verification_brings_every_users_certificate_or_does_not_happen() {
        let store = crate::store::in_memory("test").unwrap();
        let kek = Kek::unlock(&*store, "a secret of the node").unwrap();
        let ca = CaConfig::default();
        let onboarding =
            Onboarding { store: &*store, kek: &kek, ca: &ca, verifier: &RulesVerifier, channel: &NoChannel, now: NOW };
        // An address as long as an address may be: too long for a certificate's common name.
        let long = DirectAddress::parse(&format!("{}@leefamilymedicinepa.direct.example.org", "a".repeat(64))).unwrap();
        let short = DirectAddress::parse("dr.lee@leefamilymedicinepa.direct.example.org").unwrap();
        store.add_practice("Lee Family Medicine, P.A.", long.domain(), &[]).unwrap();
        for address in [&long, &short] {
            store.add_address(address, None).unwrap();
        }
        DevCa::create(&*store, &kek, "test CA", 2048, NOW, 30, false).unwrap();
        let verified = onboarding.attest("Lee Family Medicine, P.A.", "met the partners", "admin").unwrap();
        assert_eq!(verified.state, State::Verified);
        let mut issued = verified.certificates_issued.clone();
        issued.sort();
        assert_eq!(issued, vec![long.to_string(), short.to_string()]);
        for address in [&long, &short] {
            let certs = store.certificates(Some(&Owner::Address(address.clone()))).unwrap();
            assert!(certs.len() == 1 && certs[0].key_id.is_some(), "{address}: {certs:?}");
        }

        // A CA that cannot issue: the practice is not verified, and no one has a certificate.
        let other = Domain::parse("oak.direct.example.org").unwrap();
        store.add_practice("Oak Clinic", &other, &[]).unwrap();
        let oak = DirectAddress::parse("dr.oak@oak.direct.example.org").unwrap();
        store.add_address(&oak, None).unwrap();
        let (_, key_id) = store.ca().unwrap().unwrap();
        store.set_ca(b"not a certificate", key_id, true).unwrap();
        let refused = onboarding.attest("Oak Clinic", "met them", "admin").unwrap_err();
        assert!(matches!(refused, OnboardingError::Certificates(_)), "{refused}");
        assert!(refused.to_string().contains("stays unverified"), "{refused}");
        assert_eq!(onboarding.status("Oak Clinic").unwrap().state, State::NotStarted);
        assert!(store.certificates(Some(&Owner::Address(oak))).unwrap().is_empty());
    }
}
