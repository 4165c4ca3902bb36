//! The practice's documents and each patient's: copies of what was sent and received.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::call::Caller;
use super::error::ApiError;
use super::paging::Paging;
use crate::onboarding::referral::check_token;

/// GET /v1/documents
pub(crate) async fn list(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, paging.answer("documents", call.store.documents(practice.id, None, None)?)))
        })
        .await
}

/// GET /v1/patients/{patient}/documents
pub(crate) async fn of_patient(
    caller: Caller,
    Path(patient): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    caller
        .run(move |call| {
            check_token(&patient, 64).map_err(|e| ApiError::field("patient", e))?;
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            let documents = call.store.documents(practice.id, Some(&patient), None)?;
            let mut answer = paging.answer("documents", documents);
            answer["patient_id"] = json!(patient);
            Ok((StatusCode::OK, answer))
        })
        .await
}

/// GET /v1/documents/{id}: the document itself, with its content type.
pub(crate) async fn content(caller: Caller, Path(id): Path<String>) -> Response {
    caller
        .run_raw(move |call| {
            let id: i64 = id.parse().map_err(|_| ApiError::field("id", "a document's number"))?;
            let practice = call.practice()?;
            let (record, sealed) = call.store.document(practice.id, id)?;
            let content = call.api.shared.kek.open_document(&sealed).map_err(ApiError::internal)?;
            // Who read which PHI: the document by its number (its name is PHI, not for the log).
            call.store.note("document.read", &format!("document #{id}"), &format!("practice #{}", practice.id))?;
            // A received file's name came from a peer: only plain characters go into the header.
            let name: String = record
                .filename
                .chars()
                .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
                .collect();
            let disposition = format!("attachment; filename=\"{name}\"");
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, record.content_type), (header::CONTENT_DISPOSITION, disposition)],
                content,
            )
                .into_response())
        })
        .await
}
