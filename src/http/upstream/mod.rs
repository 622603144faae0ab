//! The inline gateway (contract §7): what the gateway accepts goes on to the order-comms / RIS
//! FHIR server (the *upstream*), what it rejects never arrives, and reads pass through.
//!
//! - [`client`]: the one way to call the upstream — pooled keep-alive connections (reqwest),
//!   one deadline per request with its retries inside it, retries for idempotent calls only,
//!   the circuit breaker and the credentials;
//! - [`breaker`]: the circuit breaker (opens after 5 consecutive failures, probes back);
//! - [`credentials`]: a static bearer token, or SMART Backend Services client credentials;
//! - [`jwk`]: the SMART client key given as a JWK (RSA or EC P-384), as the DER jsonwebtoken reads;
//! - [`fault`]: an upstream fault as the caller sees it (502 / 503 / 504 + OperationOutcome);
//! - [`forward`]: accepted orders as conditional creates, batches and transactions;
//! - [`proxy`]: reads, searches, updates and patches passed through;
//! - [`rewrite`]: the upstream's URLs rewritten onto the gateway's public base.

pub mod breaker;
pub mod client;
pub mod credentials;
pub mod fault;
pub mod forward;
pub mod jwk;
pub mod proxy;
pub mod rewrite;

pub use client::Upstream;

use serde_json::{json, Value};

/// The CapabilityStatement interactions of a type with an upstream: `create` of orders
/// (checked, then forwarded), reads, history and search passed through, updates of orders.
pub fn interactions(resource_type: &str, up: &Upstream) -> Vec<Value> {
    let base = up.base();
    let mut out = Vec::new();
    if resource_type == "ServiceRequest" {
        out.push(json!({"code": "create", "documentation": format!("Checked against the referral guidance: rejected 422 (nothing forwarded); accepted, or redirected to a pathway that forwards, created at {base} as a conditional create (If-None-Exist), with the upstream's status, Location (on this gateway), ETag and body as Prefer asks; X-Consult-Id.")}));
    }
    for (code, doc) in [
        ("read", "Passed through to the upstream."),
        ("vread", "Passed through to the upstream."),
        ("history-instance", "Passed through to the upstream."),
        (
            "search-type",
            "Passed through to the upstream; paging links on this gateway.",
        ),
    ] {
        out.push(json!({"code": code, "documentation": doc}));
    }
    if resource_type == "ServiceRequest" {
        out.push(json!({"code": "update", "documentation": "Passed through to the upstream (e.g. status revoked to cancel an order)."}));
        out.push(json!({"code": "patch", "documentation": "Passed through to the upstream."}));
    }
    out
}
pub use fault::Fault;

/// The upstream's configuration (the command line's `serve` flags convert into it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamArgs {
    /// Base URL of the FHIR R4 server accepted orders are forwarded to (contract §7). Without
    /// it the gateway only decides (§4).
    pub upstream: Option<String>,
    /// The whole upstream deadline of one request, retries included (504 after it). Must be
    /// shorter than the request timeout.
    pub upstream_timeout_secs: u64,
    /// How long the circuit breaker stays open (answering 503 at once) before it lets one
    /// request probe the upstream again.
    pub upstream_breaker_secs: u64,
    /// The gateway's public base URL, onto which the upstream's `Location` and links are
    /// rewritten (default: `http://` + the request's `Host`).
    pub public_base: Option<String>,
    /// A static bearer token for the upstream.
    pub upstream_token: Option<String>,
    /// SMART Backend Services: the client id registered with the upstream's authorisation
    /// server.
    pub upstream_client_id: Option<String>,
    /// SMART Backend Services: the private key (PEM file; RSA signs RS384, EC P-384 signs
    /// ES384) of the client assertion.
    pub upstream_key: Option<std::path::PathBuf>,
    /// SMART Backend Services: the `kid` of the key, as registered in the client's JWKS.
    pub upstream_key_id: Option<String>,
    /// SMART Backend Services: the token endpoint.
    pub upstream_token_url: Option<String>,
    /// SMART Backend Services: the scopes asked for.
    pub upstream_scope: String,
}
