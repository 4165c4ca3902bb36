//! Mail from a peer HISP: open it (decrypt, verify, trust, revocation) with the addressee's keys
//! and deliver the original into the addressee's Maildir, with the verified sender recorded in a
//! header we add (any copy of it that arrived with the message is removed first).

use super::notices::{self, Pass};
use super::{answer, maildir, Work};
use crate::address::DirectAddress;
use crate::failure::{Code, Failure};
use crate::identities;
use crate::notify::mdn::{self, Disposition};
use crate::notify::request::{self, FinalDelivery, Report};
use crate::onboarding::referral;
use crate::smime::mime;
use crate::smime::open::{open, OpenTrust, Opened};
use crate::store::queue::receipts::Receipt;
use crate::store::queue::{AttachmentRecord, FinishWrite, Job, MailboxDelivery, Outcome};
use crate::trust::revocation::Policy;
use crate::trust::StoreAnchors;

/// The header that tells the EHR who signed the message, as the HISP verified it.
pub(crate) const VERIFIED_SENDER: &str = "X-Direct-Verified-Sender";

pub(crate) fn process(work: &Work, job: &Job, sealed: &[u8]) -> Outcome {
    let recipient = match DirectAddress::parse(&job.recipient) {
        Ok(r) => r,
        Err(e) => return Failure::permanent(Code::BAD_ADDRESS, format!("bad recipient: {e}")).into(),
    };
    let shared = work.shared;
    let keys = match identities::recipient_keys(
        work.store,
        &mut |sealed| Ok(shared.unsealed.key(&shared.kek, sealed)?),
        std::slice::from_ref(&recipient),
    ) {
        Ok(keys) => keys,
        Err(e) => return e.failure().into(),
    };
    let fetch = crate::fetch::HttpFetcher::new(&work.shared.resolver);
    let trust = OpenTrust {
        anchors: &StoreAnchors(work.store),
        revocation: Policy { fetch: &fetch, mode: work.shared.config.trust.revocation },
        now: work.now,
    };
    let opened = match open(sealed, &keys, &trust) {
        Ok(o) => o,
        Err(e) => return e.refusal().into(),
    };
    // Read before any MDN goes out: a message that cannot be read is refused, not half-processed.
    let attachments = match mime::attachments(&opened.original) {
        Ok(found) => found,
        Err(e) => return Failure::permanent(Code::MEDIA, format!("refused (malformed): {e}")).into(),
    };
    let entity = mime::Entity::parse(&opened.original);
    let headers = &entity.headers;
    // A peer's control characters masked: it is shown in logs, listings and MDNs.
    let original_id =
        headers.get("message-id").map(|v| crate::printable::printable(v.trim(), 998)).filter(|v| !v.is_empty());
    let subject = headers.text("subject").unwrap_or_default();
    let arrived = Arrived::new(&opened, original_id.as_deref(), subject.clone());
    if let Some(report) = request::report(headers) {
        // A notification: recorded against what the sender sent, never answered with an MDN
        // (not even one whose fields cannot be read: that one goes to the mailbox as it is).
        let kind = if report == Report::Disposition { "mdn" } else { "dsn" };
        let arrived = Arrived { kind, ..arrived };
        let Some(notice) = mdn::parse(&opened.original) else {
            return deliver(work, job, &recipient, &opened, &arrived, &attachments);
        };
        return match notices::arrived(work, &job.recipient, &opened, &notice, &arrived.message_id) {
            Ok(Pass::Deliver) => deliver(work, job, &recipient, &opened, &arrived, &attachments),
            Ok(Pass::Consumed(why)) => Outcome::Delivered(format!("{kind} recorded, not passed to the mailbox: {why}")),
            Err(e) => e.into(),
        };
    }
    // Opened and trusted: recorded (a failure to deliver it is answered with a failed MDN); the
    // mailbox; then the processed MDN and, if asked for, the dispatched one, which thus never go
    // out for a message that was not written. A message without a Message-ID gets none: its
    // sender could not match them.
    let receipt = original_id.map(|message_id| Receipt {
        delivery_key: arrived.delivery_key.clone(),
        queue_message: job.message.id,
        message_id,
        recipient: job.recipient.to_ascii_lowercase(),
        sender: opened.from.to_string(),
        subject,
        final_delivery: request::final_delivery(headers) == FinalDelivery::Requested,
    });
    if let Some(receipt) = &receipt {
        answer::opened(work, receipt);
    }
    let outcome = deliver(work, job, &recipient, &opened, &arrived, &attachments);
    let (Outcome::Delivered(_), Some(receipt)) = (&outcome, &receipt) else { return outcome };
    let mut answers = vec![Disposition::Processed];
    if receipt.final_delivery {
        answers.push(Disposition::Dispatched);
    }
    for disposition in answers {
        if let Err(e) = answer::send(work, receipt, disposition, None) {
            // Delivered already; the retry finds the copy and sends the MDNs then.
            return Failure::local(format!("the {} MDN: {e}", disposition.as_str())).into();
        }
    }
    outcome
}

/// What arrived, as the mailbox records it.
struct Arrived {
    /// What identifies the message: the SHA-256 of its verified sender, its Message-ID and its
    /// signed content. A Message-ID alone does not: any sender may reuse one.
    delivery_key: String,
    /// How deliveries recorded before delivery keys existed name the same message.
    legacy_key: String,
    /// The message's Message-ID, or its delivery key when it has none.
    message_id: String,
    /// The verified sender.
    sender: String,
    subject: String,
    /// "message", "mdn" or "dsn".
    kind: &'static str,
}

impl Arrived {
    fn new(opened: &Opened, message_id: Option<&str>, subject: String) -> Arrived {
        let sender = opened.from.to_string();
        let content = crate::pki::sha256_hex(&opened.original);
        let seed = format!("{sender}\0{}\0{content}", message_id.unwrap_or(""));
        let delivery_key = crate::pki::sha256_hex(seed.as_bytes());
        let message_id = message_id.map_or_else(|| delivery_key.clone(), str::to_string);
        let legacy_key = format!("legacy {sender} {message_id}");
        Arrived { delivery_key, legacy_key, message_id, sender, subject, kind: "message" }
    }
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
    let keys = [arrived.delivery_key.as_str(), arrived.legacy_key.as_str()];
    match work.queue.delivered_before(keys, &job.recipient) {
        Ok(Some(file)) => return Outcome::Delivered(format!("already delivered as {file}; not delivered again")),
        Ok(None) => {}
        Err(e) => return e.failure().into(),
    }
    match work.queue.message_id_reused(&arrived.message_id, &job.recipient, keys) {
        // Delivered all the same: a Message-ID is the sender's to choose, not proof of a duplicate.
        Ok(true) => tracing::warn!(
            "inbound: Message-ID {} to <{}> was used before by a different message; this one (from <{}>) is \
             delivered as a message of its own",
            arrived.message_id,
            job.recipient,
            arrived.sender
        ),
        Ok(false) => {}
        Err(e) => return e.failure().into(),
    }
    let name = format!(
        "{}.{}.{}",
        job.message.received_at,
        &crate::pki::sha256_hex(format!("{}\0{}", arrived.delivery_key, job.recipient).as_bytes())[..24],
        work.shared.config.server.hostname
    );
    // A recipient whose EHR takes XDR gets the message there ([[xdr.destinations]]); anyone
    // else, and notifications, in the mailbox.
    let xdr = work.shared.config.xdr.destinations.iter().find(|d| d.address.eq_ignore_ascii_case(&job.recipient));
    let delivered = match xdr.filter(|_| arrived.kind == "message") {
        Some(destination) => super::xdr_forward::forward(
            work.shared,
            destination,
            &arrived.sender,
            &job.recipient,
            &opened.original,
            attachments,
        )
        .map(|()| format!("xdr:{}", destination.url)),
        None => {
            let mail = with_verified_sender(&opened.original, opened);
            maildir::deliver(&work.shared.config.server.mail_dir, recipient, &name, &mail, job.attempts > 1)
                .map(|path| path.display().to_string())
                .map_err(|e| Failure::temporary(Code::SYSTEM, format!("mailbox: {e}")))
        }
    };
    match delivered {
        Ok(file) => {
            // The practice's copy of what arrived (and its referral): before the delivery is
            // recorded, so a crash in between redoes it (it is kept once).
            if arrived.kind == "message" {
                let kek = &work.shared.kek;
                if let Err(e) = referral::record_received(
                    work.store,
                    kek,
                    recipient,
                    &arrived.message_id,
                    &opened.original,
                    attachments,
                    &arrived.sender,
                ) {
                    return Failure::local(format!("practice documents: {e}")).into();
                }
            }
            let delivery = MailboxDelivery {
                delivery_key: arrived.delivery_key.clone(),
                message_id: arrived.message_id.clone(),
                recipient: job.recipient.clone(),
                file: file.clone(),
                sender: arrived.sender.clone(),
                subject: arrived.subject.clone(),
                kind: arrived.kind,
                attachments: attachments.iter().map(attachment_record).collect(),
                body: mime::first_text(&opened.original).unwrap_or_default(),
            };
            work.at_finish.add(FinishWrite::Delivered(delivery));
            Outcome::Delivered(format!("delivered to {file}"))
        }
        Err(failure) => failure.into(),
    }
}

/// What is kept of a delivered attachment: its name, type, size and digest.
fn attachment_record(a: &mime::Attachment) -> AttachmentRecord {
    AttachmentRecord {
        filename: a.filename.clone(),
        content_type: a.content_type.clone(),
        size: a.content.len() as i64,
        sha256: crate::pki::sha256_hex(&a.content),
    }
}

/// The original with our verified-sender field first and any incoming copy of it removed.
pub(crate) fn with_verified_sender(original: &[u8], opened: &Opened) -> Vec<u8> {
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
