use super::*;
use crate::config::InvitationsConfig;
use crate::network::invitations::Invitations;
use crate::network::schedule::DAY;
use crate::network::testing::*;

fn names(store: &dyn NodeStore, practice: &str) -> Vec<String> {
    let id = store.practice(practice).unwrap().id;
    store.connections(id).unwrap().into_iter().map(|c| format!("{}:{}", c.kind, c.name)).collect()
}

#[test]
fn a_patient_registers_with_the_right_date_of_birth_and_the_practice_sees_them() {
    let store = store();
    let code = invite(&*store, "elm.test", patient("ada@example.org"));
    let at = Accepting { store: &*store, now: T0 + 60 };
    let preview = at.preview(&code).unwrap();
    assert_eq!((preview.practice.as_str(), preview.needs.as_slice()), ("Elm Clinic", &["date_of_birth"][..]));
    let shown = InvitationCode::parse(&code).unwrap().to_string();
    let accepted =
        at.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&shown) }).unwrap();
    assert_eq!(accepted.account.role, AccountRole::Patient);
    assert_eq!(accepted.account.email, "ada@example.org", "the invitation's address by default");
    assert_eq!(accepted.account.practice, None);
    assert_eq!(names(&*store, "Elm Clinic"), ["patient:Ada Lovelace"]);
    let theirs: Vec<String> =
        store.patient_connections(accepted.account.id).unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(theirs, ["Elm Clinic"]);
    assert!(names(&*store, "Oak Clinic").is_empty(), "another practice sees nothing");
    assert!(crate::password::verify(PASSWORD, &accepted.account.password_hash));

    // The same account again: the same answer. Anyone else: the code is used.
    let again = at.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&code) }).unwrap();
    assert_eq!(again.account.id, accepted.account.id);
    let other = Registration { email: Some("eve@example.org".into()), ..registration(&code) };
    assert!(matches!(at.register(&other), Err(AcceptError::Closed(why)) if why.contains("already used")));
    let wrong_password = Registration { password: "not the password!".into(), ..registration(&code) };
    assert!(matches!(at.register(&wrong_password), Err(AcceptError::Closed(_))));
    assert!(matches!(at.preview(&code), Err(AcceptError::Closed(_))));

    // Accepted: no reminder and no expiry follow.
    let config = InvitationsConfig::default();
    for day in 0..40 {
        let done = Invitations { store: &*store, config: &config, now: T0 + day * DAY }.run_schedule(100).unwrap();
        assert_eq!((done.reminded, done.expired), (0, 0), "day {day}");
    }
    let invitation = store.invitation_by_code(&code).unwrap().unwrap();
    assert_eq!(invitation.state, InvitationState::Accepted);
    let kinds: Vec<NoticeKind> = store.notices(invitation.id).unwrap().iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NoticeKind::Invitation]);
}

#[test]
fn the_third_wrong_date_of_birth_locks_the_invitation_and_tells_both_sides() {
    let store = store();
    let code = invite(&*store, "elm.test", patient("ada@example.org"));
    let at = Accepting { store: &*store, now: T0 + 60 };
    let with = |dob: &str| Registration { date_of_birth: Some(dob.into()), ..registration(&code) };
    // A request wrong in any other way says nothing about the date, and does not count.
    let short = Registration { password: "short".into(), ..with("1970-05-18") };
    assert!(matches!(at.register(&short), Err(AcceptError::Invalid(e)) if e[0].field == "password"));
    assert!(matches!(at.register(&with("1970-05-18")), Err(AcceptError::WrongDateOfBirth(2))));
    assert!(matches!(at.register(&with("05/17/1970")), Err(AcceptError::Invalid(_))), "not a date: not counted");
    assert!(matches!(at.register(&with("1971-05-17")), Err(AcceptError::WrongDateOfBirth(1))));
    let third = at.register(&with("1970-17-05"));
    assert!(matches!(&third, Err(AcceptError::Invalid(_))), "{third:?}");
    let locked = at.register(&with("1970-06-17"));
    assert!(matches!(&locked, Err(AcceptError::Closed(why)) if why.contains("locked") && why.contains("Elm Clinic")));
    let right = at.register(&with("1970-05-17"));
    assert!(matches!(&right, Err(AcceptError::Closed(why)) if why.contains("locked")), "{right:?}");
    let invitation = store.invitation_by_code(&code).unwrap().unwrap();
    assert_eq!((invitation.state, invitation.dob_failures), (InvitationState::Locked, 3));
    let kinds: Vec<NoticeKind> = store.notices(invitation.id).unwrap().iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NoticeKind::Invitation, NoticeKind::Locked, NoticeKind::SenderLocked]);
    assert!(store.account_by_email("ada@example.org").unwrap().is_none(), "no account");
    // Invited again, they can register.
    let code = invite(&*store, "elm.test", patient("ada@example.org"));
    at.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&code) }).unwrap();
}

#[test]
fn a_colleague_joins_the_inviting_practice_once_they_confirm_it() {
    let store = store();
    let code = invite(&*store, "elm.test", colleague("grace@elm.example", "colleague-here"));
    let at = Accepting { store: &*store, now: T0 };
    let unconfirmed = at.register(&Registration { confirm_practice: Some("Oak Clinic".into()), ..registration(&code) });
    assert!(matches!(unconfirmed, Err(AcceptError::Invalid(e)) if e[0].field == "confirm_practice"));
    let accepted =
        at.register(&Registration { confirm_practice: Some(" elm clinic ".into()), ..registration(&code) }).unwrap();
    assert_eq!(accepted.account.role, AccountRole::Staff);
    assert_eq!(accepted.account.practice.as_deref(), Some("Elm Clinic"));
    assert!(names(&*store, "Elm Clinic").is_empty(), "a member, not a connection");
}

#[test]
fn a_colleague_elsewhere_registers_their_practice_and_the_two_are_connected_both_ways() {
    let store = store();
    let code = invite(&*store, "elm.test", colleague("grace@birch.example", "colleague-elsewhere"));
    let at = Accepting { store: &*store, now: T0 };
    let bad = PracticeDetails {
        state: "XX".into(),
        zip: "6270".into(),
        phone: "555-0100".into(),
        npi: Some("1234567890".into()),
        name: "Birch\r\nBcc: x".into(),
        ..details()
    };
    let refused = at.register(&Registration { practice: Some(bad), ..registration(&code) });
    let Err(AcceptError::Invalid(errors)) = refused else { panic!("{refused:?}") };
    let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
    assert_eq!(fields, ["practice.name", "practice.state", "practice.zip", "practice.phone", "practice.npi"]);

    let accepted = at.register(&Registration { practice: Some(details()), ..registration(&code) }).unwrap();
    assert_eq!(accepted.account.practice.as_deref(), Some("Birch Family Medicine"));
    assert_eq!(accepted.account.role, AccountRole::Clinician);
    assert_eq!(names(&*store, "Elm Clinic"), ["practice:Birch Family Medicine"]);
    assert_eq!(names(&*store, "Birch Family Medicine"), ["practice:Elm Clinic"]);
    assert!(names(&*store, "Oak Clinic").is_empty());

    // Now Oak invites the same colleague, who accepts with the account they have.
    let code = invite(&*store, "oak.test", colleague("grace@birch.example", "colleague-elsewhere"));
    let existing = ExistingAcceptance {
        code: code.clone(),
        email: "GRACE@birch.example".into(),
        password: PASSWORD.into(),
        date_of_birth: None,
    };
    let wrong = ExistingAcceptance { password: "wrong password!!".into(), ..existing.clone() };
    assert!(matches!(at.accept_existing(&wrong), Err(AcceptError::BadLogin)));
    let again = at.accept_existing(&existing).unwrap();
    assert_eq!(again.account.id, accepted.account.id);
    assert_eq!(names(&*store, "Birch Family Medicine"), ["practice:Elm Clinic", "practice:Oak Clinic"]);
    assert_eq!(names(&*store, "Oak Clinic"), ["practice:Birch Family Medicine"]);
    assert!(names(&*store, "Ash Clinic").is_empty(), "a third practice sees nothing");
    assert_eq!(at.accept_existing(&existing).unwrap().account.id, accepted.account.id, "idempotent");

    // A practice's name is taken once.
    let code = invite(&*store, "ash.test", colleague("other@birch.example", "colleague-elsewhere"));
    let taken = at.register(&Registration { practice: Some(details()), ..registration(&code) });
    assert!(matches!(&taken, Err(AcceptError::Conflict(why)) if why.contains("Birch Family Medicine")), "{taken:?}");
}

#[test]
fn a_patient_with_an_account_accepts_another_practices_invitation() {
    let store = store();
    let at = Accepting { store: &*store, now: T0 };
    let first = invite(&*store, "elm.test", patient("ada@example.org"));
    let ada = at.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&first) }).unwrap();
    let second = invite(&*store, "oak.test", patient("ada@example.org"));
    let existing = ExistingAcceptance {
        code: second,
        email: "ada@example.org".into(),
        password: PASSWORD.into(),
        date_of_birth: Some("1970-05-18".into()),
    };
    assert!(matches!(at.accept_existing(&existing), Err(AcceptError::WrongDateOfBirth(2))), "checked here too");
    let ok = ExistingAcceptance { date_of_birth: Some("1970-05-17".into()), ..existing };
    assert_eq!(at.accept_existing(&ok).unwrap().account.id, ada.account.id);
    let theirs: Vec<String> = store.patient_connections(ada.account.id).unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(theirs, ["Elm Clinic", "Oak Clinic"]);
    // A patient's account cannot take a colleague's invitation.
    let code = invite(&*store, "ash.test", colleague("ada@example.org", "colleague-elsewhere"));
    let as_colleague =
        ExistingAcceptance { code, email: "ada@example.org".into(), password: PASSWORD.into(), date_of_birth: None };
    assert!(matches!(at.accept_existing(&as_colleague), Err(AcceptError::Conflict(_))));
}

#[test]
fn wrong_cancelled_and_expired_codes_each_say_what_to_do() {
    let store = store();
    let at = Accepting { store: &*store, now: T0 };
    assert!(matches!(at.preview("7KQ4-M2XD-9R0T"), Err(AcceptError::UnknownCode)));
    assert!(matches!(at.preview("7KQ4-M2XD"), Err(AcceptError::BadCode(_))));
    let code = invite(&*store, "elm.test", patient("ada@example.org"));
    let late = Accepting { store: &*store, now: T0 + 31 * DAY };
    let expired = late.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&code) });
    assert!(matches!(&expired, Err(AcceptError::Closed(why)) if why.contains("expired")), "{expired:?}");
    assert_eq!(store.invitation_by_code(&code).unwrap().unwrap().state, InvitationState::Expired, "saved as expired");

    let code = invite(&*store, "elm.test", patient("bob@example.org"));
    let id = store.invitation_by_code(&code).unwrap().unwrap().id;
    let config = InvitationsConfig::default();
    Invitations { store: &*store, config: &config, now: T0 }.cancel("elm.test", id).unwrap();
    let cancelled = at.preview(&code);
    assert!(matches!(&cancelled, Err(AcceptError::Closed(why)) if why.contains("cancelled")), "{cancelled:?}");

    // The same e-mail cannot hold two accounts.
    let one = invite(&*store, "elm.test", patient("carol@example.org"));
    at.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&one) }).unwrap();
    let two = invite(&*store, "oak.test", patient("carol@example.org"));
    let twice = at.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&two) });
    assert!(matches!(twice, Err(AcceptError::Conflict(why)) if why.contains("already registered")));
}

#[test]
fn connected_parties_see_only_what_a_practice_lists_and_a_third_sees_nothing() {
    use crate::store::address_book::{Member, Viewer};
    let store = store();
    let at = Accepting { store: &*store, now: T0 };
    // Elm gets a member (a colleague who joined) and a shared inbox.
    let code = invite(&*store, "elm.test", colleague("grace@elm.example", "colleague-here"));
    let grace =
        at.register(&Registration { confirm_practice: Some("Elm Clinic".into()), ..registration(&code) }).unwrap();
    let inbox = crate::address::DirectAddress::parse("intake@elm.test").unwrap();
    store.add_address(&inbox, None).unwrap();
    let elm = store.practice("elm.test").unwrap().id;
    let listed_grace = store.list_member(elm, Member::Account(grace.account.id), Some("Cardiology")).unwrap();
    let listed_inbox = store.list_member(elm, Member::Address(&inbox), Some("Referrals inbox")).unwrap();
    assert!(store.list_member(elm, Member::Account(grace.account.id), None).is_err(), "listed once");
    let oak = store.practice("oak.test").unwrap().id;
    assert!(
        matches!(store.list_member(oak, Member::Address(&inbox), None), Err(StoreError::NotFound(_))),
        "a practice lists only its own"
    );
    // Birch connects to Elm by an invitation; a patient too.
    let code = invite(&*store, "elm.test", colleague("bob@birch.example", "colleague-elsewhere"));
    let bob = at.register(&Registration { practice: Some(details()), ..registration(&code) }).unwrap();
    let code = invite(&*store, "elm.test", patient("ada@example.org"));
    let ada = at.register(&Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&code) }).unwrap();

    let birch = store.practice("Birch Family Medicine").unwrap().id;
    let connection = store.connections(birch).unwrap()[0].id;
    let profile = store.profile(Viewer::Practice(birch), connection).unwrap();
    assert_eq!(profile.name, "Elm Clinic");
    assert_eq!(profile.domains, ["elm.test"]);
    let members: Vec<&str> = profile.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(members, ["Grace Hopper", "intake@elm.test"], "only what Elm lists");
    let elms = store.connections(elm).unwrap();
    let birch_side = elms.iter().find(|c| c.kind == "practice").unwrap().id;
    let birch_profile = store.profile(Viewer::Practice(elm), birch_side).unwrap();
    assert_eq!(birch_profile.details.unwrap()["city"], "Springfield");
    assert!(birch_profile.members.is_empty(), "Birch lists nobody yet");
    let patient_connection = store.patient_connections(ada.account.id).unwrap()[0].id;
    assert_eq!(store.profile(Viewer::Patient(ada.account.id), patient_connection).unwrap().members.len(), 2);

    // Oak is connected to nobody: it sees no profile, and its people cannot add Elm's members.
    let ash = store.practice("ash.test").unwrap().id;
    for viewer in [Viewer::Practice(oak), Viewer::Practice(ash)] {
        assert!(matches!(store.profile(viewer, connection), Err(StoreError::NotFound(_))));
        assert!(matches!(store.profile(viewer, birch_side), Err(StoreError::NotFound(_))));
    }
    assert!(matches!(store.profile(Viewer::Patient(ada.account.id), connection), Err(StoreError::NotFound(_))));

    // Bob (Birch) keeps Elm's inbox and Grace as contacts, finds them by name, removes one.
    store.add_contact(bob.account.id, listed_inbox.id).unwrap();
    store.add_contact(bob.account.id, listed_grace.id).unwrap();
    store.add_contact(bob.account.id, listed_grace.id).unwrap();
    let found = crate::network::address_book::search(store.contacts(bob.account.id).unwrap(), "refer");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].address.as_deref(), Some("intake@elm.test"));
    store.remove_contact(bob.account.id, listed_grace.id).unwrap();
    assert_eq!(store.contacts(bob.account.id).unwrap().len(), 1);
    // A listing hidden leaves every contact list.
    store.unlist_member(elm, listed_inbox.id).unwrap();
    assert!(store.contacts(bob.account.id).unwrap().is_empty());

    // A practice not connected cannot take Elm's members as contacts.
    let code = invite(&*store, "oak.test", colleague("olive@oak.example", "colleague-here"));
    let olive =
        at.register(&Registration { confirm_practice: Some("Oak Clinic".into()), ..registration(&code) }).unwrap();
    assert!(matches!(store.add_contact(olive.account.id, listed_grace.id), Err(StoreError::NotFound(_))));
}
