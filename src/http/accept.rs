//! Accepting an invitation: the three endpoints an invitee calls with the code and no token
//! (the portal's registration form calls them too). Wrong and unknown codes are counted per
//! client address, and failed sign-ins per code: past the allowance each further try waits,
//! the wait doubling.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::call::Visitor;
use super::error::{parse_body, ApiError, Body};
use super::{Api, Peer};
use crate::network::accept::{AcceptError, Accepting, ExistingAcceptance, Registration};

impl From<AcceptError> for ApiError {
    fn from(e: AcceptError) -> ApiError {
        match e {
            AcceptError::BadCode(_) => ApiError::field("code", e.to_string()),
            AcceptError::UnknownCode => ApiError::new(StatusCode::NOT_FOUND, "unknown-code", e.to_string()),
            AcceptError::Closed(why) => ApiError::new(StatusCode::GONE, "invitation-closed", why),
            AcceptError::WrongDateOfBirth(_) => ApiError {
                field: Some("date_of_birth".into()),
                ..ApiError::new(StatusCode::FORBIDDEN, "date-of-birth", e.to_string())
            },
            AcceptError::Invalid(errors) => ApiError::fields(&errors),
            AcceptError::BadLogin => ApiError::unauthorized(e.to_string()),
            AcceptError::Conflict(why) => ApiError::conflict(why),
            AcceptError::Password(p) => ApiError::field("password", p.to_string()),
            AcceptError::Store(s) => s.into(),
        }
    }
}

/// The keys a try counts against: the client's address, and the code typed.
fn keys(peer: Peer, code: &str) -> [String; 2] {
    let code: String = code.chars().filter(char::is_ascii_alphanumeric).take(32).collect();
    [format!("ip:{}", peer.0.ip()), format!("code:{}", code.to_ascii_uppercase())]
}

/// Runs `accept` unless the client or the code must wait; counts what failed.
fn limited<T>(
    api: &Api,
    peer: Peer,
    code: &str,
    accept: impl FnOnce() -> Result<T, AcceptError>,
) -> Result<T, ApiError> {
    let keys = keys(peer, code);
    if let Some(wait) = keys.iter().find_map(|k| api.code_failures.wait(k)) {
        tracing::warn!(peer = %peer.0.ip(), "invitation code refused: too many failed tries");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many",
            format!("too many wrong tries; try again in {} s", wait.as_secs().max(1)),
        ));
    }
    let outcome = accept();
    match &outcome {
        Err(AcceptError::UnknownCode | AcceptError::BadCode(_)) => api.code_failures.failed(&keys[0]),
        Err(AcceptError::BadLogin | AcceptError::WrongDateOfBirth(_)) => {
            keys.iter().for_each(|k| api.code_failures.failed(k))
        }
        _ => {}
    }
    Ok(outcome?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

/// POST /v1/invitations/preview {"code"}: the inviting practice and what registering asks for.
pub(crate) async fn preview(visitor: Visitor, Body(body): Body) -> Response {
    visitor
        .run(move |api, store, peer, now| {
            let request: Code = parse_body(&body)?;
            let preview = limited(api, peer, &request.code, || Accepting { store, now }.preview(&request.code))?;
            Ok((StatusCode::OK, preview))
        })
        .await
}

/// POST /v1/invitations/accept: a new account by the invitation.
pub(crate) async fn register(visitor: Visitor, Body(body): Body) -> Response {
    visitor
        .run(move |api, store, peer, now| {
            let request: Registration = parse_body(&body)?;
            let accepted = limited(api, peer, &request.code, || Accepting { store, now }.register(&request))?;
            Ok((StatusCode::CREATED, accepted))
        })
        .await
}

/// POST /v1/invitations/accept-existing: the invitation accepted by an account that exists.
pub(crate) async fn accept_existing(visitor: Visitor, Body(body): Body) -> Response {
    visitor
        .run(move |api, store, peer, now| {
            let request: ExistingAcceptance = parse_body(&body)?;
            let accepted = limited(api, peer, &request.code, || Accepting { store, now }.accept_existing(&request))?;
            Ok((StatusCode::OK, accepted))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpiQuestion {
    code: String,
    npi: String,
}

/// POST /v1/invitations/npi {"code", "npi"}: what the configured NPI registry says of the
/// practice a colleague registers (only with a pending invitation's code).
pub(crate) async fn npi(visitor: Visitor, Body(body): Body) -> Response {
    visitor
        .run(move |api, store, peer, now| {
            let request: NpiQuestion = parse_body(&body)?;
            limited(api, peer, &request.code, || Accepting { store, now }.preview(&request.code))?;
            let npi = crate::network::npi::checked(&request.npi).map_err(|e| ApiError::field("npi", e))?;
            let Some(template) = &api.shared.config.invitations.npi_registry_url else {
                return Err(ApiError::not_found("no NPI registry is configured here: fill in the practice's details"));
            };
            let resolver = crate::dns::DnsClient::new(api.dns.clone());
            match crate::network::npi::lookup(template, &resolver, &npi) {
                Ok(Some(prefill)) => Ok((StatusCode::OK, prefill)),
                Ok(None) => Err(ApiError::not_found(format!("the NPI registry does not know {npi}"))),
                Err(why) => Err(ApiError::new(StatusCode::BAD_GATEWAY, "registry", why)),
            }
        })
        .await
}
