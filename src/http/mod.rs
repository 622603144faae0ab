//! The HTTP front end (contract §4): `referral-gateway serve`.
//!
//! A thin layer over the engine service: each endpoint turns a FHIR RESTful request into one
//! [`crate::engine::Engine::decide`] call and the engine's result back into an HTTP response.
//!
//! - [`routes`]: the endpoints and the tower / tower-http layers around them;
//! - [`negotiate`]: request and response media types, and the one place where FHIR bodies are
//!   written (JSON or XML);
//! - [`error`]: the one error type; every failure becomes a FHIR OperationOutcome;
//! - [`capability`]: the CapabilityStatement of `GET /metadata` and the profiles it lists;
//! - [`metrics`]: Prometheus counters and the latency histogram of `GET /metrics`;
//! - [`cds_hooks`]: the CDS Hooks 2.0 service (`/cds-services`), the same decisions as cards;
//! - [`consult`]: who asked, consult ids on answers; [`audit`]: the consult record read back
//!   (`/AuditEvent`, `/Provenance`, `/$stats`);
//! - [`reload`]: SIGHUP reloads the rules (swapped atomically), SIGTERM / Ctrl-C stop gracefully.

pub mod audit;
pub mod body_limit;
pub mod capability;
pub mod cds_hooks;
pub mod console;
pub mod console_session;
pub mod consult;
pub mod error;
pub mod extensions;
pub mod guard;
pub mod metrics;
pub mod negotiate;
pub mod outbound;
pub mod reload;
pub mod routes;
pub mod server;
pub mod upstream;
pub mod validate;

use crate::engine::Engine;
use crate::load::RuleSource;
use crate::parse::Limits;
use crate::rules::RuleSet;
use crate::store::sink::StoreSink;
use crate::store::ConsultStore;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// How the server runs: plain values (the command line's `serve` flags convert into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address and port to listen on (`ADDR:PORT`; port 0 picks a free port).
    pub listen: String,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most entries accepted in one Bundle (413 above).
    pub max_bundle_entries: usize,
    /// Deepest nesting of JSON objects and arrays accepted (413 above).
    pub max_depth: usize,
    /// Time allowed for one request, body upload included (503 after it).
    pub request_timeout_secs: u64,
    /// Time allowed to send a request's head; the connection is closed after it.
    pub header_timeout_secs: u64,
    /// Time allowed to receive the request body, from the end of the headers (408 after it).
    pub body_timeout_secs: u64,
    /// Most decisions computed at once; 0: four per core.
    pub max_concurrent_checks: usize,
    /// The upstream FHIR server, its deadline, breaker and credentials (contract §7).
    pub upstream: crate::http::upstream::UpstreamArgs,
    /// Authentication, TLS, rate limits (contract §8; `crate::auth`).
    pub auth: crate::auth::AuthArgs,
    /// The consult store's URL (contract §6): `sqlite:PATH`, `postgres://...` or `none`.
    pub store: String,
    pub store_sync: crate::store::StoreSync,
    /// Keep each request in the consult record (`--audit-body full`), else only its hash.
    pub keep_request_body: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            log_format: LogFormat::Text,
            max_body_bytes: 1024 * 1024,
            max_bundle_entries: Limits::default().max_bundle_entries,
            max_depth: Limits::default().max_depth,
            request_timeout_secs: 30,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            max_concurrent_checks: 0,
            upstream: Default::default(),
            auth: crate::auth::AuthArgs::default(),
            // Plain values for embedding and unit tests record nothing; `serve` defaults to
            // `crate::store::DEFAULT_STORE`.
            store: "none".into(),
            store_sync: crate::store::StoreSync::Normal,
            keep_request_body: true,
        }
    }
}

/// Log lines as plain text or as JSON objects (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What every request shares. The engine holds the rules, swapped whole on reload: a request
/// takes the current `Arc<RuleSet>` once, at its start ([`negotiate::fhir_layer`]), and
/// finishes on it.
pub struct AppState {
    /// The one engine service; its sinks include [`AppState::metrics`].
    pub engine: Engine,
    pub max_body_bytes: usize,
    pub timeout: Duration,
    pub body_timeout: Duration,
    pub metrics: Arc<metrics::Metrics>,
    /// False once shutdown has begun: `/health` then answers 503.
    pub ready: AtomicBool,
    /// The address the server is bound to.
    pub listen: String,
    /// When the server started, as a FHIR `dateTime`.
    pub started: String,
    /// The upstream FHIR server accepted orders go to; `None`: a decision service (§4).
    pub upstream: Option<Arc<crate::http::upstream::Upstream>>,
    /// Authentication, rate limits and TLS (contract §8): open unless configured.
    pub auth: Arc<crate::auth::Gate>,
    /// The consult record (contract §6), the engine's first sink; `None` with `--store none`.
    /// Front ends commit what goes with a consult (CDS cards, feedback, reads) through it.
    pub store: Option<Arc<StoreSink>>,
    /// The CDS Hooks prefetch fallback's client (contract §7): a missing prefetch fetched from
    /// an allowed `fhirServer`.
    pub cds_prefetch: cds_hooks::prefetch::Fetcher,
}

impl AppState {
    /// The server's state: an engine on `rules` whose decision sinks are the consult store
    /// (first: it must commit before anything is counted or answered) and the metrics.
    pub fn new(
        rules: RuleSet,
        rule_source: RuleSource,
        args: &Config,
        listen: String,
        store: Option<Arc<dyn ConsultStore>>,
    ) -> Self {
        let metrics = Arc::new(metrics::Metrics::default());
        metrics.set_rules_loaded(rules.rules.len());
        let limits = Limits {
            max_bundle_entries: args.max_bundle_entries,
            max_depth: args.max_depth,
        };
        // Decisions running at once are bounded: the engine is CPU-bound, and a flood of large
        // Bundles then queues (and times out with 503) instead of taking all memory.
        let store = store.map(|s| {
            let observer = metrics.clone();
            Arc::new(
                StoreSink::new(s, args.keep_request_body).observed_by(Arc::new(
                    move |took: Duration, ok| observer.record_commit(took.as_secs_f64(), ok),
                )),
            )
        });
        let mut engine = Engine::new(rules, rule_source, limits, args.max_concurrent_checks);
        if let Some(s) = &store {
            engine = engine.with_sink(s.clone());
        }
        let engine = engine.with_sink(metrics.clone());
        Self {
            engine,
            max_body_bytes: args.max_body_bytes,
            timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
            metrics,
            ready: AtomicBool::new(true),
            listen,
            started: fhir_now(),
            upstream: None,
            auth: Arc::new(crate::auth::Gate::open()),
            store,
            cds_prefetch: cds_hooks::prefetch::Fetcher::new(
                args.upstream.upstream_timeout_secs,
                Duration::from_secs(args.request_timeout_secs.max(1)),
            ),
        }
    }
}

/// The current time as a FHIR `dateTime` (UTC).
fn fhir_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber (e.g. in tests) is not an error worth stopping for.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The main server's shutdown: `shutdown`, then tells the metrics server (if any) to stop too.
async fn stop_with(
    shutdown: impl std::future::Future<Output = ()>,
    then_stop: Option<tokio::sync::oneshot::Sender<()>>,
) {
    shutdown.await;
    if let Some(stop) = then_stop {
        let _ = stop.send(());
    }
}

/// Runs `serve` until SIGTERM or Ctrl-C; returns the process exit status.
pub fn serve(args: &Config, rules: &RuleSource) -> u8 {
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return 2;
        }
    };
    runtime.block_on(run(args, rules.clone()))
}

async fn run(args: &Config, source: RuleSource) -> u8 {
    let rules = match RuleSet::from_source(&source) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                tracing::error!(error = %e, "rule file error");
            }
            tracing::error!(
                rules = %source,
                problems = errors.len(),
                "the rules could not be loaded; not starting"
            );
            return 2;
        }
    };
    // Signal handlers first: a SIGHUP or SIGTERM that arrives once the address is printed must
    // reach them, not the default action.
    let signals = match reload::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return 2;
        }
    };
    let gate = match crate::auth::Gate::from_args(&args.auth) {
        Ok(g) => Arc::new(g),
        Err(e) => {
            tracing::error!(error = %e, "the security options are unusable; not starting");
            return 2;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %args.listen, error = %e, "cannot listen");
            return 2;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a.to_string(),
        Err(_) => args.listen.clone(),
    };
    if let Err(e) = crate::auth::check_exposure(&gate, listener.local_addr().ok()) {
        tracing::error!("{e}");
        return 2;
    }
    let metrics_listener = match &args.auth.metrics_listen {
        None => None,
        Some(a) => match tokio::net::TcpListener::bind(a).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(metrics_listen = %a, error = %e, "cannot listen");
                return 2;
            }
        },
    };
    // Every option is checked before the store is opened (and its file created).
    let upstream = match crate::http::upstream::Upstream::from_args(
        &args.upstream,
        Duration::from_secs(args.request_timeout_secs.max(1)),
    ) {
        Ok(up) => up.map(Arc::new),
        Err(e) => {
            tracing::error!(error = %e, "the upstream cannot be used; not starting");
            return 2;
        }
    };
    let store_url = match crate::store::StoreUrl::parse(&args.store) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "not starting");
            return 2;
        }
    };
    // A store that cannot be reached now still opens (not ready, 503s) and recovers by
    // itself; only a store that can never work (a bad URL, an unusable path) stops start-up.
    let store = match crate::store::open(&store_url, args.store_sync).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(store = %store_url.redacted(), error = %e, "not starting");
            return 2;
        }
    };
    match &store {
        None => tracing::warn!("--store none: decisions are NOT recorded (development only)"),
        Some(s) => tracing::info!(store = %s.describe(), "consults are recorded"),
    }
    // CDS Hooks jtis are remembered where the consults are: replicas sharing a store then
    // refuse a JWT replayed to any of them (in memory with --store none).
    if let (Some(cds), Some(s)) = (&gate.cds, &store) {
        cds.set_replay_cache(Arc::new(crate::auth::replay::StoreReplayCache::new(
            s.clone(),
        )));
    }
    let rule_count = rules.rules.len();
    let mut state = AppState::new(rules, source, args, addr.clone(), store);
    state.upstream = upstream;
    if let Some(up) = &state.upstream {
        tracing::info!(upstream = %up.base(), deadline_secs = up.deadline().as_secs(), "forwarding accepted orders upstream");
    }
    state.auth = gate.clone();
    let state = Arc::new(state);
    let app = routes::router(state.clone());
    tracing::info!(
        listen = %addr,
        rules = rule_count,
        rules_from = %state.engine.source(),
        profiles = state.engine.rules().conformance.profiles.len(),
        "referral-gateway serving"
    );
    gate.start().await;
    // The one line on stdout: scripts and tests read the bound address from it.
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();

    let shutdown = signals.run(state.clone());
    let header_timeout = Duration::from_secs(args.header_timeout_secs.max(1));
    let shutdown = match metrics_listener {
        None => stop_with(shutdown, None),
        Some(l) => {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            if let Ok(a) = l.local_addr() {
                tracing::info!("GET /metrics also served, without a token, on http://{a}/metrics");
            }
            tokio::spawn(server::serve(
                l,
                routes::metrics_router(state.clone()),
                header_timeout,
                None,
                async move {
                    let _ = stopped.await;
                },
            ));
            stop_with(shutdown, Some(stop))
        }
    };
    server::serve(listener, app, header_timeout, gate.tls.clone(), shutdown).await;
    tracing::info!("stopped");
    0
}
