//! Signals: SIGHUP reloads the rules and the trust ([`crate::auth::Gate::reload`]: TLS
//! certificate, trusted CDS Hooks issuers, a JWKS file), SIGTERM and Ctrl-C stop the server gracefully.
//!
//! A reload compiles the rules folder into a new [`RuleSet`] on a blocking thread. When it
//! loads, it replaces the old one atomically: requests already running finish on the rules they
//! started with, new requests get the new ones. When it fails, every problem is logged and the
//! old rules stay in force.

use super::AppState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The signal handlers, installed before the server announces itself.
pub struct Signals {
    hangup: Signal,
    terminate: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Starts reloading on SIGHUP; the future returned ends at SIGTERM or Ctrl-C (for
    /// `with_graceful_shutdown`).
    pub fn run(self, state: Arc<AppState>) -> impl std::future::Future<Output = ()> + Send {
        let Signals {
            mut hangup,
            mut terminate,
        } = self;
        let on_hangup = state.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!(
                    "SIGHUP: reloading the rules and the trust (certificate, issuers' keys)"
                );
                on_hangup.auth.reload();
                reload(&on_hangup).await;
            }
        });
        async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM: finishing the requests in flight, then stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: finishing the requests in flight, then stopping"),
            }
            state.ready.store(false, Ordering::SeqCst);
        }
    }
}

/// Reloads the rules (and the profiles) from their folders (rules built into the binary are
/// compiled again, to the same result). Returns whether the new rules are
/// now in force.
pub async fn reload(state: &Arc<AppState>) -> bool {
    match state.engine.reload().await {
        Ok(count) => {
            state.metrics.reloaded(true);
            state.metrics.set_rules_loaded(count);
            tracing::info!(rules = count, "rules reloaded");
            true
        }
        Err(errors) => {
            for e in &errors {
                tracing::error!(error = %e, "rule file error");
            }
            state.metrics.reloaded(false);
            tracing::warn!(
                problems = errors.len(),
                rules = state.engine.rules().rules.len(),
                "reload failed: still serving the previous rules"
            );
            false
        }
    }
}
