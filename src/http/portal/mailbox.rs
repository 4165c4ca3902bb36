//! Secure messages in the portal: the inbox (unread in bold, a search), sent items, reading a
//! message (who read it, for its sender), its attachments downloaded, writing one (recipients
//! from those the account may write to, files by picker or dropped on the page, sent as the
//! practice) and replying. Every view and download is in the audit log.

use askama::Template;
use axum::extract::{Multipart, Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;

use super::form::Part;
use super::page::{render, Frame, PageError};
use super::see_other;
use super::session::{Ctx, Visit};
use super::signin::sentence;
use crate::network::messages::{self, FileRequest, MessageError, SecureRequest};
use crate::store::accounts::AccountRecord;
use crate::store::secure::{MailboxItem, Party, SecureMessage};
use crate::store::{AccountRole, StoreError};

/// Messages a mailbox page lists, at most (a search looks through as many).
const LISTED: usize = 500;
/// Files one message carries, and their bytes together.
pub(crate) const MAX_FILES: usize = 20;
pub(crate) const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;

/// A time as pages show it.
pub(crate) fn when(unix: i64) -> String {
    let iso = crate::clock::iso8601(unix);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

/// A size as pages show it.
fn size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn party_name(p: &Party) -> String {
    match &p.practice {
        Some(practice) => format!("{} ({practice})", p.name),
        None => p.name.clone(),
    }
}

struct Line {
    href: String,
    /// Sent by Direct: the delivery in a word (sent, delivered, failed...).
    direct: Option<&'static str>,
    at: i64,
    who: String,
    subject: String,
    attachments: i64,
    when: String,
    unread: bool,
}

#[derive(Template)]
#[template(path = "portal/mailbox.html")]
struct MailboxPage {
    f: Frame,
    sent: bool,
    lines: Vec<Line>,
    q: String,
    unread: usize,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Whether every word of `query` is in the line's subject or sender (any case).
fn matches(item: &MailboxItem, query: &str) -> bool {
    let text =
        format!("{} {} {}", item.subject, item.from.name, item.from.practice.as_deref().unwrap_or("")).to_lowercase();
    query.split_whitespace().all(|w| text.contains(&w.to_lowercase()))
}

fn mailbox(ctx: &Ctx, sent: bool, q: &str) -> Result<Response, PageError> {
    let (session, account) = ctx.signed_in()?;
    let items =
        if sent { ctx.store.secure_sent(account.id, LISTED) } else { ctx.store.secure_inbox(account.id, LISTED) }
            .map_err(PageError::internal)?;
    let unread = if sent { 0 } else { items.iter().filter(|i| i.read_at.is_none()).count() };
    let mut lines: Vec<Line> = items
        .iter()
        .filter(|i| matches(i, q))
        .map(|i| Line {
            href: format!("/messages/{}", i.id),
            direct: None,
            at: i.created_at,
            who: if sent { format!("To {}", i.to.join(", ")) } else { party_name(&i.from) },
            subject: i.subject.clone(),
            attachments: i.attachments,
            when: when(i.created_at),
            unread: !sent && i.read_at.is_none(),
        })
        .collect();
    if sent && account.practice.is_some() {
        for m in super::direct::sent_by(ctx, account, LISTED)? {
            let to: Vec<&str> = m.recipients.iter().map(|r| r.recipient.as_str()).collect();
            let words = format!("{} {}", m.subject, to.join(" ")).to_lowercase();
            if !q.split_whitespace().all(|w| words.contains(&w.to_lowercase())) {
                continue;
            }
            lines.push(Line {
                href: format!("/messages/direct/{}", crate::http::messages::bare(&m.message_id)),
                direct: Some(super::direct::summary(&m)),
                at: m.submitted_at,
                who: format!("To {}", to.join(", ")),
                subject: m.subject.clone(),
                attachments: 0,
                when: when(m.submitted_at),
                unread: false,
            });
        }
        lines.sort_by_key(|l| std::cmp::Reverse(l.at));
    }
    let title = if sent { "Sent messages" } else { "Inbox" };
    let page =
        MailboxPage { f: Frame::of(title, account, &session.csrf), sent, lines, q: q.trim().to_string(), unread };
    render(StatusCode::OK, &page)
}

pub(crate) async fn inbox(visit: Visit, Query(query): Query<SearchQuery>) -> Response {
    visit.run(move |ctx| mailbox(ctx, false, &query.q)).await
}

pub(crate) async fn sent(visit: Visit, Query(query): Query<SearchQuery>) -> Response {
    visit.run(move |ctx| mailbox(ctx, true, &query.q)).await
}

struct Recipient {
    name: String,
    status: String,
}

struct FileLine {
    href: String,
    /// Where to share it by link, when the reader may.
    share: Option<String>,
    name: String,
    kind: String,
    size: String,
}

#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage<'a> {
    f: Frame,
    m: &'a SecureMessage,
    from: String,
    sent_by_me: bool,
    when: String,
    recipients: Vec<Recipient>,
    files: Vec<FileLine>,
}

/// A message not found among the account's is the same page as one that does not exist.
fn not_yours(e: StoreError) -> PageError {
    match e {
        StoreError::NotFound(_) => PageError::NotFound,
        other => PageError::internal(other),
    }
}

pub(crate) async fn show(visit: Visit, Path(id): Path<i64>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let m = ctx.store.secure_message(account.id, id, ctx.now).map_err(not_yours)?;
            ctx.store
                .record("secure.view", &format!("account #{}", account.id), &format!("message #{id}"))
                .map_err(PageError::internal)?;
            let sent_by_me = m.from.account == account.id;
            let may_share = match account.practice.as_deref().filter(|_| account.role != AccountRole::Patient) {
                Some(name) => {
                    let practice = ctx.store.practice(name).map_err(PageError::internal)?;
                    crate::network::share_contacts::may_share(&practice, account).is_ok()
                }
                None => false,
            };
            let recipients =
                m.to.iter()
                    .map(|p| Recipient {
                        name: party_name(p),
                        status: match (sent_by_me, p.read_at) {
                            (true, Some(at)) => format!("delivered, read {}", when(at)),
                            (true, None) => "delivered, not read yet".into(),
                            (false, _) => String::new(),
                        },
                    })
                    .collect();
            let files = m
                .attachments
                .iter()
                .map(|a| FileLine {
                    href: format!("/messages/{}/attachments/{}", m.id, a.id),
                    share: may_share.then(|| format!("/shares/new?message={}&attachment={}", m.id, a.id)),
                    name: a.filename.clone(),
                    kind: a.content_type.clone(),
                    size: size(a.size),
                })
                .collect();
            let page = MessagePage {
                f: Frame::of(&m.subject, account, &session.csrf),
                from: party_name(&m.from),
                when: when(m.created_at),
                sent_by_me,
                recipients,
                files,
                m: &m,
            };
            render(StatusCode::OK, &page)
        })
        .await
}

/// Media types a browser may be told a download is; anything else goes as octet-stream.
const SHOWN_TYPES: &[&str] =
    &["application/pdf", "application/xml", "text/xml", "text/plain", "image/png", "image/jpeg", "image/gif"];

pub(crate) async fn attachment(visit: Visit, Path((id, file)): Path<(i64, i64)>) -> Response {
    visit
        .run(move |ctx| {
            let (_, account) = ctx.signed_in()?;
            let (info, content) = ctx.store.secure_attachment(account.id, id, file).map_err(not_yours)?;
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(content.as_bytes()).map_err(PageError::internal)?;
            ctx.store
                .record("secure.download", &format!("account #{}", account.id), &format!("message #{id} file #{file}"))
                .map_err(PageError::internal)?;
            Ok(download(&info.filename, &info.content_type, bytes))
        })
        .await
}

/// A file as a download: its type only if a browser may be told it, its name (as text), a
/// policy of its own.
pub(crate) fn download(filename: &str, content_type: &str, bytes: Vec<u8>) -> Response {
    let kind = if SHOWN_TYPES.contains(&content_type) { content_type } else { "application/octet-stream" };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_DISPOSITION, disposition(filename));
    // A file is never a page of this site, whatever it holds: it is downloaded, and were it
    // opened, it could run and load nothing. (No `sandbox`: Chromium refuses to download from a
    // sandboxed answer.)
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    response
}

/// RFC 5987's attr-char: what a filename* value keeps as it is.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment` with the name as plain ASCII and, exactly, in RFC 6266's filename*.
pub(crate) fn disposition(name: &str) -> HeaderValue {
    let plain: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' && c != ';' { c } else { '_' }).collect();
    let encoded = percent_encoding::utf8_percent_encode(name, ATTR_CHAR);
    HeaderValue::from_str(&format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

struct Choice {
    id: i64,
    name: String,
    practice: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "portal/compose.html")]
struct ComposePage {
    f: Frame,
    choices: Vec<Choice>,
    addresses: Vec<String>,
    as_practice: String,
    to_addresses: String,
    subject: String,
    body: String,
    /// Replying: to this message (its recipients are fixed).
    reply: Option<(i64, String)>,
    error: Option<String>,
    max_files: usize,
    max_mb: usize,
}

/// What a compose form sent (multipart: the files too).
#[derive(Default)]
pub(crate) struct Composed {
    csrf: String,
    to: Vec<i64>,
    subject: String,
    body: String,
    as_practice: String,
    to_addresses: String,
    files: Vec<FileRequest>,
    /// Why the form could not be read whole (too many files, not multipart).
    problem: Option<String>,
}

/// Reads a compose form; its files base64-encoded as the message keeps them.
pub(crate) async fn read_form(form: Multipart) -> Composed {
    let (parts, problem) = super::form::parts(form, "files").await;
    let mut out = Composed { problem, ..Composed::default() };
    for part in parts {
        match part {
            Part::File { filename, content_type, bytes } => {
                if out.files.len() == MAX_FILES {
                    out.problem = Some(format!("at most {MAX_FILES} files in one message"));
                    break;
                }
                let content_base64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                out.files.push(FileRequest {
                    filename: messages::clean_filename(&filename),
                    content_type,
                    content_base64,
                });
            }
            Part::Text { name, value } => match name.as_str() {
                "csrf" => out.csrf = value,
                "subject" => out.subject = value,
                "body" => out.body = value,
                "as_practice" => out.as_practice = value,
                "to_addresses" => out.to_addresses = value,
                "to" => {
                    if let Ok(id) = value.trim().parse() {
                        out.to.push(id);
                    }
                }
                _ => {}
            },
        }
    }
    out
}

/// The practice's addresses the account may send as.
fn practice_addresses(ctx: &Ctx, account: &AccountRecord) -> Result<Vec<String>, PageError> {
    let Some(name) = &account.practice else { return Ok(Vec::new()) };
    let practice = ctx.store.practice(name).map_err(PageError::internal)?;
    Ok(practice.addresses(&*ctx.store).map_err(PageError::internal)?.iter().map(ToString::to_string).collect())
}

struct Draft<'a> {
    to: &'a [i64],
    to_addresses: &'a str,
    subject: &'a str,
    body: &'a str,
    as_practice: &'a str,
    reply: Option<(i64, String)>,
}

fn compose_page(ctx: &Ctx, draft: Draft, error: Option<String>, status: StatusCode) -> Result<Response, PageError> {
    let (session, account) = ctx.signed_in()?;
    let choices = ctx
        .store
        .writable(account.id, 1000)
        .map_err(PageError::internal)?
        .into_iter()
        .map(|p| Choice {
            checked: draft.to.contains(&p.account),
            id: p.account,
            name: p.name,
            practice: p.practice.unwrap_or_else(|| "Patient".into()),
        })
        .collect();
    let title = if draft.reply.is_some() { "Reply" } else { "New message" };
    let page = ComposePage {
        f: Frame::of(title, account, &session.csrf),
        choices,
        addresses: practice_addresses(ctx, account)?,
        as_practice: draft.as_practice.to_string(),
        to_addresses: draft.to_addresses.to_string(),
        subject: draft.subject.to_string(),
        body: draft.body.to_string(),
        reply: draft.reply,
        error,
        max_files: MAX_FILES,
        max_mb: MAX_UPLOAD_BYTES >> 20,
    };
    render(status, &page)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ComposeQuery {
    #[serde(default)]
    to: Option<i64>,
    /// A Direct address to write to (from the address book, or answering a Direct message).
    #[serde(default)]
    address: String,
    #[serde(default)]
    subject: String,
}

pub(crate) async fn compose(visit: Visit, Query(query): Query<ComposeQuery>) -> Response {
    visit
        .run(move |ctx| {
            let to: Vec<i64> = query.to.into_iter().collect();
            let draft = Draft {
                to: &to,
                to_addresses: &query.address,
                subject: &query.subject,
                body: "",
                as_practice: "",
                reply: None,
            };
            compose_page(ctx, draft, None, StatusCode::OK)
        })
        .await
}

fn refused(e: MessageError) -> Result<String, PageError> {
    match e {
        MessageError::Invalid(errors) => Ok(errors.iter().map(|e| sentence(&e.message)).collect::<Vec<_>>().join(" ")),
        MessageError::Store(StoreError::NotFound(what)) => Ok(sentence(&format!("{what} was not found"))),
        MessageError::Store(e) => Err(PageError::internal(e)),
    }
}

pub(crate) async fn send(visit: Visit, form: Multipart) -> Response {
    let form = read_form(form).await;
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, account) = ctx.signed_in()?;
            let draft = Draft {
                to: &form.to,
                to_addresses: &form.to_addresses,
                subject: &form.subject,
                body: &form.body,
                as_practice: &form.as_practice,
                reply: None,
            };
            if let Some(problem) = &form.problem {
                return compose_page(ctx, draft, Some(sentence(problem)), StatusCode::BAD_REQUEST);
            }
            let direct_to = super::direct::addresses(&form.to_addresses);
            if form.to.is_empty() && direct_to.is_empty() {
                let error = "Choose at least one recipient, or type a Direct address.".to_string();
                return compose_page(ctx, draft, Some(error), StatusCode::BAD_REQUEST);
            }
            let as_practice = form.as_practice.trim();
            // Direct first: every address is verified before anything is sent to anyone.
            let direct = if direct_to.is_empty() {
                None
            } else {
                let outgoing = super::direct::DirectDraft {
                    from: as_practice,
                    to: &direct_to,
                    subject: &form.subject,
                    body: &form.body,
                    files: &form.files,
                };
                match super::direct::send_direct(ctx, account, &outgoing)? {
                    Ok(message_id) => Some(message_id),
                    Err(why) => return compose_page(ctx, draft, Some(why), StatusCode::BAD_REQUEST),
                }
            };
            let secure = if form.to.is_empty() {
                None
            } else {
                let request = SecureRequest {
                    to: form.to.clone(),
                    subject: form.subject.clone(),
                    body: form.body.clone(),
                    attachments: form.files.clone(),
                    as_practice: Some(as_practice.to_string()).filter(|a| !a.is_empty()),
                };
                match messages::send(&*ctx.store, account.id, &request, ctx.now) {
                    Ok(id) => Some(id),
                    Err(e) => return compose_page(ctx, draft, Some(refused(e)?), StatusCode::BAD_REQUEST),
                }
            };
            match (secure, direct) {
                (Some(id), _) => Ok(see_other(&format!("/messages/{id}?sent=1"))),
                (None, Some(message_id)) => {
                    Ok(see_other(&format!("/messages/direct/{}?sent=1", crate::http::messages::bare(&message_id))))
                }
                (None, None) => Err(PageError::internal("nothing was sent")),
            }
        })
        .await
}

/// The message being answered, and who the answer goes to.
fn answering(ctx: &Ctx, account: &AccountRecord, id: i64) -> Result<(i64, String), PageError> {
    let m = ctx.store.secure_message(account.id, id, ctx.now).map_err(not_yours)?;
    let to = if m.from.account == account.id {
        m.to.iter().map(party_name).collect::<Vec<_>>().join(", ")
    } else {
        party_name(&m.from)
    };
    Ok((m.id, format!("{} — to {to}", m.subject)))
}

pub(crate) async fn reply_form(visit: Visit, Path(id): Path<i64>) -> Response {
    visit
        .run(move |ctx| {
            let (_, account) = ctx.signed_in()?;
            let reply = Some(answering(ctx, account, id)?);
            let draft = Draft { to: &[], to_addresses: "", subject: "", body: "", as_practice: "", reply };
            compose_page(ctx, draft, None, StatusCode::OK)
        })
        .await
}

pub(crate) async fn reply(visit: Visit, Path(id): Path<i64>, form: Multipart) -> Response {
    let form = read_form(form).await;
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, account) = ctx.signed_in()?;
            let reply = Some(answering(ctx, account, id)?);
            let draft = Draft { to: &[], to_addresses: "", subject: "", body: &form.body, as_practice: "", reply };
            if let Some(problem) = &form.problem {
                return compose_page(ctx, draft, Some(sentence(problem)), StatusCode::BAD_REQUEST);
            }
            match messages::reply(&*ctx.store, account.id, id, &form.body, &form.files, ctx.now) {
                Ok(new) => Ok(see_other(&format!("/messages/{new}?sent=1"))),
                Err(e) => compose_page(ctx, draft, Some(refused(e)?), StatusCode::BAD_REQUEST),
            }
        })
        .await
}
