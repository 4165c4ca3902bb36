//! Sharing documents by link in the portal (issue 24), the sender's side: the practice's shares
//! and where each stands, sharing a document (one the practice holds, a secure message's
//! attachment, or an upload) with one of its contacts, a share's trail, revoking a link and
//! sending a fresh one.

use askama::Template;
use axum::extract::{Multipart, Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::form::Part;
use super::mailbox::{when, MAX_UPLOAD_BYTES};
use super::page::{render, Frame, PageError};
use super::see_other;
use super::session::{Ctx, Visit};
use super::signin::{sentence, TokenOnly};
use crate::network::share_contacts::may_share;
use crate::network::shares::{self, Made, ShareError, Source};
use crate::store::accounts::AccountRecord;
use crate::store::portal::SessionRecord;
use crate::store::sharing::ShareRecord;
use crate::store::{AccountRole, PracticeRecord, ShareEvent, StoreError};

/// Documents the new share's page offers, newest first.
const DOCUMENTS_OFFERED: usize = 200;

/// A signed-in practice member and their practice.
fn member<'c>(ctx: &'c Ctx) -> Result<(&'c SessionRecord, &'c AccountRecord, PracticeRecord), PageError> {
    let (session, account) = ctx.signed_in()?;
    let Some(name) = account.practice.as_deref().filter(|_| account.role != AccountRole::Patient) else {
        return Err(PageError::Forbidden("A practice's documents are shared by its members.".into()));
    };
    let practice = ctx.store.practice(name).map_err(PageError::internal)?;
    Ok((session, account, practice))
}

/// The words of a trail's event.
fn event_words(event: ShareEvent) -> &'static str {
    match event {
        ShareEvent::Sent => "Link e-mailed",
        ShareEvent::Opened => "Link opened",
        ShareEvent::CodeSent => "Code texted",
        ShareEvent::CheckFailed => "Wrong answer to the check",
        ShareEvent::Locked => "Locked after too many wrong answers",
        ShareEvent::Passed => "Check passed: the link now works in this browser only",
        ShareEvent::Viewed => "Viewed",
        ShareEvent::Downloaded => "Downloaded",
        ShareEvent::Refused => "Refused",
        ShareEvent::Revoked => "Revoked",
        ShareEvent::Resent => "Fresh link e-mailed (the earlier one no longer works)",
        ShareEvent::RenewalAsked => "A new link was asked for",
        ShareEvent::Renewed => "Renewed after the check",
    }
}

struct ShareLine {
    id: i64,
    filename: String,
    contact: String,
    by: String,
    sent: String,
    state: &'static str,
}

impl ShareLine {
    fn of(s: &ShareRecord, now: i64) -> ShareLine {
        ShareLine {
            id: s.id,
            filename: s.filename.clone(),
            contact: s.contact_name.clone(),
            by: s.shared_by_name.clone(),
            sent: when(s.link_sent_at),
            state: shares::state(s, now),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/shares.html")]
struct ListPage {
    f: Frame,
    may: Result<(), String>,
    contacts: usize,
    shares: Vec<ShareLine>,
}

pub(crate) async fn list(visit: Visit) -> Response {
    visit
        .run(|ctx| {
            let (session, account, practice) = member(ctx)?;
            let shares = ctx.store.shares(practice.id).map_err(PageError::internal)?;
            let page = ListPage {
                f: Frame::of("Shared documents", account, &session.csrf),
                may: may_share(&practice, account).map_err(|why| sentence(&why)),
                contacts: ctx.store.share_contacts(practice.id).map_err(PageError::internal)?.len(),
                shares: shares.iter().map(|s| ShareLine::of(s, ctx.now)).collect(),
            };
            render(StatusCode::OK, &page)
        })
        .await
}

struct Pick {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "portal/share_new.html")]
struct NewPage {
    f: Frame,
    contacts: Vec<Pick>,
    documents: Vec<Pick>,
    /// A secure message's attachment being shared: its hidden fields and its name.
    attachment: Option<(i64, i64, String)>,
    upload_chosen: bool,
    problems: Vec<String>,
    max_mb: usize,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewQuery {
    document: Option<i64>,
    message: Option<i64>,
    attachment: Option<i64>,
}

/// What the form asked for.
#[derive(Default)]
struct Asked {
    csrf: String,
    contact: Option<i64>,
    /// "document", "upload" or "attachment".
    source: String,
    document: Option<i64>,
    message: Option<i64>,
    attachment: Option<i64>,
    file: Option<(String, String, Vec<u8>)>,
    problem: Option<String>,
}

fn new_page(ctx: &Ctx, asked: &Asked, problems: Vec<String>, status: StatusCode) -> Result<Response, PageError> {
    let (session, account, practice) = member(ctx)?;
    if let Err(why) = may_share(&practice, account) {
        return Err(PageError::Forbidden(sentence(&why)));
    }
    let contacts = ctx.store.share_contacts(practice.id).map_err(PageError::internal)?;
    let contacts = contacts
        .iter()
        .map(|c| Pick {
            value: c.id.to_string(),
            label: match &c.organization {
                Some(o) => format!("{} ({o}) · {}", c.name, c.email),
                None => format!("{} · {}", c.name, c.email),
            },
            selected: asked.contact == Some(c.id),
        })
        .collect();
    let documents = ctx.store.documents(practice.id, None, None).map_err(PageError::internal)?;
    let documents = documents
        .iter()
        .take(DOCUMENTS_OFFERED)
        .map(|d| Pick {
            value: d.id.to_string(),
            label: format!(
                "{} · {} {}{}{}",
                d.filename,
                d.way,
                when(d.created_at),
                if d.referral_id.is_some() { " · referral" } else { "" },
                d.patient_id.as_deref().map(|p| format!(" · patient {p}")).unwrap_or_default()
            ),
            selected: asked.document == Some(d.id),
        })
        .collect();
    let attachment = match (asked.message, asked.attachment) {
        (Some(m), Some(a)) => {
            let (info, _) = ctx.store.secure_attachment(account.id, m, a).map_err(|_| PageError::NotFound)?;
            Some((m, a, info.filename))
        }
        _ => None,
    };
    let page = NewPage {
        f: Frame::of("Share a document", account, &session.csrf),
        contacts,
        documents,
        attachment,
        upload_chosen: asked.source == "upload",
        problems,
        max_mb: MAX_UPLOAD_BYTES >> 20,
    };
    render(status, &page)
}

pub(crate) async fn new(visit: Visit, Query(q): Query<NewQuery>) -> Response {
    visit
        .run(move |ctx| {
            let asked =
                Asked { document: q.document, message: q.message, attachment: q.attachment, ..Asked::default() };
            new_page(ctx, &asked, Vec::new(), StatusCode::OK)
        })
        .await
}

async fn read_form(form: Multipart) -> Asked {
    let (parts, problem) = super::form::parts(form, "file").await;
    let mut out = Asked { problem, ..Asked::default() };
    let number = |t: &str| t.trim().parse::<i64>().ok();
    for part in parts {
        match part {
            Part::File { filename, content_type, bytes } => out.file = Some((filename, content_type, bytes)),
            Part::Text { name, value } => match name.as_str() {
                "csrf" => out.csrf = value,
                "contact" => out.contact = number(&value),
                "source" => out.source = value,
                "document" => out.document = number(&value),
                "message" => out.message = number(&value),
                "attachment" => out.attachment = number(&value),
                _ => {}
            },
        }
    }
    out
}

/// POST /shares: shares the document and e-mails the link.
pub(crate) async fn create(visit: Visit, form: Multipart) -> Response {
    let asked = read_form(form).await;
    visit
        .run(move |ctx| {
            ctx.check_form(&asked.csrf)?;
            let (_, account, practice) = member(ctx)?;
            let mut problems: Vec<String> = asked.problem.iter().map(sentence).collect();
            if ctx.portal.mailer.is_none() {
                problems.push("This node sends no e-mail, so no link can reach a contact: ask its operator.".into());
            }
            let Some(contact) = asked.contact else {
                problems.push("Contact: choose who to share with.".into());
                return new_page(ctx, &asked, problems, StatusCode::BAD_REQUEST);
            };
            let source = match (asked.source.as_str(), &asked.file, asked.document, asked.message, asked.attachment) {
                ("upload", Some((name, kind, bytes)), ..) => {
                    Source::Upload { filename: name, content_type: kind, content: bytes }
                }
                ("document", _, Some(id), ..) => Source::Document(id),
                ("attachment", _, _, Some(message), Some(attachment)) => Source::Attachment { message, attachment },
                ("upload", ..) => {
                    problems.push("File: choose a file to share.".into());
                    return new_page(ctx, &asked, problems, StatusCode::BAD_REQUEST);
                }
                _ => {
                    problems.push("Document: choose one of the practice's documents or a file.".into());
                    return new_page(ctx, &asked, problems, StatusCode::BAD_REQUEST);
                }
            };
            if !problems.is_empty() {
                return new_page(ctx, &asked, problems, StatusCode::BAD_REQUEST);
            }
            let kek = &ctx.portal.shared.kek;
            match shares::create(&*ctx.store, kek, &practice, account, contact, source, ctx.now) {
                Ok(made) => {
                    let sent = send_link(ctx, &made);
                    Ok(see_other(&format!("/shares/{}?sent={}", made.share.id, if sent { "yes" } else { "no" })))
                }
                Err(ShareError::Forbidden(why)) => Err(PageError::Forbidden(sentence(&why))),
                Err(e @ ShareError::Invalid { .. }) => {
                    new_page(ctx, &asked, vec![sentence(&e.to_string())], StatusCode::BAD_REQUEST)
                }
                Err(e) => Err(PageError::internal(e)),
            }
        })
        .await
}

/// E-mails a share's link to its contact; whether it went (a failure is logged).
fn send_link(ctx: &Ctx, made: &Made) -> bool {
    let Some(mailer) = &ctx.portal.mailer else { return false };
    match shares::email_link(mailer, &ctx.portal.shared.config, made, ctx.now) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(share = made.share.id, "portal: the link of a shared document could not be e-mailed: {e}");
            false
        }
    }
}

struct TrailLine {
    at: String,
    what: &'static str,
    client: String,
}

#[derive(Template)]
#[template(path = "portal/share.html")]
struct SharePage {
    f: Frame,
    s: ShareRecord,
    state: &'static str,
    sent: String,
    check: &'static str,
    notice: Option<String>,
    warning: Option<String>,
    trail: Vec<TrailLine>,
    revocable: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ShowQuery {
    sent: Option<String>,
    done: Option<String>,
}

fn share_page(ctx: &Ctx, id: i64, q: &ShowQuery) -> Result<Response, PageError> {
    let (session, account, practice) = member(ctx)?;
    let share = ctx.store.share(practice.id, id).map_err(|_| PageError::NotFound)?;
    let trail = ctx.store.share_events(id).map_err(PageError::internal)?;
    let (notice, warning) = match (q.sent.as_deref(), q.done.as_deref()) {
        (Some("yes"), _) => (Some(format!("The link is e-mailed to {}.", share.contact_name)), None),
        (Some(_), _) => {
            (None, Some("The link could not be e-mailed. Send a fresh link when the mail works again.".to_string()))
        }
        (_, Some("revoked")) => (Some("The link is revoked: it no longer opens the document.".to_string()), None),
        _ => (None, None),
    };
    let page = SharePage {
        f: Frame::of(&share.filename, account, &session.csrf),
        state: shares::state(&share, ctx.now),
        sent: when(share.link_sent_at),
        check: match share.check {
            crate::store::ShareCheck::Sms => "a code texted to their mobile",
            crate::store::ShareCheck::DateOfBirth => "their date of birth",
            _ => "the link alone",
        },
        revocable: share.revoked_at.is_none(),
        notice,
        warning,
        trail: trail
            .iter()
            .map(|e| TrailLine { at: when(e.at), what: event_words(e.event), client: e.client.clone() })
            .collect(),
        s: share,
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn show(visit: Visit, Path(id): Path<i64>, Query(q): Query<ShowQuery>) -> Response {
    visit.run(move |ctx| share_page(ctx, id, &q)).await
}

fn failed(e: ShareError) -> PageError {
    match e {
        ShareError::Forbidden(why) => PageError::Forbidden(sentence(&why)),
        ShareError::Store(StoreError::NotFound(_)) => PageError::NotFound,
        e => PageError::internal(e),
    }
}

pub(crate) async fn revoke(visit: Visit, Path(id): Path<i64>, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(form.csrf())?;
            let (_, account, practice) = member(ctx)?;
            shares::revoke(&*ctx.store, &practice, account, id, ctx.now).map_err(failed)?;
            Ok(see_other(&format!("/shares/{id}?done=revoked")))
        })
        .await
}

pub(crate) async fn resend(visit: Visit, Path(id): Path<i64>, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(form.csrf())?;
            let (_, account, practice) = member(ctx)?;
            let made = shares::resend(&*ctx.store, &practice, account, id, ctx.now).map_err(failed)?;
            let sent = send_link(ctx, &made);
            Ok(see_other(&format!("/shares/{id}?sent={}", if sent { "yes" } else { "no" })))
        })
        .await
}
