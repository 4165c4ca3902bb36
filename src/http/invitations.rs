//! A practice's invitations (Refer & Share): send, list, show, remind, cancel, correct a
//! patient's date of birth; and what it is connected to. The running node sends the notices.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::call::{Call, Caller};
use super::error::{parse_body, ApiError, Body};
use super::paging::Paging;
use crate::address::DirectAddress;
use crate::network::invitations::{InvitationError, Invitations, Status};
use crate::network::invitee::InviteeRequest;

impl From<InvitationError> for ApiError {
    fn from(e: InvitationError) -> ApiError {
        match e {
            InvitationError::Invalid(errors) => ApiError::fields(&errors),
            InvitationError::State(why) => ApiError::new(StatusCode::CONFLICT, "invitation-state", why),
            InvitationError::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

fn invitations<'a>(call: &'a Call) -> Invitations<'a> {
    Invitations { store: &*call.store, config: &call.api.shared.config.invitations, now: call.now }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvitation {
    #[serde(flatten)]
    invitee: InviteeRequest,
    /// The practice user sending it (one of its Direct addresses); by default the token.
    from: Option<String>,
}

/// POST /v1/invitations
pub(crate) async fn send(caller: Caller, Body(body): Body) -> Response {
    caller
        .run_once(&body.clone(), move |call| {
            let request: NewInvitation = parse_body(&body)?;
            let practice = call.practice()?;
            let inviter = match request.from.as_deref() {
                Some(from) => {
                    let not_ours = || ApiError::field("from", format!("{from:?} is not an address of this practice"));
                    let address = DirectAddress::parse(from.trim()).map_err(|_| not_ours())?;
                    if !practice.owns(&*call.store, &address)? {
                        return Err(not_ours());
                    }
                    address.to_string()
                }
                None => call.actor(),
            };
            let sent = invitations(call).send(&practice.name, &inviter, &request.invitee)?;
            Ok((StatusCode::CREATED, sent))
        })
        .await
}

/// GET /v1/invitations?status=&limit=
pub(crate) async fn list(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let status = match query.get("status").map(String::as_str).filter(|s| !s.is_empty()) {
                Some(s) => Some(Status::parse(s).ok_or_else(|| {
                    ApiError::field(
                        "status",
                        "sent, reminded, accepted, expired, cancelled, locked or notification-failed",
                    )
                })?),
                None => None,
            };
            let practice = call.practice()?;
            let paging = Paging::of(&query)?;
            let list = invitations(call).list(&practice.name, status, paging.reach())?;
            Ok((StatusCode::OK, paging.answer("invitations", list)))
        })
        .await
}

/// GET /v1/invitations/{id}: the invitation and its notices.
pub(crate) async fn show(caller: Caller, Path(id): Path<i64>) -> Response {
    caller.run(move |call| Ok((StatusCode::OK, invitations(call).show(&call.practice()?.name, id)?))).await
}

/// POST /v1/invitations/{id}/remind
pub(crate) async fn remind(caller: Caller, Path(id): Path<i64>) -> Response {
    caller.run(move |call| Ok((StatusCode::OK, invitations(call).remind(&call.practice()?.name, id)?))).await
}

/// POST /v1/invitations/{id}/cancel
pub(crate) async fn cancel(caller: Caller, Path(id): Path<i64>) -> Response {
    caller.run(move |call| Ok((StatusCode::OK, invitations(call).cancel(&call.practice()?.name, id)?))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DateOfBirth {
    date_of_birth: String,
}

/// PUT /v1/invitations/{id}/date-of-birth: the invitation is replaced by a new one.
pub(crate) async fn date_of_birth(caller: Caller, Path(id): Path<i64>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: DateOfBirth = parse_body(&body)?;
            let practice = call.practice()?;
            let sent = invitations(call).change_date_of_birth(&practice.name, id, &request.date_of_birth)?;
            Ok((StatusCode::CREATED, sent))
        })
        .await
}

/// GET /v1/connections: the practices and patients this practice is connected to.
pub(crate) async fn connections(caller: Caller, Query(query): Query<HashMap<String, String>>) -> Response {
    caller
        .run(move |call| {
            let paging = Paging::of(&query)?;
            let practice = call.practice()?;
            Ok((StatusCode::OK, paging.answer("connections", call.store.connections(practice.id)?)))
        })
        .await
}
