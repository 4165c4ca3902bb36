//! The referral history: Transferring referrals sent and Receiving ones that came back, their
//! status, and marking a returned referral as received (closing the loop, a quality measure).

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::call::Caller;
use super::error::ApiError;
use super::messages::bare;
use super::paging::Paging;
use crate::onboarding::referral::DIRECTIONS;
use crate::store::api::{summarize, ReferralFilter, ReferralRecord};

/// A referral as the API shows it, with its status: sent ones by their delivery (queued, sent,
/// delivered, failed), received ones awaiting or received.
fn shown(r: &ReferralRecord) -> Value {
    let status = match (r.way.as_str(), r.received_at) {
        ("sent", _) => summarize(&r.tracking),
        (_, Some(_)) => "received",
        (_, None) => "awaiting-receipt",
    };
    let mut value = serde_json::to_value(r).unwrap_or_default();
    value["status"] = json!(status);
    value["message_id"] = json!(bare(&r.message_id));
    value
}

/// GET /v1/referrals?patient=&direction=&way=&status=
pub(crate) async fn list(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let get = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
            if let Some(d) = get("direction") {
                if !DIRECTIONS.contains(&d) {
                    return Err(ApiError::field("direction", "transferring or receiving"));
                }
            }
            if let Some(w) = get("way") {
                if !["sent", "received"].contains(&w) {
                    return Err(ApiError::field("way", "sent or received"));
                }
            }
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            let filter = ReferralFilter { patient_id: get("patient"), direction: get("direction"), way: get("way") };
            let referrals: Vec<Value> = call
                .store
                .referrals(practice.id, &filter)?
                .iter()
                .map(shown)
                .filter(|r| get("status").is_none_or(|s| r["status"] == s))
                .take(paging.reach())
                .collect();
            Ok((StatusCode::OK, paging.answer("referrals", referrals)))
        })
        .await
}

fn referral_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::field("id", "a referral's number"))
}

/// GET /v1/referrals/{id}
pub(crate) async fn show(caller: Caller, Path(id): Path<String>) -> Response {
    caller
        .run(move |call| {
            let id = referral_id(&id)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, shown(&call.store.referral(practice.id, id)?)))
        })
        .await
}

/// POST /v1/referrals/{id}/received
pub(crate) async fn received(caller: Caller, Path(id): Path<String>) -> Response {
    caller
        .run(move |call| {
            let id = referral_id(&id)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, shown(&call.store.mark_received(practice.id, id, &call.actor())?)))
        })
        .await
}
