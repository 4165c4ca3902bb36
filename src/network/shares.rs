//! Sharing a document by link (issue 24), the sender's side: a member whose role the practice
//! lets share picks a document the practice holds (or uploads one) and one of the practice's
//! contacts; the share keeps its own sealed copy, and the contact is e-mailed a link. The sender
//! revokes a link or sends a fresh one; every step is in the share's trail.
//!
//! The link's life (`share_link`): unused, it expires 24 hours after it was sent. Its first use is
//! passing the check (or, with none, pressing "View the document": a POST, so a mail scanner that
//! fetches links does not use it up); from then on it is bound to that browser, by a cookie whose
//! digest the share keeps, until the sender revokes it.

use super::password_mail::Mailer;
use super::share_contacts::may_share;
use super::share_mail::{ShareMail, ShareMailKind};
use super::signin::Token;
use crate::failure::Failure;
use crate::kek::Kek;
use crate::store::accounts::AccountRecord;
use crate::store::sharing::{NewShare, ShareRecord};
use crate::store::{NodeStore, PracticeRecord, ShareCheck, StoreError};

/// An unused link expires this long after it was sent.
pub(crate) const FIRST_USE_SECS: i64 = 24 * 3600;
/// The largest file uploaded to share.
pub(crate) const MAX_UPLOAD_BYTES: usize = 25 << 20;
const MAX_FILENAME_CHARS: usize = 200;

/// What is shared.
pub(crate) enum Source<'a> {
    /// One of the practice's documents (a sent or received attachment, a referral's C-CDA).
    Document(i64),
    /// A secure message's attachment the member can read.
    Attachment { message: i64, attachment: i64 },
    /// A file the member uploads.
    Upload { filename: &'a str, content_type: &'a str, content: &'a [u8] },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ShareError {
    /// The member may not share (the practice's policy or their role).
    #[error("{0}")]
    Forbidden(String),
    /// The request names something that does not fit (a field, and why).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the document could not be sealed or opened: {0}")]
    Kek(String),
}

impl ShareError {
    fn invalid(field: &'static str, message: impl Into<String>) -> ShareError {
        ShareError::Invalid { field, message: message.into() }
    }
}

/// A share just made, and the link's token (the only time it is known).
#[derive(Debug)]
pub(crate) struct Made {
    pub share: ShareRecord,
    pub token: String,
}

/// Who is sharing, as the trail names them.
pub(crate) fn by(account: &AccountRecord) -> String {
    format!("by {}", account.name)
}

/// Shares a document of `practice` with its contact `contact_id`, as `account`.
pub(crate) fn create(
    store: &dyn NodeStore,
    kek: &Kek,
    practice: &PracticeRecord,
    account: &AccountRecord,
    contact_id: i64,
    source: Source,
    now: i64,
) -> Result<Made, ShareError> {
    may_share(practice, account).map_err(ShareError::Forbidden)?;
    let contact = store.share_contact(practice.id, contact_id).map_err(|e| match e {
        StoreError::NotFound(_) => {
            ShareError::invalid("contact", format!("#{contact_id} is not one of {}'s contacts", practice.name))
        }
        e => ShareError::Store(e),
    })?;
    match practice.share_check {
        ShareCheck::Sms if contact.mobile.is_none() => {
            return Err(ShareError::invalid(
                "contact",
                format!(
                    "{} has no mobile number for the code {} texts: add it to the contact",
                    contact.name, practice.name
                ),
            ))
        }
        ShareCheck::DateOfBirth if contact.date_of_birth.is_none() => {
            return Err(ShareError::invalid(
                "contact",
                format!("{} has no date of birth for {}'s check: add it to the contact", contact.name, practice.name),
            ))
        }
        _ => {}
    }
    let (source_name, filename, content_type, content) = match source {
        Source::Document(id) => {
            let (record, sealed) = store.document(practice.id, id).map_err(|e| match e {
                StoreError::NotFound(_) => {
                    ShareError::invalid("document", format!("#{id} is not one of the practice's documents"))
                }
                e => ShareError::Store(e),
            })?;
            let content = kek.open_document(&sealed).map_err(|e| ShareError::Kek(e.to_string()))?;
            (format!("document {id}"), record.filename, record.content_type, content)
        }
        Source::Attachment { message, attachment } => {
            let (info, encoded) = store.secure_attachment(account.id, message, attachment).map_err(|e| match e {
                StoreError::NotFound(_) => {
                    ShareError::invalid("attachment", "not an attachment of a message you can read")
                }
                e => ShareError::Store(e),
            })?;
            use base64::Engine;
            let content = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| ShareError::Kek(format!("the attachment as kept: {e}")))?;
            (format!("secure message {message}"), info.filename, info.content_type, content)
        }
        Source::Upload { filename, content_type, content } => {
            let filename = upload_name(filename)?;
            if content.is_empty() {
                return Err(ShareError::invalid("file", "the file is empty"));
            }
            if content.len() > MAX_UPLOAD_BYTES {
                return Err(ShareError::invalid("file", format!("larger than {} MiB", MAX_UPLOAD_BYTES >> 20)));
            }
            ("upload".to_string(), filename, safe_type(content_type, content), content.to_vec())
        }
    };
    let sealed = kek.seal_document(&content).map_err(|e| ShareError::Kek(e.to_string()))?;
    let token = Token::generate()?;
    let sha256 = hex::encode(openssl::sha::sha256(&content));
    let new = NewShare {
        practice_id: practice.id,
        contact_id,
        shared_by: account.id,
        source: &source_name,
        filename: &filename,
        content_type: &content_type,
        size: content.len(),
        sha256: &sha256,
        sealed: &sealed,
        check: practice.share_check,
        link_hash: &token.digest,
    };
    let share = store.add_share(&new, &by(account), now)?;
    Ok(Made { share, token: token.text })
}

/// A fresh link for a share (revoked, locked, expired or not): the earlier one stops working.
pub(crate) fn resend(
    store: &dyn NodeStore,
    practice: &PracticeRecord,
    account: &AccountRecord,
    id: i64,
    now: i64,
) -> Result<Made, ShareError> {
    may_share(practice, account).map_err(ShareError::Forbidden)?;
    let token = Token::generate()?;
    let share = store.renew_share_link(practice.id, id, &token.digest, &by(account), now)?;
    Ok(Made { share, token: token.text })
}

/// Ends a share's link for good (a fresh one may be sent later).
pub(crate) fn revoke(
    store: &dyn NodeStore,
    practice: &PracticeRecord,
    account: &AccountRecord,
    id: i64,
    now: i64,
) -> Result<ShareRecord, ShareError> {
    may_share(practice, account).map_err(ShareError::Forbidden)?;
    Ok(store.revoke_share(practice.id, id, &by(account), now)?)
}

/// E-mails a share's link to its contact: the practice's name and the link, nothing else.
pub(crate) fn email_link(
    mailer: &Mailer,
    config: &crate::config::Config,
    made: &Made,
    now: i64,
) -> Result<(), Failure> {
    let mail = ShareMail {
        kind: ShareMailKind::Link,
        practice: made.share.practice.clone(),
        portal: config.portal.name.clone(),
        link: format!("{}/s/{}", config.portal_url(), made.token),
        expires_at: made.share.link_sent_at + FIRST_USE_SECS,
    };
    mail.send(mailer, &made.share.contact_email, now)
}

/// A share as the API and the CLI report it: its record and where it stands.
pub(crate) fn report(share: &ShareRecord, now: i64) -> serde_json::Value {
    let mut value = serde_json::to_value(share).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.insert("state".into(), state(share, now).into());
        fields.insert("link_expires_at".into(), (share.link_sent_at + FIRST_USE_SECS).into());
    }
    value
}

/// Where a share stands, as its sender reads it.
pub(crate) fn state(share: &ShareRecord, now: i64) -> &'static str {
    if share.revoked_at.is_some() {
        "revoked"
    } else if share.locked_at.is_some() {
        "locked"
    } else if share.first_used_at.is_some() {
        "opened"
    } else if now > share.link_sent_at + FIRST_USE_SECS {
        "expired"
    } else {
        "waiting"
    }
}

/// A file name as an uploader gives it: its last path part, no control characters, not empty.
fn upload_name(name: &str) -> Result<String, ShareError> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if last.is_empty() || last == "." || last == ".." {
        return Err(ShareError::invalid("file", "choose a file"));
    }
    if last.chars().count() > MAX_FILENAME_CHARS || last.chars().any(char::is_control) {
        return Err(ShareError::invalid("file", format!("a file name of at most {MAX_FILENAME_CHARS} characters")));
    }
    Ok(last.to_string())
}

/// The type an upload is kept as: PDF and XML when their bytes agree, else plain bytes (the
/// viewer offers those only as a download).
fn safe_type(given: &str, content: &[u8]) -> String {
    let given = given.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if content.starts_with(b"%PDF-") {
        return "application/pdf".into();
    }
    let text = content.strip_prefix(b"\xef\xbb\xbf").unwrap_or(content);
    if (given.ends_with("xml") || text.starts_with(b"<?xml") || text.starts_with(b"<ClinicalDocument"))
        && std::str::from_utf8(text).is_ok()
    {
        return "text/xml".into();
    }
    if given == "text/plain" && std::str::from_utf8(content).is_ok() {
        return "text/plain".into();
    }
    "application/octet-stream".into()
}

#[cfg(test)]
mod tests;
