//! The practice's mailbox: what its users sent (with each recipient's delivery status, from the
//! notifications tracked) and what they received.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::call::Caller;
use super::error::ApiError;
use super::paging::Paging;

/// The Message-ID as the API names it: without its angle brackets (they do not sit well in URLs).
pub(crate) fn bare(message_id: &str) -> &str {
    message_id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// GET /v1/messages?way=sent|received&limit=N&cursor=C
pub(crate) async fn list(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let way = match query.get("way").map(String::as_str) {
                None | Some("") => None,
                Some(w @ ("sent" | "received")) => Some(w.to_string()),
                Some(_) => return Err(ApiError::field("way", "sent or received")),
            };
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            let mut messages = call.store.mailbox(practice.id, way.as_deref(), None, paging.reach())?;
            for m in &mut messages {
                m.message_id = bare(&m.message_id).to_string();
            }
            Ok((StatusCode::OK, paging.answer("messages", messages)))
        })
        .await
}

/// GET /v1/messages/{id}: one message of the practice, with each recipient's status and
/// timeline (sent) and its documents.
pub(crate) async fn show(caller: Caller, Path(id): Path<String>) -> Response {
    caller
        .run(move |call| {
            let practice = call.practice()?;
            let message_id = format!("<{}>", bare(&id));
            let received_key = bare(&id).to_string();
            // A received message without a Message-ID is known by the SHA-256 of what arrived.
            let mut found = call.store.mailbox(practice.id, None, Some(&message_id), 2)?;
            if found.is_empty() {
                found = call.store.mailbox(practice.id, Some("received"), Some(&received_key), 1)?;
            }
            let Some(mut entry) = found.into_iter().next() else {
                return Err(ApiError::not_found(format!("message {id} (not one of this practice's)")));
            };
            let documents = call.store.documents(practice.id, None, Some(&entry.message_id))?;
            let documents: Vec<_> = documents
                .into_iter()
                .map(|d| {
                    let download = format!("/v1/documents/{}", d.id);
                    let mut value = serde_json::to_value(d).unwrap_or_default();
                    value["download"] = json!(download);
                    value
                })
                .collect();
            let packages = call.store.xdm_packages(practice.id, &entry.message_id)?;
            let mut answer = json!({ "documents": documents, "xdm_packages": packages });
            if entry.way == "sent" {
                let ids = [entry.message_id.clone()];
                let recipients: Vec<_> =
                    tracked(&call.api.shared, &practice, &ids)?.into_iter().flat_map(|m| m.recipients).collect();
                answer["recipients"] = json!(recipients);
            } else {
                // The sender whose signature was verified on arrival (its certificate bound to it).
                answer["verified_sender"] = json!(entry.sender);
                answer["body"] = json!(call.store.received_text(practice.id, &entry.message_id)?);
                let read = format!("message {}", bare(&entry.message_id));
                call.store.note("message.read", &read, &format!("practice #{}", practice.id))?;
                answer["recipients"] = json!([]);
            }
            entry.message_id = bare(&entry.message_id).to_string();
            answer["message"] = json!(entry);
            Ok((StatusCode::OK, answer))
        })
        .await
}

/// The tracking of the messages `message_ids` that `practice` sent: only its own senders', as
/// another practice may have used the same Message-ID.
pub(crate) fn tracked(
    shared: &crate::node::Shared,
    practice: &crate::store::PracticeRecord,
    message_ids: &[String],
) -> Result<Vec<crate::store::queue::tracking::SentMessage>, crate::store::StoreError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let queue = crate::store::queue::open(&shared.db)?;
    queue.attach_fields(shared.kek.clone())?;
    let ours =
        |sender: &str| sender.rsplit_once('@').is_some_and(|(_, domain)| practice.domains.iter().any(|d| d == domain));
    let mut out = Vec::new();
    for id in message_ids {
        out.extend(queue.track(id)?.into_iter().filter(|m| ours(&m.sender)));
    }
    Ok(out)
}
