//! Documents shared by link (issue 24), through the API: a token acts for its practice and for
//! the member it names (`shared_by`), whose role the practice must let share. List, share (a
//! practice document or a file), show with the trail, revoke, send a fresh link.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::call::{Call, Caller};
use super::error::{parse_body, ApiError, Body};
use super::paging::Paging;
use crate::network::password_mail::mailer;
use crate::network::shares::{self, Made, ShareError, Source};

impl From<ShareError> for ApiError {
    fn from(e: ShareError) -> ApiError {
        match e {
            ShareError::Forbidden(why) => ApiError::forbidden("may-not-share", why),
            ShareError::Invalid { field, message } => ApiError::field(field, message),
            ShareError::Store(e) => e.into(),
            e @ ShareError::Kek(_) => ApiError::internal(e),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    filename: String,
    content_type: String,
    content_base64: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareRequest {
    contact_id: i64,
    /// The member sharing (an account id of the practice).
    shared_by: i64,
    /// One of the practice's documents (`GET /v1/documents`)...
    document_id: Option<i64>,
    /// ...or a file.
    file: Option<FileIn>,
}

/// E-mails the link; whether it went.
fn email(call: &Call, made: &Made) -> Result<bool, ApiError> {
    let config = &call.api.shared.config;
    let resolver = Box::new(crate::dns::DnsClient::new(call.api.dns.clone()));
    let Some(mailer) = mailer(config, resolver).map_err(ApiError::internal)? else { return Ok(false) };
    match shares::email_link(&mailer, config, made, call.now) {
        Ok(()) => Ok(true),
        Err(e) => {
            tracing::warn!(share = made.share.id, "api: the link of a shared document could not be e-mailed: {e}");
            Ok(false)
        }
    }
}

/// GET /v1/shares
pub(crate) async fn list(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            let list: Vec<_> = call.store.shares(practice.id)?.iter().map(|s| shares::report(s, call.now)).collect();
            Ok((StatusCode::OK, paging.answer("shares", list)))
        })
        .await
}

/// POST /v1/shares: shares and e-mails the link.
pub(crate) async fn create(caller: Caller, Body(body): Body) -> Response {
    caller
        .run_once(&body.clone(), move |call| {
            let request: ShareRequest = parse_body(&body)?;
            let practice = call.practice()?;
            let member = call.member(request.shared_by).map_err(|e| ApiError::field("shared_by", e.message))?;
            if call.api.shared.config.notify.email.is_none() {
                return Err(ApiError::conflict(
                    "this node sends no e-mail ([notify.email] is not set), so no link can reach a contact",
                ));
            }
            let content;
            let source = match (request.document_id, &request.file) {
                (Some(id), None) => Source::Document(id),
                (None, Some(f)) => {
                    content = base64::engine::general_purpose::STANDARD
                        .decode(f.content_base64.split_whitespace().collect::<String>())
                        .map_err(|e| ApiError::field("file.content_base64", format!("not base64: {e}")))?;
                    Source::Upload { filename: &f.filename, content_type: &f.content_type, content: &content }
                }
                _ => return Err(ApiError::field("document_id", "give document_id or file, one of them")),
            };
            let kek = &call.api.shared.kek;
            let made = shares::create(&*call.store, kek, &practice, &member, request.contact_id, source, call.now)?;
            let emailed = email(call, &made)?;
            Ok((
                StatusCode::CREATED,
                json!({ "share": shares::report(&made.share, call.now), "link_emailed": emailed }),
            ))
        })
        .await
}

/// GET /v1/shares/{id}: the share and its trail.
pub(crate) async fn show(caller: Caller, Path(id): Path<i64>) -> Response {
    caller
        .run(move |call| {
            let practice = call.practice()?;
            let share = call.store.share(practice.id, id)?;
            let trail = call.store.share_events(id)?;
            Ok((StatusCode::OK, json!({ "share": shares::report(&share, call.now), "trail": trail })))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ByRequest {
    /// The member acting (an account id of the practice).
    by: i64,
}

/// POST /v1/shares/{id}/revoke
pub(crate) async fn revoke(caller: Caller, Path(id): Path<i64>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: ByRequest = parse_body(&body)?;
            let practice = call.practice()?;
            let member = call.member(request.by).map_err(|e| ApiError::field("by", e.message))?;
            let share = shares::revoke(&*call.store, &practice, &member, id, call.now)?;
            Ok((StatusCode::OK, json!({ "share": shares::report(&share, call.now) })))
        })
        .await
}

/// POST /v1/shares/{id}/resend: a fresh link (the earlier one stops working), e-mailed.
pub(crate) async fn resend(caller: Caller, Path(id): Path<i64>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: ByRequest = parse_body(&body)?;
            let practice = call.practice()?;
            let member = call.member(request.by).map_err(|e| ApiError::field("by", e.message))?;
            let made = shares::resend(&*call.store, &practice, &member, id, call.now)?;
            let emailed = email(call, &made)?;
            Ok((StatusCode::OK, json!({ "share": shares::report(&made.share, call.now), "link_emailed": emailed })))
        })
        .await
}
