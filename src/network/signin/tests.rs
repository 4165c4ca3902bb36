use super::*;
use crate::network::testing::{store, T0};

const GOOD: &str = "tulip kettle orbit mauve";

/// An admin of Elm Clinic whose link set `GOOD` as the password.
fn member(store: &dyn NodeStore) -> AccountRecord {
    let at = SignIn { store, now: T0 };
    let practice = store.practice("Elm Clinic").unwrap();
    let account = at.add_member(practice.id, AccountRole::Admin, "Ada Lovelace", "Ada@Elm.test").unwrap();
    assert_eq!(account.email, "ada@elm.test");
    let link = at.issue_link(account.id, 3600).unwrap();
    at.set_password(&link.text, GOOD).unwrap();
    account
}

fn totp_now(secret: &str, now: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    crate::totp::code_at(&secret, crate::totp::step_of(now)).unwrap()
}

#[test]
fn a_new_member_has_no_password_until_the_link_sets_one_and_the_link_works_once() {
    let store = store();
    let at = SignIn { store: &*store, now: T0 };
    let practice = store.practice("Elm Clinic").unwrap();
    let account = at.add_member(practice.id, AccountRole::Staff, "Grace Hopper", "grace@elm.test").unwrap();
    assert!(matches!(at.password("grace@elm.test", ""), Err(SignInError::Wrong)), "no password yet");
    let first = at.issue_link(account.id, 3600).unwrap();
    let second = at.issue_link(account.id, 3600).unwrap();
    assert!(matches!(at.set_password(&first.text, GOOD), Err(PasswordLinkError::Used)), "a newer link replaces it");
    assert!(matches!(at.set_password(&second.text, "password1234"), Err(PasswordLinkError::Password(_))));
    assert!(matches!(at.set_password(&second.text, "gracehopper!"), Err(PasswordLinkError::Password(_))));
    at.set_password(&second.text, GOOD).unwrap();
    assert!(matches!(at.set_password(&second.text, GOOD), Err(PasswordLinkError::Used)));
    assert!(matches!(at.set_password("not a token", GOOD), Err(PasswordLinkError::Unknown)));
    let (signed, stage) = at.password("Grace@elm.test ", GOOD).unwrap();
    assert_eq!((signed.id, stage), (account.id, SessionStage::SignedIn));
    let late = SignIn { store: &*store, now: T0 + 3601 };
    let third = at.issue_link(account.id, 3600).unwrap();
    assert!(matches!(late.set_password(&third.text, GOOD), Err(PasswordLinkError::Expired)));
    // A patient is never made a member.
    let errors = at.add_member(practice.id, AccountRole::Patient, "", "not an address").unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
    assert_eq!(fields, ["name", "email", "role"]);
}

#[test]
fn five_failures_lock_the_account_and_a_password_link_lifts_the_lock() {
    let store = store();
    let account = member(&*store);
    for n in 1..LOCK_AFTER {
        let at = SignIn { store: &*store, now: T0 + i64::from(n) };
        assert!(matches!(at.password("ada@elm.test", "wrong password"), Err(SignInError::Wrong)));
    }
    let at = SignIn { store: &*store, now: T0 + 10 };
    let Err(SignInError::Locked(until)) = at.password("ada@elm.test", "wrong password") else { panic!("locks") };
    assert_eq!(until, T0 + 10 + 15 * 60);
    assert!(matches!(at.password("ada@elm.test", GOOD), Err(SignInError::Locked(_))), "even the right one");
    let later = SignIn { store: &*store, now: until };
    assert!(
        matches!(later.password("ada@elm.test", "wrong again"), Err(SignInError::Locked(u)) if u == until + 30 * 60)
    );
    let link = later.issue_link(account.id, 3600).unwrap();
    later.set_password(&link.text, "another fine passphrase here").unwrap();
    assert!(later.password("ada@elm.test", "another fine passphrase here").is_ok());
    assert_eq!(lock_for(4), None);
    assert_eq!(lock_for(5), Some(900));
    assert_eq!(lock_for(200), Some(86_400));
    // Unknown e-mail addresses answer the same as a wrong password.
    assert!(matches!(later.password("nobody@elm.test", GOOD), Err(SignInError::Wrong)));
}

#[test]
fn two_factor_enrolment_then_each_code_once_and_recovery_codes_once() {
    let store = store();
    let account = member(&*store);
    let at = SignIn { store: &*store, now: T0 };
    let enrolment = at.begin_enrolment(&account, "hisp").unwrap();
    assert!(enrolment.uri.starts_with("otpauth://totp/hisp:ada%40elm.test?secret="), "{}", enrolment.uri);
    assert_eq!(at.pending_enrolment(&account, "hisp").unwrap().unwrap().secret, enrolment.secret);
    let right = totp_now(&enrolment.secret, T0);
    let wrong: String = right.chars().map(|c| if c == '9' { '0' } else { char::from(c as u8 + 1) }).collect();
    assert!(matches!(at.confirm_enrolment(account.id, &wrong), Err(SignInError::WrongCode)));
    let codes = at.confirm_enrolment(account.id, &right).unwrap();
    assert_eq!(codes.len(), RECOVERY_CODES);
    assert!(at.begin_enrolment(&account, "hisp").is_err(), "on already");
    // The password now leads to the second factor.
    let later = SignIn { store: &*store, now: T0 + 60 };
    assert_eq!(later.password("ada@elm.test", GOOD).unwrap().1, SessionStage::SecondFactor);
    let code = totp_now(&enrolment.secret, T0 + 60);
    later.second_factor(account.id, &code).unwrap();
    assert!(matches!(later.second_factor(account.id, &code), Err(SignInError::WrongCode)), "a code works once");
    later.second_factor(account.id, &codes[0].to_lowercase()).unwrap();
    assert!(matches!(later.second_factor(account.id, &codes[0]), Err(SignInError::WrongCode)));
    assert_eq!(store.sign_in_state(account.id).unwrap().recovery_codes_left, 9);
    let fresh = later.new_recovery_codes(account.id).unwrap();
    assert!(matches!(later.second_factor(account.id, &codes[1]), Err(SignInError::WrongCode)), "old ones are gone");
    later.second_factor(account.id, &fresh[1]).unwrap();
}

#[test]
fn a_practice_that_requires_two_factors_sends_the_unenrolled_to_enrol() {
    let store = store();
    let account = member(&*store);
    store.set_two_factor_required(account.practice_id.unwrap(), true).unwrap();
    let at = SignIn { store: &*store, now: T0 };
    assert_eq!(at.password("ada@elm.test", GOOD).unwrap().1, SessionStage::Enrol);
}

#[test]
fn a_session_is_found_by_its_token_and_replaced_at_each_step() {
    let store = store();
    let account = member(&*store);
    let at = SignIn { store: &*store, now: T0 };
    let (first, csrf) = at.start_session(account.id, SessionStage::SecondFactor, None).unwrap();
    let found = store.session(&digest(&first.text)).unwrap().unwrap();
    assert_eq!((found.stage, found.csrf.as_str()), (SessionStage::SecondFactor, csrf.as_str()));
    assert!(store.session(&first.text).unwrap().is_none(), "the store keeps the digest, not the token");
    let (second, _) = at.start_session(account.id, SessionStage::SignedIn, Some(found.id)).unwrap();
    assert!(store.session(&digest(&first.text)).unwrap().is_none(), "the earlier one ends");
    assert!(store.session(&digest(&second.text)).unwrap().is_some());
    // A new password ends every session.
    let link = at.issue_link(account.id, 60).unwrap();
    at.set_password(&link.text, "another fine passphrase here").unwrap();
    assert!(store.session(&digest(&second.text)).unwrap().is_none());
}
