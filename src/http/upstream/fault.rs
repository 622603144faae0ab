//! An upstream fault as the caller sees it (contract §7): the deadline passed → 504; refused,
//! reset or a 5xx → 502; the breaker open → 503; each with an OperationOutcome of code
//! `transient` and a `Retry-After`.

use crate::http::negotiate::Reply;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

/// Seconds a caller is asked to wait after a 502 or 504.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The whole upstream deadline passed (retries included).
    Timeout { secs: u64 },
    /// No answer: refused, reset, a broken body, a name that does not resolve.
    Unreachable(String),
    /// The upstream answered a 5xx.
    ServerError(u16),
    /// The upstream answered something that is not FHIR JSON.
    NotFhir(String),
    /// The breaker is open: the upstream was not called.
    Open { retry_after: Duration },
    /// No token could be had for the upstream.
    Credentials(String),
}

impl Fault {
    pub fn status(&self) -> StatusCode {
        match self {
            Fault::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Fault::Open { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// Short, and free of patient data and tokens: it goes into logs, metrics and records.
    pub fn reason(&self) -> String {
        match self {
            Fault::Timeout { secs } => format!("no answer from the upstream within {secs} s"),
            Fault::Unreachable(why) => format!("the upstream could not be reached: {why}"),
            Fault::ServerError(s) => format!("the upstream answered {s}"),
            Fault::NotFhir(why) => format!("the upstream's answer is not FHIR JSON: {why}"),
            Fault::Open { .. } => {
                "the upstream is failing: the circuit breaker is open, the upstream was not called"
                    .to_string()
            }
            Fault::Credentials(why) => format!("no credentials for the upstream: {why}"),
        }
    }

    /// A label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Timeout { .. } => "timeout",
            Fault::Unreachable(_) => "unreachable",
            Fault::ServerError(_) => "server-error",
            Fault::NotFhir(_) => "not-fhir",
            Fault::Open { .. } => "breaker-open",
            Fault::Credentials(_) => "credentials",
        }
    }

    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Fault::Open { retry_after } => retry_after.as_secs_f64().ceil().max(1.0) as u64,
            _ => RETRY_AFTER_SECS,
        }
    }

    /// The answer to the caller; `what` says what was (not) done, e.g. whether the order may
    /// have been created.
    pub fn answer(&self, what: &str) -> Response {
        let body = json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": "transient",
                "details": { "text": format!("{} {what}", capitalised(&self.reason())) },
                "diagnostics": format!("upstream fault: {}", self.kind()),
            }]
        });
        let mut res = Reply {
            status: self.status(),
            body,
        }
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&self.retry_after_secs().to_string()) {
            res.headers_mut().insert(RETRY_AFTER, v);
        }
        res
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}
