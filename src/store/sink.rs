//! The consult store as a decision sink of the engine service (contract §6): every decided
//! call's consults are committed here before the engine hands the answer back, so no answer
//! leaves without its record. Registered first among the sinks (`http::AppState::new`): a
//! failed commit stops the answer (503) before anything is counted.
//!
//! The sink takes the engine's fresh consult ids ([`DecisionRecord::consult_ids`]) and answers
//! with the ids the store kept ([`Kept::Recorded`]): a retried request gets the id of the
//! consult first recorded for it.

use super::{record, ConsultStore, RuleSetRecord, StoreError, Write, Written, COMMIT_TIMEOUT};
use crate::engine::{Caller, DecisionRecord, DecisionSink, Kept, SinkError, SinkFuture};
use crate::rules::RuleSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Told of every commit the sink waited for: how long, and whether it committed (`/metrics`).
pub type CommitObserver = Arc<dyn Fn(Duration, bool) + Send + Sync>;

/// Records consults in a [`ConsultStore`].
pub struct StoreSink {
    store: Arc<dyn ConsultStore>,
    /// Keep the request itself (false: `--audit-body hash`, only its SHA-256).
    keep_body: bool,
    /// The rule-set version last kept in the store: each version's files are written once,
    /// before the first consult decided under it.
    kept_rule_set: Mutex<String>,
    on_commit: Option<CommitObserver>,
}

impl StoreSink {
    pub fn new(store: Arc<dyn ConsultStore>, keep_body: bool) -> Self {
        Self {
            store,
            keep_body,
            kept_rule_set: Mutex::new(String::new()),
            on_commit: None,
        }
    }

    /// Calls `observer` after each commit with its latency and result.
    pub fn observed_by(mut self, observer: CommitObserver) -> Self {
        self.on_commit = Some(observer);
        self
    }

    pub fn store(&self) -> &Arc<dyn ConsultStore> {
        &self.store
    }

    /// Commits `write` within [`COMMIT_TIMEOUT`]; a commit that takes longer counts as failed
    /// (the store may still commit it: a record without an answer is allowed, an answer
    /// without a record never).
    pub async fn commit(&self, write: Write) -> Result<Written, StoreError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(COMMIT_TIMEOUT, self.store.write(write)).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable("the commit timed out".into())),
        };
        if let Some(observe) = &self.on_commit {
            observe(started.elapsed(), result.is_ok());
        }
        result
    }

    /// Keeps the files of `rules` in the store the first time a consult is decided under them.
    async fn keep_rule_set(&self, rules: &RuleSet) -> Result<(), StoreError> {
        let kept = self
            .kept_rule_set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if kept == rules.version {
            return Ok(());
        }
        self.commit(Write::RuleSet(RuleSetRecord {
            version: rules.version.clone(),
            files: rules.files_json.clone(),
        }))
        .await?;
        *self
            .kept_rule_set
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = rules.version.clone();
        Ok(())
    }

    async fn record_consults(&self, r: &DecisionRecord) -> Result<Kept, StoreError> {
        if r.consult_ids.is_empty() {
            return Ok(Kept::Recorded(Vec::new()));
        }
        self.keep_rule_set(&r.rules).await?;
        let hook_instance = match &r.caller {
            Caller::CdsHooks { hook_instance, .. } => Some(hook_instance.as_str()),
            _ => None,
        };
        let received_at = r
            .received
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let consults = record::consults(
            &r.checked,
            &r.rules.site,
            &record::Origin {
                client: &r.asker.client,
                received_at,
                rule_set: &r.rules.version,
                keep_body: self.keep_body,
                body: &r.bytes,
                if_none_exist: r.asker.if_none_exist.as_deref(),
                hook_instance,
            },
            &r.consult_ids,
        );
        let written = self.commit(Write::Consults(consults)).await?;
        Ok(Kept::Recorded(written.ids))
    }
}

impl DecisionSink for StoreSink {
    fn name(&self) -> &'static str {
        "store"
    }

    fn record<'a>(&'a self, record: &'a DecisionRecord) -> SinkFuture<'a> {
        Box::pin(async move {
            self.record_consults(record).await.map_err(|e| SinkError {
                sink: "store",
                // Store errors name the store and the fault, never the request.
                message: e.to_string(),
            })
        })
    }
}
