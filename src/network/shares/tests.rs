use std::sync::Mutex;

use super::*;
use crate::network::channels::Texter;
use crate::network::share_contacts::{self, ContactRequest};
use crate::network::share_link::{LinkError, LinkState, Visitor};
use crate::network::testing::{store, T0};
use crate::store::{AccountRole, ShareEvent};

/// Keeps what it was asked to text.
#[derive(Default)]
struct Texts(Mutex<Vec<(String, String)>>);

impl Texter for Texts {
    fn text(&self, to: &str, text: &str, _reference: &str) -> Result<(), Failure> {
        self.0.lock().unwrap().push((to.to_string(), text.to_string()));
        Ok(())
    }
}

impl Texts {
    fn last_code(&self) -> String {
        let texts = self.0.lock().unwrap();
        texts.last().unwrap().1[..6].to_string()
    }
}

use crate::failure::Failure;

struct Setup {
    store: Box<dyn NodeStore>,
    kek: Kek,
    practice: PracticeRecord,
    clinician: AccountRecord,
    contact: i64,
}

fn setup(check: ShareCheck) -> Setup {
    let store = store();
    let kek = Kek::derive("a test secret", b"0123456789abcdef").unwrap();
    let practice = store.practice("Elm Clinic").unwrap();
    store.set_sharing(practice.id, check, &[AccountRole::Clinician], false).unwrap();
    let practice = store.practice("Elm Clinic").unwrap();
    let clinician = store.add_account(practice.id, AccountRole::Clinician, "Dr Ada", "ada@elm.test", T0).unwrap();
    let request = ContactRequest {
        name: "Jane Roe".into(),
        email: "jane@law.test".into(),
        mobile: Some("+12175550100".into()),
        date_of_birth: Some("1975-05-01".into()),
        ..Default::default()
    };
    let contact = share_contacts::add(&*store, practice.id, &request, T0).unwrap().id;
    Setup { store, kek, practice, clinician, contact }
}

const LETTER: Source<'static> = Source::Upload {
    filename: "C:\\letters\\letter.pdf",
    content_type: "application/pdf",
    content: b"%PDF-1.4 letter",
};

impl Setup {
    fn share(&self) -> Made {
        create(&*self.store, &self.kek, &self.practice, &self.clinician, self.contact, LETTER, T0).unwrap()
    }

    fn visitor<'a>(&'a self, now: i64, browser: Option<&'a str>) -> Visitor<'a> {
        Visitor { store: &*self.store, now, client: "Chrome on Linux, 127.0.0.0/24".into(), browser }
    }

    fn events(&self, id: i64) -> Vec<ShareEvent> {
        self.store.share_events(id).unwrap().into_iter().map(|e| e.event).collect()
    }
}

#[test]
fn only_a_permitted_member_shares_only_with_the_practices_own_contacts() {
    let s = setup(ShareCheck::Sms);
    let staff = s.store.add_account(s.practice.id, AccountRole::Staff, "Sam", "sam@elm.test", T0).unwrap();
    let refused = create(&*s.store, &s.kek, &s.practice, &staff, s.contact, LETTER, T0).unwrap_err();
    assert!(matches!(refused, ShareError::Forbidden(ref why) if why.contains("the staff role may not share")));
    let oak = s.store.practice("Oak Clinic").unwrap();
    let request = ContactRequest { name: "Oak's".into(), email: "x@oak.test".into(), ..Default::default() };
    let oaks = share_contacts::add(&*s.store, oak.id, &request, T0).unwrap().id;
    let refused = create(&*s.store, &s.kek, &s.practice, &s.clinician, oaks, LETTER, T0).unwrap_err();
    assert!(matches!(refused, ShareError::Invalid { field: "contact", .. }), "{refused}");
    // A contact without the mobile the SMS check needs.
    let request = ContactRequest { name: "No Mobile".into(), email: "n@law.test".into(), ..Default::default() };
    let bare = share_contacts::add(&*s.store, s.practice.id, &request, T0).unwrap().id;
    let refused = create(&*s.store, &s.kek, &s.practice, &s.clinician, bare, LETTER, T0).unwrap_err();
    assert!(refused.to_string().contains("has no mobile number"), "{refused}");
    // Sharing off: no one shares.
    s.store.set_sharing(s.practice.id, ShareCheck::Off, &[AccountRole::Clinician], false).unwrap();
    let off = s.store.practice("Elm Clinic").unwrap();
    assert!(matches!(
        create(&*s.store, &s.kek, &off, &s.clinician, s.contact, LETTER, T0),
        Err(ShareError::Forbidden(_))
    ));
    // Another practice's document.
    let refused = create(&*s.store, &s.kek, &s.practice, &s.clinician, s.contact, Source::Document(999), T0);
    assert!(matches!(refused, Err(ShareError::Invalid { field: "document", .. })));
}

#[test]
fn the_share_keeps_a_sealed_copy_and_the_link_only_as_a_digest() {
    let s = setup(ShareCheck::Sms);
    let made = s.share();
    assert_eq!(made.share.filename, "letter.pdf", "only the file name's last part");
    assert_eq!(made.share.content_type, "application/pdf");
    assert_eq!(made.share.check, ShareCheck::Sms);
    let sealed = s.store.share_content(made.share.id).unwrap();
    assert!(!sealed.windows(5).any(|w| w == b"%PDF-"), "sealed at rest");
    assert_eq!(s.kek.open_document(&sealed).unwrap(), b"%PDF-1.4 letter");
    assert!(made.share.browser_hash.is_none() && made.token.len() >= 43);
    assert_eq!(s.store.shares(s.practice.id).unwrap().len(), 1);
    assert!(s.store.share(s.practice.id + 1, made.share.id).is_err(), "another practice does not see it");
    assert_eq!(s.events(made.share.id), [ShareEvent::Sent]);
}

#[test]
fn the_sms_code_binds_the_link_to_the_browser_that_passed_it() {
    let s = setup(ShareCheck::Sms);
    let made = s.share();
    let texts = Texts::default();
    let v = s.visitor(T0 + 3600, None);
    let LinkState::Check { share, renewing: false } = v.state(&made.token).unwrap() else { panic!("check") };
    assert!(matches!(v.check(&share, "123456", false), Err(LinkError::NoCode)));
    v.send_code(&share, Some(&texts)).unwrap();
    let (to, text) = texts.0.lock().unwrap()[0].clone();
    assert_eq!(to, "+12175550100");
    assert!(text.ends_with("is your code to see the document Elm Clinic shared with you. It works for 10 minutes."));
    let code = texts.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!() };
    assert!(matches!(v.check(&share, wrong, false), Err(LinkError::WrongCode(4))));
    assert!(matches!(v.check(&share, "12 34", false), Err(LinkError::Invalid(_))), "not counted");
    let cookie = v.check(&share, &code, false).unwrap();
    // This browser sees the document from now on, even two days later; another does not.
    for later in [T0 + 3601, T0 + 48 * 3600] {
        assert!(matches!(s.visitor(later, Some(&cookie)).state(&made.token).unwrap(), LinkState::Open(_)));
    }
    assert!(matches!(s.visitor(T0 + 3700, None).state(&made.token).unwrap(), LinkState::OtherBrowser(_)));
    assert!(matches!(s.visitor(T0 + 3700, Some("another")).state(&made.token).unwrap(), LinkState::OtherBrowser(_)));
    assert_eq!(
        s.events(made.share.id),
        [ShareEvent::Sent, ShareEvent::CodeSent, ShareEvent::CheckFailed, ShareEvent::Passed]
    );
    // A second link bound in the same browser keeps the first one bound: one cookie for both.
    let second = s.share();
    let v = s.visitor(T0 + 4000, Some(&cookie));
    let LinkState::Check { share, .. } = v.state(&second.token).unwrap() else { panic!() };
    v.send_code(&share, Some(&texts)).unwrap();
    let LinkState::Check { share, .. } = v.state(&second.token).unwrap() else { panic!() };
    assert_eq!(v.check(&share, &texts.last_code(), false).unwrap(), cookie);
    assert!(matches!(v.state(&made.token).unwrap(), LinkState::Open(_)));
}

#[test]
fn an_unused_link_expires_after_24_hours_and_a_code_after_10_minutes() {
    let s = setup(ShareCheck::Sms);
    let made = s.share();
    let texts = Texts::default();
    let v = s.visitor(T0 + 24 * 3600, None);
    let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!("still valid at 24 h") };
    v.send_code(&share, Some(&texts)).unwrap();
    let late = s.visitor(T0 + 24 * 3600 + 60, None);
    assert!(matches!(late.state(&made.token).unwrap(), LinkState::Expired(_)), "expired at 24 h 1 min");
    let share = s.store.share(s.practice.id, made.share.id).unwrap();
    let v = s.visitor(T0 + 24 * 3600 + 601, None);
    assert!(matches!(v.check(&share, &texts.last_code(), false), Err(LinkError::CodeExpired)));
    // The contact asks for a new one: the sender is told once an hour at most.
    let asker = s.visitor(T0 + 25 * 3600, None);
    assert!(asker.ask_renewal(&share).unwrap());
    let share = s.store.share(s.practice.id, made.share.id).unwrap();
    assert!(!s.visitor(T0 + 25 * 3600 + 60, None).ask_renewal(&share).unwrap());
    // The practice renews expired links after the check: the same link passes the check again.
    s.store.set_sharing(s.practice.id, ShareCheck::Sms, &[AccountRole::Clinician], true).unwrap();
    let v = s.visitor(T0 + 26 * 3600, None);
    let LinkState::Check { share, renewing: true } = v.state(&made.token).unwrap() else { panic!("renews") };
    v.send_code(&share, Some(&texts)).unwrap();
    let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!() };
    let cookie = v.check(&share, &texts.last_code(), true).unwrap();
    assert!(matches!(s.visitor(T0 + 27 * 3600, Some(&cookie)).state(&made.token).unwrap(), LinkState::Open(_)));
    assert_eq!(s.events(made.share.id).last(), Some(&ShareEvent::Renewed));
}

#[test]
fn five_wrong_codes_lock_the_link_until_the_sender_sends_a_fresh_one_and_revoked_is_refused() {
    let s = setup(ShareCheck::Sms);
    let made = s.share();
    let texts = Texts::default();
    let v = s.visitor(T0 + 60, None);
    let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!() };
    v.send_code(&share, Some(&texts)).unwrap();
    let code = texts.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let share = s.store.share(s.practice.id, made.share.id).unwrap();
    for left in (1..5).rev() {
        assert!(matches!(v.check(&share, wrong, false), Err(LinkError::WrongCode(n)) if n == left));
    }
    assert!(matches!(v.check(&share, wrong, false), Err(LinkError::Locked(_))));
    assert!(matches!(v.state(&made.token).unwrap(), LinkState::Locked(_)));
    assert_eq!(s.events(made.share.id).last(), Some(&ShareEvent::Locked));
    // Even the right code no longer opens it: the page is the lock's.
    assert!(matches!(s.visitor(T0 + 70, None).state(&made.token).unwrap(), LinkState::Locked(_)));
    // A fresh link: the old one is unknown, the new one starts over.
    let fresh = resend(&*s.store, &s.practice, &s.clinician, made.share.id, T0 + 100).unwrap();
    assert!(matches!(v.state(&made.token).unwrap(), LinkState::Unknown));
    let v = s.visitor(T0 + 200, None);
    let LinkState::Check { share, .. } = v.state(&fresh.token).unwrap() else { panic!("fresh") };
    assert_eq!((share.failures, share.codes_sent), (0, 0));
    revoke(&*s.store, &s.practice, &s.clinician, made.share.id, T0 + 300).unwrap();
    assert!(matches!(v.state(&fresh.token).unwrap(), LinkState::Revoked(_)));
    assert_eq!(state(&s.store.share(s.practice.id, made.share.id).unwrap(), T0 + 300), "revoked");
}

#[test]
fn three_wrong_dates_of_birth_lock_the_link() {
    let s = setup(ShareCheck::DateOfBirth);
    let made = s.share();
    let v = s.visitor(T0 + 60, None);
    let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!() };
    assert!(matches!(v.check(&share, "May 1st", false), Err(LinkError::Invalid(_))));
    assert!(matches!(v.check(&share, "1975-05-02", false), Err(LinkError::WrongDate(2))));
    assert!(matches!(v.check(&share, "1975-05-03", false), Err(LinkError::WrongDate(1))));
    assert!(matches!(v.check(&share, "1975-05-04", false), Err(LinkError::Locked(_))));
    assert!(matches!(v.state(&made.token).unwrap(), LinkState::Locked(_)));
    let other = s.share();
    let LinkState::Check { share, .. } = v.state(&other.token).unwrap() else { panic!() };
    assert!(v.check(&share, "1975-05-01", false).is_ok());
}

#[test]
fn codes_sent_per_link_are_bounded() {
    let s = setup(ShareCheck::Sms);
    let made = s.share();
    let texts = Texts::default();
    let v = s.visitor(T0 + 60, None);
    for _ in 0..crate::network::share_link::MAX_CODES_SENT {
        let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!() };
        v.send_code(&share, Some(&texts)).unwrap();
    }
    let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!() };
    assert!(matches!(v.send_code(&share, Some(&texts)), Err(LinkError::TooManyCodes(_))));
    assert!(matches!(v.send_code(&share, None), Err(LinkError::TooManyCodes(_))));
}

#[test]
fn the_trail_describes_a_client_coarsely() {
    use crate::network::share_link::client;
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
    assert_eq!(client(chrome, "203.0.113.77".parse().unwrap()), "Chrome on Linux, 203.0.113.0/24");
    let iphone =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile Safari/604.1";
    assert_eq!(client(iphone, "2001:db8:1:2::5".parse().unwrap()), "Safari on iOS, 2001:db8:1::/48");
    assert_eq!(client("", "10.1.2.3".parse().unwrap()), "a browser on an unknown system, 10.1.2.0/24");
}

#[test]
fn a_document_the_practice_holds_is_shared_as_a_copy_of_its_bytes() {
    use crate::store::api::{Exchange, NewDocument};
    let s = setup(ShareCheck::None);
    let content = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>";
    let document = NewDocument {
        filename: "referral.xml".into(),
        content_type: "text/xml".into(),
        size: content.len(),
        sha256: hex::encode(openssl::sha::sha256(content)),
        sealed: s.kek.seal_document(content).unwrap(),
        xdm: None,
    };
    let exchange = Exchange {
        practice_id: s.practice.id,
        message_id: "<m1@elm.test>",
        way: "received",
        patient_id: None,
        patient_key: None,
        referral: None,
        documents: &[document],
        packages: &[],
    };
    s.store.save_exchange(&exchange).unwrap();
    let id = s.store.documents(s.practice.id, None, None).unwrap()[0].id;
    let made = create(&*s.store, &s.kek, &s.practice, &s.clinician, s.contact, Source::Document(id), T0).unwrap();
    assert_eq!(
        (made.share.filename.as_str(), made.share.source.as_str()),
        ("referral.xml", &*format!("document {id}"))
    );
    assert_eq!(s.kek.open_document(&s.store.share_content(made.share.id).unwrap()).unwrap(), content);
    // With no check, the first use is pressing the button: no answer is asked for.
    let v = s.visitor(T0 + 60, None);
    let LinkState::Check { share, .. } = v.state(&made.token).unwrap() else { panic!() };
    assert!(v.check(&share, "", false).is_ok());
}
