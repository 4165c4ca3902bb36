use super::*;
use crate::network::accept::{Accepted, Accepting, Registration};
use crate::network::testing::*;
use crate::store::address_book::Member;

/// Elm with two members (Grace, Hal), Birch connected to it (Bob), a patient of Elm (Ada), and
/// Oak with a member (Olive) connected to nobody.
struct World {
    store: Box<dyn NodeStore>,
    grace: i64,
    hal: i64,
    bob: i64,
    ada: i64,
    olive: i64,
}

fn world() -> World {
    let store = store();
    let at = Accepting { store: &*store, now: T0 };
    let member = |practice: &str, email: &str, name: &str| -> Accepted {
        let code = invite(&*store, practice, colleague(email, "colleague-here"));
        let confirm = store.invitation_by_code(&code).unwrap().unwrap().practice;
        let r = Registration { confirm_practice: Some(confirm), name: Some(name.into()), ..registration(&code) };
        at.register(&r).unwrap()
    };
    let grace = member("elm.test", "grace@elm.example", "Grace Hopper").account.id;
    let hal = member("elm.test", "hal@elm.example", "Hal Abelson").account.id;
    let olive = member("oak.test", "olive@oak.example", "Olive Oak").account.id;
    let code = invite(&*store, "elm.test", colleague("bob@birch.example", "colleague-elsewhere"));
    let bob = at.register(&Registration { practice: Some(details()), ..registration(&code) }).unwrap().account.id;
    let code = invite(&*store, "elm.test", patient("ada@example.org"));
    let r = Registration { date_of_birth: Some("1970-05-17".into()), ..registration(&code) };
    let ada = at.register(&r).unwrap().account.id;
    World { store, grace, hal, bob, ada, olive }
}

fn request(to: &[i64], subject: &str) -> SecureRequest {
    SecureRequest { to: to.to_vec(), subject: subject.into(), body: "See the attached.".into(), ..Default::default() }
}

#[test]
fn members_of_connected_parties_write_to_each_other_and_only_they_read_it() {
    let w = world();
    let s = &*w.store;
    let pdf = FileRequest {
        filename: "summary.pdf".into(),
        content_type: "application/PDF".into(),
        content_base64: "JVBERi0xLjQK\n".into(),
    };
    let sent = send(s, w.grace, &SecureRequest { attachments: vec![pdf], ..request(&[w.bob, w.ada], "Follow-up") }, T0)
        .unwrap();
    for reader in [w.bob, w.ada] {
        let inbox = s.secure_inbox(reader, 10).unwrap();
        assert_eq!(inbox.len(), 1);
        assert_eq!((inbox[0].subject.as_str(), inbox[0].from.name.as_str()), ("Follow-up", "Grace Hopper"));
        assert_eq!(inbox[0].read_at, None);
    }
    let read = s.secure_message(w.bob, sent, T0 + 5).unwrap();
    assert_eq!(read.read_at, Some(T0 + 5));
    assert_eq!(read.attachments[0].content_type, "application/pdf");
    assert_eq!(read.attachments[0].size, 9);
    let (_, content) = s.secure_attachment(w.bob, sent, read.attachments[0].id).unwrap();
    assert_eq!(content, "JVBERi0xLjQK");
    assert_eq!(s.secure_inbox(w.bob, 10).unwrap()[0].read_at, Some(T0 + 5), "marked read once");
    assert_eq!(s.secure_sent(w.grace, 10).unwrap()[0].id, sent);

    // Nobody else reads it, not even a colleague of the sender.
    for outsider in [w.hal, w.olive] {
        assert!(matches!(s.secure_message(outsider, sent, T0), Err(StoreError::NotFound(_))));
        assert!(s.secure_attachment(outsider, sent, read.attachments[0].id).is_err());
        assert!(s.secure_inbox(outsider, 10).unwrap().is_empty());
    }
    // The reply goes back to the sender, in the thread.
    let answer = reply(s, w.bob, sent, "Thanks, seen.", &[], T0 + 10).unwrap();
    let answered = s.secure_message(w.grace, answer, T0 + 11).unwrap();
    assert_eq!((answered.subject.as_str(), answered.reply_to), ("Re: Follow-up", Some(sent)));
    assert_eq!(answered.to.iter().map(|p| p.account).collect::<Vec<_>>(), [w.grace]);
    assert!(matches!(reply(s, w.olive, sent, "me too", &[], T0), Err(MessageError::Store(StoreError::NotFound(_)))));
}

#[test]
fn nobody_writes_outside_their_connections() {
    let w = world();
    let s = &*w.store;
    for (from, to) in [(w.olive, w.grace), (w.grace, w.olive), (w.bob, w.ada), (w.ada, w.olive), (w.grace, w.grace)] {
        let refused = send(s, from, &request(&[to], "Hello"), T0);
        assert!(matches!(refused, Err(MessageError::Store(StoreError::NotFound(_)))), "{from} -> {to}: {refused:?}");
    }
    // A refused recipient among allowed ones: nothing is sent to anyone.
    assert!(send(s, w.grace, &request(&[w.bob, w.olive], "Hello"), T0).is_err());
    assert!(s.secure_inbox(w.bob, 10).unwrap().is_empty());
    // Allowed: colleagues, a patient and their practice, connected practices.
    for (from, to) in [(w.grace, w.hal), (w.ada, w.grace), (w.bob, w.hal)] {
        send(s, from, &request(&[to], "Hello"), T0).unwrap();
    }
}

#[test]
fn bad_requests_are_refused_with_the_field_and_nothing_kept() {
    let w = world();
    let s = &*w.store;
    let file = |name: &str, kind: &str, b64: &str| FileRequest {
        filename: name.into(),
        content_type: kind.into(),
        content_base64: b64.into(),
    };
    let cases: Vec<(SecureRequest, &str)> = vec![
        (request(&[], "Hi"), "to"),
        (request(&[w.bob], ""), "subject"),
        (request(&[w.bob], "Hi\r\nBcc: x@y.z"), "subject"),
        (SecureRequest { body: "x".repeat(MAX_BODY_BYTES + 1), ..request(&[w.bob], "Hi") }, "body"),
        (
            SecureRequest { attachments: vec![file("../etc/passwd", "text/plain", "eA==")], ..request(&[w.bob], "Hi") },
            "attachments.filename",
        ),
        (
            SecureRequest { attachments: vec![file("a.txt", "text plain", "eA==")], ..request(&[w.bob], "Hi") },
            "attachments.content_type",
        ),
        (
            SecureRequest { attachments: vec![file("a.txt", "text/plain", "not base64!")], ..request(&[w.bob], "Hi") },
            "attachments.content_base64",
        ),
        (SecureRequest { as_practice: Some("dr@oak.test".into()), ..request(&[w.bob], "Hi") }, "as_practice"),
    ];
    for (r, field) in cases {
        match send(s, w.grace, &r, T0) {
            Err(MessageError::Invalid(e)) => assert_eq!(e[0].field, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(s.secure_inbox(w.bob, 10).unwrap().is_empty());
}

#[test]
fn a_message_sent_as_the_practice_shows_its_shared_address_and_so_does_its_reply() {
    let w = world();
    let s = &*w.store;
    let inbox = DirectAddress::parse("intake@elm.test").unwrap();
    s.add_address(&inbox, None).unwrap();
    let elm = s.practice("elm.test").unwrap().id;
    s.list_member(elm, Member::Address(&inbox), Some("Referrals")).unwrap();
    let r = SecureRequest { as_practice: Some("INTAKE@elm.test".into()), ..request(&[w.bob], "Referral") };
    let id = send(s, w.grace, &r, T0).unwrap();
    let read = s.secure_message(w.bob, id, T0).unwrap();
    assert_eq!(read.as_address.as_deref(), Some("intake@elm.test"));
    let answer = reply(s, w.grace, id, "Another thing", &[], T0).unwrap();
    assert_eq!(s.secure_message(w.bob, answer, T0).unwrap().as_address.as_deref(), Some("intake@elm.test"));
}
