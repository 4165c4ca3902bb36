//! The contacts a practice shares documents with (issue 24), through the API: list, add, show,
//! change, remove. A token sees its own practice's only.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::call::Caller;
use super::error::{parse_body, ApiError, Body};
use super::paging::Paging;
use crate::network::share_contacts::{self, ContactError, ContactRequest};

impl From<ContactError> for ApiError {
    fn from(e: ContactError) -> ApiError {
        match e {
            ContactError::Invalid(errors) => ApiError::fields(&errors),
            ContactError::Store(e) => e.into(),
        }
    }
}

/// GET /v1/share-contacts
pub(crate) async fn list(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, paging.answer("contacts", call.store.share_contacts(practice.id)?)))
        })
        .await
}

/// POST /v1/share-contacts
pub(crate) async fn add(caller: Caller, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: ContactRequest = parse_body(&body)?;
            let practice = call.practice()?;
            Ok((StatusCode::CREATED, share_contacts::add(&*call.store, practice.id, &request, call.now)?))
        })
        .await
}

/// GET /v1/share-contacts/{id}
pub(crate) async fn show(caller: Caller, Path(id): Path<i64>) -> Response {
    caller
        .run(move |call| {
            let practice = call.practice()?;
            Ok((StatusCode::OK, call.store.share_contact(practice.id, id)?))
        })
        .await
}

/// PUT /v1/share-contacts/{id}: every field anew.
pub(crate) async fn update(caller: Caller, Path(id): Path<i64>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: ContactRequest = parse_body(&body)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, share_contacts::update(&*call.store, practice.id, id, &request, call.now)?))
        })
        .await
}

/// DELETE /v1/share-contacts/{id}
pub(crate) async fn remove(caller: Caller, Path(id): Path<i64>) -> Response {
    caller
        .run(move |call| {
            let practice = call.practice()?;
            call.store.remove_share_contact(practice.id, id)?;
            Ok((StatusCode::OK, json!({ "removed": id })))
        })
        .await
}
