//! The upstream client: every call to the upstream FHIR server goes through
//! [`Upstream::send`], which applies the breaker, the credentials, the retries and the one
//! deadline of the request.

use super::breaker::{Breaker, BreakerState};
use super::credentials::Credentials;
use super::fault::Fault;
use super::UpstreamArgs;
use crate::http::outbound::pooled_client;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Retries after the first attempt, for idempotent calls only (contract §7).
pub const MAX_RETRIES: u32 = 2;
/// The first retry waits this long, the next twice as long (within the deadline).
const BACKOFF: Duration = Duration::from_millis(100);

pub struct Upstream {
    http: reqwest::Client,
    /// The FHIR base, without a trailing slash.
    base: String,
    deadline: Duration,
    breaker: Breaker,
    credentials: Credentials,
    public_base: Option<String>,
    stats: Stats,
}

/// One call to the upstream.
pub struct Call<'a> {
    pub method: Method,
    /// Path and query relative to the base, starting with `/` (or empty for the base itself).
    pub path: &'a str,
    /// Extra headers (`If-None-Exist`, `If-Match`, `Prefer`, `Content-Type`, ...).
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Bytes>,
    /// Reads and conditional creates may be sent again; anything else is sent once.
    pub idempotent: bool,
}

/// The upstream's answer (any status below 500).
#[derive(Debug)]
pub struct Answered {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Attempts made (1 + retries).
    pub attempts: u32,
}

impl Answered {
    /// The body as JSON; `None` for an empty body.
    pub fn json(&self) -> Result<Option<serde_json::Value>, Fault> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body)
            .map(Some)
            .map_err(|e| Fault::NotFhir(e.to_string()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Counters and the latency histogram of `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    ok: AtomicU64,
    faults: Mutex<Vec<(&'static str, u64)>>,
    retries: AtomicU64,
    latency: Mutex<Histogram>,
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Upstream {
    /// The upstream the flags describe; `Ok(None)` without `--upstream`. `request_timeout` is
    /// the gateway's own: the upstream deadline must be shorter (start-up refuses otherwise).
    pub fn from_args(
        args: &UpstreamArgs,
        request_timeout: Duration,
    ) -> Result<Option<Self>, String> {
        let Some(url) = &args.upstream else {
            return Ok(None);
        };
        let parsed =
            reqwest::Url::parse(url).map_err(|e| format!("--upstream {url} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(format!("--upstream {url} is not an http(s) URL"));
        }
        let deadline = Duration::from_secs(args.upstream_timeout_secs);
        if deadline.is_zero() || deadline >= request_timeout {
            return Err(format!(
                "--upstream-timeout-secs ({}) must be at least 1 and shorter than --request-timeout-secs ({}): the gateway must have time left to answer when the upstream does not",
                args.upstream_timeout_secs,
                request_timeout.as_secs()
            ));
        }
        if let Some(public) = &args.public_base {
            reqwest::Url::parse(public)
                .map_err(|e| format!("--public-base-url {public} is not a URL: {e}"))?;
        }
        let credentials = Credentials::from_args(args)?;
        let http = pooled_client(deadline)
            .map_err(|e| format!("cannot build the upstream HTTP client: {e}"))?;
        Ok(Some(Self {
            http,
            base: url.trim_end_matches('/').to_string(),
            deadline,
            breaker: Breaker::new(
                Duration::from_secs(args.upstream_breaker_secs.max(1)),
                deadline + Duration::from_secs(1),
            ),
            credentials,
            public_base: args
                .public_base
                .as_ref()
                .map(|p| p.trim_end_matches('/').to_string()),
            stats: Stats::default(),
        }))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The gateway's public base for this request: the configured one, else from `Host`.
    pub fn gateway_base(&self, headers: &HeaderMap) -> String {
        if let Some(p) = &self.public_base {
            return p.clone();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
            })
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    /// Sends a call within the request's upstream deadline, retrying idempotent calls.
    pub async fn send(&self, call: Call<'_>) -> Result<Answered, Fault> {
        let started = Instant::now();
        if let Err(wait) = self.breaker.admit() {
            let fault = Fault::Open { retry_after: wait };
            self.count_fault(&fault);
            return Err(fault);
        }
        let result = match tokio::time::timeout(self.deadline, self.attempts(&call)).await {
            Ok(r) => r,
            Err(_) => Err(Fault::Timeout {
                secs: self.deadline.as_secs(),
            }),
        };
        self.observe(started.elapsed());
        match &result {
            Ok(_) => {
                self.breaker.succeeded();
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
            }
            // A fault of our own credentials says nothing about the upstream's health.
            Err(f @ Fault::Credentials(_)) => self.count_fault(f),
            Err(f) => {
                self.breaker.failed(&f.reason());
                self.count_fault(f);
                tracing::warn!(fault = %f.reason(), method = %call.method, "upstream call failed");
            }
        }
        result
    }

    async fn attempts(&self, call: &Call<'_>) -> Result<Answered, Fault> {
        let tries = if call.idempotent { 1 + MAX_RETRIES } else { 1 };
        let mut attempt = 0;
        let mut refreshed = false;
        let mut refresh_now = false;
        loop {
            attempt += 1;
            let token = self
                .credentials
                .bearer(&self.http, std::mem::take(&mut refresh_now))
                .await
                .map_err(Fault::Credentials)?;
            let fault = match self.once(call, token.as_deref()).await {
                // A 401 means the call was not processed: a new token, then once more.
                Ok(a)
                    if a.status == StatusCode::UNAUTHORIZED
                        && self.credentials.refreshable()
                        && !refreshed =>
                {
                    refreshed = true;
                    refresh_now = true;
                    attempt -= 1;
                    continue;
                }
                Ok(a) if a.status.is_server_error() => Fault::ServerError(a.status.as_u16()),
                // The upstream refuses the gateway itself: nothing the caller can cure.
                Ok(a) if a.status == StatusCode::UNAUTHORIZED => {
                    return Err(Fault::Credentials(
                        "the upstream refused the gateway's credentials (401)".into(),
                    ))
                }
                Ok(mut a) => {
                    a.attempts = attempt;
                    return Ok(a);
                }
                Err(f) => f,
            };
            if attempt >= tries {
                return Err(fault);
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
    }

    async fn once(&self, call: &Call<'_>, token: Option<&str>) -> Result<Answered, Fault> {
        let url = format!("{}{}", self.base, call.path);
        let mut req = self
            .http
            .request(call.method.clone(), url)
            .header(reqwest::header::ACCEPT, "application/fhir+json");
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(body) = &call.body {
            req = req.body(body.clone());
        }
        let res = req.send().await.map_err(|e| Fault::Unreachable(why(&e)))?;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.bytes().await.map_err(|e| Fault::Unreachable(why(&e)))?;
        Ok(Answered {
            status,
            headers,
            body,
            attempts: 1,
        })
    }

    fn count_fault(&self, fault: &Fault) {
        let mut faults = self.stats.faults.lock().unwrap_or_else(|e| e.into_inner());
        match faults.iter_mut().find(|(k, _)| *k == fault.kind()) {
            Some((_, n)) => *n += 1,
            None => faults.push((fault.kind(), 1)),
        }
    }

    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let mut h = self.stats.latency.lock().unwrap_or_else(|e| e.into_inner());
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The upstream's state for `/health`: `(state, sentence)`.
    pub fn health(&self) -> (&'static str, String) {
        let state = self.breaker.state();
        let (failures, last, opened) = self.breaker.report();
        let last = last
            .map(|l| format!("; last fault: {l}"))
            .unwrap_or_default();
        (
            state.as_str(),
            format!(
                "upstream {}: circuit breaker {}, {failures} consecutive failures, opened {opened} times{last}",
                self.base,
                state.as_str()
            ),
        )
    }

    /// Prometheus text: breaker state, calls by result, retries, latency.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let state = self.breaker.state();
        let _ = writeln!(out, "# HELP referral_gateway_upstream_breaker_state Circuit breaker of the upstream: 0 closed, 1 open, 2 half-open.");
        let _ = writeln!(out, "# TYPE referral_gateway_upstream_breaker_state gauge");
        let _ = writeln!(
            out,
            "referral_gateway_upstream_breaker_state{{state=\"{}\"}} {}",
            state.as_str(),
            match state {
                BreakerState::Closed => 0,
                BreakerState::Open => 1,
                BreakerState::HalfOpen => 2,
            }
        );
        let _ = writeln!(out, "# HELP referral_gateway_upstream_calls_total Upstream calls by result (a call is one request's attempts).");
        let _ = writeln!(out, "# TYPE referral_gateway_upstream_calls_total counter");
        let _ = writeln!(
            out,
            "referral_gateway_upstream_calls_total{{result=\"ok\"}} {}",
            self.stats.ok.load(Ordering::Relaxed)
        );
        for (kind, n) in self
            .stats
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "referral_gateway_upstream_calls_total{{result=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP referral_gateway_upstream_retries_total Upstream attempts sent again."
        );
        let _ = writeln!(
            out,
            "# TYPE referral_gateway_upstream_retries_total counter"
        );
        let _ = writeln!(
            out,
            "referral_gateway_upstream_retries_total {}",
            self.stats.retries.load(Ordering::Relaxed)
        );
        let h = self.stats.latency.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "# HELP referral_gateway_upstream_latency_seconds Time of upstream calls, retries included.");
        let _ = writeln!(
            out,
            "# TYPE referral_gateway_upstream_latency_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "referral_gateway_upstream_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "referral_gateway_upstream_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "referral_gateway_upstream_latency_seconds_sum {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "referral_gateway_upstream_latency_seconds_count {}",
            h.count
        );
    }
}

/// Why a call failed, without the URL's query (it may carry identifiers).
fn why(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection refused or failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else if e.is_request() {
        "the request could not be sent (connection reset?)"
    } else {
        "transport error"
    };
    kind.to_string()
}
