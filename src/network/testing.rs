//! What the network's tests share: a store with three practices, invitations and the
//! registrations that accept them.

use std::sync::Arc;

use crate::address::Domain;
use crate::config::InvitationsConfig;
use crate::network::accept::{PracticeDetails, Registration};
use crate::network::invitations::Invitations;
use crate::network::invitee::InviteeRequest;
use crate::store::NodeStore;

pub(crate) const T0: i64 = 1_796_000_000;
pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) fn store() -> Box<dyn NodeStore> {
    let store = crate::store::in_memory("test").unwrap();
    store.attach_fields(Arc::new(crate::store::fields::tests::Reversing)).unwrap();
    for (name, domain) in [("Elm Clinic", "elm.test"), ("Oak Clinic", "oak.test"), ("Ash Clinic", "ash.test")] {
        store.add_practice(name, &Domain::parse(domain).unwrap(), &[]).unwrap();
    }
    store
}

/// Invites and returns the code (as the notice would carry it).
pub(crate) fn invite(store: &dyn NodeStore, practice: &str, request: InviteeRequest) -> String {
    let config = InvitationsConfig::default();
    let sent = Invitations { store, config: &config, now: T0 }.send(practice, "dr@x.test", &request).unwrap();
    store.invitation(sent.record.practice_id, sent.record.id).unwrap().code
}

pub(crate) fn patient(email: &str) -> InviteeRequest {
    InviteeRequest {
        name: "Ada Lovelace".into(),
        email: Some(email.into()),
        relationship: "patient".into(),
        date_of_birth: Some("1970-05-17".into()),
        ..Default::default()
    }
}

pub(crate) fn colleague(email: &str, relationship: &str) -> InviteeRequest {
    InviteeRequest {
        name: "Grace Hopper".into(),
        email: Some(email.into()),
        relationship: relationship.into(),
        role: (relationship == "colleague-here").then(|| "staff".into()),
        ..Default::default()
    }
}

pub(crate) fn registration(code: &str) -> Registration {
    Registration { code: code.into(), password: PASSWORD.into(), ..Default::default() }
}

pub(crate) fn details() -> PracticeDetails {
    PracticeDetails {
        name: "Birch Family Medicine".into(),
        address: "1 Main St".into(),
        city: "Springfield".into(),
        state: "il".into(),
        zip: "62701".into(),
        phone: "+1 217 555 0100".into(),
        fax: None,
        ehr: "none".into(),
        npi: Some("1234567893".into()),
    }
}
