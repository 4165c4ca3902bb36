//! The address book through the API: a connected practice's profile, the practice's members
//! and what it lists for connected parties, and each member account's contacts. A token sees
//! its own practice's side only.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::call::Caller;
use super::error::{parse_body, ApiError, Body};
use super::paging::Paging;
use crate::address::DirectAddress;
use crate::store::address_book::{Member, Viewer};

/// GET /v1/connections/{id}: the connected practice's details and listed members.
pub(crate) async fn profile(caller: Caller, Path(id): Path<i64>) -> Response {
    caller
        .run(move |call| {
            let practice = call.practice()?;
            Ok((StatusCode::OK, call.store.profile(Viewer::Practice(practice.id), id)?))
        })
        .await
}

/// GET /v1/members: the practice's accounts (clinicians and staff).
pub(crate) async fn members(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, paging.answer("members", call.store.members(practice.id)?)))
        })
        .await
}

/// GET /v1/listings: what the practice lists for connected practices and patients.
pub(crate) async fn listings(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, paging.answer("listings", call.store.listings(practice.id)?)))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewListing {
    account: Option<i64>,
    address: Option<String>,
    label: Option<String>,
}

/// POST /v1/listings {"account": ID | "address": ADDRESS, "label"}
pub(crate) async fn list_member(caller: Caller, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: NewListing = parse_body(&body)?;
            let label = request.label.as_deref().map(str::trim).filter(|l| !l.is_empty());
            if label.is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control)) {
                return Err(ApiError::field("label", "at most 100 characters, no line breaks"));
            }
            let address = request
                .address
                .as_deref()
                .map(|a| DirectAddress::parse(a.trim()).map_err(|e| ApiError::field("address", e.to_string())))
                .transpose()?;
            let member = match (request.account, &address) {
                (Some(id), None) => Member::Account(id),
                (None, Some(a)) => Member::Address(a),
                _ => return Err(ApiError::field("account", "give an account or an address, not both")),
            };
            let practice = call.practice()?;
            Ok((StatusCode::CREATED, call.store.list_member(practice.id, member, label)?))
        })
        .await
}

/// DELETE /v1/listings/{id}
pub(crate) async fn unlist_member(caller: Caller, Path(id): Path<i64>) -> Response {
    caller
        .run(move |call| {
            let practice = call.practice()?;
            call.store.unlist_member(practice.id, id)?;
            Ok((StatusCode::OK, json!({ "hidden": id })))
        })
        .await
}

/// GET /v1/accounts/{id}/contacts?q=: the account's contacts, those the query finds.
pub(crate) async fn contacts(
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    caller
        .run(move |call| {
            let account = call.member(id)?;
            let q = query.get("q").map(String::as_str).unwrap_or("");
            if q.len() > 200 {
                return Err(ApiError::field("q", "at most 200 characters"));
            }
            let paging = Paging::of(&query)?;
            let found = crate::network::address_book::search(call.store.contacts(account.id)?, q);
            Ok((StatusCode::OK, paging.answer("contacts", found)))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewContact {
    listing: i64,
}

/// POST /v1/accounts/{id}/contacts {"listing": ID}
pub(crate) async fn add_contact(caller: Caller, Path(id): Path<i64>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: NewContact = parse_body(&body)?;
            let account = call.member(id)?;
            Ok((StatusCode::CREATED, call.store.add_contact(account.id, request.listing)?))
        })
        .await
}

/// DELETE /v1/accounts/{id}/contacts/{listing}
pub(crate) async fn remove_contact(caller: Caller, Path((id, listing)): Path<(i64, i64)>) -> Response {
    caller
        .run(move |call| {
            let account = call.member(id)?;
            call.store.remove_contact(account.id, listing)?;
            Ok((StatusCode::OK, json!({ "removed": listing })))
        })
        .await
}
