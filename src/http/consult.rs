//! Recording consults from the HTTP front end (contract §6): the decided ServiceRequests of a
//! request are committed to the store before the answer goes out, and their ids are written
//! onto it. A request whose consults cannot be committed is answered 503 instead.

use super::error::ApiError;
use super::server::Peer;
use super::AppState;
use crate::rules::RuleSet;
use crate::store::{record, Consult, RuleSetRecord, Write, COMMIT_TIMEOUT};
use axum::http::HeaderMap;
use serde_json::Value;
use std::sync::PoisonError;

/// The header carrying a single request's consult id.
pub const CONSULT_ID_HEADER: &str = "x-consult-id";

/// Who asked, as the consult records it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated client when there is one, else the peer's IP address.
    pub client: String,
    pub if_none_exist: Option<String>,
}

impl Caller {
    pub fn of(headers: &HeaderMap, peer: Option<&Peer>) -> Self {
        Caller {
            client: peer
                .map(|p| p.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
            if_none_exist: headers
                .get("if-none-exist")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// Keeps the rule set in the store the first time a consult is decided under it.
async fn keep_rule_set(state: &AppState, rules: &RuleSet) -> Result<(), ApiError> {
    let Some(store) = &state.store else {
        return Ok(());
    };
    let kept = state
        .kept_rule_set
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if kept == rules.version {
        return Ok(());
    }
    let write = Write::RuleSet(RuleSetRecord {
        version: rules.version.clone(),
        files: rules.files_json.clone(),
    });
    match tokio::time::timeout(COMMIT_TIMEOUT, store.write(write)).await {
        Ok(Ok(_)) => {
            *state
                .kept_rule_set
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = rules.version.clone();
            Ok(())
        }
        Ok(Err(e)) => Err(ApiError::StoreUnavailable(e.to_string())),
        Err(_) => Err(ApiError::StoreUnavailable("the commit timed out".into())),
    }
}

/// Commits `consults` and writes their ids onto `body`. Returns the ids (a retried request
/// gets the id of the consult first recorded for it). Nothing is committed, and nothing
/// stamped, without a store.
pub async fn record(
    state: &AppState,
    rules: &RuleSet,
    consults: Vec<Consult>,
    body: &mut Value,
) -> Result<Vec<String>, ApiError> {
    if state.store.is_none() || consults.is_empty() {
        return Ok(Vec::new());
    }
    record_write(state, rules, Write::Consults(consults), body).await
}

/// Commits `write` (consults, with what goes with them) after keeping the rule set; stamps
/// the consult ids on `body`.
pub async fn record_write(
    state: &AppState,
    rules: &RuleSet,
    write: Write,
    body: &mut Value,
) -> Result<Vec<String>, ApiError> {
    let Some(store) = &state.store else {
        return Ok(Vec::new());
    };
    keep_rule_set(state, rules).await?;
    let started = std::time::Instant::now();
    let written = match tokio::time::timeout(COMMIT_TIMEOUT, store.write(write)).await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => {
            state
                .metrics
                .record_commit(started.elapsed().as_secs_f64(), false);
            return Err(ApiError::StoreUnavailable(e.to_string()));
        }
        Err(_) => {
            state
                .metrics
                .record_commit(started.elapsed().as_secs_f64(), false);
            return Err(ApiError::StoreUnavailable("the commit timed out".into()));
        }
    };
    state
        .metrics
        .record_commit(started.elapsed().as_secs_f64(), true);
    record::stamp(body, &rules.site, &written.ids);
    Ok(written.ids)
}
