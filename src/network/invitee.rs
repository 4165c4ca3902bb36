//! Who is invited, checked: a name, an e-mail address or a fax number, the relationship with
//! its role or date of birth. Every problem is listed, each with its field.

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::onboarding::checks;
use crate::store::{ContactKind, Relationship, Role};

/// An invitation as a sender asks for it (CLI flags or an API body).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteeRequest {
    pub name: String,
    pub email: Option<String>,
    pub fax: Option<String>,
    /// patient, colleague-here or colleague-elsewhere.
    pub relationship: String,
    /// clinician or staff (colleague-here).
    pub role: Option<String>,
    /// YYYY-MM-DD (patient).
    pub date_of_birth: Option<String>,
}

/// A checked invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invitee {
    pub name: String,
    pub contact_kind: ContactKind,
    /// An e-mail address in lower case, or a fax number in E.164 form.
    pub contact: String,
    pub relationship: Relationship,
    pub role: Option<Role>,
    pub date_of_birth: Option<String>,
}

/// One problem with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Every problem, one after the other: "email: ...; date_of_birth: ...".
pub(crate) fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

const MAX_NAME_CHARS: usize = 200;
/// RFC 5321's limit on a path.
const MAX_EMAIL_BYTES: usize = 254;

pub(crate) fn check(request: &InviteeRequest, now: i64) -> Result<Invitee, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &'static str, message: String| errors.push(FieldError { field, message });
    let name = request.name.trim();
    if let Err(e) = check_name(name) {
        fail("name", e.into());
    }
    let contact = match (&request.email, &request.fax) {
        (Some(email), None) => email_address(email).map(|e| (ContactKind::Email, e)).map_err(|e| ("email", e)),
        (None, Some(fax)) => fax_number(fax).map(|f| (ContactKind::Fax, f)).map_err(|e| ("fax", e)),
        (Some(_), Some(_)) => Err(("fax", "give an e-mail address or a fax number, not both".to_string())),
        (None, None) => Err(("email", "give the invitee's e-mail address or fax number".to_string())),
    };
    let contact = contact.map_err(|(field, message)| fail(field, message)).ok();
    let relationship = Relationship::parse(request.relationship.trim());
    if relationship.is_none() {
        fail("relationship", format!("{:?}: use patient, colleague-here or colleague-elsewhere", request.relationship));
    }
    let role = match (relationship, request.role.as_deref().map(str::trim)) {
        (Some(Relationship::ColleagueHere), Some(role)) => {
            let parsed = Role::parse(role);
            if parsed.is_none() {
                fail("role", format!("{role:?}: use clinician or staff"));
            }
            parsed
        }
        (Some(Relationship::ColleagueHere), None) => {
            fail("role", "a colleague joining the practice is a clinician or staff".into());
            None
        }
        (_, Some(_)) => {
            fail("role", "a role is only for a colleague joining the practice".into());
            None
        }
        (_, None) => None,
    };
    let date_of_birth = match (relationship, request.date_of_birth.as_deref().map(str::trim)) {
        (Some(Relationship::Patient), Some(text)) => {
            date_of_birth(text, now).map_err(|e| fail("date_of_birth", e.into())).ok()
        }
        (Some(Relationship::Patient), None) => {
            fail("date_of_birth", "a patient's date of birth is required (YYYY-MM-DD)".into());
            None
        }
        (_, Some(_)) => {
            fail("date_of_birth", "a date of birth is only for a patient".into());
            None
        }
        (_, None) => None,
    };
    match (errors.is_empty(), contact, relationship) {
        (true, Some((contact_kind, contact)), Some(relationship)) => {
            Ok(Invitee { name: name.to_string(), contact_kind, contact, relationship, role, date_of_birth })
        }
        _ => Err(errors),
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the invitee's name is required");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("a name is at most 200 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot hold line breaks or other control characters");
    }
    Ok(())
}

/// An e-mail address a notification can be sent to, in lower case.
pub(crate) fn email_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() > MAX_EMAIL_BYTES {
        return Err(format!("an e-mail address is at most {MAX_EMAIL_BYTES} characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "@.!#$%&'*+/=?^_`{|}~-".contains(c);
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(format!("{text:?} is not an e-mail address ({bad:?} cannot be in one)"));
    }
    checks::email(text).map_err(|e| format!("{text:?} is {e}"))?;
    let (local, domain) = text.rsplit_once('@').unwrap_or_default();
    if local.starts_with('.') || local.ends_with('.') || text.contains("..") || domain.split('.').any(str::is_empty) {
        return Err(format!("{text:?} is not an e-mail address"));
    }
    Ok(text.to_ascii_lowercase())
}

/// A fax number in E.164 form; spaces, dashes, dots and brackets are taken out first.
pub(crate) fn fax_number(text: &str) -> Result<String, String> {
    let kept: String = text.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    checks::e164(&kept).map_err(|_| format!("{:?}: a fax number is in E.164 form, e.g. +15555550123", text.trim()))?;
    Ok(kept)
}

/// A date of birth: a real date, not in the future, at most 130 years ago.
pub(crate) fn date_of_birth(text: &str, now: i64) -> Result<String, &'static str> {
    let born = clock::parse_date(text).ok_or("a date of birth is YYYY-MM-DD")?;
    if born > now {
        return Err("the date of birth is in the future");
    }
    if now - born > 131 * 366 * 86_400 {
        return Err("the date of birth is not plausible");
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000; // 2026-12-01

    fn patient() -> InviteeRequest {
        InviteeRequest {
            name: " Ada Lovelace ".into(),
            email: Some("Ada@Example.ORG".into()),
            relationship: "patient".into(),
            date_of_birth: Some("1970-05-17".into()),
            ..Default::default()
        }
    }

    fn fields(request: &InviteeRequest) -> Vec<&'static str> {
        check(request, NOW).unwrap_err().iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_patient_needs_a_date_of_birth_and_a_colleague_here_a_role() {
        let invitee = check(&patient(), NOW).unwrap();
        assert_eq!(invitee.name, "Ada Lovelace");
        assert_eq!(invitee.contact, "ada@example.org");
        assert_eq!(invitee.contact_kind, ContactKind::Email);
        assert_eq!(invitee.date_of_birth.as_deref(), Some("1970-05-17"));
        assert_eq!(fields(&InviteeRequest { date_of_birth: None, ..patient() }), ["date_of_birth"]);
        let colleague = InviteeRequest {
            relationship: "colleague-here".into(),
            date_of_birth: None,
            role: Some("staff".into()),
            ..patient()
        };
        assert_eq!(check(&colleague, NOW).unwrap().role, Some(Role::Staff));
        assert_eq!(fields(&InviteeRequest { role: None, ..colleague.clone() }), ["role"]);
        assert_eq!(fields(&InviteeRequest { role: Some("boss".into()), ..colleague.clone() }), ["role"]);
        assert_eq!(fields(&InviteeRequest { role: Some("staff".into()), ..patient() }), ["role"]);
        let elsewhere = InviteeRequest { relationship: "colleague-elsewhere".into(), ..colleague };
        assert_eq!(fields(&elsewhere), ["role"]);
        assert_eq!(
            fields(&InviteeRequest { relationship: "friend".into(), ..patient() }),
            ["relationship", "date_of_birth"]
        );
    }

    #[test]
    fn bad_names_addresses_numbers_and_dates_are_each_named() {
        for (request, field) in [
            (InviteeRequest { name: "".into(), ..patient() }, "name"),
            (InviteeRequest { name: "Ada\r\nBcc: x@evil.test".into(), ..patient() }, "name"),
            (InviteeRequest { name: "A".repeat(201), ..patient() }, "name"),
            (InviteeRequest { email: Some("ada".into()), ..patient() }, "email"),
            (InviteeRequest { email: Some("ada@example.org\r\nRCPT TO:<x@y.z>".into()), ..patient() }, "email"),
            (InviteeRequest { email: Some("<ada@example.org>".into()), ..patient() }, "email"),
            (InviteeRequest { email: Some("ada@@example.org".into()), ..patient() }, "email"),
            (InviteeRequest { email: Some("ada@example..org".into()), ..patient() }, "email"),
            (InviteeRequest { email: Some(format!("{}@example.org", "a".repeat(250))), ..patient() }, "email"),
            (InviteeRequest { email: None, ..patient() }, "email"),
            (InviteeRequest { fax: Some("+15555550123".into()), ..patient() }, "fax"),
            (InviteeRequest { email: None, fax: Some("555-0123".into()), ..patient() }, "fax"),
            (InviteeRequest { email: None, fax: Some("+0155555501234".into()), ..patient() }, "fax"),
            (InviteeRequest { date_of_birth: Some("1970-02-30".into()), ..patient() }, "date_of_birth"),
            (InviteeRequest { date_of_birth: Some("2027-01-01".into()), ..patient() }, "date_of_birth"),
            (InviteeRequest { date_of_birth: Some("1850-01-01".into()), ..patient() }, "date_of_birth"),
        ] {
            assert_eq!(fields(&request), [field], "{request:?}");
        }
        let fax = InviteeRequest { email: None, fax: Some("+1 (555) 555-0123".into()), ..patient() };
        assert_eq!(check(&fax, NOW).unwrap().contact, "+15555550123");
        let everything_wrong = InviteeRequest {
            name: "\u{7}".into(),
            email: Some("x".into()),
            relationship: "patient".into(),
            date_of_birth: Some("soon".into()),
            ..Default::default()
        };
        assert_eq!(fields(&everything_wrong), ["name", "email", "date_of_birth"], "every problem, not the first");
    }
}
