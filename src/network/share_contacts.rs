//! The contacts a practice shares documents with (issue 24): a name, an organization, the e-mail
//! address the link goes to and a mobile number in E.164 for the SMS code, each checked, every
//! problem named by its field.

use serde::Deserialize;

use super::invitee::{self, FieldError};
use crate::store::accounts::AccountRecord;
use crate::store::sharing::{ShareContactFields, ShareContactRecord};
use crate::store::{AccountRole, NodeStore, PracticeRecord, ShareCheck, StoreError};

const MAX_ORGANIZATION_CHARS: usize = 200;

/// A contact as the API, the CLI and the portal give it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactRequest {
    pub name: String,
    pub organization: Option<String>,
    pub email: String,
    /// E.164 (spaces, dashes, dots and brackets are taken out).
    pub mobile: Option<String>,
    /// YYYY-MM-DD: what a patient gives when the practice checks the date of birth.
    pub date_of_birth: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ContactError {
    #[error("{}", invitee::describe(.0))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request's fields checked and tidied.
struct Checked {
    name: String,
    organization: Option<String>,
    email: String,
    mobile: Option<String>,
    date_of_birth: Option<String>,
}

impl Checked {
    fn fields(&self) -> ShareContactFields<'_> {
        ShareContactFields {
            name: &self.name,
            organization: self.organization.as_deref(),
            email: &self.email,
            mobile: self.mobile.as_deref(),
            date_of_birth: self.date_of_birth.as_deref(),
        }
    }
}

fn check(r: &ContactRequest, now: i64) -> Result<Checked, ContactError> {
    let mut errors = Vec::new();
    let name = r.name.trim().to_string();
    if let Err(e) = invitee::check_name(&name) {
        errors.push(FieldError { field: "name", message: e.replace("the invitee's", "the contact's") });
    }
    let organization = r.organization.as_deref().map(str::trim).filter(|o| !o.is_empty()).map(String::from);
    if let Some(o) = &organization {
        if o.chars().count() > MAX_ORGANIZATION_CHARS || o.chars().any(char::is_control) {
            let message = format!("at most {MAX_ORGANIZATION_CHARS} characters, no line breaks");
            errors.push(FieldError { field: "organization", message });
        }
    }
    let email = invitee::email_address(&r.email).map_err(|message| errors.push(FieldError { field: "email", message }));
    let mobile =
        r.mobile.as_deref().filter(|m| !m.trim().is_empty()).map(invitee::fax_number).transpose().map_err(|_| {
            let message = "a mobile number in E.164 form, e.g. +15555550123".to_string();
            errors.push(FieldError { field: "mobile", message })
        });
    let date_of_birth = r
        .date_of_birth
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| invitee::date_of_birth(d, now))
        .transpose()
        .map_err(|message| errors.push(FieldError { field: "date_of_birth", message: message.to_string() }));
    match (errors.is_empty(), email, mobile, date_of_birth) {
        (true, Ok(email), Ok(mobile), Ok(date_of_birth)) => {
            Ok(Checked { name, organization, email, mobile, date_of_birth })
        }
        _ => Err(ContactError::Invalid(errors)),
    }
}

/// Adds a contact to practice `practice_id`.
pub(crate) fn add(
    store: &dyn NodeStore,
    practice_id: i64,
    r: &ContactRequest,
    now: i64,
) -> Result<ShareContactRecord, ContactError> {
    let checked = check(r, now)?;
    Ok(store.add_share_contact(practice_id, &checked.fields(), now)?)
}

/// Replaces a contact's fields.
pub(crate) fn update(
    store: &dyn NodeStore,
    practice_id: i64,
    id: i64,
    r: &ContactRequest,
    now: i64,
) -> Result<ShareContactRecord, ContactError> {
    let checked = check(r, now)?;
    Ok(store.update_share_contact(practice_id, id, &checked.fields(), now)?)
}

/// Whether `account` may share `practice`'s documents: the practice shares by link, and the
/// account's role is one it lets share. Why not, as a sentence's body.
pub(crate) fn may_share(practice: &PracticeRecord, account: &AccountRecord) -> Result<(), String> {
    if practice.share_check == ShareCheck::Off {
        return Err(format!(
            "{} does not share documents by link: its admin sets it up in the practice settings",
            practice.name
        ));
    }
    if account.practice_id != Some(practice.id) || !practice.share_roles.contains(&account.role) {
        return Err(format!(
            "at {}, the {} role may not share documents (its admin chooses who may)",
            practice.name, account.role
        ));
    }
    Ok(())
}

/// Roles as an admin lists them ("clinician,admin" or "clinician admin"): members' roles only.
pub(crate) fn roles(text: &str) -> Result<Vec<AccountRole>, String> {
    text.split([',', ' '])
        .filter(|r| !r.is_empty())
        .map(|r| match AccountRole::parse(r.trim()) {
            Some(AccountRole::Patient) | None => Err(format!("{r:?}: the roles are clinician, staff and admin")),
            Some(role) => Ok(role),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::testing::{store, T0};

    fn request(name: &str, email: &str, mobile: Option<&str>) -> ContactRequest {
        ContactRequest {
            name: name.into(),
            organization: Some(" Springfield Law ".into()),
            email: email.into(),
            mobile: mobile.map(String::from),
            date_of_birth: None,
        }
    }

    #[test]
    fn contacts_are_checked_kept_per_practice_and_unique_by_address() {
        let store = store();
        let elm = store.practice("Elm Clinic").unwrap().id;
        let oak = store.practice("Oak Clinic").unwrap().id;
        let added = add(&*store, elm, &request("Jane Roe", "Jane@Law.example", Some("+1 (217) 555-0100")), T0).unwrap();
        assert_eq!(added.email, "jane@law.example");
        assert_eq!(added.mobile.as_deref(), Some("+12175550100"));
        assert_eq!(added.organization.as_deref(), Some("Springfield Law"));
        let again = add(&*store, elm, &request("Jane R.", "jane@law.example", None), T0).unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");
        // Another practice keeps its own, and never sees or changes Elm's.
        add(&*store, oak, &request("Jane Roe", "jane@law.example", None), T0).unwrap();
        assert_eq!(store.share_contacts(oak).unwrap().len(), 1);
        assert!(store.share_contact(oak, added.id).is_err());
        assert!(update(&*store, oak, added.id, &request("X", "x@y.example", None), T0).is_err());
        assert!(store.remove_share_contact(oak, added.id).is_err());
        let changed = update(&*store, elm, added.id, &request("Jane Roe", "jroe@law.example", None), T0 + 5).unwrap();
        assert_eq!((changed.email.as_str(), changed.mobile, changed.updated_at), ("jroe@law.example", None, T0 + 5));
        store.remove_share_contact(elm, added.id).unwrap();
        assert!(store.share_contacts(elm).unwrap().is_empty());
        let Err(ContactError::Invalid(errors)) = add(&*store, elm, &request("", "not an address", Some("555")), T0)
        else {
            panic!("refused")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "email", "mobile"]);
    }

    #[test]
    fn only_the_roles_the_admin_chose_share_and_only_once_sharing_is_set_up() {
        let store = store();
        let practice = store.practice("Elm Clinic").unwrap();
        let (id, name) = (practice.id, practice.name.clone());
        let account = |role| AccountRecord {
            id: 1,
            practice_id: Some(id),
            practice: Some(name.clone()),
            role,
            name: "Ada".into(),
            email: "ada@elm.test".into(),
            password_hash: String::new(),
            created_at: T0,
        };
        assert!(may_share(&practice, &account(AccountRole::Clinician))
            .unwrap_err()
            .contains("does not share documents"));
        store.set_sharing(practice.id, ShareCheck::Sms, &roles("clinician, admin").unwrap(), false).unwrap();
        let practice = store.practice("Elm Clinic").unwrap();
        assert_eq!(practice.share_check, ShareCheck::Sms);
        assert_eq!(practice.share_roles, [AccountRole::Admin, AccountRole::Clinician]);
        assert_eq!(may_share(&practice, &account(AccountRole::Clinician)), Ok(()));
        assert!(may_share(&practice, &account(AccountRole::Staff))
            .unwrap_err()
            .contains("the staff role may not share"));
        let elsewhere = AccountRecord { practice_id: Some(practice.id + 1), ..account(AccountRole::Admin) };
        assert!(may_share(&practice, &elsewhere).is_err(), "another practice's member");
        assert!(roles("clinician patient").is_err());
        assert!(store.set_sharing(practice.id, ShareCheck::None, &[AccountRole::Patient], false).is_err());
    }
}
