//! Prometheus metrics of `GET /metrics`, in the text exposition format, written by hand:
//! requests by route and status, decisions by decision and status, rule hits by rule id, a
//! latency histogram per route, and the state of the rules.
//!
//! [`track`] records each request and adds its decisions and rule ids to the request's log
//! span. Labels are bounded: routes are the router's patterns, methods the standard ones,
//! decisions three codes, rule ids those of the rule files.

use super::AppState;
use crate::engine::{Checked, DecisionRecord, DecisionSink, Kept, SinkFuture};
use crate::finding::Decision;
use crate::outcome::response::status_of;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The metrics are the engine's first decision sink: every decided call is counted by route,
/// decision and rule, whichever front end made it. Counting cannot fail.
impl DecisionSink for Metrics {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn record<'a>(&'a self, record: &'a DecisionRecord) -> SinkFuture<'a> {
        self.record_decisions(record.caller.route(), &Decided::of(&record.checked));
        Box::pin(std::future::ready(Ok(Kept::Seen)))
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Count per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// (method, route, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (route, decision, status of the decision) → ServiceRequests.
    decisions: BTreeMap<(String, &'static str, u16), u64>,
    /// rule id → times fired.
    rule_hits: BTreeMap<String, u64>,
    /// route → latency.
    latency: BTreeMap<String, Histogram>,
    /// (CDS service id, rule id, feedback outcome) → CDS Hooks feedback items.
    cds_feedback: BTreeMap<(String, String, String), u64>,
    /// Consult-store commits a request waited for: latency of those that committed, and the
    /// failures.
    commits: Histogram,
    commit_failures: u64,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    rules_loaded: AtomicU64,
    in_flight: AtomicU64,
}

/// What a request decided: added to the response's extensions by the handlers.
#[derive(Debug, Clone, Default)]
pub struct Decided {
    /// Each ServiceRequest's decision with the status it maps to (200, 422, 400).
    pub decisions: Vec<(Decision, u16)>,
    /// Ids of the rules that fired, per request, in order.
    pub rules: Vec<String>,
}

impl Decided {
    pub fn of(checked: &Checked) -> Self {
        let mut d = Decided::default();
        for r in checked.requests() {
            d.decisions.push((r.decision, status_of(r)));
            d.rules.extend(r.fired.iter().cloned());
        }
        d
    }

    /// For the log: `rejected`, or for several requests `accepted=2,redirected=1`.
    pub fn summary(&self) -> String {
        if let [(d, _)] = self.decisions.as_slice() {
            return d.code().to_string();
        }
        [Decision::Accepted, Decision::Rejected, Decision::Redirected]
            .iter()
            .filter_map(|d| {
                let n = self.decisions.iter().filter(|(x, _)| x == d).count();
                (n > 0).then(|| format!("{}={n}", d.code()))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// For the log: the distinct rule ids that fired, sorted.
    pub fn rule_ids(&self) -> String {
        let mut ids: Vec<&str> = self.rules.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.join(",")
    }
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One HTTP request, with its latency.
    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut c = self.counts();
        *c.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        c.latency
            .entry(route.to_string())
            .or_default()
            .observe(seconds);
    }

    /// The decisions of one call and the rules that fired (as the engine's sink, below).
    pub fn record_decisions(&self, route: &str, d: &Decided) {
        let mut c = self.counts();
        for (decision, status) in &d.decisions {
            *c.decisions
                .entry((route.to_string(), decision.code(), *status))
                .or_default() += 1;
        }
        for id in &d.rules {
            match c.rule_hits.get_mut(id) {
                Some(n) => *n += 1,
                None => {
                    c.rule_hits.insert(id.clone(), 1);
                }
            }
        }
    }

    /// One commit to the consult store (contract §6), as the request waited for it.
    pub fn record_commit(&self, seconds: f64, ok: bool) {
        let mut c = self.counts();
        if ok {
            c.commits.observe(seconds);
        } else {
            c.commit_failures += 1;
        }
    }

    /// One CDS Hooks feedback item. Labels are bounded by the caller: service ids of the
    /// discovery document, rule ids of the rule files, outcomes `accepted` / `overridden`.
    pub fn record_cds_feedback(&self, service: &str, rule: &str, outcome: &str) {
        *self
            .counts()
            .cds_feedback
            .entry((service.to_string(), rule.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    pub fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_rules_loaded(&self, n: usize) {
        self.rules_loaded.store(n as u64, Ordering::Relaxed);
    }

    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let c = self.counts();
        let _ = writeln!(
            out,
            "# HELP referral_gateway_build_info The running version.\n# TYPE referral_gateway_build_info gauge\nreferral_gateway_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(out, "# HELP referral_gateway_http_requests_total HTTP requests by method, route and status.\n# TYPE referral_gateway_http_requests_total counter");
        for ((method, route, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "referral_gateway_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(out, "# HELP referral_gateway_decisions_total ServiceRequests decided, by route, decision and the status the decision maps to.\n# TYPE referral_gateway_decisions_total counter");
        for ((route, decision, status), n) in &c.decisions {
            let _ = writeln!(
                out,
                "referral_gateway_decisions_total{{route=\"{}\",decision=\"{decision}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(out, "# HELP referral_gateway_rule_hits_total Times each guidance rule fired.\n# TYPE referral_gateway_rule_hits_total counter");
        for (rule, n) in &c.rule_hits {
            let _ = writeln!(
                out,
                "referral_gateway_rule_hits_total{{rule=\"{}\"}} {n}",
                escape(rule)
            );
        }
        let _ = writeln!(out, "# HELP referral_gateway_cds_feedback_total CDS Hooks card feedback, by service, guidance rule and outcome.\n# TYPE referral_gateway_cds_feedback_total counter");
        for ((service, rule, outcome), n) in &c.cds_feedback {
            let _ = writeln!(
                out,
                "referral_gateway_cds_feedback_total{{service=\"{}\",rule=\"{}\",outcome=\"{}\"}} {n}",
                escape(service),
                escape(rule),
                escape(outcome)
            );
        }
        let _ = writeln!(out, "# HELP referral_gateway_request_duration_seconds Time from request to response, by route.\n# TYPE referral_gateway_request_duration_seconds histogram");
        for (route, h) in &c.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "referral_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "referral_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\nreferral_gateway_request_duration_seconds_sum{{route=\"{route}\"}} {}\nreferral_gateway_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP referral_gateway_consult_commit_seconds Time a request waited for its consults to be committed to the store (group commit).\n# TYPE referral_gateway_consult_commit_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(c.commits.counts.iter()) {
            cumulative += n;
            let _ = writeln!(
                out,
                "referral_gateway_consult_commit_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "referral_gateway_consult_commit_seconds_bucket{{le=\"+Inf\"}} {}\nreferral_gateway_consult_commit_seconds_sum {}\nreferral_gateway_consult_commit_seconds_count {}",
            c.commits.count, c.commits.sum, c.commits.count
        );
        let _ = writeln!(
            out,
            "# HELP referral_gateway_consult_commit_failures_total Commits to the consult store that failed (the request was answered 503).\n# TYPE referral_gateway_consult_commit_failures_total counter\nreferral_gateway_consult_commit_failures_total {}",
            c.commit_failures
        );
        drop(c);
        let (ok, failed) = self.reloads();
        let _ = writeln!(
            out,
            "# HELP referral_gateway_rules_loaded Guidance rules in force.\n# TYPE referral_gateway_rules_loaded gauge\nreferral_gateway_rules_loaded {}",
            self.rules_loaded.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP referral_gateway_rule_reloads_total Rule reloads (SIGHUP) by result.\n# TYPE referral_gateway_rule_reloads_total counter\nreferral_gateway_rule_reloads_total{{result=\"ok\"}} {ok}\nreferral_gateway_rule_reloads_total{{result=\"failed\"}} {failed}"
        );
        let _ = writeln!(
            out,
            "# HELP referral_gateway_requests_in_flight Requests being handled.\n# TYPE referral_gateway_requests_in_flight gauge\nreferral_gateway_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out
    }
}

/// A label value in the exposition format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Methods are label values: anything non-standard is counted as `other`.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts a request in flight until dropped (also when the client goes away mid-request).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(state: &'a AppState) -> Self {
        state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&state.metrics.in_flight)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts the request, and puts its decisions and rule ids in the request's log span (the
/// trace layer's `request` span), so that the line logging the response carries them.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let in_flight = InFlight::enter(&state);
    let res = next.run(req).await;
    drop(in_flight);
    let decided = res.extensions().get::<Decided>();
    if let Some(d) = decided {
        let span = tracing::Span::current();
        span.record("decision", d.summary());
        span.record("rules", d.rule_ids());
    }
    state.metrics.record_request(
        method,
        &route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_and_histogram() {
        let m = Metrics::default();
        let d = Decided {
            decisions: vec![(Decision::Rejected, 422), (Decision::Accepted, 200)],
            rules: vec!["US05".into(), "US05".into()],
        };
        m.record_request("POST", "/", 200, 0.003);
        m.record_decisions("/", &d);
        m.record_request("POST", "/", 200, 20.0);
        let text = m.render();
        assert!(text.contains(
            "referral_gateway_http_requests_total{method=\"POST\",route=\"/\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "referral_gateway_decisions_total{route=\"/\",decision=\"rejected\",status=\"422\"} 1"
        ));
        assert!(text.contains("referral_gateway_rule_hits_total{rule=\"US05\"} 2"));
        assert!(text.contains(
            "referral_gateway_request_duration_seconds_bucket{route=\"/\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains(
            "referral_gateway_request_duration_seconds_bucket{route=\"/\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "referral_gateway_request_duration_seconds_bucket{route=\"/\",le=\"+Inf\"} 2"
        ));
        m.record_cds_feedback("imaging-order-sign", "US05", "overridden");
        assert!(m.render().contains(
            "referral_gateway_cds_feedback_total{service=\"imaging-order-sign\",rule=\"US05\",outcome=\"overridden\"} 1"
        ));
        assert_eq!(d.summary(), "accepted=1,rejected=1");
        assert_eq!(d.rule_ids(), "US05");
    }
}
