//! The CDS Hooks 2.0 front end: the referral guidance at order entry, in the EHR.
//!
//! - `GET /cds-services`: the discovery document ([`discovery`]);
//! - `POST /cds-services/{id}`: an `order-select` or `order-sign` call ([`request`]), its
//!   missing prefetch fetched from its `fhirServer` when that is allowed ([`prefetch`]), becomes a
//!   collection Bundle of the draft ServiceRequests and the prefetched context, decided by one
//!   call of the same engine service as the FHIR endpoints
//!   ([`crate::engine::Engine::decide`]: same rules, slots and sinks); the decisions become
//!   cards ([`cards`]), each naming the consult of its order;
//! - `POST /cds-services/{id}/feedback`: counted, logged and stored against the consult of its
//!   card ([`feedback`]).
//!
//! CDS Hooks bodies are plain JSON, not FHIR: responses are marked [`NotFhir`] so that the
//! FHIR layer passes them through, and every error is a JSON object
//! `{"error": ..., "details": [...]}` with its status (400, 404, 405, 412, 413, 415, 503).

pub mod cards;
pub mod discovery;
pub mod feedback;
pub mod prefetch;
pub mod request;

use super::consult::{self, Who};
use super::extensions::{CurrentRules, NotFhir};
use super::metrics::Decided;
use super::AppState;
use crate::auth::cds::CdsTrust;
use crate::engine::{Answered, Asker, Call, Caller, Checked, EngineError, Purpose};
use crate::parse::{Format, Unusable};
use crate::rules::RuleSet;
use crate::store::{record, CardLink, FeedbackRecord, Write};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use discovery::{Hook, Service};
use feedback::IssuedCards;
use request::HookRequest;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;

/// The key of a card's `extension` that carries the consult id of the order it is about.
pub const CONSULT_ID_CARD_EXTENSION: &str = "referral-gateway-consult-id";

/// Every way a CDS Hooks call can fail, each a JSON body with its status.
#[derive(Debug, Clone, PartialEq)]
pub enum CdsError {
    /// 400: the body is not a CDS Hooks request (or feedback) this service can use.
    BadRequest {
        error: String,
        details: Vec<String>,
    },
    UnknownService(String),
    MethodNotAllowed(&'static str),
    /// 412: prefetch is missing and the `fhirServer` given cannot supply it (CDS Hooks 2.0).
    PreconditionFailed {
        error: String,
        details: Vec<String>,
    },
    UnsupportedMediaType(String),
    TooLarge,
    Unavailable(String),
}

impl IntoResponse for CdsError {
    fn into_response(self) -> Response {
        let allow = match self {
            CdsError::MethodNotAllowed(allow) => Some(allow),
            _ => None,
        };
        let (status, error, details) = match self {
            CdsError::BadRequest { error, details } => (StatusCode::BAD_REQUEST, error, details),
            CdsError::UnknownService(id) => (
                StatusCode::NOT_FOUND,
                format!("there is no CDS service '{id}'"),
                vec![format!(
                    "the services are {}; GET /cds-services lists them",
                    discovery::SERVICES.map(|s| s.id).join(", ")
                )],
            ),
            CdsError::MethodNotAllowed(allow) => (
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed here; use {allow}"),
                Vec::new(),
            ),
            CdsError::PreconditionFailed { error, details } => {
                (StatusCode::PRECONDITION_FAILED, error, details)
            }
            CdsError::UnsupportedMediaType(ct) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type '{ct}' is not supported: send application/json"),
                Vec::new(),
            ),
            CdsError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than this service accepts".into(),
                Vec::new(),
            ),
            CdsError::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, why, Vec::new()),
        };
        let mut body = json!({ "error": error });
        if !details.is_empty() {
            body["details"] = json!(details);
        }
        let mut res = json_response(status, &body);
        if let Some(allow) = allow {
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

/// A JSON body with its status, marked for the FHIR layer to pass through as it is.
fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut res = (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response();
    res.extensions_mut().insert(NotFhir);
    res
}

/// A `200` JSON answer of this service.
fn answer(value: Value) -> Response {
    json_response(StatusCode::OK, &value)
}

/// The route of a service call (the route label of its decisions in `/metrics`).
const SERVICE_ROUTE: &str = "/cds-services/{id}";

/// The CDS Hooks routes, merged into the gateway's router (and so behind its layers: request
/// id, trace, metrics, CORS for browser-based clients such as the CDS Hooks sandbox, body
/// limit, timeout).
pub fn router() -> Router<Arc<AppState>> {
    let issued = Arc::new(IssuedCards::default());
    let only = |allow: &'static str, route: MethodRouter<Arc<AppState>>| {
        route.fallback(move || async move { CdsError::MethodNotAllowed(allow) })
    };
    Router::new()
        .route("/cds-services", only("GET", get(discover)))
        .route(SERVICE_ROUTE, only("POST", post(call_service)))
        .route(
            "/cds-services/{id}/feedback",
            only("POST", post(receive_feedback)),
        )
        .layer(Extension(issued))
}

/// Whether `path` is under the CDS Hooks service: its errors are CDS Hooks JSON, not FHIR.
pub fn is_cds_path(path: &str) -> bool {
    path == "/cds-services" || path.starts_with("/cds-services/")
}

/// The CDS Hooks error JSON of a failure the service's handlers did not answer themselves (an
/// unknown sub-path, a body over the limit, a timeout): `{"error": ...}` with its status.
pub fn error_response(status: StatusCode, error: String) -> Response {
    json_response(status, &json!({ "error": error }))
}

async fn discover() -> Response {
    answer(discovery::document())
}

/// The service of the path, or 404.
fn service_of(id: &str) -> Result<&'static Service, CdsError> {
    discovery::service(id).ok_or_else(|| CdsError::UnknownService(id.to_string()))
}

/// The body as JSON: `Content-Type` must be JSON when sent.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, CdsError> {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let text = ct.to_str().unwrap_or("");
        let essence = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(CdsError::UnsupportedMediaType(text.to_string()));
        }
    }
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            CdsError::TooLarge
        } else {
            CdsError::BadRequest {
                error: "the request body could not be read".into(),
                details: Vec::new(),
            }
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| CdsError::BadRequest {
        error: "the body is not JSON".into(),
        details: vec![e.to_string()],
    })
}

/// Who called, and the `fhirServer`s the issuer of their verified JWT may send (none without
/// `--cds-trusted-issuers`).
struct CdsCaller {
    who: Who,
    fhir_servers: Vec<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for CdsCaller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let who = Who::from_request_parts(parts, state).await?;
        let fhir_servers = parts
            .extensions
            .get::<CdsTrust>()
            .map(|t| t.fhir_servers.clone())
            .unwrap_or_default();
        Ok(Self { who, fhir_servers })
    }
}

async fn call_service(
    State(state): State<Arc<AppState>>,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
    Extension(issued): Extension<Arc<IssuedCards>>,
    Path(id): Path<String>,
    CdsCaller { who, fhir_servers }: CdsCaller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CdsError> {
    let service = service_of(&id)?;
    let value = json_body(&headers, body)?;
    let mut request =
        HookRequest::from_json(&value, service).map_err(|details| CdsError::BadRequest {
            error: format!("not a valid CDS Hooks {} request", service.hook.name()),
            details,
        })?;
    match state
        .cds_prefetch
        .complete(&mut request, &fhir_servers)
        .await
    {
        Ok(keys) if !keys.is_empty() => tracing::info!(
            service = service.id,
            hook_instance = %request.hook_instance,
            keys = %keys.join(","),
            "CDS Hooks prefetch fetched from fhirServer"
        ),
        Ok(_) => {}
        Err(why) => {
            tracing::warn!(
                service = service.id,
                hook_instance = %request.hook_instance,
                why = %why.details.join("; "),
                "CDS Hooks call answered 412: prefetch missing and not obtainable"
            );
            return Err(CdsError::PreconditionFailed {
                error: why.error,
                details: why.details,
            });
        }
    }
    let (bundle, origin) = request.engine_bundle();
    // The cards are stamped with their consult ids under the same rules after the call.
    let stamp_rules = rules.clone();
    let call = Call {
        caller: Caller::CdsHooks {
            route: SERVICE_ROUTE.to_string(),
            service: service.id.to_string(),
            hook_instance: format!("{}/{}", service.hook.name(), request.hook_instance),
        },
        // Each draft order decided is a consult (contract §6); `If-None-Exist` means nothing
        // to CDS Hooks.
        purpose: Purpose::Order,
        asker: Asker {
            client: who.0.client,
            if_none_exist: None,
        },
        bytes: serde_json::to_vec(&bundle).unwrap_or_default().into(),
        format: Format::Json,
        profiles: Vec::new(),
        rules,
    };
    let translate = move |result: Result<&Checked, &Unusable>, rules: &RuleSet| match result {
        Ok(checked) => Ok((
            cards::cards(checked, rules, &request, &origin),
            match service.hook {
                Hook::OrderSign => cards::stamps(checked, &request, &origin),
                Hook::OrderSelect => Vec::new(),
            },
            request.hook_instance,
        )),
        Err(Unusable::TooCostly(_)) => Err(CdsError::TooLarge),
        Err(Unusable::Malformed(findings)) => Err(CdsError::BadRequest {
            error: "context.draftOrders or prefetch is not usable FHIR R4".into(),
            details: findings.iter().map(|f| f.text.clone()).collect(),
        }),
    };
    let decision = state.engine.decide(call, translate).await;
    let (mut cards, stamps, hook_instance, decided, consult_ids) = match decision {
        Ok(Answered {
            answer: (cards, stamps, hook_instance),
            record,
            consult_ids,
        }) => (
            cards,
            stamps,
            hook_instance,
            record.map(|r| Decided::of(&r.checked)).unwrap_or_default(),
            consult_ids,
        ),
        Err(EngineError::FrontEnd(e)) => return Err(e),
        Err(EngineError::Closed) => {
            return Err(CdsError::Unavailable(
                "the decision engine is closed".into(),
            ))
        }
        Err(EngineError::Failed(e)) => {
            // The engine panicked on this input: say so as JSON; the server goes on.
            tracing::error!(error = %e, "the decision engine failed on a CDS Hooks call");
            return Err(CdsError::Unavailable(
                "the decision engine failed on this request; it has been logged".into(),
            ));
        }
        Err(EngineError::Sink(_)) => return Err(not_recorded()),
    };
    if !consult_ids.is_empty() {
        // Which consult each card is about, committed before the cards go out: feedback names
        // only the card, and is stored against its consult.
        let links: Vec<CardLink> = cards
            .iter()
            .filter_map(|c| {
                Some(CardLink {
                    card_uuid: c.uuid.clone(),
                    consult_id: consult_ids.get(c.consult)?.clone(),
                    rule_id: c.rule.clone(),
                    service: service.id.to_string(),
                })
            })
            .collect();
        if !links.is_empty() {
            consult::commit(&state, Write::Cards(links))
                .await
                .map_err(|_| not_recorded())?;
        }
        for c in &mut cards {
            if let Some(id) = consult_ids.get(c.consult) {
                stamp_card(&mut c.card, &stamp_rules.site, id);
            }
        }
    }
    for c in &cards {
        issued.remember(service.id, &c.uuid, c.rule.as_deref());
    }
    // Identifiers of the call and the rules only: no patient or user ids.
    tracing::info!(
        service = service.id,
        hook_instance = %hook_instance,
        decisions = %decided.summary(),
        rules = %decided.rule_ids(),
        cards = cards.len(),
        "CDS Hooks call answered"
    );
    let mut body = json!({ "cards": cards.into_iter().map(|c| c.card).collect::<Vec<_>>() });
    let actions = cards::system_actions(&stamps, &stamp_rules.site, &consult_ids);
    if !actions.is_empty() {
        body["systemActions"] = Value::Array(actions);
    }
    let mut res = answer(body);
    res.extensions_mut().insert(decided);
    Ok(res)
}

/// The answer to a call whose consults (or cards) could not be recorded.
fn not_recorded() -> CdsError {
    CdsError::Unavailable(
        "the decision could not be recorded, so it is not given; try again".into(),
    )
}

/// The consult id on a card (`extension`, which every CDS Hooks element may carry), and on
/// the redirected order a suggestion creates, as on the redirected ServiceRequest of
/// `POST /ServiceRequest`.
fn stamp_card(card: &mut Value, site: &crate::site::Site, id: &str) {
    card["extension"] = json!({ CONSULT_ID_CARD_EXTENSION: id });
    let actions = card
        .get_mut("suggestions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .flat_map(|sg| {
            sg.get_mut("actions")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
        });
    for action in actions {
        if let Some(resource) = action.get_mut("resource") {
            record::stamp(resource, site, std::slice::from_ref(&id.to_string()));
        }
    }
}

async fn receive_feedback(
    State(state): State<Arc<AppState>>,
    Extension(issued): Extension<Arc<IssuedCards>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CdsError> {
    let service = service_of(&id)?;
    let value = json_body(&headers, body)?;
    let items = feedback::parse(&value).map_err(|details| CdsError::BadRequest {
        error: "not valid CDS Hooks feedback".into(),
        details,
    })?;
    // Stored against the consult of its card (contract §6) before it is acknowledged.
    if let Some(sink) = &state.store {
        let mut records = Vec::new();
        for item in &items {
            let link = sink.store().card(&item.card).await.map_err(|_| {
                CdsError::Unavailable("the consult record cannot be read now; try again".into())
            })?;
            // A card is answered at the service that issued it; elsewhere it names no consult.
            let link = link.filter(|l| l.service == service.id);
            let (code, display) = match &item.override_reason {
                Some(r) => (r.rsplit('|').next().map(str::to_string), Some(r.clone())),
                None => (None, None),
            };
            records.push(FeedbackRecord {
                id: record::new_consult_id(),
                card_uuid: item.card.clone(),
                consult_id: link.as_ref().map(|l| l.consult_id.clone()),
                rule_id: link.and_then(|l| l.rule_id),
                outcome: item.outcome.as_str().to_string(),
                reason_code: code,
                reason_display: display,
                received_at: crate::store::now_us(),
            });
        }
        consult::commit(&state, Write::Feedback(records))
            .await
            .map_err(|_| {
                CdsError::Unavailable("the feedback could not be recorded; send it again".into())
            })?;
    }
    for item in &items {
        let rule = issued.rule_of(service.id, &item.card);
        state
            .metrics
            .record_cds_feedback(service.id, &rule, item.outcome.as_str());
        tracing::info!(
            service = service.id,
            card = %item.card,
            rule = %rule,
            outcome = item.outcome.as_str(),
            override_reason = item.override_reason.as_deref().unwrap_or("-"),
            accepted_suggestions = item.accepted_suggestions,
            "CDS Hooks feedback"
        );
    }
    Ok(answer(json!({ "received": items.len() })))
}
