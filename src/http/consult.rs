//! Consults at the HTTP front end (contract §6): who asked, the consult ids written onto an
//! answer, and commits of what goes with a consult (CDS cards and feedback, reads of the
//! record). The consults themselves are committed by the store's decision sink
//! ([`crate::store::sink`]) before the engine returns.

use super::error::ApiError;
use super::extensions::ClientAddr;
use super::AppState;
use crate::engine::Asker;
use crate::store::{Write, Written};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::Response;
use std::convert::Infallible;

/// The header carrying a single request's consult id.
pub const CONSULT_ID_HEADER: &str = "x-consult-id";

/// Who asked, as the consult records it: the authenticated client (§8: the token's client id)
/// when a token was given, else the client's address (the peer's, or from `X-Forwarded-For`
/// of a trusted proxy). An extractor that never fails.
#[derive(Debug, Clone)]
pub struct Who(pub Asker);

impl Who {
    pub fn client(&self) -> &str {
        &self.0.client
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let client = match (
            parts.extensions.get::<crate::auth::Caller>(),
            parts.extensions.get::<ClientAddr>(),
        ) {
            (Some(caller), _) => caller.client_id.clone(),
            (None, Some(addr)) => addr.0.to_string(),
            (None, None) => "unknown".to_string(),
        };
        let if_none_exist = parts
            .headers
            .get("if-none-exist")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        Ok(Who(Asker {
            client,
            if_none_exist,
        }))
    }
}

/// Puts a single request's consult id in `X-Consult-Id`.
pub fn consult_header(res: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert(CONSULT_ID_HEADER, v);
    }
}

/// Commits `write` (cards, feedback, an access record) to the consult store; `Ok(None)`
/// without a store. A failure is a 503 (`transient`, `Retry-After`).
pub async fn commit(state: &AppState, write: Write) -> Result<Option<Written>, ApiError> {
    let Some(store) = &state.store else {
        return Ok(None);
    };
    store
        .commit(write)
        .await
        .map(Some)
        .map_err(|e| ApiError::NotRecorded(e.to_string()))
}
