//! The API's errors: a status and a JSON body that names the field at fault, e.g.
//! `{"error": {"code": "invalid", "field": "to[1]", "message": "..."}}`.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::onboarding::enrollment::SectionError;
use crate::onboarding::proofing::ProofingError;
use crate::onboarding::OnboardingError;
use crate::store::StoreError;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, field: None, message: message.into() }
    }

    /// 400: this field of the request is wrong.
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::BAD_REQUEST, "invalid", message) }
    }

    /// 400: these fields are wrong; the first is named, the message lists them all.
    pub(crate) fn fields(errors: &[crate::network::invitee::FieldError]) -> ApiError {
        let first = errors.first().map(|e| e.field).unwrap_or_default();
        ApiError::field(first, crate::network::invitee::describe(errors))
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub(crate) fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message.to_string())
    }
}

impl ApiError {
    /// The JSON body it answers with.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({ "error": { "code": self.code, "field": self.field, "message": self.message } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Duplicate(_) | StoreError::Conflict(_) => ApiError::conflict(e.to_string()),
            StoreError::TooMany(_) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many", e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<OnboardingError> for ApiError {
    fn from(e: OnboardingError) -> ApiError {
        match e {
            OnboardingError::Store(e) => e.into(),
            OnboardingError::Proofing(ProofingError::State(why)) => {
                ApiError::new(StatusCode::CONFLICT, "proofing-state", why)
            }
            OnboardingError::Proofing(ProofingError::Field { field, message })
            | OnboardingError::Section(SectionError::Field { field, message }) => ApiError::field(field, message),
            OnboardingError::Section(e @ SectionError::Unknown(_)) => ApiError::field("section", e.to_string()),
            OnboardingError::Unavailable(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why),
            OnboardingError::TooMany(why) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many", why),
            // Nothing was decided: the operator's CA needs attention, and the reason says which.
            e @ OnboardingError::Certificates(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "certificates", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

/// A request body, read up to `[http] max_body_bytes`; one too large is answered with a JSON 413
/// like every other error.
pub(crate) struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body, ApiError> {
        // The whole body within the connection's time for it, however it trickles in.
        let limit = request.extensions().get::<super::BodyTimeout>().map_or(Duration::from_secs(120), |t| t.0);
        let read = tokio::time::timeout(limit, axum::body::Bytes::from_request(request, state)).await;
        let Ok(read) = read else {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the request body did not arrive within {} s", limit.as_secs()),
            ));
        };
        match read {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(e.status(), "too-large", "the request body is larger than this API accepts"))
            }
            Err(e) => Err(ApiError::new(e.status(), "body", e.body_text())),
        }
    }
}

/// A JSON request body as `T`; a body that does not fit names the field at fault (its path).
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::field("", "the request needs a JSON body"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // "missing field `x`" sits at the parent's path: name the field itself.
        let field = match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(missing) if path == "." => missing.to_string(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => String::new(),
            None => path,
        };
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        ApiError::field(field, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        to: Vec<String>,
        inner: Option<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        patient_id: String,
    }

    #[test]
    fn a_bad_body_names_the_field() {
        let e = parse_body::<Outer>(br#"{"inner": {"patient_id": "x"}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("to"));
        let e = parse_body::<Outer>(br#"{"to": ["a", 3]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("to[1]"));
        let e = parse_body::<Outer>(br#"{"to": [], "inner": {}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner.patient_id"));
        let e = parse_body::<Outer>(br#"{"to": [], "bcc": 1}"#).unwrap_err();
        assert!(e.message.contains("unknown field `bcc`"), "{}", e.message);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
