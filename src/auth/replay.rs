//! The CDS Hooks `jti` replay cache (contract §8) kept in the consult store, so that replicas
//! sharing one store refuse a JWT replayed to any of them, and a restarted gateway still
//! refuses one it accepted before. Each first use is committed (group-committed with the
//! consults) before the call is answered. Expired jtis are deleted at most once a minute per
//! process, in the same transaction as a new one.

use super::cds::ReplayCache;
use crate::store::{ConsultStore, Write, COMMIT_TIMEOUT};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Seconds between two purges of expired jtis (per process).
const PURGE_EVERY_SECS: u64 = 60;

pub struct StoreReplayCache {
    store: Arc<dyn ConsultStore>,
    /// When this process last purged (Unix seconds; 0: never).
    last_purge: AtomicU64,
}

impl StoreReplayCache {
    pub fn new(store: Arc<dyn ConsultStore>) -> Self {
        Self {
            store,
            last_purge: AtomicU64::new(0),
        }
    }

    /// Whether this call should purge: the first call a minute after the last purge does.
    fn purge_due(&self, now: u64) -> bool {
        let last = self.last_purge.load(Ordering::Relaxed);
        now >= last + PURGE_EVERY_SECS
            && self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl ReplayCache for StoreReplayCache {
    fn first_use<'a>(
        &'a self,
        issuer: &'a str,
        jti: &'a str,
        expires: u64,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        Box::pin(async move {
            let now = crate::auth::now_secs();
            let write = Write::Jti {
                issuer: issuer.to_string(),
                jti: jti.to_string(),
                expires: secs(expires),
                now: secs(now),
                purge: self.purge_due(now),
            };
            match tokio::time::timeout(COMMIT_TIMEOUT, self.store.write(write)).await {
                Ok(Ok(written)) => Ok(written.rows > 0),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the consult store did not commit the jti in time".into()),
            }
        })
    }
}
