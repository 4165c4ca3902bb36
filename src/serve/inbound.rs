//! Mail from a peer HISP: open it (decrypt, verify, trust, revocation) with the addressee's keys
//! and deliver the original into the addressee's Maildir, with the verified sender recorded in a
//! header we add (any copy of it that arrived with the message is removed first).

use super::maildir;
use super::Work;
use crate::address::DirectAddress;
use crate::identities;
use crate::smime::mime;
use crate::smime::open::{open, OpenTrust, Opened};
use crate::smime::SmimeError;
use crate::smtp::queue::{Job, Outcome};
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
    deliver(work, job, &recipient, &opened, sealed)
}

/// Puts the opened original into the recipient's mailbox, once per Message-ID and recipient.
fn deliver(work: &Work, job: &Job, recipient: &DirectAddress, opened: &Opened, sealed: &[u8]) -> Outcome {
    let original_id = mime::Entity::parse(&opened.original).headers.get("message-id").map(|v| v.trim().to_string());
    let message_id = original_id.unwrap_or_else(|| job.message.message_id.clone());
    let key = if message_id.is_empty() { crate::pki::sha256_hex(sealed) } else { message_id.clone() };
    match work.queue.delivered_before(&key, &job.recipient) {
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
            let attachments = mime::attachments(&opened.original);
            match work.queue.record_delivery(&key, &job.recipient, &file, &attachments, work.now) {
                Ok(()) => Outcome::Delivered(format!("delivered to {file}")),
                Err(e) => Outcome::deferred(e.to_string()),
            }
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
