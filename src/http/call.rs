//! One authenticated request: the bearer token checked against the store, then the handler's
//! work on a blocking thread with its own store connection, attributed to the token in the audit
//! log.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::{Api, Peer};
use crate::store::api::{Idempotency, TokenRecord};
use crate::store::{NodeStore, PracticeRecord};

/// What a handler has to work with.
pub(crate) struct Call<'a> {
    pub api: &'a Api,
    pub store: Box<dyn NodeStore>,
    pub token: TokenRecord,
    pub peer: Peer,
    pub now: i64,
}

impl Call<'_> {
    /// The practice the token acts for.
    pub(crate) fn practice(&self) -> Result<PracticeRecord, ApiError> {
        let Some(name) = &self.token.practice else {
            return Err(ApiError::forbidden(
                "no-practice",
                "this token does not act for a practice yet: set the practice up with POST /v1/practice",
            ));
        };
        Ok(self.store.practice(name)?)
    }

    /// The account `id`, if it is a member of the practice the token acts for.
    pub(crate) fn member(&self, id: i64) -> Result<crate::store::accounts::AccountRecord, ApiError> {
        let practice = self.practice()?;
        let account = self.store.account(id).ok().filter(|a| a.practice_id == Some(practice.id));
        account.ok_or_else(|| ApiError::not_found(format!("account #{id} of this practice")))
    }

    /// Who the audit log says did it.
    pub(crate) fn actor(&self) -> String {
        actor(&self.token)
    }
}

/// An API token as an actor of the audit log.
fn actor(token: &TokenRecord) -> String {
    format!("api:{}", token.name)
}

/// The authenticated caller, taken before the body is read: a request without a valid token is
/// refused without reading what it sends.
pub(crate) struct Caller {
    api: Arc<Api>,
    token: TokenRecord,
    peer: Peer,
    /// The request's `Idempotency-Key` header, as text, and what it is asked of (method and path).
    idempotency: Option<(String, String)>,
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Caller, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized("this needs an API token: Authorization: Bearer <token>"));
        };
        let text = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let bearer = match text.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().to_string(),
            _ => return Err(ApiError::unauthorized("use Authorization: Bearer <token>")),
        };
        let peer = parts.extensions.get::<Peer>().copied().unwrap_or(Peer(([127, 0, 0, 1], 0).into()));
        let client = peer.0.ip().to_string();
        if api.token_failures.wait(&client).is_some() {
            tracing::warn!(peer = %client, "API request refused: too many unknown tokens from this address");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many",
                "too many requests with unknown tokens from this address; try again later",
            ));
        }
        let db = api.shared.db.clone();
        let token = tokio::task::spawn_blocking(move || {
            let store = crate::store::open(&db, "api").map_err(ApiError::internal)?;
            store.token(&super::tokens::digest(&bearer)).map_err(ApiError::from)
        })
        .await
        .map_err(ApiError::internal)??;
        let Some(token) = token else {
            tracing::warn!(peer = %client, "API request refused: unknown or revoked token");
            api.token_failures.failed(&client);
            return Err(ApiError::unauthorized("unknown or revoked API token"));
        };
        let idempotency = parts.headers.get("idempotency-key").map(|v| {
            (String::from_utf8_lossy(v.as_bytes()).into_owned(), format!("{} {}", parts.method, parts.uri.path()))
        });
        Ok(Caller { api: api.clone(), token, peer, idempotency })
    }
}

impl Caller {
    /// Runs `work` on a blocking thread with a store connection acting for the token; its value
    /// is the JSON answer.
    pub(crate) async fn run<T, F>(self, work: F) -> Response
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&Call) -> Result<(StatusCode, T), ApiError> + Send + 'static,
    {
        self.run_raw(|call| work(call).map(|(status, value)| (status, Json(value)).into_response())).await
    }

    /// As `run`, honouring an `Idempotency-Key`: the first request under a key runs, and its
    /// answer (a success or the client's error, not the node's) is kept a day; the same request
    /// under the key again gets that answer without running (`Idempotent-Replayed: true`); the key
    /// with another request is refused (422), and while its first request runs, 409.
    pub(crate) async fn run_once<T, F>(self, body: &[u8], work: F) -> Response
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&Call) -> Result<(StatusCode, T), ApiError> + Send + 'static,
    {
        let Some((key, request)) = self.idempotency.clone() else { return self.run(work).await };
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            let bad = ApiError::field("Idempotency-Key", "1 to 255 printable ASCII characters (a UUID, say)");
            return bad.into_response();
        }
        let mut digest = request.into_bytes();
        digest.push(b'\n');
        digest.extend_from_slice(body);
        let sha256 = crate::pki::sha256_hex(&digest);
        self.run_raw(move |call| {
            let token = call.token.id;
            match call.store.idempotency_begin(token, &key, &sha256, call.now)? {
                Idempotency::New => {}
                Idempotency::Replay { status, response } => {
                    let status = StatusCode::from_u16(status).map_err(ApiError::internal)?;
                    let mut answer = (status, [(header::CONTENT_TYPE, "application/json")], response).into_response();
                    answer.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
                    return Ok(answer);
                }
                Idempotency::Mismatch => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency-key-reused",
                        "this Idempotency-Key was used with another request; use a new key for a new request",
                    ))
                }
                Idempotency::InProgress => {
                    return Err(ApiError::conflict("the first request with this Idempotency-Key is still running"))
                }
            }
            let (status, value) = match work(call) {
                Ok((status, value)) => (status, serde_json::to_value(value).map_err(ApiError::internal)?),
                Err(e) if e.status.is_server_error() => {
                    call.store.idempotency_abandon(token, &key)?;
                    return Err(e);
                }
                Err(e) => (e.status, e.body()),
            };
            call.store.idempotency_finish(token, &key, status.as_u16(), &value.to_string())?;
            Ok((status, Json(value)).into_response())
        })
        .await
    }

    /// As `run`, for an answer that is not JSON (a document's content).
    pub(crate) async fn run_raw<F>(self, work: F) -> Response
    where
        F: FnOnce(&Call) -> Result<Response, ApiError> + Send + 'static,
    {
        let (api, token, peer) = (self.api.clone(), self.token, self.peer);
        blocking(self.api, actor(&token), move |store, now| work(&Call { api: &api, store, token, peer, now })).await
    }
}

/// Runs `work` on a blocking thread with a store connection acting as `actor`, the KEK attached.
async fn blocking<F>(api: Arc<Api>, actor: String, work: F) -> Response
where
    F: FnOnce(Box<dyn NodeStore>, i64) -> Result<Response, ApiError> + Send + 'static,
{
    let outcome = tokio::task::spawn_blocking(move || {
        let shared = &api.shared;
        let store = crate::store::open(&shared.db, &actor).map_err(ApiError::internal)?;
        store.attach_fields(shared.kek.clone()).map_err(ApiError::internal)?;
        work(store, shared.clock.unix_now())
    })
    .await;
    match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("the request failed: {e}")).into_response(),
    }
}

/// A request without a token: an invitee with a code. Its client address is its actor and what
/// the limits on wrong codes count by.
pub(crate) struct Visitor {
    api: Arc<Api>,
    pub peer: Peer,
}

impl FromRequestParts<Arc<Api>> for Visitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Visitor, ApiError> {
        let peer = parts.extensions.get::<Peer>().copied().unwrap_or(Peer(([127, 0, 0, 1], 0).into()));
        Ok(Visitor { api: api.clone(), peer })
    }
}

impl Visitor {
    /// Runs `work` on a blocking thread with a store connection; its value is the JSON answer.
    pub(crate) async fn run<T, F>(self, work: F) -> Response
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&Api, &dyn NodeStore, Peer, i64) -> Result<(StatusCode, T), ApiError> + Send + 'static,
    {
        let (api, peer) = (self.api.clone(), self.peer);
        let actor = format!("invitee:{}", peer.0.ip());
        blocking(self.api, actor, move |store, now| {
            work(&api, &*store, peer, now).map(|(status, value)| (status, Json(value)).into_response())
        })
        .await
    }
}
