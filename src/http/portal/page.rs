//! What every page has (its title, who is signed in, the form token for signing out) and the
//! pages of failures: a refused form, a page that is not there, one that is not yours.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::store::accounts::AccountRecord;
use crate::store::AccountRole;

/// The frame around a page's content (`templates/portal/base.html`).
pub(crate) struct Frame {
    pub title: String,
    /// The signed-in person's name, for the header.
    pub user: Option<String>,
    pub practice: Option<String>,
    /// A practice's member (not a patient): Refer & Share is theirs.
    pub member: bool,
    /// The practice's admin: its settings are theirs.
    pub admin: bool,
    /// The form token of every form on the page (signing out among them).
    pub csrf: String,
}

impl Frame {
    /// A page for someone not signed in.
    pub(crate) fn visitor(title: &str, csrf: &str) -> Frame {
        Frame { title: title.into(), user: None, practice: None, member: false, admin: false, csrf: csrf.into() }
    }

    /// A page for `account`.
    pub(crate) fn of(title: &str, account: &AccountRecord, csrf: &str) -> Frame {
        Frame {
            title: title.into(),
            user: Some(account.name.clone()),
            practice: account.practice.clone(),
            member: account.practice_id.is_some() && account.role != AccountRole::Patient,
            admin: account.role == AccountRole::Admin,
            csrf: csrf.into(),
        }
    }
}

/// A page, rendered (askama escapes every value it puts in).
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Result<Response, PageError> {
    let html = page.render().map_err(PageError::internal)?;
    Ok((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], Html(html)).into_response())
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage<'a> {
    f: Frame,
    message: &'a str,
}

#[derive(Debug)]
pub(crate) enum PageError {
    /// A form without this session's token: forged, or from a page too old.
    Csrf,
    NotFound,
    Forbidden(String),
    /// Somewhere else first (sign in, the next step of signing in).
    Redirect(&'static str),
    Internal(String),
}

impl PageError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> PageError {
        PageError::Internal(e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match &self {
            PageError::Redirect(to) => return super::see_other(to),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "It was not sent from a page of this site, or the page was open too long. Go back, reload the \
                 page and try again."
                    .to_string(),
            ),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing here, or it is not yours to see.".to_string(),
            ),
            PageError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why.clone()),
            PageError::Internal(why) => {
                tracing::error!("portal: {why}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side and it has been logged. Please try again in a moment."
                        .to_string(),
                )
            }
        };
        let page = ErrorPage { f: Frame::visitor(heading, ""), message: &message };
        match render(status, &page) {
            Ok(response) => response,
            Err(_) => (status, message).into_response(),
        }
    }
}
