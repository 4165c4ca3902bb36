//! Signing in and out: the e-mail and password, then the second factor when the account has
//! one. Each step replaces the session (and its cookie); a failure counts against the account
//! (it locks after five in a row) and against the client's address.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::page::{render, Frame, PageError};
use super::see_other;
use super::session::{cookie_gone, with_cookie, Ctx, Visit};
use crate::network::signin::{SignIn, SignInError};
use crate::store::SessionStage;

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
struct SignInPage<'a> {
    f: Frame,
    email: &'a str,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "portal/two_factor.html")]
struct SecondFactorPage {
    f: Frame,
    error: Option<String>,
}

/// What the sign-in page says on arrival.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Arrival {
    /// Why the visitor is here: signed-out, ended (idle too long), password-set.
    #[serde(default)]
    then: String,
}

fn arrival_notice(then: &str) -> Option<&'static str> {
    match then {
        "signed-out" => Some("You have signed out."),
        "ended" => Some("Your session ended: you were away too long, or signed in too long ago. Please sign in again."),
        "password-set" => Some("Your password is set. Sign in with it now."),
        _ => None,
    }
}

pub(crate) async fn form(visit: Visit, Query(arrival): Query<Arrival>) -> Response {
    visit
        .run(move |ctx| {
            if ctx.signed_in().is_ok() {
                return Ok(see_other("/"));
            }
            let notice = arrival_notice(&arrival.then).or(ctx.ended.then_some(arrival_notice("ended")).flatten());
            sign_in_page(ctx, "", None, notice, StatusCode::OK)
        })
        .await
}

fn sign_in_page(
    ctx: &Ctx,
    email: &str,
    error: Option<String>,
    notice: Option<&'static str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (csrf, cookie) = ctx.form_token()?;
    let page = SignInPage { f: Frame::visitor("Sign in", &csrf), email, error, notice };
    Ok(with_cookie(render(status, &page)?, cookie.as_deref()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Where a session at `stage` goes next.
fn next_page(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::SecondFactor => "/two-factor",
        SessionStage::Enrol => "/two-factor/setup",
        SessionStage::SignedIn => "/",
    }
}

pub(crate) async fn submit(visit: Visit, Form(form): Form<SignInForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let client = ctx.client();
            if let Some(wait) = ctx.portal.failures.wait(&client) {
                let minutes = wait.as_secs().div_ceil(60);
                let error = format!("Too many failed sign-ins from your network. Try again in {minutes} minute(s).");
                return sign_in_page(ctx, &form.email, Some(error), None, StatusCode::TOO_MANY_REQUESTS);
            }
            let signing = SignIn { store: &*ctx.store, now: ctx.now };
            match signing.password(&form.email, &form.password) {
                Ok((account, stage)) => {
                    ctx.portal.failures.succeeded(&client);
                    let previous = ctx.session.as_ref().map(|(s, _)| s.id);
                    let (token, _) = signing.start_session(account.id, stage, previous).map_err(PageError::internal)?;
                    tracing::info!(account = account.id, stage = %stage, "portal: password accepted");
                    Ok(with_cookie(see_other(next_page(stage)), Some(&token.text)))
                }
                Err(SignInError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => {
                    ctx.portal.failures.failed(&client);
                    tracing::warn!(peer = %client, "portal: sign-in refused: {e}");
                    sign_in_page(ctx, &form.email, Some(sentence(&e)), None, StatusCode::UNAUTHORIZED)
                }
            }
        })
        .await
}

/// An error as the page says it: a sentence.
pub(crate) fn sentence(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    let rest = chars.as_str();
    if rest.ends_with('.') {
        format!("{first}{rest}")
    } else {
        format!("{first}{rest}.")
    }
}

pub(crate) async fn second_factor_form(visit: Visit) -> Response {
    visit
        .run(|ctx| {
            let Some((session, account)) = ctx.at_stage(SessionStage::SecondFactor) else {
                return Err(ctx.signed_in().err().unwrap_or(PageError::Redirect("/")));
            };
            let page = SecondFactorPage { f: Frame::of("Two-factor sign-in", account, &session.csrf), error: None };
            render(StatusCode::OK, &page)
        })
        .await
}

/// A form with one code: a second factor, or one to confirm an authenticator app.
#[derive(Debug, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub code: String,
}

pub(crate) async fn second_factor(visit: Visit, Form(form): Form<CodeForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let Some((session, account)) = ctx.at_stage(SessionStage::SecondFactor) else {
                return Err(ctx.signed_in().err().unwrap_or(PageError::Redirect("/")));
            };
            let client = ctx.client();
            let signing = SignIn { store: &*ctx.store, now: ctx.now };
            match signing.second_factor(account.id, &form.code) {
                Ok(()) => {
                    ctx.portal.failures.succeeded(&client);
                    let (token, _) = signing
                        .start_session(account.id, SessionStage::SignedIn, Some(session.id))
                        .map_err(PageError::internal)?;
                    Ok(with_cookie(see_other("/"), Some(&token.text)))
                }
                Err(SignInError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => {
                    ctx.portal.failures.failed(&client);
                    if matches!(e, SignInError::Locked(_)) {
                        ctx.store.end_session(session.id).map_err(PageError::internal)?;
                    }
                    let page = SecondFactorPage {
                        f: Frame::of("Two-factor sign-in", account, &session.csrf),
                        error: Some(sentence(&e)),
                    };
                    render(StatusCode::UNAUTHORIZED, &page)
                }
            }
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenOnly {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn sign_out(visit: Visit, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            if let Some((session, account)) = &ctx.session {
                ctx.store.end_session(session.id).map_err(PageError::internal)?;
                ctx.store
                    .record("account.sign-out", &format!("account #{}", account.id), "")
                    .map_err(PageError::internal)?;
            }
            let mut response = see_other("/sign-in?then=signed-out");
            response.headers_mut().append(axum::http::header::SET_COOKIE, cookie_gone());
            Ok(response)
        })
        .await
}

impl TokenOnly {
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }
}
