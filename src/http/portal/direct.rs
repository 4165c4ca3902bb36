//! Direct messages from the portal: a member writes to Direct addresses as one of the practice's
//! addresses, each address verified first ("Verifying Address": discovery and trust, as the node
//! does before sending); the message goes into the queue as an SMTP submission would, and its
//! page shows each recipient's delivery as the notifications tell it (sent, processed,
//! dispatched, failed).

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::mailbox::when;
use super::page::{render, Frame, PageError};
use super::session::{Ctx, Visit};
use crate::address::DirectAddress;
use crate::http::directory::verify_address;
use crate::http::send::{self, Outgoing, Sending};
use crate::network::messages::FileRequest;
use crate::store::accounts::AccountRecord;
use crate::store::api::{DocumentRecord, MailboxEntry};
use crate::store::queue::tracking::SentMessage;
use crate::store::{PracticeRecord, TrackStatus};

/// The addresses typed in one field: separated by commas, semicolons, spaces or lines.
pub(crate) fn addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

/// The practice the account is a member of (a patient writes to no Direct address).
fn practice_of(ctx: &Ctx, account: &AccountRecord) -> Result<PracticeRecord, PageError> {
    let Some(name) = &account.practice else {
        return Err(PageError::Forbidden("Only members of a practice write to Direct addresses.".into()));
    };
    ctx.store.practice(name).map_err(PageError::internal)
}

/// "Verifying Address": None when `text` is a Direct address with a usable, trusted certificate,
/// else why not, as the page says it.
pub(crate) fn invalid(ctx: &Ctx, practice: &PracticeRecord, text: &str) -> Result<Option<String>, PageError> {
    let address = match DirectAddress::parse(text) {
        Ok(address) => address,
        Err(e) => return Ok(Some(format!("not a Direct address ({e})"))),
    };
    let verdict = verify_address(&*ctx.store, &ctx.portal.shared, practice, &address, ctx.now)
        .map_err(|e| PageError::internal(e.message))?;
    Ok(if verdict.valid { None } else { Some(verdict.reason.unwrap_or_else(|| "no usable certificate".into())) })
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct VerifyQuery {
    #[serde(default)]
    address: String,
    /// "json" (the compose page's script) or the page.
    #[serde(default)]
    format: String,
}

#[derive(Template)]
#[template(path = "portal/verify.html")]
struct VerifyPage<'a> {
    f: Frame,
    address: &'a str,
    reason: Option<String>,
}

/// GET /messages/verify?address=: the check, as JSON for the compose page's script or as a page.
pub(crate) async fn verify(visit: Visit, Query(query): Query<VerifyQuery>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let practice = practice_of(ctx, account)?;
            let address = query.address.trim();
            let reason = invalid(ctx, &practice, address)?;
            if query.format == "json" {
                let body = json!({ "address": address, "valid": reason.is_none(), "reason": reason });
                return Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response());
            }
            let page = VerifyPage { f: Frame::of("Verifying Address", account, &session.csrf), address, reason };
            render(StatusCode::OK, &page)
        })
        .await
}

/// What the compose page sends to Direct addresses.
pub(crate) struct DirectDraft<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub files: &'a [FileRequest],
}

/// Verifies every address, then queues the message as the practice's; its Message-ID. A refusal
/// is the sentence the page shows.
pub(crate) fn send_direct(
    ctx: &Ctx,
    account: &AccountRecord,
    draft: &DirectDraft,
) -> Result<Result<String, String>, PageError> {
    let practice = practice_of(ctx, account)?;
    if draft.from.is_empty() {
        return Ok(Err("To write to Direct addresses, choose which of the practice's addresses sends it.".into()));
    }
    for address in draft.to {
        if let Some(why) = invalid(ctx, &practice, address)? {
            return Ok(Err(format!("Invalid Direct Address: {address}: {why}.")));
        }
    }
    let outgoing = Outgoing {
        from: draft.from.to_string(),
        to: draft.to.to_vec(),
        subject: draft.subject.to_string(),
        body: draft.body.to_string(),
        attachments: draft.files.to_vec(),
        referral: None,
        xdm: false,
    };
    let sending = Sending {
        store: &*ctx.store,
        shared: &ctx.portal.shared,
        committer: &*ctx.portal.committer,
        peer: ctx.peer.0,
        via: "portal",
        now: ctx.now,
    };
    match send::queue(&sending, &practice, outgoing) {
        Ok(queued) => {
            // The API's answer names it without angle brackets; the mailbox keeps the field's form.
            let message_id = format!("<{}>", queued["message_id"].as_str().unwrap_or_default());
            ctx.store.record_direct_sent(account.id, &message_id, ctx.now).map_err(PageError::internal)?;
            Ok(Ok(message_id))
        }
        Err(e) if e.status.is_client_error() => Ok(Err(super::signin::sentence(&e.message))),
        Err(e) => Err(PageError::internal(e.message)),
    }
}

/// What a recipient's tracking says, in words.
fn status_words(status: TrackStatus, detail: Option<&str>) -> String {
    match status {
        TrackStatus::Queued => "waiting to be sent".into(),
        TrackStatus::Sent => "sent; waiting for the recipient's HISP to confirm".into(),
        TrackStatus::Processed => "processed: the recipient's HISP received it".into(),
        TrackStatus::Dispatched => "dispatched: delivered to the recipient".into(),
        TrackStatus::Failed => format!("failed{}", detail.map(|d| format!(": {d}")).unwrap_or_default()),
        TrackStatus::TimedOut => "no confirmation came in time: it may not have been delivered".into(),
        TrackStatus::Held => "held: the recipient has no Direct address and was invited".into(),
    }
}

/// The Direct messages this account sent, tracked (for the sent items).
pub(crate) fn sent_by(ctx: &Ctx, account: &AccountRecord, limit: usize) -> Result<Vec<SentMessage>, PageError> {
    let sent = ctx.store.direct_sent(account.id, limit).map_err(PageError::internal)?;
    let ids: Vec<String> = sent.into_iter().map(|(id, _)| id).collect();
    crate::http::messages::tracked(&ctx.portal.shared, &practice_of(ctx, account)?, &ids).map_err(PageError::internal)
}

/// A Direct message's one-word state for a list: the least advanced of its recipients'.
pub(crate) fn summary(m: &SentMessage) -> &'static str {
    let states: Vec<&str> = m.recipients.iter().map(|r| r.status.as_str()).collect();
    crate::store::api::summarize(&states)
}

struct RecipientLine {
    address: String,
    status: String,
    at: String,
}

#[derive(Template)]
#[template(path = "portal/direct.html")]
struct DirectPage<'a> {
    f: Frame,
    m: &'a SentMessage,
    when: String,
    recipients: Vec<RecipientLine>,
    just_sent: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ShownQuery {
    #[serde(default)]
    sent: String,
}

/// GET /messages/direct/{Message-ID without brackets}: one the account sent, and its recipients.
pub(crate) async fn show(visit: Visit, Path(id): Path<String>, Query(query): Query<ShownQuery>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let wanted = format!("<{}>", crate::http::messages::bare(&id));
            let mine = ctx.store.direct_sent(account.id, 1000).map_err(PageError::internal)?;
            if !mine.iter().any(|(m, _)| *m == wanted) {
                return Err(PageError::NotFound);
            }
            // This one message's tracking, not every message the account sent.
            let found = crate::http::messages::tracked(
                &ctx.portal.shared,
                &practice_of(ctx, account)?,
                std::slice::from_ref(&wanted),
            )
            .map_err(PageError::internal)?;
            let Some(m) = found.first() else { return Err(PageError::NotFound) };
            ctx.store
                .record("direct.view", &format!("account #{}", account.id), &format!("message {wanted}"))
                .map_err(PageError::internal)?;
            let recipients = m
                .recipients
                .iter()
                .map(|r| RecipientLine {
                    address: r.recipient.clone(),
                    status: status_words(r.status, r.detail.as_deref()),
                    at: [r.failed_at, r.dispatched_at, r.processed_at, r.sent_at]
                        .into_iter()
                        .flatten()
                        .next()
                        .map(when)
                        .unwrap_or_default(),
                })
                .collect();
            let page = DirectPage {
                f: Frame::of(&m.subject, account, &session.csrf),
                when: when(m.submitted_at),
                recipients,
                just_sent: query.sent == "1",
                m,
            };
            render(StatusCode::OK, &page)
        })
        .await
}

/// Received Direct messages a page lists, newest first.
const RECEIVED: usize = 200;

struct ReceivedLine {
    href: String,
    sender: String,
    subject: String,
    when: String,
}

#[derive(Template)]
#[template(path = "portal/direct_inbox.html")]
struct ReceivedPage {
    f: Frame,
    lines: Vec<ReceivedLine>,
    q: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// GET /direct: what the practice's Direct addresses received (each passed Direct's checks on
/// arrival: decrypted with the recipient's key, its signature verified with a certificate the
/// practice trusts).
pub(crate) async fn received(visit: Visit, Query(query): Query<SearchQuery>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let practice = practice_of(ctx, account)?;
            let entries =
                ctx.store.mailbox(practice.id, Some("received"), None, RECEIVED).map_err(PageError::internal)?;
            let wanted: Vec<String> = query.q.split_whitespace().map(str::to_lowercase).collect();
            let lines = entries
                .into_iter()
                .filter(|e| {
                    let text = format!("{} {}", e.subject, e.sender).to_lowercase();
                    wanted.iter().all(|w| text.contains(w.as_str()))
                })
                .map(|e| ReceivedLine {
                    href: format!("/direct/{}", crate::http::messages::bare(&e.message_id)),
                    sender: e.sender,
                    subject: e.subject,
                    when: when(e.at),
                })
                .collect();
            let page = ReceivedPage {
                f: Frame::of("Direct messages", account, &session.csrf),
                lines,
                q: query.q.trim().to_string(),
            };
            render(StatusCode::OK, &page)
        })
        .await
}

#[derive(Template)]
#[template(path = "portal/direct_message.html")]
struct ReceivedMessagePage<'a> {
    f: Frame,
    m: &'a MailboxEntry,
    when: String,
    documents: Vec<DocumentLine>,
    /// The XDM packages the message carried, filed or refused.
    packages: Vec<crate::store::api::PackageRecord>,
    /// The Message-ID without its brackets, as links name it.
    bare: String,
    reply: String,
    /// The member may share the practice's documents by link.
    may_share: bool,
}

/// A document as the message page lists it: with what its XDM metadata says, when it came in a
/// package.
struct DocumentLine {
    d: DocumentRecord,
    xdm: Option<String>,
}

impl DocumentLine {
    fn of(d: DocumentRecord) -> DocumentLine {
        let xdm = d.xdm.as_ref().map(|x| {
            let doc = &x["document"];
            let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
            let mut parts = vec![text(&doc["title"])];
            if let Some(code) = doc["type_code"].as_object() {
                parts.push(format!("{} {}", text(&code["display"]), text(&code["code"])).trim().to_string());
            }
            // A CX ("PY-7^^^&2.16.840.1.113883.19.5&ISO"): the identifier, without its authority.
            if let Some(patient) = doc["patient_id"].as_str() {
                parts.push(format!("patient {}", patient.split('^').next().unwrap_or(patient)));
            }
            let author = &doc["authors"][0];
            let by: Vec<String> = [text(&author["person"]).replace('^', " ").trim().to_string()]
                .into_iter()
                .chain(author["institutions"].as_array().into_iter().flatten().map(text))
                .filter(|t| !t.is_empty())
                .collect();
            if !by.is_empty() {
                parts.push(format!("by {}", by.join(", ")));
            }
            parts.retain(|p| !p.is_empty());
            parts.join(" · ")
        });
        DocumentLine { d, xdm }
    }
}

/// The received message `id` (a Message-ID without brackets) of the account's practice.
fn received_message(ctx: &Ctx, practice: &PracticeRecord, id: &str) -> Result<MailboxEntry, PageError> {
    let message_id = format!("<{}>", crate::http::messages::bare(id));
    let found = ctx.store.mailbox(practice.id, Some("received"), Some(&message_id), 1).map_err(PageError::internal)?;
    found.into_iter().next().ok_or(PageError::NotFound)
}

/// GET /direct/{id}: one received message, what Direct verified of it, and its documents.
pub(crate) async fn received_one(visit: Visit, Path(id): Path<String>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let practice = practice_of(ctx, account)?;
            let m = received_message(ctx, &practice, &id)?;
            let documents = ctx.store.documents(practice.id, None, Some(&m.message_id)).map_err(PageError::internal)?;
            let packages = ctx.store.xdm_packages(practice.id, &m.message_id).map_err(PageError::internal)?;
            ctx.store
                .record("direct.view", &format!("account #{}", account.id), &format!("message {}", m.message_id))
                .map_err(PageError::internal)?;
            let subject = if m.subject.to_lowercase().starts_with("re:") {
                m.subject.clone()
            } else {
                format!("Re: {}", m.subject)
            };
            let reply = format!("/messages/new?address={}&subject={}", urlencode(&m.sender), urlencode(&subject));
            let page = ReceivedMessagePage {
                f: Frame::of(&m.subject, account, &session.csrf),
                when: when(m.at),
                documents: documents.into_iter().map(DocumentLine::of).collect(),
                packages,
                bare: crate::http::messages::bare(&m.message_id).to_string(),
                reply,
                may_share: crate::network::share_contacts::may_share(&practice, account).is_ok(),
                m: &m,
            };
            render(StatusCode::OK, &page)
        })
        .await
}

/// RFC 3986's unreserved characters: all a query value keeps as they are.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// GET /direct/{id}/documents/{document}: a document the message carried, as a download.
pub(crate) async fn document(visit: Visit, Path((id, document)): Path<(String, i64)>) -> Response {
    visit
        .run(move |ctx| {
            let (_, account) = ctx.signed_in()?;
            let practice = practice_of(ctx, account)?;
            let m = received_message(ctx, &practice, &id)?;
            let (record, sealed) = match ctx.store.document(practice.id, document) {
                Ok(found) => found,
                Err(crate::store::StoreError::NotFound(_)) => return Err(PageError::NotFound),
                Err(e) => return Err(PageError::internal(e)),
            };
            if record.message_id != m.message_id {
                return Err(PageError::NotFound);
            }
            // Documents are kept sealed under the KEK.
            let bytes = ctx.portal.shared.kek.open_document(&sealed).map_err(PageError::internal)?;
            ctx.store
                .record("direct.download", &format!("account #{}", account.id), &format!("document #{document}"))
                .map_err(PageError::internal)?;
            Ok(super::mailbox::download(&record.filename, &record.content_type, bytes))
        })
        .await
}

#[derive(Template)]
#[template(path = "portal/directory.html")]
struct DirectoryPage {
    f: Frame,
    q: String,
    /// Each entry, and where writing to it starts.
    entries: Vec<(crate::store::api::DirectoryEntry, String)>,
    searched: bool,
    error: Option<String>,
}

/// GET /directory?q=: Direct addresses hosted here and those the practice has exchanged mail
/// with, found by the words of a name or address (2 to 200 characters); each one written to.
pub(crate) async fn directory(visit: Visit, Query(query): Query<SearchQuery>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let practice = practice_of(ctx, account)?;
            let q = query.q.trim();
            let (entries, error) = match q.chars().count() {
                0 => (Vec::new(), None),
                2..=200 => {
                    let found = ctx.store.directory(practice.id, q, 50).map_err(PageError::internal)?;
                    let write = |e: &crate::store::api::DirectoryEntry| {
                        format!("/messages/new?address={}", urlencode(&e.address))
                    };
                    let entries = found
                        .into_iter()
                        .map(|e| {
                            let href = write(&e);
                            (e, href)
                        })
                        .collect();
                    (entries, None)
                }
                _ => (Vec::new(), Some("Search for 2 to 200 characters of a name or address.".to_string())),
            };
            let page = DirectoryPage {
                f: Frame::of("Directory", account, &session.csrf),
                q: q.to_string(),
                searched: !q.is_empty() && error.is_none(),
                entries,
                error,
            };
            render(StatusCode::OK, &page)
        })
        .await
}
