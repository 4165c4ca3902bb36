//! The signed-in home page and the account's security: enrolling an authenticator app (a QR
//! code and the secret to type), the recovery codes shown once, new ones on demand.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;

use super::page::{render, Frame, PageError};
use super::session::{with_cookie, Ctx, Visit};
use super::signin::{sentence, CodeForm, TokenOnly};
use crate::network::signin::{Enrolment, SignIn, SignInError};
use crate::store::accounts::AccountRecord;
use crate::store::portal::SessionRecord;
use crate::store::SessionStage;

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage<'a> {
    f: Frame,
    account: &'a AccountRecord,
}

#[derive(Template)]
#[template(path = "portal/account.html")]
struct AccountPage<'a> {
    f: Frame,
    account: &'a AccountRecord,
    two_factor: bool,
    required: bool,
    codes_left: u32,
}

#[derive(Template)]
#[template(path = "portal/setup.html")]
struct SetupPage {
    f: Frame,
    /// The secret in groups of four, for typing in.
    secret: String,
    /// The QR code (SVG made here from the otpauth:// URI; nothing from outside).
    qr: String,
    required: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/recovery_codes.html")]
struct CodesPage {
    f: Frame,
    codes: Vec<String>,
}

pub(crate) async fn home(visit: Visit) -> Response {
    visit
        .run(|ctx| {
            let (session, account) = ctx.signed_in()?;
            render(StatusCode::OK, &HomePage { f: Frame::of("Home", account, &session.csrf), account })
        })
        .await
}

pub(crate) async fn show(visit: Visit) -> Response {
    visit
        .run(|ctx| {
            let (session, account) = ctx.signed_in()?;
            let state = ctx.store.sign_in_state(account.id).map_err(PageError::internal)?;
            let page = AccountPage {
                f: Frame::of("Your account", account, &session.csrf),
                account,
                two_factor: state.totp_enabled,
                required: state.two_factor_required,
                codes_left: state.recovery_codes_left,
            };
            render(StatusCode::OK, &page)
        })
        .await
}

/// The session that may enrol: one made to enrol (its practice requires it), or one signed in
/// without a second factor yet.
fn enrolling<'c>(ctx: &'c Ctx) -> Result<(&'c SessionRecord, &'c AccountRecord), PageError> {
    if let Some(found) = ctx.at_stage(SessionStage::Enrol) {
        return Ok(found);
    }
    ctx.signed_in()
}

/// The QR code of `uri`, as SVG markup to put in the page.
fn qr_svg(uri: &str) -> Result<String, PageError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(PageError::internal)?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build();
    // The XML declaration has no place in HTML; the image gets a name for screen readers.
    let start = svg.find("<svg").ok_or_else(|| PageError::internal("the QR code has no <svg>"))?;
    Ok(svg[start..].replacen("<svg ", r#"<svg role="img" aria-label="QR code for your authenticator app" "#, 1))
}

fn grouped(secret: &str) -> String {
    secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

fn setup_page(
    ctx: &Ctx,
    session: &SessionRecord,
    account: &AccountRecord,
    enrolment: &Enrolment,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let required = session.stage == SessionStage::Enrol;
    let page = SetupPage {
        f: Frame::of("Set up two-factor sign-in", account, &session.csrf),
        secret: grouped(&enrolment.secret),
        qr: qr_svg(&enrolment.uri)?,
        required,
        error,
    };
    let _ = ctx;
    render(status, &page)
}

pub(crate) async fn enrol_form(visit: Visit) -> Response {
    visit
        .run(|ctx| {
            let (session, account) = enrolling(ctx)?;
            let issuer = &ctx.portal.shared.config.portal.name;
            let signing = SignIn { store: &*ctx.store, now: ctx.now };
            let state = ctx.store.sign_in_state(account.id).map_err(PageError::internal)?;
            if state.totp_enabled {
                return Ok(super::see_other("/account"));
            }
            let enrolment = match signing.pending_enrolment(account, issuer).map_err(PageError::internal)? {
                Some(pending) => pending,
                None => signing.begin_enrolment(account, issuer).map_err(PageError::internal)?,
            };
            setup_page(ctx, session, account, &enrolment, None, StatusCode::OK)
        })
        .await
}

pub(crate) async fn enrol(visit: Visit, Form(form): Form<CodeForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (session, account) = enrolling(ctx)?;
            let signing = SignIn { store: &*ctx.store, now: ctx.now };
            match signing.confirm_enrolment(account.id, &form.code) {
                Ok(codes) => {
                    // A session made only to enrol is signed in now, under a new token.
                    let token = if session.stage == SessionStage::Enrol {
                        let (token, _) = signing
                            .start_session(account.id, SessionStage::SignedIn, Some(session.id))
                            .map_err(PageError::internal)?;
                        Some(token)
                    } else {
                        None
                    };
                    let csrf = match &token {
                        Some(token) => ctx
                            .store
                            .session(&token.digest)
                            .map_err(PageError::internal)?
                            .map(|s| s.csrf)
                            .unwrap_or_default(),
                        None => session.csrf.clone(),
                    };
                    let page = CodesPage { f: Frame::of("Your recovery codes", account, &csrf), codes };
                    Ok(with_cookie(render(StatusCode::OK, &page)?, token.as_ref().map(|t| t.text.as_str())))
                }
                Err(SignInError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => {
                    let issuer = &ctx.portal.shared.config.portal.name;
                    let Some(enrolment) = signing.pending_enrolment(account, issuer).map_err(PageError::internal)?
                    else {
                        return Ok(super::see_other("/account"));
                    };
                    setup_page(ctx, session, account, &enrolment, Some(sentence(&e)), StatusCode::UNAUTHORIZED)
                }
            }
        })
        .await
}

pub(crate) async fn recovery_codes(visit: Visit, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(form.csrf())?;
            let (session, account) = ctx.signed_in()?;
            let state = ctx.store.sign_in_state(account.id).map_err(PageError::internal)?;
            if !state.totp_enabled {
                return Err(PageError::Forbidden(
                    "Recovery codes come with two-factor sign-in: set it up first.".into(),
                ));
            }
            let codes = SignIn { store: &*ctx.store, now: ctx.now }
                .new_recovery_codes(account.id)
                .map_err(PageError::internal)?;
            render(StatusCode::OK, &CodesPage { f: Frame::of("Your recovery codes", account, &session.csrf), codes })
        })
        .await
}
