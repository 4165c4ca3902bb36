//! Webhooks through the API: a token registers HTTPS callbacks for its practice's events, lists
//! and removes them, and reads each one's delivery log. The secret that signs the deliveries is
//! shown once, when the webhook is made.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::call::Caller;
use super::error::{parse_body, ApiError, Body};
use super::paging::Paging;
use crate::store::webhooks::EVENTS;

/// A token has at most this many webhooks.
const MAX_PER_TOKEN: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    events: Vec<String>,
}

/// An `https://host[:port]/path` URL of at most 2000 characters, with no user part and nothing
/// but printable ASCII; the events known, each once.
fn check(request: &NewWebhook) -> Result<(String, Vec<String>), ApiError> {
    let url = request.url.trim();
    let bad_url = |why: &str| ApiError::field("url", format!("{why} (an https:// URL)"));
    let Some(rest) = url.strip_prefix("https://") else { return Err(bad_url("only HTTPS callbacks are called")) };
    if url.len() > 2000 || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_url("at most 2000 printable characters"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad_url("a host and no user part"));
    }
    let mut events = Vec::new();
    for event in &request.events {
        if !EVENTS.contains(&event.as_str()) {
            return Err(ApiError::field("events", format!("{event:?} is not one of {}", EVENTS.join(", "))));
        }
        if !events.contains(event) {
            events.push(event.clone());
        }
    }
    if events.is_empty() {
        return Err(ApiError::field("events", format!("one or more of {}", EVENTS.join(", "))));
    }
    Ok((url.to_string(), events))
}

/// POST /v1/webhooks: 201 with the secret, shown only now.
pub(crate) async fn create(caller: Caller, Body(body): Body) -> Response {
    caller
        .run_once(&body.clone(), move |call| {
            let request: NewWebhook = parse_body(&body)?;
            let (url, events) = check(&request)?;
            let practice = call.practice()?;
            if call.store.webhooks(call.token.id)?.len() >= MAX_PER_TOKEN {
                return Err(ApiError::conflict(format!("a token has at most {MAX_PER_TOKEN} webhooks")));
            }
            let mut secret = [0u8; 32];
            openssl::rand::rand_bytes(&mut secret).map_err(ApiError::internal)?;
            let secret = hex::encode(secret);
            let id = call.store.add_webhook(practice.id, call.token.id, &url, &events, &secret)?;
            Ok((
                StatusCode::CREATED,
                json!({ "id": id, "url": url, "events": events, "secret": secret,
                        "signature": "Hisp-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" under the secret>" }),
            ))
        })
        .await
}

/// GET /v1/webhooks
pub(crate) async fn list(caller: Caller) -> Response {
    caller
        .run(move |call| {
            call.practice()?;
            Ok((StatusCode::OK, json!({ "webhooks": call.store.webhooks(call.token.id)? })))
        })
        .await
}

fn id_of(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::field("id", "a webhook's number"))
}

/// DELETE /v1/webhooks/{id}
pub(crate) async fn remove(caller: Caller, Path(id): Path<String>) -> Response {
    caller
        .run(move |call| {
            let id = id_of(&id)?;
            call.store.remove_webhook(call.token.id, id)?;
            Ok((StatusCode::OK, json!({ "id": id, "removed": true })))
        })
        .await
}

/// GET /v1/webhooks/{id}/deliveries?limit=N&cursor=C: the newest first.
pub(crate) async fn deliveries(
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    caller
        .run(move |call| {
            let id = id_of(&id)?;
            let paging = Paging::of(&query)?;
            let list = call.store.webhook_deliveries(call.token.id, id, paging.reach())?;
            Ok((StatusCode::OK, paging.answer("deliveries", list)))
        })
        .await
}
