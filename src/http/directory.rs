//! "Verifying Address" (discovery and trust, as the node would do it before sending) and the
//! provider directory (hosted addresses, and those this practice has exchanged mail with).

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::call::Caller;
use super::error::ApiError;
use crate::address::DirectAddress;
use crate::discovery::verdict::{self, Lookup};
use crate::node::Shared;
use crate::store::{Direction, NodeStore, PracticeRecord};
use crate::trust::{AnchorSource, StoreAnchors};

/// GET /v1/addresses/{address}/verify: valid (a usable, trusted certificate was found) or
/// invalid with the reason. Trust is the practice's own (its domain's outgoing anchors).
pub(crate) async fn verify(caller: Caller, Path(address): Path<String>) -> Response {
    caller
        .run(move |call| {
            let address = DirectAddress::parse(&address)
                .map_err(|e| ApiError::field("address", format!("{address:?} is not a Direct address: {e}")))?;
            let practice = call.practice()?;
            let verdict = verify_address(&*call.store, &call.api.shared, &practice, &address, call.now)?;
            Ok((StatusCode::OK, verdict))
        })
        .await
}

/// Discovery and trust for `address`, as the node would do them before sending for `practice`.
pub(crate) fn verify_address(
    store: &dyn NodeStore,
    shared: &Shared,
    practice: &PracticeRecord,
    address: &DirectAddress,
    now: i64,
) -> Result<verdict::Verdict, ApiError> {
    let mut anchors = Vec::new();
    for domain in practice.hosted_domains() {
        anchors.extend(StoreAnchors(store).anchors(Some(&domain), Direction::Outgoing).map_err(ApiError::internal)?);
    }
    let how = Lookup {
        anchors: &anchors,
        resolver: &shared.resolver,
        ldap_timeout: shared.lookup_timeout,
        revocation: shared.config.trust.revocation,
        now,
    };
    Ok(verdict::verdict(verdict::lookup(address, &how)))
}

#[derive(Deserialize)]
pub(crate) struct Search {
    q: Option<String>,
}

/// GET /v1/directory?q= (2+ characters): hosted addresses whose words begin with the query's
/// words, those of practices whose name holds it, and known correspondents containing it.
pub(crate) async fn search(caller: Caller, Query(search): Query<Search>) -> Response {
    caller
        .run(move |call| {
            let q = search.q.unwrap_or_default();
            let q = q.trim();
            if q.chars().count() < 2 || q.len() > 200 {
                return Err(ApiError::field("q", "search for 2 to 200 characters of a name or address"));
            }
            let practice = call.practice()?;
            let entries = call.store.directory(practice.id, q, 50)?;
            Ok((StatusCode::OK, json!({ "query": q, "entries": entries })))
        })
        .await
}
