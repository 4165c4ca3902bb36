//! Setting a password from a one-time link (a new account's first, or a forgotten one), and
//! asking for such a link. The answer to "forgot my password" is the same whether or not an
//! account has the address, and the e-mail goes out after the answer.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::page::{render, Frame, PageError};
use super::see_other;
use super::session::{with_cookie, Ctx, Visit};
use super::signin::sentence;
use crate::network::password_mail::{send_later, LinkMail, LinkPurpose};
use crate::network::signin::{PasswordLinkError, SignIn};

#[derive(Template)]
#[template(path = "portal/password.html")]
struct PasswordPage<'a> {
    f: Frame,
    token: &'a str,
    email: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/forgot.html")]
struct ForgotPage<'a> {
    f: Frame,
    email: &'a str,
    sent: bool,
    hours: u64,
}

#[derive(Template)]
#[template(path = "portal/link_failed.html")]
struct LinkFailedPage {
    f: Frame,
    why: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LinkQuery {
    #[serde(default)]
    token: String,
}

fn link_failed(ctx: &Ctx, e: &PasswordLinkError) -> Result<Response, PageError> {
    let (csrf, cookie) = ctx.form_token()?;
    let page = LinkFailedPage { f: Frame::visitor("This link does not work", &csrf), why: sentence(e) };
    Ok(with_cookie(render(StatusCode::GONE, &page)?, cookie.as_deref()))
}

fn password_page(
    ctx: &Ctx,
    token: &str,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (csrf, cookie) = ctx.form_token()?;
    let page = PasswordPage { f: Frame::visitor("Set your password", &csrf), token, email, error };
    Ok(with_cookie(render(status, &page)?, cookie.as_deref()))
}

pub(crate) async fn form(visit: Visit, Query(query): Query<LinkQuery>) -> Response {
    visit
        .run(move |ctx| {
            let signing = SignIn { store: &*ctx.store, now: ctx.now };
            match signing.link_account(&query.token) {
                Ok(account) => password_page(ctx, &query.token, &account.email, None, StatusCode::OK),
                Err(PasswordLinkError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => link_failed(ctx, &e),
            }
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub(crate) async fn set(visit: Visit, Form(form): Form<PasswordForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let signing = SignIn { store: &*ctx.store, now: ctx.now };
            let account = match signing.link_account(&form.token) {
                Ok(account) => account,
                Err(PasswordLinkError::Store(e)) => return Err(PageError::internal(e)),
                Err(e) => return link_failed(ctx, &e),
            };
            if form.password != form.confirm {
                let error = Some("The two passwords are not the same. Type the new password twice.".to_string());
                return password_page(ctx, &form.token, &account.email, error, StatusCode::BAD_REQUEST);
            }
            match signing.set_password(&form.token, &form.password) {
                Ok(_) => Ok(see_other("/sign-in?then=password-set")),
                Err(PasswordLinkError::Store(e)) => Err(PageError::internal(e)),
                Err(e @ PasswordLinkError::Password(_)) => {
                    password_page(ctx, &form.token, &account.email, Some(sentence(&e)), StatusCode::BAD_REQUEST)
                }
                Err(e) => link_failed(ctx, &e),
            }
        })
        .await
}

fn forgot_page(ctx: &Ctx, email: &str, sent: bool) -> Result<Response, PageError> {
    let (csrf, cookie) = ctx.form_token()?;
    let hours = ctx.portal.shared.config.portal.link_valid_secs / 3600;
    let page = ForgotPage { f: Frame::visitor("Forgot your password?", &csrf), email, sent, hours };
    Ok(with_cookie(render(StatusCode::OK, &page)?, cookie.as_deref()))
}

pub(crate) async fn forgot_form(visit: Visit) -> Response {
    visit.run(|ctx| forgot_page(ctx, "", false)).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

pub(crate) async fn forgot(visit: Visit, Form(form): Form<ForgotForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let email = form.email.trim().to_lowercase();
            let key = format!("link:{email}");
            if ctx.portal.link_requests.wait(&key).is_none() {
                ctx.portal.link_requests.failed(&key);
                send_reset_link(ctx, &email)?;
            }
            forgot_page(ctx, &email, true)
        })
        .await
}

/// Sends a reset link to the account with `email`, if there is one, after this answer.
fn send_reset_link(ctx: &Ctx, email: &str) -> Result<(), PageError> {
    let Some(account) = ctx.store.account_by_email(email).map_err(PageError::internal)? else { return Ok(()) };
    let Some(mailer) = ctx.portal.mailer.clone() else {
        tracing::warn!(account = account.id, "portal: a password link was asked for, but [notify.email] is not set");
        return Ok(());
    };
    let signing = SignIn { store: &*ctx.store, now: ctx.now };
    let mail = LinkMail::issue(&signing, &ctx.portal.shared.config, &account, LinkPurpose::Reset)
        .map_err(PageError::internal)?;
    send_later(mailer, mail, &account, ctx.now);
    Ok(())
}
