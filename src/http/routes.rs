//! The endpoints (contract §4) and the layers around them.
//!
//! Each POST endpoint reads the body in the negotiated format and makes one call of the engine
//! service with the rules loaded at the start of the request; its translation checks that the
//! resource type suits the endpoint and builds the answer.

use super::body_limit;
use super::capability::{capability_statement, CONFORMANCE_SEARCH_PARAMS, CONFORMANCE_TYPES};
use super::consult::{consult_header, Who};
use super::error::ApiError;
use super::metrics::{self, Decided};
use super::negotiate::{self, query_params, CurrentRules, FhirBody, Reply, SentFormat};
use super::validate::{self, ValidateParams};
use super::AppState;
use crate::engine::{Answered, Call, Caller, Checked, EngineError, Purpose};
use crate::http::upstream::{forward, proxy};
use crate::outcome::response::{answer, outcome_answer, unusable_answer, validate_answer};
use crate::parse::{Input, InputKind, Unusable};
use crate::rules::RuleSet;
use crate::store::record;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, State};
use axum::http::header::{CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{json, Value};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

/// What a POST endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// `POST /ServiceRequest`
    Create,
    /// `POST /`
    System,
    /// `POST /$validate`, `POST /ServiceRequest/$validate`, with the parameters asked for
    Validate(ValidateParams),
    /// `POST /ServiceRequest/{id}/$validate`: one ServiceRequest, of that id if it has one
    ValidateInstance(String, ValidateParams),
}

impl Endpoint {
    /// Whether the resource sent suits the endpoint; the error says what was expected.
    fn check(&self, input: &Input) -> Result<(), ApiError> {
        // A Parameters is unwrapped by the parser: its resource's path does not start at the root.
        let wrapped = !input.root_path.steps().is_empty();
        let found = match (wrapped, input.kind) {
            (true, _) => "Parameters",
            (false, InputKind::ServiceRequest) => "ServiceRequest",
            (false, InputKind::Bundle(_)) => "Bundle",
        };
        let (endpoint, expected) = match self {
            Endpoint::Create => ("POST /ServiceRequest", "ServiceRequest"),
            Endpoint::System => ("POST /", "Bundle"),
            Endpoint::Validate(_) => return Ok(()),
            Endpoint::ValidateInstance(id, _) => {
                if input.kind != InputKind::ServiceRequest {
                    return Err(ApiError::WrongResourceType {
                        endpoint: "POST /ServiceRequest/{id}/$validate",
                        expected: "a ServiceRequest (or a Parameters holding one)",
                        found: found.to_string(),
                    });
                }
                return match input.root.get("id").and_then(Value::as_str) {
                    Some(own) if own != id => Err(ApiError::IdMismatch {
                        url_id: id.clone(),
                        resource_id: own.to_string(),
                    }),
                    _ => Ok(()),
                };
            }
        };
        if found == expected {
            Ok(())
        } else {
            Err(ApiError::WrongResourceType {
                endpoint,
                expected: match self {
                    Endpoint::Create => "a ServiceRequest",
                    _ => "a Bundle (batch, transaction or collection)",
                },
                found: found.to_string(),
            })
        }
    }
}

/// Whether the request says `Prefer: return=OperationOutcome` (RFC 7240; FHIR http.html
/// §ops). `return=minimal` and `return=representation` change nothing without an upstream
/// server (contract §4): every answer of the gateway already is its representation.
fn prefers_outcome(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().unwrap_or("").split([',', ';']).any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("return")
                    && v.trim()
                        .trim_matches('"')
                        .eq_ignore_ascii_case("OperationOutcome")
            })
        })
    })
}

/// Runs the engine on the body (one call of the engine service) and answers as the endpoint
/// does.
///
/// Orders placed (`who` given: `POST /ServiceRequest`, `POST /`) are consults: the store sink
/// commits them before the engine returns, and their ids are written onto the answer here.
async fn decide(
    endpoint: Endpoint,
    route: MatchedPath,
    body: FhirBody,
    state: &AppState,
    headers: Option<&HeaderMap>,
    who: Option<Who>,
) -> Response {
    // With an upstream, what may go ahead is forwarded (contract §7) after the decision.
    let forwarding = match (&state.upstream, headers, &endpoint) {
        (Some(up), Some(h), Endpoint::Create | Endpoint::System) => {
            Some((up.clone(), forward::Asked::from_headers(up, h)))
        }
        _ => None,
    };
    // The forwarding answers Prefer itself (and merges into the batch-response).
    let prefer_outcome = forwarding.is_none() && headers.is_some_and(prefers_outcome);
    let FhirBody {
        bytes,
        format,
        rules,
    } = body;
    let call = Call {
        caller: Caller::Fhir {
            route: route.as_str().to_string(),
        },
        purpose: if who.is_some() {
            Purpose::Order
        } else {
            Purpose::WhatIf
        },
        asker: who.map(|w| w.0).unwrap_or_default(),
        bytes,
        format,
        profiles: match &endpoint {
            Endpoint::Validate(p) | Endpoint::ValidateInstance(_, p) => p.profiles.clone(),
            _ => Vec::new(),
        },
        rules,
    };
    let translate = move |result: Result<&Checked, &Unusable>, rules: &RuleSet| {
        let site = &rules.site;
        match result {
            Err(unusable) => Ok(unusable_answer(unusable, site)),
            Ok(checked) => {
                endpoint.check(&checked.input)?;
                Ok(match endpoint {
                    Endpoint::Validate(_) | Endpoint::ValidateInstance(..) => {
                        validate_answer(checked, site)
                    }
                    Endpoint::Create | Endpoint::System if prefer_outcome => {
                        outcome_answer(checked, site)
                    }
                    Endpoint::Create | Endpoint::System => answer(checked, site),
                })
            }
        }
    };
    let mut res = match state.engine.decide(call, translate).await {
        Ok(Answered {
            mut answer,
            record,
            consult_ids,
        }) => {
            let single = record
                .as_ref()
                .is_some_and(|r| r.checked.input.kind == InputKind::ServiceRequest);
            if let Some(r) = &record {
                // The ids as the store kept them (a retry: the first consult's).
                record::stamp(&mut answer.body, &r.rules.site, &consult_ids);
            }
            let forwarded = match (&forwarding, &record) {
                (Some((up, asked)), Some(r)) => {
                    let site = &r.rules.site;
                    match r.checked.input.kind {
                        InputKind::ServiceRequest => {
                            forward::single(up, &r.checked, &answer, site, asked, &consult_ids)
                                .await
                        }
                        InputKind::Bundle(_) => {
                            forward::bundle(up, &r.checked, &answer, site, asked, &consult_ids)
                                .await
                        }
                    }
                }
                _ => None,
            };
            if let Some(fwd) = forwarded
                .as_ref()
                .and_then(|res| res.extensions().get::<forward::ForwardRecord>())
            {
                record_forwarding(state, fwd).await;
            }
            let mut res = forwarded.unwrap_or_else(|| {
                Reply {
                    status: StatusCode::from_u16(answer.status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    body: answer.body,
                }
                .into_response()
            });
            if let Some(r) = record {
                res.extensions_mut().insert(Decided::of(&r.checked));
            }
            if let ([id], true) = (consult_ids.as_slice(), single) {
                consult_header(&mut res, id);
            }
            if prefer_outcome && res.status().is_success() {
                res.headers_mut().insert(
                    HeaderName::from_static("preference-applied"),
                    HeaderValue::from_static("return=OperationOutcome"),
                );
            }
            res
        }
        Err(e) => engine_error(e).into_response(),
    };
    res.extensions_mut().insert(SentFormat(format));
    res
}

/// Adds what the upstream answered to each forwarded consult (contract §6, §7), before the
/// answer goes out. The order is upstream whatever happens here, so a failed commit does not
/// change the answer (a 503 would invite a resend of an order already placed): it is logged
/// and counted (`referral_gateway_consult_commit_failures_total`), and the consult stays as
/// decided.
async fn record_forwarding(state: &AppState, fwd: &forward::ForwardRecord) {
    let Some(sink) = &state.store else {
        return;
    };
    let results = fwd
        .0
        .iter()
        .map(|f| {
            let result = json!({
                "forwarded": f.forwarded,
                "status": f.status,
                "location": f.location,
                "fault": f.fault,
            });
            (f.consult_id.clone(), result.to_string())
        })
        .collect::<Vec<_>>();
    if results.is_empty() {
        return;
    }
    if let Err(e) = sink.commit(crate::store::Write::Forwarding(results)).await {
        tracing::error!(error = %e, "the forwarding result could not be recorded");
    }
}

/// The FHIR answer to a call the engine could not answer.
fn engine_error(e: EngineError<ApiError>) -> ApiError {
    match e {
        EngineError::FrontEnd(e) => e,
        EngineError::Closed => ApiError::Internal("the decision engine is closed".into()),
        EngineError::Failed(why) => {
            ApiError::Internal(format!("the decision engine failed: {why}"))
        }
        EngineError::Sink(e) => ApiError::NotRecorded(e.to_string()),
    }
}

async fn create(
    State(state): State<Arc<AppState>>,
    route: MatchedPath,
    headers: HeaderMap,
    who: Who,
    body: FhirBody,
) -> Response {
    decide(
        Endpoint::Create,
        route,
        body,
        &state,
        Some(&headers),
        Some(who),
    )
    .await
}

async fn system(
    State(state): State<Arc<AppState>>,
    route: MatchedPath,
    headers: HeaderMap,
    who: Who,
    body: FhirBody,
) -> Response {
    decide(
        Endpoint::System,
        route,
        body,
        &state,
        Some(&headers),
        Some(who),
    )
    .await
}

/// `$validate` at type or system level: `profile` and `mode` from the query or the Parameters.
async fn validate(
    State(state): State<Arc<AppState>>,
    route: MatchedPath,
    uri: Uri,
    body: FhirBody,
) -> Response {
    match validate::read(uri.query(), &body.bytes, body.format, &body.rules) {
        Ok(params) => decide(Endpoint::Validate(params), route, body, &state, None, None).await,
        Err(e) => e.into_response(),
    }
}

/// `$validate` at instance level: the ServiceRequest sent, which must have the URL's id if it
/// has one. Nothing is stored, so there is no stored instance to compare it with.
async fn validate_instance(
    State(state): State<Arc<AppState>>,
    route: MatchedPath,
    Path(id): Path<String>,
    uri: Uri,
    body: FhirBody,
) -> Response {
    match validate::read(uri.query(), &body.bytes, body.format, &body.rules) {
        Ok(params) => {
            decide(
                Endpoint::ValidateInstance(id, params),
                route,
                body,
                &state,
                None,
                None,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /ServiceRequest/{id}`: the gateway stores nothing, so there is nothing to read.
async fn service_request_read(Path(id): Path<String>) -> ApiError {
    ApiError::NotStored {
        resource_type: "ServiceRequest",
        id,
    }
}

/// A weak ETag of a conformance resource: a hash of its content, so that it changes when a
/// reload changes the resource and only then. (The resources carry no `meta.versionId`.)
fn etag_of(resource: &Value) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    resource.to_string().hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

/// `GET /{type}/{id}`: a conformance resource of the profiles folder, with `ETag` and
/// `Last-Modified` (R4 http.html §read: SHOULD); `If-None-Match` with the same ETag gets 304.
async fn conformance_read(
    resource_type: &'static str,
    id: String,
    headers: HeaderMap,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    let Some(r) = rules.conformance.resource(resource_type, &id) else {
        return ApiError::UnknownResource {
            resource_type: resource_type.to_string(),
            id,
        }
        .into_response();
    };
    let etag = etag_of(&r.resource);
    let modified = httpdate::fmt_http_date(rules.loaded);
    let matched = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag.trim_start_matches("W/")
        });
    let mut res = if matched {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Reply {
            status: StatusCode::OK,
            body: r.resource.clone(),
        }
        .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&modified) {
        res.headers_mut().insert(LAST_MODIFIED, v);
    }
    res
}

/// Parameters of every search that are not search parameters (R4 search.html §common).
const RESULT_PARAMS: [&str; 2] = ["_format", "_pretty"];

/// The base URL the request was sent to, for absolute links (`Bundle.link`).
fn request_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /{type}`: the conformance resources of that type as a searchset Bundle, narrowed by
/// `_id` and `url` (each may list values separated by commas: any of them matches). Other
/// parameters are ignored and left out of the `self` link (R4 search.html §errors), unless the
/// request says `Prefer: handling=strict` (400).
async fn conformance_search(
    resource_type: &'static str,
    uri: Uri,
    headers: HeaderMap,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    let strict = headers.get_all("prefer").iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split([',', ';'])
            .any(|p| p.replace(' ', "").eq_ignore_ascii_case("handling=strict"))
    });
    let mut used: Vec<(String, String)> = Vec::new();
    for (name, value) in query_params(uri.query()) {
        if CONFORMANCE_SEARCH_PARAMS.iter().any(|(n, _, _)| *n == name) {
            used.push((name, value));
        } else if strict && !RESULT_PARAMS.contains(&name.as_str()) {
            return ApiError::InvalidParameter(format!(
                "{resource_type} has no search parameter '{name}' here: the gateway searches its conformance resources by _id and url."
            ))
            .into_response();
        }
    }
    let matches = |r: &crate::profile::ConformanceResource| {
        used.iter().all(|(name, value)| {
            let field = match name.as_str() {
                "_id" => Some(r.id.as_str()),
                _ => r.url.as_deref(),
            };
            value.split(',').any(|v| Some(v) == field)
        })
    };
    let entries: Vec<_> = rules
        .conformance
        .resources
        .iter()
        .filter(|r| r.resource_type == resource_type && matches(r))
        .map(|r| {
            json!({
                "fullUrl": format!("{}/{resource_type}/{}", request_base(&headers), r.id),
                "resource": r.resource,
                "search": {"mode": "match"},
            })
        })
        .collect();
    let mut own = format!("{}/{resource_type}", request_base(&headers));
    if !used.is_empty() {
        own.push('?');
        own.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&used)
                .finish(),
        );
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": own}],
    });
    // An empty array is not valid FHIR JSON: no matches, no `entry`.
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Reply {
        status: StatusCode::OK,
        body: bundle,
    }
    .into_response()
}

async fn metadata(State(state): State<Arc<AppState>>) -> Reply {
    Reply {
        status: StatusCode::OK,
        body: capability_statement(&state),
    }
}

/// Liveness and readiness: the server answers, and its rules are loaded.
async fn health(
    State(state): State<Arc<AppState>>,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    health_answer(&state, &rules, false).await
}

/// Readiness: as `/health`, and the consult store can commit (503 when it cannot: a load
/// balancer then sends requests to another replica).
async fn ready(
    State(state): State<Arc<AppState>>,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    health_answer(&state, &rules, true).await
}

/// Liveness (`/health`: 200 while serving, whatever the store says) or readiness.
async fn health_answer(state: &AppState, rules: &RuleSet, readiness: bool) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return ApiError::ShuttingDown.into_response();
    }
    let (ok, failed) = state.metrics.reloads();
    let store_state = match &state.store {
        None => Ok("not recording (--store none)".to_string()),
        Some(sink) => {
            let store = sink.store();
            match tokio::time::timeout(crate::store::COMMIT_TIMEOUT, store.check_writable()).await {
                Ok(Ok(())) => Ok(format!("recording to {}", store.describe())),
                Ok(Err(e)) => Err(format!("cannot record to {}: {e}", store.describe())),
                Err(_) => Err(format!("cannot record to {}: timed out", store.describe())),
            }
        }
    };
    if readiness {
        if let Err(why) = &store_state {
            return ApiError::NotRecorded(why.clone()).into_response();
        }
    }
    let store_text = match &store_state {
        Ok(s) | Err(s) => s.clone(),
    };
    let mut body = json!({
            "resourceType": "OperationOutcome",
            "extension": [{
                "url": record::rule_set_version_url(&rules.site),
                "valueString": rules.version,
            }],
            "issue": [{
                "severity": if store_state.is_ok() { "information" } else { "warning" },
                "code": "informational",
                "details": {
                    "text": format!(
                        "{}: {} guidance rules loaded (rule set {}); {ok} reloads, {failed} failed; consult record: {store_text}",
                        if store_state.is_ok() { "ready" } else { "not ready" },
                        rules.rules.len(),
                        rules.version,
                    )
                }
            }]
    });
    // The upstream's state is reported; it does not change readiness (contract §4).
    if let (Some(up), Some(issues)) = (&state.upstream, body["issue"].as_array_mut()) {
        let (breaker, sentence) = up.health();
        issues.push(json!({
            "severity": if breaker == "closed" { "information" } else { "warning" },
            "code": "informational",
            "details": { "text": sentence },
            "diagnostics": format!("upstream circuit breaker: {breaker}"),
        }));
    }
    if let (Some(warning), Some(issues)) = (state.auth.warning(), body["issue"].as_array_mut()) {
        issues
            .push(json!({"severity": "warning", "code": "security", "details": {"text": warning}}));
    }
    Reply {
        status: StatusCode::OK,
        body,
    }
    .into_response()
}

pub(crate) async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        {
            let mut text = state.metrics.render();
            if let Some(up) = &state.upstream {
                up.render_metrics(&mut text);
            }
            text.push_str(&state.auth.render_metrics());
            text
        },
    )
        .into_response()
}

/// Anything else: with an upstream, reads and updates of the types site data lists pass
/// through (contract §7); the rest is 404.
async fn not_found(
    State(state): State<Arc<AppState>>,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(up) = &state.upstream {
        if let Some(res) = proxy::pass(up, &method, &uri, &headers, body, &rules.site).await {
            return res;
        }
    }
    ApiError::NotFound {
        path: uri.path().to_string(),
    }
    .into_response()
}

/// `GET /ServiceRequest?...` with an upstream: a search passed through (without one the route
/// has `POST` only, and `GET` is 405 with `Allow`).
async fn search_service_requests(
    state: State<Arc<AppState>>,
    rules: Extension<CurrentRules>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    not_found(state, rules, Method::GET, uri, headers, Bytes::new()).await
}

/// A panic in a handler: a 500 OperationOutcome, and the server goes on serving.
#[derive(Clone, Copy)]
struct PanicAnswer;

impl ResponseForPanic for PanicAnswer {
    type ResponseBody = Body;

    fn response_for_panic(
        &mut self,
        err: Box<dyn std::any::Any + Send + 'static>,
    ) -> Response<Body> {
        let what = err
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        ApiError::Internal(format!("handler panicked: {what}")).into_response()
    }
}

/// The request's log span: every line logged while handling it carries the request id.
fn make_span(req: &Request<Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        decision = tracing::field::Empty,
        rules = tracing::field::Empty,
        client = tracing::field::Empty,
    )
}

/// Response headers a script in a browser may read (CORS): where a resource is, its version,
/// and the ids to quote when reporting a problem.
const EXPOSED_HEADERS: [HeaderName; 4] = [
    LOCATION,
    ETAG,
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("x-consult-id"),
];

/// CORS on every endpoint (R4 http.html §cors: servers SHOULD; the CDS Hooks sandbox and
/// browser-based FHIR clients call from other origins). Any origin, no credentials (a bearer
/// token is a header, which preflights allow); preflights are answered here, before routing.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(EXPOSED_HEADERS)
        .max_age(Duration::from_secs(600))
}

/// The router with every layer, outermost first: request id (set, then echoed), trace span and
/// response log, metrics, CORS, the FHIR layer (rules, negotiation, OperationOutcomes), panic
/// catcher, body limit (which reads out a refused body before answering), timeout (which
/// covers reading the body).
pub fn with_layers(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    let layers = ServiceBuilder::new()
        .map_request(crate::auth::request_id::bound)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                )
                .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
        )
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(cors())
        .layer(from_fn_with_state(state.clone(), negotiate::fhir_layer))
        .layer(from_fn_with_state(state.auth.clone(), super::guard::guard))
        .layer(CatchPanicLayer::custom(PanicAnswer))
        .layer(from_fn_with_state(state.clone(), body_limit::limit_body))
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.timeout,
        ));
    routes.layer(layers).with_state(state)
}

/// The router of `--metrics-listen`: `GET /metrics` without a token, nothing else (404).
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(prometheus))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Only GET /metrics is served here.\n") })
        .with_state(state)
}

/// The gateway's router.
pub fn router(state: Arc<AppState>) -> Router {
    let mut routes = Router::new()
        .route(
            "/ServiceRequest",
            match state.upstream {
                Some(_) => post(create).get(search_service_requests),
                None => post(create),
            },
        )
        .route("/", post(system))
        .route("/ServiceRequest/$validate", post(validate))
        .route("/ServiceRequest/{id}/$validate", post(validate_instance))
        // Read answers 404 (nothing is stored); PUT, PATCH and DELETE 405 with `Allow`.
        .route(
            "/ServiceRequest/{id}",
            match state.upstream {
                // With an upstream: read, update and patch pass through (contract §7).
                Some(_) => get(not_found).put(not_found).patch(not_found),
                None => get(service_request_read),
            },
        )
        .route("/$validate", post(validate))
        .route("/metadata", get(metadata))
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(prometheus))
        .merge(super::cds_hooks::router())
        .merge(super::audit::router())
        .merge(crate::http::console::router().layer(from_fn_with_state(
            state.auth.clone(),
            super::console_session::require,
        )))
        .merge(super::console_session::router(state.auth.clone()))
        .fallback(not_found);
    // One route per conformance type, so that other types stay 404 whatever the method.
    for ty in CONFORMANCE_TYPES {
        let search = move |uri, headers, rules| conformance_search(ty, uri, headers, rules);
        let read =
            move |Path(id): Path<String>, headers, rules| conformance_read(ty, id, headers, rules);
        routes = routes
            .route(&format!("/{ty}"), get(search))
            .route(&format!("/{ty}/{{id}}"), get(read));
    }
    with_layers(routes, state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Config;
    use crate::load::RuleSource;
    use crate::rules::RuleSet;
    use tower::ServiceExt;

    fn state() -> Arc<AppState> {
        let dir = crate::load::default_rules_dir();
        let rules = RuleSet::load(&dir).expect("rules");
        let args = Config {
            listen: "127.0.0.1:0".into(),
            max_body_bytes: 1024,
            max_bundle_entries: 10,
            max_depth: 64,
            request_timeout_secs: 5,
            body_timeout_secs: 5,
            header_timeout_secs: 5,
            ..Config::default()
        };
        Arc::new(AppState::new(
            rules,
            RuleSource::dir_only(dir),
            &args,
            "test".into(),
            None,
        ))
    }

    async fn panics() -> &'static str {
        panic!("boom")
    }

    /// A panic in a handler is a 500 OperationOutcome, and the next request is served.
    #[tokio::test]
    async fn panic_becomes_500_operation_outcome() {
        let routes = Router::new()
            .route("/panic", get(panics))
            .route("/health", get(health));
        let app = with_layers(routes, state());
        let req = |path: &str| {
            axum::http::Request::get(path)
                .header("x-request-id", "p-1")
                .body(Body::empty())
                .expect("request")
        };
        let res = app.clone().oneshot(req("/panic")).await.expect("response");
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["x-request-id"], "p-1");
        assert_eq!(
            res.headers()[CONTENT_TYPE],
            "application/fhir+json; charset=utf-8"
        );
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        let oo: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["code"], "exception");
        let res = app.oneshot(req("/health")).await.expect("response");
        assert_eq!(res.status(), StatusCode::OK);
    }
}
