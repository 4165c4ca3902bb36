//! The practice's documents and each patient's: copies of what was sent and received.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::call::Caller;
use super::error::ApiError;
use crate::onboarding::referral::check_token;

/// GET /v1/documents
pub(crate) async fn list(caller: Caller) -> Response {
    caller
        .run(|call| {
            let practice = call.practice()?;
            Ok((StatusCode::OK, json!({ "documents": call.store.documents(practice.id, None, None)? })))
        })
        .await
}

/// GET /v1/patients/{patient}/documents
pub(crate) async fn of_patient(caller: Caller, Path(patient): Path<String>) -> Response {
    caller
        .run(move |call| {
            check_token(&patient, 64).map_err(|e| ApiError::field("patient", e))?;
            let practice = call.practice()?;
            let documents = call.store.documents(practice.id, Some(&patient), None)?;
            Ok((StatusCode::OK, json!({ "patient_id": patient, "documents": documents })))
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
