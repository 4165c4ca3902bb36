//! Mail from a peer HISP: open it (decrypt, verify, trust, revocation) with the addressee's keys
//! and deliver the original into the addressee's Maildir, with the verified sender recorded in a
//! header we add (any copy of it that arrived with the message is removed first).

use super::notices::{self, Pass};
use super::{answer, maildir, Work};
use crate::address::DirectAddress;
use crate::identities;
use crate::notify::mdn::{self, Disposition};
use crate::notify::receipts::Receipt;
use crate::notify::request::{self, FinalDelivery, Report};
use crate::onboarding::referral;
use crate::smime::mime;
use crate::smime::open::{open, OpenTrust, Opened};
use crate::smime::SmimeError;
use crate::smtp::queue::{self, AttachmentRecord, Job, MailboxDelivery, Outcome};
use crate::trust::revocation::Policy;
use crate::trust::StoreAnchors;

/// The header that tells the EHR who signed the message, as the HISP verified it.
pub const VERIFIED_SENDER: &str = "X-Direct-Verified-Sender";

pub fn process(work: &Work, job: &Job, sealed: &[u8]) -> Outcome {
    let recipient = match DirectAddress::parse(&job.recipient) {
        Ok(r) => r,
        Err(e) => return Outcome::failed("5.1.3", format!("bad recipient: {e}")),
    };
    let shared = work.shared;
    let keys = match identities::recipient_keys(
        work.store,
        &mut |sealed| Ok(shared.unsealed.key(&shared.kek, sealed)?),
        std::slice::from_ref(&recipient),
    ) {
        Ok(keys) => keys,
        Err(e) => return Outcome::deferred(e.to_string()),
    };
    let fetch = crate::fetch::HttpFetcher::new(&work.shared.resolver);
    let trust = OpenTrust {
        anchors: &StoreAnchors(work.store),
        revocation: Policy { fetch: &fetch, mode: work.shared.config.trust.revocation },
        now: work.now,
    };
    let opened = match open(sealed, &keys, &trust) {
        Ok(o) => o,
        // A CRL that cannot be had now may be had later; everything else about a message is final.
        Err(e @ SmimeError::RevocationUnknown { .. }) => return Outcome::deferred(e.to_string()),
        Err(e) => return Outcome::failed("5.7.1", format!("refused ({}): {e}", e.code())),
    };
    // Read before any MDN goes out: a message that cannot be read is refused, not half-processed.
    let attachments = match mime::attachments(&opened.original) {
        Ok(found) => found,
        Err(e) => return Outcome::failed("5.6.0", format!("refused (malformed): {e}")),
    };
    let entity = mime::Entity::parse(&opened.original);
    let headers = &entity.headers;
    let original_id = headers.get("message-id").map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let subject = headers.get("subject").unwrap_or("").replace(['\r', '\n'], " ");
    let arrived = Arrived {
        key: original_id.clone().unwrap_or_else(|| crate::pki::sha256_hex(sealed)),
        sender: opened.from.to_string(),
        subject: subject.clone(),
        kind: "message",
    };
    if let Some(report) = request::report(headers) {
        // A notification: recorded against what the sender sent, never answered with an MDN
        // (not even one whose fields cannot be read: that one goes to the mailbox as it is).
        let kind = if report == Report::Disposition { "mdn" } else { "dsn" };
        let arrived = Arrived { kind, ..arrived };
        let Some(notice) = mdn::parse(&entity) else {
            return deliver(work, job, &recipient, &opened, &arrived, &attachments);
        };
        return match notices::arrived(work, &job.recipient, &opened, &notice, &arrived.key) {
            Ok(Pass::Deliver) => deliver(work, job, &recipient, &opened, &arrived, &attachments),
            Ok(Pass::Consumed(why)) => Outcome::Delivered(format!("{kind} recorded, not passed to the mailbox: {why}")),
            Err(e) => Outcome::deferred(e),
        };
    }
    // Opened and trusted: processed MDN, then the mailbox, then (if asked for) dispatched MDN.
    // A message without a Message-ID gets none: its sender could not match them.
    let receipt = original_id.map(|message_id| Receipt {
        message_id,
        recipient: job.recipient.to_ascii_lowercase(),
        sender: opened.from.to_string(),
        subject,
        final_delivery: request::final_delivery(headers) == FinalDelivery::Requested,
    });
    if let Some(receipt) = &receipt {
        if let Err(e) = answer::send(work, receipt, Disposition::Processed, None) {
            return Outcome::deferred(e);
        }
    }
    let outcome = deliver(work, job, &recipient, &opened, &arrived, &attachments);
    match (&outcome, &receipt) {
        (Outcome::Delivered(_), Some(receipt)) if receipt.final_delivery => {
            match answer::send(work, receipt, Disposition::Dispatched, None) {
                Ok(()) => outcome,
                // Delivered already; the retry finds the copy and sends the MDN then.
                Err(e) => Outcome::deferred(e),
            }
        }
        _ => outcome,
    }
}

/// What arrived, as the mailbox records it.
struct Arrived {
    /// The message's Message-ID, or the SHA-256 of what arrived when it has none.
    key: String,
    /// The verified sender.
    sender: String,
    subject: String,
    /// "message", "mdn" or "dsn".
    kind: &'static str,
}

/// Puts the opened original into the recipient's mailbox, once per Message-ID and recipient.
fn deliver(
    work: &Work,
    job: &Job,
    recipient: &DirectAddress,
    opened: &Opened,
    arrived: &Arrived,
    attachments: &[mime::Attachment],
) -> Outcome {
    let key = &arrived.key;
    match work.queue.delivered_before(key, &job.recipient) {
        Ok(Some(file)) => return Outcome::Delivered(format!("already delivered as {file}; not delivered again")),
        Ok(None) => {}
        Err(e) => return Outcome::deferred(e.to_string()),
    }
    let name = format!(
        "{}.{}.{}",
        job.message.received_at,
        &crate::pki::sha256_hex(format!("{key}\0{}", job.recipient).as_bytes())[..24],
        work.shared.config.server.hostname
    );
    let mail = with_verified_sender(&opened.original, opened);
    match maildir::deliver(&work.shared.config.server.mail_dir, recipient, &name, &mail, job.attempts > 1) {
        Ok(path) => {
            let file = path.display().to_string();
            // The practice's copy of what arrived (and its referral): before the delivery is
            // recorded, so a crash in between redoes it (it is kept once).
            if arrived.kind == "message" {
                let kek = &work.shared.kek;
                if let Err(e) = referral::record_received(
                    work.store,
                    kek,
                    recipient,
                    key,
                    &opened.original,
                    attachments,
                    &arrived.sender,
                ) {
                    return Outcome::deferred(format!("practice documents: {e}"));
                }
            }
            let delivery = MailboxDelivery {
                message_id: key.clone(),
                recipient: job.recipient.clone(),
                file: file.clone(),
                sender: arrived.sender.clone(),
                subject: arrived.subject.clone(),
                kind: arrived.kind,
                attachments: attachments.iter().map(AttachmentRecord::of).collect(),
            };
            let now = work.now;
            work.at_finish.add(move |tx| queue::record_delivery(tx, &delivery, now).map(|()| 0));
            Outcome::Delivered(format!("delivered to {file}"))
        }
        Err(e) => Outcome::deferred(format!("mailbox: {e}")),
    }
}

/// The original with our verified-sender field first and any incoming copy of it removed.
pub fn with_verified_sender(original: &[u8], opened: &Opened) -> Vec<u8> {
    let body_at = mime::body_offset(original).unwrap_or(original.len());
    let subject = opened.signer.subject.replace(['"', '\r', '\n'], "");
    let mut out = format!(
        "{VERIFIED_SENDER}: {}; signer=\"{subject}\"; binding={}; revocation={}\r\n",
        opened.from,
        match opened.signer.binding {
            crate::address::Binding::Address => "address",
            crate::address::Binding::Domain => "domain",
        },
        if opened.revocation == "good" { "good" } else { "unchecked" }
    )
    .into_bytes();
    mime::copy_fields_except(&original[..body_at], &[VERIFIED_SENDER], &mut out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&original[body_at..]);
    out
}
