//! Every endpoint in one table, which both builds the router and is checked against the OpenAPI
//! document (`openapi.json`), so the two cannot drift apart.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use super::error::ApiError;
use super::{
    accept, address_book, directory, documents, invitations, messages, practice, proofing, referrals, secure, send,
    share_contacts, shares, webhooks, Api,
};

/// The OpenAPI 3.1 description of the API, served at /v1/openapi.json.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

pub(crate) struct Route {
    // Read by the test that matches the routes to the OpenAPI document.
    #[cfg_attr(not(test), expect(dead_code))]
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<Arc<Api>>,
}

fn route<H: Handler<T, Arc<Api>>, T: 'static>(method: Method, path: &'static str, handler: H) -> Route {
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    Route { method, path, handler: on(filter, handler) }
}

/// The largest body an endpoint without a token takes (an invitee's registration is a few
/// hundred bytes; anyone may call these).
const PUBLIC_BODY_BYTES: usize = 16 * 1024;

/// An endpoint anyone may call: its bodies are small.
fn public<H: Handler<T, Arc<Api>>, T: 'static>(method: Method, path: &'static str, handler: H) -> Route {
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    Route { method, path, handler: on(filter, handler).layer(DefaultBodyLimit::max(PUBLIC_BODY_BYTES)) }
}

pub(crate) fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/v1/openapi.json", openapi),
        route(Method::POST, "/v1/practice", practice::create),
        route(Method::GET, "/v1/practice", practice::show),
        route(Method::POST, "/v1/practice/users", practice::add_user),
        route(Method::PUT, "/v1/practice/settings", practice::settings),
        route(Method::GET, "/v1/proofing", proofing::status),
        route(Method::POST, "/v1/proofing/terms", proofing::terms),
        route(Method::PUT, "/v1/proofing/sections/{section}", proofing::section),
        route(Method::POST, "/v1/proofing/code", proofing::send_code),
        route(Method::POST, "/v1/proofing/confirm", proofing::confirm),
        route(Method::POST, "/v1/proofing/submit", proofing::submit),
        route(Method::POST, "/v1/proofing/retry", proofing::retry),
        route(Method::GET, "/v1/addresses/{address}/verify", directory::verify),
        route(Method::GET, "/v1/directory", directory::search),
        route(Method::POST, "/v1/messages", send::send),
        route(Method::GET, "/v1/messages", messages::list),
        route(Method::GET, "/v1/messages/{id}", messages::show),
        route(Method::GET, "/v1/referrals", referrals::list),
        route(Method::GET, "/v1/referrals/{id}", referrals::show),
        route(Method::POST, "/v1/referrals/{id}/received", referrals::received),
        route(Method::GET, "/v1/documents", documents::list),
        route(Method::GET, "/v1/documents/{id}", documents::content),
        route(Method::GET, "/v1/patients/{patient}/documents", documents::of_patient),
        route(Method::POST, "/v1/invitations", invitations::send),
        route(Method::GET, "/v1/invitations", invitations::list),
        route(Method::GET, "/v1/invitations/{id}", invitations::show),
        route(Method::POST, "/v1/invitations/{id}/remind", invitations::remind),
        route(Method::POST, "/v1/invitations/{id}/cancel", invitations::cancel),
        route(Method::PUT, "/v1/invitations/{id}/date-of-birth", invitations::date_of_birth),
        public(Method::POST, "/v1/invitations/preview", accept::preview),
        public(Method::POST, "/v1/invitations/accept", accept::register),
        public(Method::POST, "/v1/invitations/accept-existing", accept::accept_existing),
        public(Method::POST, "/v1/invitations/npi", accept::npi),
        route(Method::GET, "/v1/connections", invitations::connections),
        route(Method::GET, "/v1/connections/{id}", address_book::profile),
        route(Method::GET, "/v1/members", address_book::members),
        route(Method::GET, "/v1/listings", address_book::listings),
        route(Method::POST, "/v1/listings", address_book::list_member),
        route(Method::DELETE, "/v1/listings/{id}", address_book::unlist_member),
        route(Method::GET, "/v1/share-contacts", share_contacts::list),
        route(Method::POST, "/v1/share-contacts", share_contacts::add),
        route(Method::GET, "/v1/share-contacts/{id}", share_contacts::show),
        route(Method::PUT, "/v1/share-contacts/{id}", share_contacts::update),
        route(Method::DELETE, "/v1/share-contacts/{id}", share_contacts::remove),
        route(Method::GET, "/v1/webhooks", webhooks::list),
        route(Method::POST, "/v1/webhooks", webhooks::create),
        route(Method::DELETE, "/v1/webhooks/{id}", webhooks::remove),
        route(Method::GET, "/v1/webhooks/{id}/deliveries", webhooks::deliveries),
        route(Method::GET, "/v1/shares", shares::list),
        route(Method::POST, "/v1/shares", shares::create),
        route(Method::GET, "/v1/shares/{id}", shares::show),
        route(Method::POST, "/v1/shares/{id}/revoke", shares::revoke),
        route(Method::POST, "/v1/shares/{id}/resend", shares::resend),
        route(Method::GET, "/v1/accounts/{id}/contacts", address_book::contacts),
        route(Method::POST, "/v1/accounts/{id}/contacts", address_book::add_contact),
        route(Method::DELETE, "/v1/accounts/{id}/contacts/{listing}", address_book::remove_contact),
        route(Method::POST, "/v1/accounts/{id}/messages", secure::send),
        route(Method::GET, "/v1/accounts/{id}/messages", secure::list),
        route(Method::GET, "/v1/accounts/{id}/messages/{message}", secure::show),
        route(Method::GET, "/v1/accounts/{id}/messages/{message}/attachments/{attachment}", secure::attachment),
        route(Method::POST, "/v1/accounts/{id}/messages/{message}/reply", secure::reply),
    ]
}

pub(crate) fn router(api: Arc<Api>, max_body: usize) -> Router {
    let mut router = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async { ApiError::not_found("no such endpoint (GET /v1/openapi.json lists them)") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method", "this endpoint does not take that method")
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(api)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                assert!(operation["responses"].is_object(), "{method} {path} documents its responses");
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        let mut served: Vec<(String, String)> =
            routes().iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served, "openapi.json and the router must list the same endpoints");
    }
}
