//! Identity proofing through the API: the terms, the form's sections, the confirmation code and
//! "Verify Identity", each answering the proofing status (masked: no SSN, card or answers).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::call::{Call, Caller};
use super::error::{parse_body, ApiError, Body};
use crate::onboarding::{setup, Onboarding, Status};

/// Runs a proofing step for the token's practice with the configured verifier and code channel.
fn step(
    call: &Call,
    f: impl FnOnce(&Onboarding, &str) -> crate::onboarding::Result<Status>,
) -> Result<Status, ApiError> {
    let practice = call.practice()?;
    let shared = &call.api.shared;
    let config = &shared.config.onboarding;
    let verifier = setup::verifier(config, &call.api.dns).map_err(ApiError::internal)?;
    let channel =
        setup::channel(config, shared.config.notify.email.as_ref(), &call.api.dns, &shared.config.server.hostname)
            .map_err(ApiError::internal)?;
    let onboarding = Onboarding {
        store: &*call.store,
        kek: &shared.kek,
        ca: &shared.config.ca,
        verifier: &*verifier,
        channel: &*channel,
        now: call.now,
    };
    Ok(f(&onboarding, &practice.name)?)
}

/// GET /v1/proofing
pub(crate) async fn status(caller: Caller) -> Response {
    caller.run(|call| Ok((StatusCode::OK, step(call, |o, p| o.status(p))?))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Terms {
    activation_terms: bool,
    identity_verification_agreement: bool,
}

/// POST /v1/proofing/terms
pub(crate) async fn terms(caller: Caller, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let t: Terms = parse_body(&body)?;
            Ok((
                StatusCode::OK,
                step(call, |o, p| o.accept_terms(p, t.activation_terms, t.identity_verification_agreement))?,
            ))
        })
        .await
}

/// PUT /v1/proofing/sections/{section}
pub(crate) async fn section(caller: Caller, Path(section): Path<String>, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let json: Value = parse_body(&body)?;
            Ok((StatusCode::OK, step(call, |o, p| o.save_section(p, &section, &json))?))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    phone: String,
}

/// POST /v1/proofing/code: sends a confirmation code to the phone.
pub(crate) async fn send_code(caller: Caller, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let r: CodeRequest = parse_body(&body)?;
            Ok((StatusCode::OK, step(call, |o, p| o.send_code(p, &r.phone))?))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirmation {
    code: String,
}

/// POST /v1/proofing/confirm
pub(crate) async fn confirm(caller: Caller, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let c: Confirmation = parse_body(&body)?;
            Ok((StatusCode::OK, step(call, |o, p| o.confirm(p, &c.code))?))
        })
        .await
}

/// POST /v1/proofing/submit: "Verify Identity". Verified, the practice's users get their
/// certificates with the decision (when this node runs a development CA).
pub(crate) async fn submit(caller: Caller) -> Response {
    caller.run_once(&[], |call| Ok((StatusCode::OK, step(call, |o, p| o.submit(p))?))).await
}

/// POST /v1/proofing/retry: "Try Again" after a failure.
pub(crate) async fn retry(caller: Caller) -> Response {
    caller.run(|call| Ok((StatusCode::OK, step(call, |o, p| o.retry(p))?))).await
}
