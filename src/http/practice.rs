//! Direct setup: the practice-wide Direct domain (from the practice name) and its usernames.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::call::{Call, Caller};
use super::error::{parse_body, ApiError, Body};
use crate::address::DirectAddress;
use crate::onboarding::proofing::State;
use crate::onboarding::{certificates, default_anchors, domain_name};
use crate::password::PasswordError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPractice {
    name: String,
    /// The domain's label under the parent domain (default: the name without spaces).
    label: Option<String>,
}

/// POST /v1/practice: a token not yet acting for a practice sets one up and acts for it from then on.
pub(crate) async fn create(caller: Caller, Body(body): Body) -> Response {
    caller
        .run_once(&body.clone(), move |call| {
            let request: NewPractice = parse_body(&body)?;
            if let Some(practice) = &call.token.practice {
                return Err(ApiError::conflict(format!("this token already acts for practice {practice:?}")));
            }
            let name = domain_name::practice_name(&request.name).map_err(|e| ApiError::field("name", e))?;
            let parent = call.api.shared.config.onboarding.parent_domain.as_deref();
            let domain = domain_name::for_practice(name, request.label.as_deref(), parent)
                .map_err(|e| ApiError::field("label", e))?;
            let shared = &call.api.shared;
            let anchors = default_anchors::for_new_practice(&*call.store, &shared.config.trust, &domain)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "config", e))?;
            // The practice, its domain, the anchors it trusts and the token's binding: all or nothing.
            call.store.add_practice_for_token(name, &domain, &anchors, call.token.id)?;
            // Committed: from here on the answer is 201; what a default bundle could not do is said
            // in it (the running node tries again). The domain is the practice's one unambiguous key.
            let resolver = crate::dns::DnsClient::new(call.api.dns.clone());
            let fetch = crate::fetch::HttpFetcher::new(&resolver);
            let bundles = default_anchors::subscribe_bundles(&*call.store, &shared.config.trust, &domain, &fetch);
            let practice = call.store.practice(domain.as_str())?;
            Ok((StatusCode::CREATED, json!({ "practice": practice, "bundles": bundles })))
        })
        .await
}

/// GET /v1/practice: the practice, its addresses and where its proofing stands.
pub(crate) async fn show(caller: Caller) -> Response {
    caller.run(|call| Ok((StatusCode::OK, describe(call)?))).await
}

fn describe(call: &Call) -> Result<Value, ApiError> {
    let practice = call.practice()?;
    let addresses: Vec<String> = practice.addresses(&*call.store)?.iter().map(ToString::to_string).collect();
    Ok(json!({ "practice": practice, "addresses": addresses }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    /// For SMTP submission (the EHR's mail client); the API itself needs none.
    password: Option<String>,
}

/// POST /v1/practice/users: a username in the practice's domain becomes a Direct address.
pub(crate) async fn add_user(caller: Caller, Body(body): Body) -> Response {
    caller
        .run_once(&body.clone(), move |call| {
            let request: NewUser = parse_body(&body)?;
            let practice = call.practice()?;
            let domain = practice.domains.first().ok_or_else(|| ApiError::conflict("the practice has no domain"))?;
            let username = request.username.trim().to_ascii_lowercase();
            let address = DirectAddress::parse(&format!("{username}@{domain}"))
                .ok()
                .filter(|_| !username.is_empty() && !username.contains('@'))
                .ok_or_else(|| {
                    ApiError::field("username", format!("{username:?} cannot be the user part of an address"))
                })?;
            let hash = match request.password.as_deref() {
                Some(p) => Some(crate::password::hash(p).map_err(|e| match e {
                    PasswordError::Hash(_) => ApiError::internal(e),
                    _ => ApiError::field("password", e.to_string()),
                })?),
                None => None,
            };
            // A verified practice's new user gets a certificate at once (when this node runs a CA),
            // made before the address is added: a certificate that cannot be made adds nothing.
            let made = if practice.proofing == State::Verified.as_str() {
                let shared = &call.api.shared;
                let new = std::slice::from_ref(&address);
                certificates::missing(&*call.store, &shared.kek, &shared.config.ca, new, call.now)
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "certificates", e))?
            } else {
                Vec::new()
            };
            call.store.add_address(&address, hash.as_deref())?;
            certificates::keep(&*call.store, &made).map_err(ApiError::internal)?;
            let issued = !made.is_empty();
            Ok((StatusCode::CREATED, json!({ "address": address.to_string(), "certificate_issued": issued })))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Mail to an address with no certificate is held and its recipient invited (or bounced).
    invite_unreachable: bool,
}

/// PUT /v1/practice/settings
pub(crate) async fn settings(caller: Caller, Body(body): Body) -> Response {
    caller
        .run(move |call| {
            let request: Settings = parse_body(&body)?;
            let practice = call.practice()?;
            call.store.set_invite_unreachable(practice.id, request.invite_unreachable)?;
            Ok((StatusCode::OK, describe(call)?))
        })
        .await
}
