//! The endpoints (contract §4) and the layers around them.
//!
//! Each POST endpoint reads the body in the negotiated format, runs the decision engine on a
//! blocking thread with the rules loaded at the start of the request, checks that the resource
//! type suits the endpoint, and replies with the engine's answer.

use super::capability::{capability_statement, CONFORMANCE_TYPES};
use super::error::ApiError;
use super::metrics::{self, Decided};
use super::negotiate::{self, CurrentRules, FhirBody, Reply, SentFormat};
use super::AppState;
use crate::engine;
use crate::outcome::response::{answer, unusable_answer, validate_answer, Answer};
use crate::parse::{Input, InputKind};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

/// Interactions on `ServiceRequest` (CapabilityStatement `rest.resource.interaction`).
pub const TYPE_INTERACTIONS: [(&str, &str); 1] = [(
    "create",
    "POST /ServiceRequest: the request is checked, not stored. Accepted: 200 + OperationOutcome; redirected: 200 + the redirected ServiceRequest; rejected: 422 + OperationOutcome.",
)];

/// System interactions (CapabilityStatement `rest.interaction`).
pub const SYSTEM_INTERACTIONS: [(&str, &str); 2] = [
    (
        "batch",
        "POST / with a batch Bundle: 200 + batch-response, one entry per request entry.",
    ),
    (
        "transaction",
        "POST / with a transaction Bundle: all or nothing; any rejected entry gives 422 + one OperationOutcome naming Bundle.entry[i].",
    ),
];

/// `$validate`, at type and system level.
pub const VALIDATE_OPERATION: (&str, &str) = (
    "validate",
    "http://hl7.org/fhir/OperationDefinition/Resource-validate",
);

/// What a POST endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// `POST /ServiceRequest`
    Create,
    /// `POST /`
    System,
    /// `POST /$validate`, `POST /ServiceRequest/$validate`, with the `profile` asked for
    Validate(Option<String>),
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

/// Runs the engine on the body and answers as the endpoint does.
async fn decide(endpoint: Endpoint, body: FhirBody, state: &AppState) -> Response {
    let limits = state.limits;
    // Wait for a free engine slot; the permit travels with the blocking task.
    let permit = match state.engine_slots.clone().acquire_owned().await {
        Ok(p) => p,
        Err(e) => {
            return ApiError::Internal(format!("the decision engine is closed: {e}"))
                .into_response()
        }
    };
    let FhirBody {
        bytes,
        format,
        rules,
    } = body;
    let done =
        tokio::task::spawn_blocking(move || -> Result<(Answer, Option<Decided>), ApiError> {
            let _permit = permit;
            let asked: Vec<String> = match &endpoint {
                Endpoint::Validate(Some(url)) => vec![url.clone()],
                _ => Vec::new(),
            };
            match engine::check_with_profiles(&rules, &bytes, format, &limits, &asked) {
                Err(unusable) => Ok((unusable_answer(&unusable, &rules.site), None)),
                Ok(checked) => {
                    endpoint.check(&checked.input)?;
                    let site = &rules.site;
                    let answer = match endpoint {
                        Endpoint::Validate(_) => validate_answer(&checked, site),
                        Endpoint::Create | Endpoint::System => answer(&checked, site),
                    };
                    Ok((answer, Some(Decided::of(&checked))))
                }
            }
        })
        .await;
    let mut res = match done {
        Ok(Ok((answer, decided))) => {
            let mut res = Reply {
                status: StatusCode::from_u16(answer.status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body: answer.body,
            }
            .into_response();
            if let Some(d) = decided {
                res.extensions_mut().insert(d);
            }
            res
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::Internal(format!("the decision engine failed: {e}")).into_response(),
    };
    res.extensions_mut().insert(SentFormat(format));
    res
}

async fn create(State(state): State<Arc<AppState>>, body: FhirBody) -> Response {
    decide(Endpoint::Create, body, &state).await
}

async fn system(State(state): State<Arc<AppState>>, body: FhirBody) -> Response {
    decide(Endpoint::System, body, &state).await
}

/// `$validate`; `?profile=URL` checks against that profile as well as the enforced ones.
async fn validate(
    State(state): State<Arc<AppState>>,
    Query(params): Query<ValidateParams>,
    body: FhirBody,
) -> Response {
    if let Some(url) = &params.profile {
        if body.rules.conformance.profile(url).is_none() {
            return ApiError::UnknownProfile(url.clone()).into_response();
        }
    }
    decide(Endpoint::Validate(params.profile), body, &state).await
}

#[derive(Debug, serde::Deserialize)]
struct ValidateParams {
    profile: Option<String>,
}

/// `GET /{type}/{id}`: a conformance resource of the profiles folder.
async fn conformance_read(
    resource_type: &'static str,
    id: String,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    match rules.conformance.resource(resource_type, &id) {
        Some(r) => Reply {
            status: StatusCode::OK,
            body: r.resource.clone(),
        }
        .into_response(),
        None => ApiError::UnknownResource {
            resource_type: resource_type.to_string(),
            id,
        }
        .into_response(),
    }
}

/// `GET /{type}`: every conformance resource of that type, as a searchset Bundle
/// (`?url=` narrows it to one canonical URL).
async fn conformance_search(
    resource_type: &'static str,
    Query(params): Query<SearchParams>,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    let entries: Vec<_> = rules
        .conformance
        .resources
        .iter()
        .filter(|r| r.resource_type == resource_type)
        .filter(|r| params.url.is_none() || r.url == params.url)
        .map(|r| json!({"fullUrl": r.url, "resource": r.resource, "search": {"mode": "match"}}))
        .collect();
    Reply {
        status: StatusCode::OK,
        body: json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": entries.len(),
            "entry": entries,
        }),
    }
    .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct SearchParams {
    url: Option<String>,
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
    if !state.ready.load(Ordering::SeqCst) {
        return ApiError::ShuttingDown.into_response();
    }
    let (ok, failed) = state.metrics.reloads();
    Reply {
        status: StatusCode::OK,
        body: json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "information",
                "code": "informational",
                "details": {
                    "text": format!(
                        "ready: {} guidance rules loaded; {ok} reloads, {failed} failed",
                        rules.rules.len()
                    )
                }
            }]
        }),
    }
    .into_response()
}

async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        path: uri.path().to_string(),
    }
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
    )
}

/// The router with every layer, outermost first: request id (set, then echoed), trace span and
/// response log, metrics, the FHIR layer (rules, negotiation, OperationOutcomes), panic
/// catcher, body limit, timeout (which covers reading the body).
pub fn with_layers(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    let layers = ServiceBuilder::new()
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
        .layer(from_fn_with_state(state.clone(), negotiate::fhir_layer))
        .layer(CatchPanicLayer::custom(PanicAnswer))
        .layer(RequestBodyLimitLayer::new(state.max_body_bytes))
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.timeout,
        ));
    routes.layer(layers).with_state(state)
}

/// The gateway's router.
pub fn router(state: Arc<AppState>) -> Router {
    let mut routes = Router::new()
        .route("/ServiceRequest", post(create))
        .route("/", post(system))
        .route("/ServiceRequest/$validate", post(validate))
        .route("/$validate", post(validate))
        .route("/metadata", get(metadata))
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .merge(super::cds_hooks::router())
        .fallback(not_found);
    // One route per conformance type, so that other types stay 404 whatever the method.
    for ty in CONFORMANCE_TYPES {
        let search = move |q, rules| conformance_search(ty, q, rules);
        let read = move |Path(id): Path<String>, rules| conformance_read(ty, id, rules);
        routes = routes
            .route(&format!("/{ty}"), get(search))
            .route(&format!("/{ty}/{{id}}"), get(read));
    }
    with_layers(routes, state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{LogFormat, RuleSource, ServeArgs};
    use crate::rules::RuleSet;
    use tower::ServiceExt;

    fn state() -> Arc<AppState> {
        let dir = crate::cli::default_rules_dir();
        let rules = RuleSet::load(&dir).expect("rules");
        let args = ServeArgs {
            listen: "127.0.0.1:0".into(),
            log_format: LogFormat::Text,
            max_body_bytes: 1024,
            max_bundle_entries: 10,
            max_depth: 64,
            request_timeout_secs: 5,
            body_timeout_secs: 5,
            header_timeout_secs: 5,
            max_concurrent_checks: 0,
        };
        Arc::new(AppState::new(
            rules,
            RuleSource {
                rules: Some(dir),
                profiles: None,
            },
            &args,
            "test".into(),
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
