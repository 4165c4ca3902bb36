//! Direct to someone without a Direct address: when a practice user's message finds no
//! certificate for its recipient (no Direct address) and the practice invites such recipients,
//! the message is held here, sealed, and the recipient invited (colleague-elsewhere, by e-mail)
//! instead of bounced; when they accept, the message is put into their mailbox. With the
//! practice's setting off, the sender gets the failure notice as before, saying why.

use base64::Engine;

use super::invitations::{InvitationError, Invitations};
use super::invitee::{self, InviteeRequest};
use super::messages::clean_filename;
use crate::address::DirectAddress;
use crate::config::InvitationsConfig;
use crate::failure::{Code, Failure};
use crate::smime::mime::{self, Entity};
use crate::store::secure::{HeldDelivery, NewAttachment, NewHeld};
use crate::store::{NodeStore, StoreError};

/// How a held message was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub invitation: i64,
    /// What the sender's tracking says.
    pub note: String,
}

/// Holds `message` from `sender` for `recipient` (no certificate found for it) and invites the
/// recipient, if the sender's practice invites such recipients; None when it does not (the
/// caller fails the recipient as before). An invitation still pending for the recipient is
/// reused: a second message does not send a second invitation.
pub(crate) fn hold(
    store: &dyn NodeStore,
    config: &InvitationsConfig,
    sender: &DirectAddress,
    recipient: &DirectAddress,
    message_id: &str,
    message: &[u8],
    now: i64,
) -> Result<Option<Held>, Failure> {
    let practice = match store.practice(sender.domain().as_str()) {
        Ok(practice) => practice,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.failure()),
    };
    if !practice.invite_unreachable {
        return Ok(None);
    }
    let contact = invitee::email_address(&recipient.to_string())
        .map_err(|e| Failure::permanent(Code::BAD_ADDRESS, format!("{recipient} cannot be invited: {e}")))?;
    let pending = store.pending_invitation(practice.id, &contact).map_err(|e| e.failure())?;
    let invitation = match pending {
        Some(invitation) => invitation.id,
        None => {
            let request = InviteeRequest {
                name: contact.clone(),
                email: Some(contact.clone()),
                relationship: "colleague-elsewhere".into(),
                ..Default::default()
            };
            let sent = Invitations { store, config, now }.send(&practice.name, &sender.to_string(), &request);
            match sent {
                Ok(summary) => summary.record.id,
                // The practice's hourly limit: held back, tried again later.
                Err(InvitationError::Store(StoreError::TooMany(why))) => {
                    return Err(Failure::temporary(Code::SYSTEM, format!("not invited yet: {why}")));
                }
                Err(e) => return Err(Failure::local(format!("cannot invite {contact}: {e}"))),
            }
        }
    };
    let content = base64::engine::general_purpose::STANDARD.encode(message);
    store
        .hold_message(&NewHeld {
            practice_id: practice.id,
            invitation_id: invitation,
            sender: &sender.to_string(),
            recipient: &contact,
            message_id,
            content_base64: &content,
            now,
        })
        .map_err(|e| e.failure())?;
    let note = format!("held here for {contact}, who has no Direct address: invited (invitation #{invitation})");
    Ok(Some(Held { invitation, note }))
}

/// What the sender's failure notice says when the practice does not invite such recipients.
pub(crate) fn not_invited(recipient: &DirectAddress) -> String {
    format!(
        "no certificate is published for {recipient} (DNS CERT or LDAP): it is not a Direct address, and this \
         practice does not invite recipients without one (hisp practice invite-unreachable)"
    )
}

/// Puts the messages held for `account` (released when it accepted its invitation) into its
/// mailbox; how many.
pub(crate) fn deliver_released(store: &dyn NodeStore, account: i64, now: i64) -> crate::store::Result<usize> {
    let mut delivered = 0;
    for held in store.held_for(account)? {
        let raw = base64::engine::general_purpose::STANDARD.decode(held.content_base64.as_bytes()).unwrap_or_default();
        let (subject, body) = subject_and_text(&raw);
        let files: Vec<(String, String, usize, String)> = mime::attachments(&raw)
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let name = clean_filename(&a.filename);
                let content = base64::engine::general_purpose::STANDARD.encode(&a.content);
                (name, a.content_type, a.content.len(), content)
            })
            .collect();
        let attachments: Vec<NewAttachment> = files
            .iter()
            .map(|(filename, content_type, size, content)| NewAttachment {
                filename,
                content_type,
                size: *size,
                content_base64: content,
            })
            .collect();
        let delivery =
            HeldDelivery { held: held.id, account, subject: &subject, body: &body, attachments: &attachments, now };
        store.deliver_held(&delivery)?;
        delivered += 1;
    }
    Ok(delivered)
}

/// The Subject (unfolded; "(no subject)" when there is none) and the first text part that is
/// not a file, of a message as it was submitted.
fn subject_and_text(raw: &[u8]) -> (String, String) {
    let entity = Entity::parse(raw);
    let subject = entity
        .headers
        .get("subject")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    (subject, mime::first_text(raw).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::accept::{Accepting, Registration};
    use crate::network::testing::*;

    fn letter(subject: &str) -> Vec<u8> {
        format!("From: dr@elm.test\r\nTo: bob@example.net\r\nSubject: {subject}\r\n\r\nPlease see him.\r\n")
            .into_bytes()
    }

    #[test]
    fn held_for_an_invitee_then_in_their_mailbox_when_they_accept() {
        let store = store();
        let config = InvitationsConfig::default();
        let sender = DirectAddress::parse("dr@elm.test").unwrap();
        let bob = DirectAddress::parse("Bob@Example.net").unwrap();
        let hold = |id: &str, subject: &str| hold(&*store, &config, &sender, &bob, id, &letter(subject), T0);
        assert_eq!(hold("<m1@elm.test>", "First").unwrap(), None, "off by default: bounced as before");
        let elm = store.practice("elm.test").unwrap();
        store.set_invite_unreachable(elm.id, true).unwrap();
        let first = hold("<m1@elm.test>", "First").unwrap().unwrap();
        let second = hold("<m2@elm.test>", "Second").unwrap().unwrap();
        assert_eq!(first.invitation, second.invitation, "one invitation for both");
        assert_eq!(hold("<m2@elm.test>", "Second").unwrap().unwrap().invitation, first.invitation, "held once");
        let invitation = store.invitation(elm.id, first.invitation).unwrap();
        assert_eq!((invitation.contact.as_str(), invitation.inviter.as_str()), ("bob@example.net", "dr@elm.test"));
        assert!(store.held_untracked(10).unwrap().is_empty(), "nothing released yet");

        let at = Accepting { store: &*store, now: T0 + 60 };
        let accepted =
            at.register(&Registration { practice: Some(details()), ..registration(&invitation.code) }).unwrap();
        let inbox = store.secure_inbox(accepted.account.id, 10).unwrap();
        let subjects: Vec<&str> = inbox.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(subjects, ["Second", "First"]);
        assert_eq!(inbox[0].from.name, "dr@elm.test");
        assert_eq!(inbox[0].from.practice.as_deref(), Some("Elm Clinic"));
        let read = store.secure_message(accepted.account.id, inbox[1].id, T0 + 61).unwrap();
        assert_eq!(read.body, "Please see him.\n");
        assert_eq!(store.held_untracked(10).unwrap().len(), 2, "the senders' tracking is told next");
        assert_eq!(deliver_released(&*store, accepted.account.id, T0).unwrap(), 0, "delivered once");
    }

    #[test]
    fn a_new_invitation_takes_over_what_was_held_and_a_closed_one_gives_it_back() {
        let store = store();
        let config = InvitationsConfig::default();
        let elm = store.practice("elm.test").unwrap();
        store.set_invite_unreachable(elm.id, true).unwrap();
        let sender = DirectAddress::parse("dr@elm.test").unwrap();
        let bob = DirectAddress::parse("bob@example.net").unwrap();
        let first = hold(&*store, &config, &sender, &bob, "<m1@elm.test>", &letter("First"), T0).unwrap().unwrap();
        // Invited again by hand: the old invitation is cancelled, the message waits for the new one.
        let invitations = Invitations { store: &*store, config: &config, now: T0 + 60 };
        let request = InviteeRequest {
            name: "Bob".into(),
            email: Some("bob@example.net".into()),
            relationship: "colleague-elsewhere".into(),
            ..Default::default()
        };
        let again = invitations.send("elm.test", "dr@elm.test", &request).unwrap();
        assert_ne!(again.record.id, first.invitation);
        assert!(store.held_unclaimed(10).unwrap().is_empty(), "not given back: it waits for the new invitation");
        invitations.cancel("elm.test", again.record.id).unwrap();
        let unclaimed = store.held_unclaimed(10).unwrap();
        assert_eq!(unclaimed.len(), 1);
        assert_eq!(
            (unclaimed[0].0.invitation_id, unclaimed[0].1),
            (again.record.id, crate::store::InvitationState::Cancelled)
        );
        store.held_returned(unclaimed[0].0.id, T0 + 120).unwrap();
        assert!(store.held_unclaimed(10).unwrap().is_empty(), "given back once");
    }

    #[test]
    fn the_subject_and_the_text_come_out_of_a_submitted_message() {
        let raw = b"From: dr@elm.test\r\nTo: bob@example.net\r\nSubject: Referral\r\n for Bob\r\n\
            MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n\
            --b1\r\nContent-Type: text/plain\r\n\r\nPlease see him.\r\n\
            --b1\r\nContent-Type: application/xml\r\nContent-Disposition: attachment; filename=\"ccda.xml\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nPHgvPg==\r\n--b1--\r\n";
        assert_eq!(subject_and_text(raw), ("Referral for Bob".to_string(), "Please see him.".to_string()));
        assert_eq!(subject_and_text(b"To: x@y.z\r\n\r\nhello"), ("(no subject)".to_string(), "hello".to_string()));
        let nested = |levels: usize| {
            let mut entity = "Content-Type: text/plain\r\n\r\ndeep text".to_string();
            for n in 0..levels {
                entity =
                    format!("Content-Type: multipart/mixed; boundary=b{n}\r\n\r\n--b{n}\r\n{entity}\r\n--b{n}--\r\n");
            }
            entity
        };
        assert_eq!(mime::first_text(nested(10).as_bytes()).as_deref(), Some("deep text"));
        assert_eq!(mime::first_text(nested(40).as_bytes()), None, "nesting is bounded");
    }
}
