//! The XDR endpoint (`[xdr] listen`): POST /xdr takes an ITI-41 submission from an EHR whose
//! client certificate is registered (`[[xdr.clients]]`, pinned by its SHA-256 fingerprint), and
//! sends its documents as one XDM package, with the metadata the EHR gave them, in a Direct
//! message from the addressBlock's sender to its recipients: sealed, delivered and tracked as any
//! other. The answer is a SOAP 1.2 RegistryResponse (or a fault) in an MTOM package.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};

use super::error::{ApiError, Body};
use super::send::{self, Outgoing, Sending};
use super::{Api, ClientCertificate, Limits, Peer, Stopper};
use crate::admission::Admission;
use crate::xdm::Described;
use crate::xdr::{codes, request, soap, Refusal};

/// Binds `listen` and serves the XDR endpoint there, over TLS that asks every client for its
/// certificate.
pub(crate) fn start(
    listen: &str,
    tls: Arc<openssl::ssl::SslAcceptor>,
    api: Api,
    admission: Arc<Admission>,
) -> std::io::Result<(std::net::SocketAddr, Stopper)> {
    let config = &api.shared.config.xdr;
    let limits = Limits { admission, request_timeout: std::time::Duration::from_secs(config.request_timeout_secs) };
    let app = Router::new()
        .route("/xdr", post(submit))
        .fallback(|| async { (StatusCode::NOT_FOUND, "ITI-41 submissions go to POST /xdr\n") })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(Arc::new(api));
    super::serve("xdr", listen, tls, app, limits)
}

/// An answer in an MTOM package.
fn answer(status: StatusCode, envelope: String) -> Response {
    let (content_type, body) = soap::mtom(&envelope, &[]);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn fault(status: StatusCode, relates_to: Option<&str>, subcode: Option<&str>, reason: &str) -> Response {
    answer(status, soap::fault(relates_to, subcode, reason))
}

async fn submit(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    Extension(certificate): Extension<ClientCertificate>,
    headers: HeaderMap,
    body: Result<Body, ApiError>,
) -> Response {
    let clients = &api.shared.config.xdr.clients;
    let client = certificate.0.as_deref().and_then(|seen| clients.iter().find(|c| c.fingerprint() == seen)).cloned();
    let Some(client) = client else {
        tracing::warn!(peer = %peer.0, "XDR submission refused: its client certificate is not registered in [[xdr.clients]]");
        let why = "the client certificate is not registered with this node";
        return fault(StatusCode::FORBIDDEN, None, Some("wsse:FailedAuthentication"), why);
    };
    let body = match body {
        Ok(Body(body)) => body,
        Err(e) => return fault(StatusCode::BAD_REQUEST, None, None, &e.message),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let submission = match request::read(&content_type, &body) {
        Ok(submission) => submission,
        Err(Refusal::Fault { subcode, reason }) => return fault(StatusCode::BAD_REQUEST, None, subcode, &reason),
        Err(refused) => return answer(StatusCode::OK, soap::response(None, Some(&refused))),
    };
    let practice = client.practice.clone();
    let relates_to = submission.message_id.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<String, Refusal> {
        let shared = &api.shared;
        let repository = |e: String| Refusal::registry(codes::REPOSITORY_ERROR, e);
        let store = crate::store::open(&shared.db, "xdr").map_err(|e| repository(e.to_string()))?;
        store.attach_fields(shared.kek.clone()).map_err(|e| repository(e.to_string()))?;
        let practice = store.practice(&practice).map_err(|e| repository(e.to_string()))?;
        let sending = Sending {
            store: &*store,
            shared,
            committer: &*api.committer,
            peer: peer.0,
            via: "xdr",
            now: shared.clock.unix_now(),
        };
        let outgoing = Outgoing {
            from: submission.from.clone(),
            to: submission.to.clone(),
            subject: "Documents sent by XDR".into(),
            body: "The documents and their metadata are in the attached IHE XDM package (xdm.zip).".into(),
            attachments: Vec::new(),
            referral: None,
            xdm: false,
        };
        let described = Described { set: submission.submission_set, documents: submission.documents };
        let queued =
            send::queue_described(&sending, &practice, outgoing, described).map_err(|e| repository(e.message))?;
        Ok(queued["message_id"].as_str().unwrap_or("").to_string())
    })
    .await;
    match outcome {
        Ok(Ok(message_id)) => {
            tracing::info!(peer = %peer.0, "XDR submission for {} queued as message {message_id}", client.practice);
            answer(StatusCode::OK, soap::response(relates_to.as_deref(), None))
        }
        Ok(Err(refused)) => answer(StatusCode::OK, soap::response(relates_to.as_deref(), Some(&refused))),
        Err(e) => {
            let why = format!("the submission failed: {e}");
            fault(StatusCode::INTERNAL_SERVER_ERROR, relates_to.as_deref(), Some("env:Receiver"), &why)
        }
    }
}
