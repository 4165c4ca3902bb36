//! Secure messages of a practice's member accounts: to accounts of connected parties (into their
//! mailboxes on this node, sealed at rest), and, sent as one of the practice's Direct addresses,
//! to Direct addresses by the Direct path (sealed, delivered, tracked by MDNs).

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::call::Caller;
use super::error::{parse_body, ApiError, Body};
use super::paging::Paging;
use super::send::{self, Outgoing, Sending};
use crate::network::messages::{self, FileRequest, MessageError, SecureRequest};

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> ApiError {
        match e {
            MessageError::Invalid(errors) => ApiError::fields(&errors),
            MessageError::Store(e) => e.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    #[serde(flatten)]
    secure: SecureRequest,
    /// Direct addresses: the message goes to them by the Direct path, sent as `as_practice`.
    #[serde(default)]
    to_addresses: Vec<String>,
}

/// POST /v1/accounts/{id}/messages
pub(crate) async fn send(caller: Caller, Path(id): Path<i64>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: NewMessage = parse_body(&body)?;
            let account = call.member(id)?;
            if request.secure.to.is_empty() && request.to_addresses.is_empty() {
                return Err(ApiError::field("to", "accounts (to) or Direct addresses (to_addresses)"));
            }
            let direct = if request.to_addresses.is_empty() {
                None
            } else {
                let Some(from) = request.secure.as_practice.clone() else {
                    return Err(ApiError::field(
                        "as_practice",
                        "to write to Direct addresses, send as one of the practice's addresses",
                    ));
                };
                let outgoing = Outgoing {
                    from,
                    to: request.to_addresses.clone(),
                    subject: request.secure.subject.clone(),
                    body: request.secure.body.clone(),
                    attachments: request.secure.attachments.clone(),
                    referral: None,
                    xdm: false,
                };
                Some(outgoing)
            };
            // Accounts first: a refusal there queues nothing by the Direct path.
            let secure = if request.secure.to.is_empty() {
                None
            } else {
                Some(messages::send(&*call.store, account.id, &request.secure, call.now)?)
            };
            let queued = match direct {
                Some(outgoing) => Some(send::queue(&Sending::of(call), &call.practice()?, outgoing)?),
                None => None,
            };
            Ok((StatusCode::CREATED, json!({ "message": secure, "direct": queued })))
        })
        .await
}

/// GET /v1/accounts/{id}/messages?box=inbox|sent&limit=
pub(crate) async fn list(
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    caller
        .run(move |call| {
            let account = call.member(id)?;
            let paging = Paging::of(&query)?;
            let items = match query.get("box").map(String::as_str) {
                None | Some("" | "inbox") => call.store.secure_inbox(account.id, paging.reach())?,
                Some("sent") => call.store.secure_sent(account.id, paging.reach())?,
                Some(_) => return Err(ApiError::field("box", "inbox or sent")),
            };
            Ok((StatusCode::OK, paging.answer("messages", items)))
        })
        .await
}

/// GET /v1/accounts/{id}/messages/{message}: the message (marked read for a recipient).
pub(crate) async fn show(caller: Caller, Path((id, message)): Path<(i64, i64)>) -> Response {
    caller
        .run(move |call| {
            let account = call.member(id)?;
            Ok((StatusCode::OK, call.store.secure_message(account.id, message, call.now)?))
        })
        .await
}

/// GET /v1/accounts/{id}/messages/{message}/attachments/{attachment}: its content.
pub(crate) async fn attachment(caller: Caller, Path((id, message, attachment)): Path<(i64, i64, i64)>) -> Response {
    caller
        .run_raw(move |call| {
            let account = call.member(id)?;
            let (info, content) = call.store.secure_attachment(account.id, message, attachment)?;
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(content.as_bytes()).map_err(ApiError::internal)?;
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            let kind = HeaderValue::from_str(&info.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            headers.insert(header::CONTENT_TYPE, kind);
            // Only characters that cannot end the quoted name; the rest become _.
            let safe: String = info
                .filename
                .chars()
                .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' })
                .collect();
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            Ok(response)
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    #[serde(default)]
    body: String,
    #[serde(default)]
    attachments: Vec<FileRequest>,
}

/// POST /v1/accounts/{id}/messages/{message}/reply
pub(crate) async fn reply(caller: Caller, Path((id, message)): Path<(i64, i64)>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: Reply = parse_body(&body)?;
            let account = call.member(id)?;
            let sent =
                messages::reply(&*call.store, account.id, message, &request.body, &request.attachments, call.now)?;
            Ok((StatusCode::CREATED, json!({ "message": sent })))
        })
        .await
}
