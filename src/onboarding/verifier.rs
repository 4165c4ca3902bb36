//! Who decides whether a submitted enrollment proves the representative's identity. The `rules`
//! always run first (a form that breaks them never reaches an admin or a service); then the
//! configured verifier: `rules` alone, `manual` (an admin approves or rejects), or `http` (an
//! external identity-verification service).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::checks;
use super::enrollment::Enrollment;
use super::proofing::{Decision, Reason};
use crate::dns::Resolver;

/// What a verifier is shown.
#[derive(Debug, Serialize)]
pub(crate) struct Submission<'a> {
    pub practice: &'a str,
    pub domain: &'a str,
    pub enrollment: &'a Enrollment,
    /// The phone the confirmation code reached.
    pub confirmed_phone: Option<&'a str>,
}

pub(crate) trait Verifier: Send + Sync {
    /// Recorded as the decider.
    fn name(&self) -> &'static str;
    /// Err: the verifier could not be asked (the submission stays editable; try later).
    fn verify(&self, submission: &Submission) -> Result<Decision, String>;
}

/// The checks of the enrollment's contents: NPI check digit, SSN ranges, adult date of birth,
/// E.164 phone, card Luhn digit, e-mail syntax. Every failure is listed, not only the first.
pub(crate) fn rules(enrollment: &Enrollment, now: i64) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let mut check = |field: &str, result: Result<(), &'static str>| {
        if let Err(message) = result {
            reasons.push(Reason::new(field, message));
        }
    };
    if let Some(r) = &enrollment.representative {
        check("representative.date_of_birth", checks::adult_born_on(&r.date_of_birth, now));
        check("representative.personal_email", checks::email(&r.personal_email));
    }
    if let Some(g) = &enrollment.government_id {
        if let Some(npi) = &g.npi {
            check("government_id.npi", checks::npi(npi));
        }
        if let Some(ssn) = &g.ssn {
            check("government_id.ssn", checks::ssn(ssn));
        }
    }
    if let Some(f) = &enrollment.financial_id {
        if let Some(phone) = &f.phone {
            check("financial_id.phone", checks::e164(phone));
        }
        if let Some(card) = &f.card_number {
            check("financial_id.card_number", checks::card_number(card));
        }
    }
    reasons
}

/// The rules are the whole decision.
pub(crate) struct RulesVerifier;

impl Verifier for RulesVerifier {
    fn name(&self) -> &'static str {
        "rules"
    }
    fn verify(&self, _: &Submission) -> Result<Decision, String> {
        Ok(Decision::Verified)
    }
}

/// An admin decides (`hisp proofing approve|reject`).
pub(crate) struct ManualVerifier;

impl Verifier for ManualVerifier {
    fn name(&self) -> &'static str {
        "manual"
    }
    fn verify(&self, _: &Submission) -> Result<Decision, String> {
        Ok(Decision::Pending)
    }
}

/// Posts the submission as JSON to an identity-verification service, which answers
/// `{"decision": "verified" | "failed" | "pending", "reasons": [{"field": .., "message": ..}]}`.
pub(crate) struct HttpVerifier {
    pub url: String,
    pub resolver: Box<dyn Resolver>,
    pub tls: openssl::ssl::SslConnector,
    pub timeout: Duration,
}

#[derive(Deserialize)]
struct Answer {
    decision: String,
    #[serde(default)]
    reasons: Vec<AnswerReason>,
}

/// A reason as a service gives it: an object, or plain text.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnswerReason {
    Field {
        #[serde(default)]
        field: String,
        message: String,
    },
    Text(String),
}

/// Maps a service's answer to a decision.
pub(crate) fn read_answer(status: u16, body: &[u8]) -> Result<Decision, String> {
    if !(200..300).contains(&status) {
        return Err(format!("the identity-verification service answered HTTP {status}"));
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the identity-verification service's answer is not understood: {e}"))?;
    let reasons: Vec<Reason> = answer
        .reasons
        .into_iter()
        .map(|r| match r {
            AnswerReason::Field { field, message } => Reason::new(&field, message),
            AnswerReason::Text(message) => Reason::new("", message),
        })
        .collect();
    match answer.decision.as_str() {
        "verified" => Ok(Decision::Verified),
        "failed" => Ok(Decision::Failed(if reasons.is_empty() {
            vec![Reason::new("", "the identity-verification service did not verify the identity")]
        } else {
            reasons
        })),
        "pending" => Ok(Decision::Pending),
        other => Err(format!("the identity-verification service gave an unknown decision {other:?}")),
    }
}

impl Verifier for HttpVerifier {
    fn name(&self) -> &'static str {
        "http"
    }
    fn verify(&self, submission: &Submission) -> Result<Decision, String> {
        let body = serde_json::to_vec(submission).map_err(|e| e.to_string())?;
        let (status, answer) =
            crate::fetch::post_json(&*self.resolver, &self.tls, &self.url, &body, None, self.timeout)?;
        read_answer(status, &answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onboarding::enrollment::Section;
    use serde_json::json;

    #[test]
    fn every_broken_rule_is_a_reason_naming_its_field() {
        let now = crate::clock::parse_date("2026-11-23").unwrap();
        let mut e = Enrollment::default();
        e.set(
            Section::parse("representative", &json!({"date_of_birth": "2015-01-01", "personal_email": "jane"}))
                .unwrap(),
        );
        e.set(Section::parse("government_id", &json!({"npi": "1234567890"})).unwrap());
        e.set(Section::parse("financial_id", &json!({"phone": "555-0123"})).unwrap());
        let fields: Vec<String> = rules(&e, now).into_iter().map(|r| r.field).collect();
        assert_eq!(
            fields,
            [
                "representative.date_of_birth",
                "representative.personal_email",
                "government_id.npi",
                "financial_id.phone"
            ]
        );
        e.set(Section::parse("financial_id", &json!({"card_number": "4111111111111112"})).unwrap());
        assert!(rules(&e, now).iter().any(|r| r.field == "financial_id.card_number"));
    }

    #[test]
    fn a_service_answer_maps_to_a_decision() {
        assert_eq!(read_answer(200, br#"{"decision":"verified"}"#), Ok(Decision::Verified));
        assert_eq!(
            read_answer(200, br#"{"decision":"failed","reasons":["address not found",{"field":"representative.last_name","message":"no match"}]}"#),
            Ok(Decision::Failed(vec![
                Reason::new("", "address not found"),
                Reason::new("representative.last_name", "no match")
            ]))
        );
        assert_eq!(read_answer(202, br#"{"decision":"pending"}"#), Ok(Decision::Pending));
        assert!(read_answer(500, b"oops").is_err());
        assert!(read_answer(200, br#"{"decision":"maybe"}"#).is_err());
        assert!(read_answer(200, b"<html>").is_err());
    }
}
