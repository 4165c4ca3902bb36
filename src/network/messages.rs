//! Secure messages between members of connected parties, on this node: a request checked
//! (recipients, subject, body, attachments, the practice address it is sent as) and kept in the
//! recipients' mailboxes, sealed at rest; replies go back to the sender.

use base64::Engine;
use serde::Deserialize;

use super::invitee::FieldError;
use crate::address::DirectAddress;
use crate::store::secure::{NewAttachment, NewSecureMessage};
use crate::store::{NodeStore, StoreError};

/// Recipients of one message, at most.
const MAX_RECIPIENTS: usize = 100;
const MAX_SUBJECT_CHARS: usize = 998;
const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_ATTACHMENTS: usize = 20;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecureRequest {
    /// Accounts on this node (from the address book, or the members of one's practice).
    #[serde(default)]
    pub to: Vec<i64>,
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<FileRequest>,
    /// Sent as the practice: one of its Direct addresses (a shared inbox) shown as the sender.
    pub as_practice: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRequest {
    pub filename: String,
    pub content_type: String,
    pub content_base64: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum MessageError {
    #[error("{}", super::invitee::describe(.0))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> MessageError {
    MessageError::Invalid(vec![FieldError { field, message: message.into() }])
}

/// An attachment checked: its name safe to show and save, its content decoded once.
struct File {
    filename: String,
    content_type: String,
    size: usize,
    base64: String,
}

/// Sends `request` from account `sender`; the new message's number.
pub(crate) fn send(store: &dyn NodeStore, sender: i64, request: &SecureRequest, now: i64) -> Result<i64, MessageError> {
    send_reply(store, sender, request, None, now)
}

/// Answers message `original` (which `sender` sent or received): to its sender, or, when the
/// sender answers their own message, to its recipients.
pub(crate) fn reply(
    store: &dyn NodeStore,
    sender: i64,
    original: i64,
    body: &str,
    attachments: &[FileRequest],
    now: i64,
) -> Result<i64, MessageError> {
    let answered = store.secure_message(sender, original, now)?;
    let to = if answered.from.account == sender {
        answered.to.iter().map(|p| p.account).collect()
    } else {
        vec![answered.from.account]
    };
    let subject = match answered.subject.get(..3) {
        Some(re) if re.eq_ignore_ascii_case("re:") => answered.subject.clone(),
        _ => format!("Re: {}", answered.subject),
    };
    let request = SecureRequest {
        to,
        subject,
        body: body.to_string(),
        attachments: attachments.to_vec(),
        as_practice: answered.as_address.filter(|_| answered.from.account == sender),
    };
    send_reply(store, sender, &request, Some(original), now)
}

fn send_reply(
    store: &dyn NodeStore,
    sender: i64,
    r: &SecureRequest,
    reply_to: Option<i64>,
    now: i64,
) -> Result<i64, MessageError> {
    let mut to = r.to.clone();
    to.sort_unstable();
    to.dedup();
    if to.is_empty() || to.len() > MAX_RECIPIENTS {
        return Err(invalid("to", format!("1 to {MAX_RECIPIENTS} accounts")));
    }
    let subject = r.subject.trim();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
        return Err(invalid("subject", format!("1 to {MAX_SUBJECT_CHARS} characters, no line breaks")));
    }
    if r.body.len() > MAX_BODY_BYTES {
        return Err(invalid("body", "at most 1 MiB (send longer text as an attachment)"));
    }
    let files = files(&r.attachments)?;
    let as_address = match &r.as_practice {
        Some(address) => Some(practice_address(store, sender, address)?),
        None => None,
    };
    let attachments: Vec<NewAttachment> = files
        .iter()
        .map(|f| NewAttachment {
            filename: &f.filename,
            content_type: &f.content_type,
            size: f.size,
            content_base64: &f.base64,
        })
        .collect();
    Ok(store.send_secure(&NewSecureMessage {
        sender,
        as_address: as_address.as_deref(),
        reply_to,
        subject,
        body: &r.body,
        attachments: &attachments,
        recipients: &to,
        now,
    })?)
}

/// One of the sender's practice's Direct addresses, which the message is sent as.
fn practice_address(store: &dyn NodeStore, sender: i64, text: &str) -> Result<String, MessageError> {
    let account = store.account(sender)?;
    let not_ours = || invalid("as_practice", format!("{text:?} is not an address of your practice"));
    let practice = account.practice.ok_or_else(not_ours)?;
    let address = DirectAddress::parse(text.trim()).map_err(|_| not_ours())?;
    if !store.practice(&practice)?.owns(store, &address)? {
        return Err(not_ours());
    }
    Ok(address.to_string())
}

/// Whether a file name can be shown and saved as it is: 1 to 255 characters, no path, no
/// control characters.
pub(crate) fn plain_filename(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c.is_control() || c == '/' || c == '\\')
}

/// A file name from elsewhere (a submitted message), made plain: its last path part, control
/// characters out; "attachment" when nothing is left.
pub(crate) fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let kept: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    if plain_filename(kept.trim()) {
        kept.trim().to_string()
    } else {
        "attachment".into()
    }
}

fn files(requests: &[FileRequest]) -> Result<Vec<File>, MessageError> {
    if requests.len() > MAX_ATTACHMENTS {
        return Err(invalid("attachments", format!("at most {MAX_ATTACHMENTS}")));
    }
    let mut out = Vec::with_capacity(requests.len());
    for f in requests {
        let name = f.filename.trim();
        if !plain_filename(name) {
            return Err(invalid("attachments.filename", format!("{name:?}: 1 to 255 characters, no path, no control")));
        }
        let token =
            |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
        let content_type = f.content_type.trim().to_ascii_lowercase();
        if !content_type.split_once('/').is_some_and(|(a, b)| token(a) && token(b)) {
            return Err(invalid("attachments.content_type", format!("{:?} is not a media type", f.content_type)));
        }
        let compact: String = f.content_base64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| invalid("attachments.content_base64", format!("{name}: not base64: {e}")))?;
        out.push(File { filename: name.to_string(), content_type, size: bytes.len(), base64: compact });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
