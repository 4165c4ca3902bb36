//! A practice's identity-proofing state as the store keeps it (the machine that moves it is
//! `onboarding::proofing`), and the check everything only a verified practice may do goes through.

use serde::{Deserialize, Serialize};

use super::{Result, Store};
use crate::address::Domain;

/// Where a practice stands in identity proofing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProofingState {
    #[default]
    NotStarted,
    TermsAccepted,
    InProgress,
    Submitted,
    Verified,
    Failed,
}

impl ProofingState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProofingState::NotStarted => "not-started",
            ProofingState::TermsAccepted => "terms-accepted",
            ProofingState::InProgress => "in-progress",
            ProofingState::Submitted => "submitted",
            ProofingState::Verified => "verified",
            ProofingState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<ProofingState> {
        [
            ProofingState::NotStarted,
            ProofingState::TermsAccepted,
            ProofingState::InProgress,
            ProofingState::Submitted,
            ProofingState::Verified,
            ProofingState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Refuses what only a verified practice may do, naming the practice and its state. Err(Ok):
/// refused; Err(Err): the store could not be asked.
pub fn require_verified(store: &dyn Store, domain: &Domain) -> std::result::Result<(), Result<String>> {
    let Some((practice, state)) = store.practice_state(domain).map_err(Err)? else {
        return Err(Ok(format!("{domain} is not a hosted domain")));
    };
    if state == ProofingState::Verified.as_str() {
        return Ok(());
    }
    Err(Ok(format!(
        "practice {practice} has not completed identity proofing (it is {state}); `hisp proofing status {domain}` shows what is left"
    )))
}
