//! A document shared by link, the contact's side (`/s/{token}`): the check (a texted code, a date
//! of birth, or a button: the first use is a POST, so a mail scanner that fetches the link does
//! not use it up), then the document: a C-CDA as a page written by `ccda_view`, a PDF in the
//! browser's viewer, anything else as a download. The link's life is `network::share_link`'s.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::mailbox::download;
use super::page::{render, Frame, PageError};
use super::see_other;
use super::session::{share_cookie_for, well_formed, Ctx, Visit};
use super::signin::{sentence, TokenOnly};
use crate::ccda_view::{self, CcdaView};
use crate::network::share_link::{self, LinkError, LinkState, Visitor};
use crate::network::share_mail::{ShareMail, ShareMailKind};
use crate::store::sharing::ShareRecord;
use crate::store::{ShareCheck, ShareEvent};

/// The policy of the page that shows a PDF: the portal's, and a frame of this origin (the PDF).
const PDF_PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn visitor<'c>(ctx: &'c Ctx) -> Visitor<'c> {
    Visitor {
        store: &*ctx.store,
        now: ctx.now,
        client: share_link::client(&ctx.user_agent, ctx.peer.0.ip()),
        browser: ctx.share_cookie.as_deref(),
    }
}

/// Where `token` stands; a token that is not one of ours is not looked up.
fn state(ctx: &Ctx, token: &str) -> Result<LinkState, PageError> {
    if !well_formed(token) {
        return Ok(LinkState::Unknown);
    }
    visitor(ctx).state(token).map_err(PageError::internal)
}

#[derive(Template)]
#[template(path = "portal/shared_gate.html")]
struct GatePage {
    f: Frame,
    token: String,
    practice: String,
    /// "message", "expired", "sms", "date-of-birth" or "press".
    stage: &'static str,
    message: String,
    code_sent: bool,
    renewing: bool,
    problems: Vec<String>,
    notice: Option<String>,
}

fn gate(
    ctx: &Ctx,
    token: &str,
    link: &LinkState,
    problems: Vec<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let (csrf, cookie) = ctx.form_token()?;
    let practice = match link {
        LinkState::Unknown => String::new(),
        LinkState::Revoked(s)
        | LinkState::Locked(s)
        | LinkState::OtherBrowser(s)
        | LinkState::Expired(s)
        | LinkState::Check { share: s, .. }
        | LinkState::Open(s) => s.practice.clone(),
    };
    let (status, title, stage, message) = match link {
        LinkState::Unknown => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "message",
            "It may have been replaced by a newer link: use the latest e-mail you were sent, or ask whoever shared \
             the document with you."
                .to_string(),
        ),
        LinkState::Revoked(s) => (
            StatusCode::GONE,
            "This link was withdrawn",
            "message",
            format!("{} withdrew this link. Ask them if you still need the document.", s.practice),
        ),
        LinkState::Locked(s) => (
            StatusCode::FORBIDDEN,
            "This link is locked",
            "message",
            format!("Too many wrong answers: ask {} to send you a new link.", s.practice),
        ),
        LinkState::OtherBrowser(s) => (
            StatusCode::FORBIDDEN,
            "This link was opened in another browser",
            "message",
            format!(
                "Once opened, a link works only in the browser it was first opened in. Use that browser, or ask {} \
                 to send you a new link.",
                s.practice
            ),
        ),
        LinkState::Expired(s) => (
            StatusCode::GONE,
            "This link has expired",
            "expired",
            format!("It was not opened within 24 hours. {} can send you a new one.", s.practice),
        ),
        LinkState::Check { share, .. } => {
            (StatusCode::OK, "A document shared with you", check_stage(share), String::new())
        }
        LinkState::Open(_) => return Ok(see_other(&format!("/s/{token}"))),
    };
    let status = if problems.is_empty() { status } else { StatusCode::BAD_REQUEST };
    let (code_sent, renewing) = match link {
        LinkState::Check { share, renewing } => (share.code_sent_at.is_some(), *renewing),
        _ => (false, false),
    };
    let page = GatePage {
        f: Frame::visitor(title, &csrf),
        token: token.to_string(),
        practice,
        stage,
        message,
        code_sent,
        renewing,
        problems,
        notice,
    };
    Ok(super::session::with_cookie(render(status, &page)?, cookie.as_deref()))
}

fn check_stage(share: &ShareRecord) -> &'static str {
    match share.check {
        ShareCheck::Sms => "sms",
        ShareCheck::DateOfBirth => "date-of-birth",
        _ => "press",
    }
}

#[derive(Template)]
#[template(path = "portal/shared_view.html")]
struct ViewPage {
    f: Frame,
    token: String,
    practice: String,
    filename: String,
    /// The C-CDA as a page, or why it cannot be one.
    ccda: Option<Result<CcdaView, String>>,
    pdf: bool,
}

/// GET /s/{token}
pub(crate) async fn open(visit: Visit, Path(token): Path<String>) -> Response {
    visit
        .run(move |ctx| {
            let link = state(ctx, &token)?;
            let v = visitor(ctx);
            let share = match &link {
                LinkState::Open(share) => share,
                LinkState::Check { share, .. } => {
                    v.record(share, ShareEvent::Opened).map_err(PageError::internal)?;
                    return gate(ctx, &token, &link, Vec::new(), None);
                }
                LinkState::Unknown => return gate(ctx, &token, &link, Vec::new(), None),
                LinkState::Revoked(share)
                | LinkState::Locked(share)
                | LinkState::OtherBrowser(share)
                | LinkState::Expired(share) => {
                    v.record(share, ShareEvent::Refused).map_err(PageError::internal)?;
                    return gate(ctx, &token, &link, Vec::new(), None);
                }
            };
            let first = v.record(share, ShareEvent::Viewed).map_err(PageError::internal)?;
            if first {
                tell_sender(ctx, share, ShareMailKind::Viewed);
            }
            let content = content(ctx, share)?;
            let ccda = ccda_view::is_xml(&share.content_type, &share.filename)
                .then(|| ccda_view::render(&content).map_err(|e| sentence(&e.to_string())));
            let pdf = share.content_type == "application/pdf";
            let (csrf, cookie) = ctx.form_token()?;
            let page = ViewPage {
                f: Frame::visitor(&share.filename, &csrf),
                token: token.clone(),
                practice: share.practice.clone(),
                filename: share.filename.clone(),
                ccda,
                pdf,
            };
            let mut response = render(StatusCode::OK, &page)?;
            if pdf {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PDF_PAGE_POLICY));
            }
            Ok(super::session::with_cookie(response, cookie.as_deref()))
        })
        .await
}

fn content(ctx: &Ctx, share: &ShareRecord) -> Result<Vec<u8>, PageError> {
    let sealed = ctx.store.share_content(share.id).map_err(PageError::internal)?;
    ctx.portal.shared.kek.open_document(&sealed).map_err(PageError::internal)
}

/// E-mails the member who shared (first view, a new link asked for), after the page answered.
fn tell_sender(ctx: &Ctx, share: &ShareRecord, kind: ShareMailKind) {
    let Some(mailer) = ctx.portal.mailer.clone() else { return };
    let config = &ctx.portal.shared.config;
    let mail = ShareMail {
        kind,
        practice: share.practice.clone(),
        portal: config.portal.name.clone(),
        link: format!("{}/shares/{}", config.portal_url(), share.id),
        expires_at: 0,
    };
    let (to, id, now) = (share.shared_by_email.clone(), share.id, ctx.now);
    std::thread::spawn(move || {
        if let Err(e) = mail.send(&mailer, &to, now) {
            tracing::warn!(share = id, "portal: the sender of a shared document could not be told: {e}");
        }
    });
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FileQuery {
    inline: Option<String>,
}

/// GET /s/{token}/file: the original, to a browser the link is bound to; `?inline=1` shows a PDF.
pub(crate) async fn file(visit: Visit, Path(token): Path<String>, Query(q): Query<FileQuery>) -> Response {
    visit
        .run(move |ctx| {
            let LinkState::Open(share) = state(ctx, &token)? else {
                return Err(PageError::Forbidden("Open the link you were sent first.".into()));
            };
            let bytes = content(ctx, &share)?;
            let inline = q.inline.is_some() && share.content_type == "application/pdf";
            let event = if inline { ShareEvent::Viewed } else { ShareEvent::Downloaded };
            visitor(ctx).record(&share, event).map_err(PageError::internal)?;
            let mut response = download(&share.filename, &share.content_type, bytes);
            if inline {
                // Shown in the view page's frame: the browser's own PDF viewer, no script of ours.
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; frame-ancestors 'self'"),
                );
                headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
            }
            Ok(response)
        })
        .await
}

/// POST /s/{token}/code: texts a code.
pub(crate) async fn send_code(visit: Visit, Path(token): Path<String>, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(form.csrf())?;
            let link = state(ctx, &token)?;
            let LinkState::Check { share, .. } = &link else { return gate(ctx, &token, &link, Vec::new(), None) };
            match visitor(ctx).send_code(share, ctx.portal.texter.as_deref()) {
                Ok(()) => {
                    let link = state(ctx, &token)?;
                    let notice = "A code is texted to your mobile. It works for 10 minutes.".to_string();
                    gate(ctx, &token, &link, Vec::new(), Some(notice))
                }
                Err(LinkError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => gate(ctx, &token, &link, vec![sentence(&e.to_string())], None),
            }
        })
        .await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CheckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    answer: String,
}

/// POST /s/{token}/check: the code, the date of birth, or the button.
pub(crate) async fn check(visit: Visit, Path(token): Path<String>, Form(form): Form<CheckForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let link = state(ctx, &token)?;
            let LinkState::Check { share, renewing } = &link else {
                return gate(ctx, &token, &link, Vec::new(), None);
            };
            match visitor(ctx).check(share, &form.answer, *renewing) {
                Ok(cookie) => {
                    let mut response = see_other(&format!("/s/{token}"));
                    response.headers_mut().append(header::SET_COOKIE, share_cookie_for(&cookie));
                    Ok(response)
                }
                Err(LinkError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => {
                    let link = state(ctx, &token)?;
                    gate(ctx, &token, &link, vec![sentence(&e.to_string())], None)
                }
            }
        })
        .await
}

/// POST /s/{token}/renew: an expired link's contact asks the practice for a new one.
pub(crate) async fn renew(visit: Visit, Path(token): Path<String>, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(form.csrf())?;
            let link = state(ctx, &token)?;
            let LinkState::Expired(share) = &link else { return gate(ctx, &token, &link, Vec::new(), None) };
            if visitor(ctx).ask_renewal(share).map_err(PageError::internal)? {
                tell_sender(ctx, share, ShareMailKind::RenewalAsked);
            }
            let notice = format!("{} is asked to send you a new link: it will come by e-mail.", share.practice);
            gate(ctx, &token, &link, Vec::new(), Some(notice))
        })
        .await
}
