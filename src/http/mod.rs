//! The HTTP front end (contract §4): `referral-gateway serve`.
//!
//! A thin layer over the decision engine: each endpoint turns a FHIR RESTful request into one
//! call of [`crate::engine::check`] (on a blocking thread: the engine is CPU-bound) and the
//! engine's [`crate::outcome::response::Answer`] back into an HTTP response.
//!
//! - [`routes`]: the endpoints and the tower / tower-http layers around them;
//! - [`negotiate`]: request and response media types, and the one place where FHIR bodies are
//!   written (JSON or XML);
//! - [`error`]: the one error type; every failure becomes a FHIR OperationOutcome;
//! - [`capability`]: the CapabilityStatement of `GET /metadata` and the profiles it lists;
//! - [`metrics`]: Prometheus counters and the latency histogram of `GET /metrics`;
//! - [`cds_hooks`]: the CDS Hooks 2.0 service (`/cds-services`), the same decisions as cards;
//! - [`reload`]: SIGHUP reloads the rules (swapped atomically), SIGTERM / Ctrl-C stop gracefully.

pub mod body_limit;
pub mod capability;
pub mod cds_hooks;
pub mod error;
pub mod metrics;
pub mod negotiate;
pub mod reload;
pub mod routes;
pub mod server;
pub mod validate;

use crate::cli::RulesArg;
use crate::parse::Limits;
use crate::rules::RuleSet;
use arc_swap::ArcSwap;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Options of `serve`; every flag has an environment variable of the same meaning.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (`ADDR:PORT`; port 0 picks a free port, printed at start).
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: String,
    /// Log lines as plain text or as JSON objects (on stderr).
    #[arg(long, value_enum, env = "REFERRAL_GATEWAY_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes (413 above).
    #[arg(long, env = "REFERRAL_GATEWAY_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most entries accepted in one Bundle (413 above).
    #[arg(long, env = "REFERRAL_GATEWAY_MAX_BUNDLE_ENTRIES", default_value_t = Limits::default().max_bundle_entries)]
    pub max_bundle_entries: usize,
    /// Deepest nesting of JSON objects and arrays accepted (413 above).
    #[arg(long, env = "REFERRAL_GATEWAY_MAX_DEPTH", default_value_t = Limits::default().max_depth)]
    pub max_depth: usize,
    /// Time allowed for one request, body upload included (503 after it).
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_REQUEST_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub request_timeout_secs: u64,
    /// Time allowed to send a request's head (request line and headers); the connection is
    /// closed after it.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_HEADER_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub header_timeout_secs: u64,
    /// Time allowed to receive the request body, from the end of the headers (408 after it).
    /// Keep it under the request timeout: a stalled upload is the client's fault (4xx), not the
    /// gateway's (503).
    #[arg(long, env = "REFERRAL_GATEWAY_BODY_TIMEOUT_SECS", default_value_t = 10)]
    pub body_timeout_secs: u64,
    /// Most decisions computed at once; more requests wait (within the timeout). 0: four per
    /// core.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_MAX_CONCURRENT_CHECKS",
        default_value_t = 0
    )]
    pub max_concurrent_checks: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the rules and profiles come from, kept for reloads: the same choice as the other
/// commands make (see [`RulesArg::load`]).
pub type RuleSource = RulesArg;

/// What every request shares. The rules are swapped whole on reload: a request loads the
/// current `Arc<RuleSet>` once, at its start, and finishes on it.
pub struct AppState {
    pub rules: ArcSwap<RuleSet>,
    pub rule_source: RuleSource,
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub timeout: Duration,
    pub body_timeout: Duration,
    pub metrics: metrics::Metrics,
    /// False once shutdown has begun: `/health` then answers 503.
    pub ready: AtomicBool,
    /// The address the server is bound to.
    pub listen: String,
    /// Decisions running at once are bounded: the engine is CPU-bound, and a flood of large
    /// Bundles then queues (and times out with 503) instead of taking all memory.
    pub engine_slots: Arc<tokio::sync::Semaphore>,
    /// When the server started, as a FHIR `dateTime`.
    pub started: String,
}

impl AppState {
    pub fn new(rules: RuleSet, rule_source: RuleSource, args: &ServeArgs, listen: String) -> Self {
        let metrics = metrics::Metrics::default();
        metrics.set_rules_loaded(rules.rules.len());
        Self {
            rules: ArcSwap::from_pointee(rules),
            rule_source,
            limits: Limits {
                max_bundle_entries: args.max_bundle_entries,
                max_depth: args.max_depth,
            },
            max_body_bytes: args.max_body_bytes,
            timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
            metrics,
            ready: AtomicBool::new(true),
            listen,
            engine_slots: Arc::new(tokio::sync::Semaphore::new(
                match args.max_concurrent_checks {
                    0 => 4 * std::thread::available_parallelism().map_or(2, |n| n.get()),
                    n => n,
                },
            )),
            started: fhir_now(),
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

/// Runs `serve` until SIGTERM or Ctrl-C; returns the process exit status.
pub fn serve(args: &ServeArgs, rules: &RulesArg) -> u8 {
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

async fn run(args: &ServeArgs, source: RuleSource) -> u8 {
    let rules = match source.load() {
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
    let rule_count = rules.rules.len();
    let state = Arc::new(AppState::new(rules, source, args, addr.clone()));
    let app = routes::router(state.clone());
    tracing::info!(
        listen = %addr,
        rules = rule_count,
        rules_from = %state.rule_source,
        profiles = state.rules.load().conformance.profiles.len(),
        "referral-gateway serving"
    );
    // The one line on stdout: scripts and tests read the bound address from it.
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();

    let shutdown = signals.run(state.clone());
    let header_timeout = Duration::from_secs(args.header_timeout_secs.max(1));
    server::serve(listener, app, header_timeout, shutdown).await;
    tracing::info!("stopped");
    0
}
