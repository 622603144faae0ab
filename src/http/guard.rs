//! The security middleware over [`crate::auth`]: what each route needs (contract §8), checked
//! before the handler.
//!
//! | route | needs |
//! |---|---|
//! | `/health*`, `/metadata`, `GET` conformance resources, `GET /cds-services`, CORS preflights | nothing |
//! | `POST /cds-services/*` | the CDS Hooks JWT of a trusted issuer |
//! | `POST /ServiceRequest`, `POST /` | a bearer token with `system/ServiceRequest.c` |
//! | `$validate`, `POST $explain`, `GET /ServiceRequest*` | `system/ServiceRequest.r` |
//! | `PUT`/`PATCH /ServiceRequest/*` | `system/ServiceRequest.u` |
//! | `/AuditEvent*`, `/Provenance*`, `/$stats`, `GET $explain?consult=` | `system/AuditEvent.rs` |
//! | `/console*` | a console session (`--console-client-id`), else a bearer token |
//! | anything else (`/metrics` included) | a valid bearer token |
//!
//! Unknown routes need a token too: what is not listed as open is closed. Each scheme is
//! enforced only when configured (`--auth-issuer`, `--cds-trusted-issuers`); start-up refuses a
//! non-loopback address without both unless `--insecure`.

use super::negotiate::{CurrentRules, NotFhir, Reply};
use crate::auth::bearer::Refusal;
use crate::auth::scope::Need;
use crate::auth::Gate;
use crate::finding::{Finding, FindingId, IssueType, Severity};
use crate::outcome::operation_outcome::plain_outcome;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    Open,
    /// A bearer token, with this scope when `Some`.
    Bearer(Option<Need>),
    CdsJwt,
    /// `/console*`: a console session (`crate::auth::console_session`) when console sign-in is
    /// configured, else a bearer token.
    Console,
}

/// The conformance resource types served openly.
const OPEN_TYPES: [&str; 6] = [
    "StructureDefinition",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
    "SearchParameter",
    "OperationDefinition",
];

/// The route table of contract §8.
pub fn guard_for(method: &Method, path: &str) -> Guard {
    let reading = method == Method::GET || method == Method::HEAD;
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if method == Method::OPTIONS {
        // CORS preflights never carry credentials; the routes answer them without data.
        return Guard::Open;
    }
    if path == "/health" || path.starts_with("/health/") || path == "/metadata" {
        return Guard::Open;
    }
    if reading && OPEN_TYPES.contains(&first) {
        return Guard::Open;
    }
    if path == "/cds-services" || path == "/cds-services/" {
        return if reading { Guard::Open } else { Guard::CdsJwt };
    }
    if first == "cds-services" {
        return Guard::CdsJwt;
    }
    if first == "console" {
        return Guard::Console;
    }
    // `GET /ServiceRequest/$explain?consult=` explains a past consult: it reads the record.
    if reading && path.ends_with("/$explain") {
        return Guard::Bearer(Some(Need::READ_CONSULTS));
    }
    if path.ends_with("/$validate") || path.ends_with("/$explain") {
        return Guard::Bearer(Some(Need::READ_ORDERS));
    }
    if path == "/$stats" || first == "AuditEvent" || first == "Provenance" {
        return Guard::Bearer(Some(Need::READ_CONSULTS));
    }
    if first == "ServiceRequest" {
        return Guard::Bearer(Some(match *method {
            Method::POST if path == "/ServiceRequest" => Need::CREATE_ORDERS,
            Method::PUT | Method::PATCH | Method::DELETE => Need::UPDATE_ORDERS,
            _ => Need::READ_ORDERS,
        }));
    }
    if path == "/" && method == Method::POST {
        return Guard::Bearer(Some(Need::CREATE_ORDERS));
    }
    Guard::Bearer(None)
}

pub use super::extensions::ClientAddr;

/// The token of `Authorization: Bearer TOKEN` (`None`: no such header; `Some("")`: another
/// scheme or an empty token).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().unwrap_or("");
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    Some(if scheme.eq_ignore_ascii_case("bearer") {
        token.trim()
    } else {
        ""
    })
}

/// The middleware (`from_fn_with_state` with the [`Gate`]).
pub async fn guard(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client_addr = gate.proxies.client_addr(peer, req.headers());
    if let Some(addr) = client_addr {
        req.extensions_mut().insert(ClientAddr(addr));
    }
    let rules = req.extensions().get::<CurrentRules>().cloned();
    let path = req.uri().path().to_string();
    let guard = match guard_for(req.method(), &path) {
        Guard::Console if gate.console.is_none() => Guard::Bearer(None),
        g => g,
    };
    let caller = match guard {
        Guard::Open => None,
        // The console's own layer asks for its session.
        Guard::Console => None,
        Guard::Bearer(need) => match &gate.bearer {
            None => None,
            Some(verifier) => {
                let Some(token) = bearer_token(req.headers()) else {
                    return refuse(&gate, "bearer", Refusal::Missing, rules.as_ref(), false);
                };
                let base = gate
                    .proxies
                    .base_url(peer, req.headers(), gate.tls.is_some());
                let audience = verifier
                    .audience()
                    .map(str::to_string)
                    .or(base)
                    .unwrap_or_default();
                let caller = if token.is_empty() {
                    Err(Refusal::Malformed)
                } else {
                    verifier.verify(token, &audience).await
                };
                match caller {
                    Err(r) => return refuse(&gate, "bearer", r, rules.as_ref(), false),
                    Ok(caller) => {
                        if let Some(need) = need {
                            if !need.granted_by(&caller.scopes) {
                                gate.failures.add("bearer", "scope");
                                tracing::warn!(
                                    scheme = "bearer",
                                    reason = "scope",
                                    client = %caller.client_id,
                                    needed = %need.scope(),
                                    "request refused: the token lacks the scope"
                                );
                                return forbidden(need, rules.as_ref());
                            }
                        }
                        Some(caller)
                    }
                }
            }
        },
        Guard::CdsJwt => match &gate.cds {
            None => None,
            Some(verifier) => {
                let Some(token) = bearer_token(req.headers()) else {
                    return refuse(&gate, "cds", Refusal::Missing, rules.as_ref(), true);
                };
                let base = gate
                    .proxies
                    .base_url(peer, req.headers(), gate.tls.is_some())
                    .unwrap_or_default();
                let mut urls = vec![format!("{base}{path}")];
                if let Some(service) = path.strip_suffix("/feedback") {
                    urls.push(format!("{base}{service}"));
                }
                let verified = if token.is_empty() {
                    Err(Refusal::Malformed)
                } else {
                    verifier.verify(token, &urls).await
                };
                match verified {
                    Err(r) => return refuse(&gate, "cds", r, rules.as_ref(), true),
                    Ok((caller, trust)) => {
                        req.extensions_mut().insert(trust);
                        Some(caller)
                    }
                }
            }
        },
    };
    if let Some(limits) = &gate.rate {
        let key = match (&caller, client_addr) {
            (Some(c), _) => c.client_id.clone(),
            (None, Some(addr)) => format!("address {addr}"),
            (None, None) => "unknown".to_string(),
        };
        if let Err(wait) = limits.check(&key) {
            gate.rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(client = %key, "request refused: over the client's rate limit");
            return too_many(wait, rules.as_ref(), path.starts_with("/cds-services"));
        }
    }
    if let Some(caller) = caller {
        tracing::Span::current().record("client", caller.client_id.as_str());
        req.extensions_mut().insert(caller);
    }
    next.run(req).await
}

/// A FHIR OperationOutcome answer with one issue.
fn outcome(
    status: StatusCode,
    id: FindingId,
    code: IssueType,
    text: String,
    rules: Option<&CurrentRules>,
) -> Response {
    let finding = Finding::new(id, Severity::Error, code, text);
    let body = match rules {
        Some(CurrentRules(r)) => plain_outcome(&[finding], &r.site),
        None => json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code.as_str(), "details": {"text": finding.text}}],
        }),
    };
    Reply { status, body }.into_response()
}

/// A CDS Hooks error: JSON, as the service's other errors.
fn cds_error(status: StatusCode, text: &str) -> Response {
    let mut res = (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        serde_json::to_vec(&json!({ "error": text })).unwrap_or_default(),
    )
        .into_response();
    res.extensions_mut().insert(NotFhir);
    res
}

/// 401 (or 503 when the keys cannot be had), counted and logged by reason.
fn refuse(
    gate: &Gate,
    scheme: &'static str,
    why: Refusal,
    rules: Option<&CurrentRules>,
    cds: bool,
) -> Response {
    gate.failures.add(scheme, why.label());
    tracing::warn!(
        scheme,
        reason = why.label(),
        "request refused: authentication failed"
    );
    if why.unavailable() {
        let mut res = if cds {
            cds_error(StatusCode::SERVICE_UNAVAILABLE, why.explain())
        } else {
            outcome(
                StatusCode::SERVICE_UNAVAILABLE,
                FindingId::HttpAuthKeysUnavailable,
                IssueType::Transient,
                why.explain().to_string(),
                rules,
            )
        };
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("10"));
        return res;
    }
    let mut res = if cds {
        cds_error(StatusCode::UNAUTHORIZED, why.explain())
    } else {
        outcome(
            StatusCode::UNAUTHORIZED,
            FindingId::HttpAuthFailed,
            IssueType::Login,
            why.explain().to_string(),
            rules,
        )
    };
    // RFC 6750 §3.1: no error code when the request carried no credentials at all.
    let challenge = if why == Refusal::Missing {
        "Bearer realm=\"referral-gateway\"".to_string()
    } else {
        format!(
            "Bearer realm=\"referral-gateway\", error=\"invalid_token\", error_description=\"{}\"",
            why.label()
        )
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

fn forbidden(need: Need, rules: Option<&CurrentRules>) -> Response {
    let scope = need.scope();
    let mut res = outcome(
        StatusCode::FORBIDDEN,
        FindingId::HttpScopeMissing, IssueType::Forbidden,
        format!("The token does not grant {scope} (SMART v1: the .read or .write form), which this request needs."),
        rules,
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer realm=\"referral-gateway\", error=\"insufficient_scope\", scope=\"{scope}\""
    )) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

fn too_many(wait: Duration, rules: Option<&CurrentRules>, cds: bool) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let text = format!("Too many requests from this client: try again in {secs} s.");
    let mut res = if cds {
        cds_error(StatusCode::TOO_MANY_REQUESTS, &text)
    } else {
        outcome(
            StatusCode::TOO_MANY_REQUESTS,
            FindingId::HttpRateLimited,
            IssueType::Throttled,
            text,
            rules,
        )
    };
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table() {
        let g = |m: Method, p: &str| guard_for(&m, p);
        assert_eq!(g(Method::GET, "/health"), Guard::Open);
        assert_eq!(g(Method::GET, "/health/ready"), Guard::Open);
        assert_eq!(g(Method::GET, "/metadata"), Guard::Open);
        assert_eq!(g(Method::GET, "/StructureDefinition/x"), Guard::Open);
        assert_eq!(g(Method::GET, "/OperationDefinition"), Guard::Open);
        assert_eq!(g(Method::POST, "/StructureDefinition"), Guard::Bearer(None));
        assert_eq!(g(Method::GET, "/cds-services"), Guard::Open);
        assert_eq!(g(Method::POST, "/cds-services/x"), Guard::CdsJwt);
        assert_eq!(g(Method::POST, "/cds-services/x/feedback"), Guard::CdsJwt);
        assert_eq!(g(Method::OPTIONS, "/cds-services/x"), Guard::Open);
        let need = |n| Guard::Bearer(Some(n));
        assert_eq!(
            g(Method::POST, "/ServiceRequest"),
            need(Need::CREATE_ORDERS)
        );
        assert_eq!(g(Method::POST, "/"), need(Need::CREATE_ORDERS));
        assert_eq!(g(Method::POST, "/$validate"), need(Need::READ_ORDERS));
        assert_eq!(
            g(Method::POST, "/ServiceRequest/$validate"),
            need(Need::READ_ORDERS)
        );
        assert_eq!(
            g(Method::POST, "/ServiceRequest/$explain"),
            need(Need::READ_ORDERS)
        );
        assert_eq!(
            g(Method::GET, "/ServiceRequest/$explain"),
            need(Need::READ_CONSULTS)
        );
        assert_eq!(g(Method::GET, "/ServiceRequest/1"), need(Need::READ_ORDERS));
        assert_eq!(
            g(Method::PUT, "/ServiceRequest/1"),
            need(Need::UPDATE_ORDERS)
        );
        assert_eq!(g(Method::GET, "/AuditEvent"), need(Need::READ_CONSULTS));
        assert_eq!(g(Method::GET, "/$stats"), need(Need::READ_CONSULTS));
        assert_eq!(g(Method::GET, "/Provenance"), need(Need::READ_CONSULTS));
        assert_eq!(g(Method::GET, "/metrics"), Guard::Bearer(None));
        assert_eq!(g(Method::GET, "/anything/else"), Guard::Bearer(None));
    }

    #[test]
    fn bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), Some(""));
    }
}
