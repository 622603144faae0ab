//! Reading the consult record over FHIR (contract §6): `GET /AuditEvent/{id}`,
//! `GET /AuditEvent?...` (a searchset with `next` links and stable keyset paging),
//! `GET /Provenance?target=ServiceRequest/{id}` and `GET /$stats`.
//!
//! Reading consults is access to patient data, and is itself recorded (who, what, which
//! consults) before the answer goes out.

use super::consult::Who;
use super::error::ApiError;
use super::negotiate::{CurrentRules, Reply};
use super::AppState;
use crate::site::Site;
use crate::store::{fhir, now_us, time_span, AccessRecord, ConsultQuery, ConsultStore, Write};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// The search parameters of `GET /AuditEvent` (also listed in the CapabilityStatement).
pub const AUDIT_EVENT_SEARCH: [(&str, &str, &str); 9] = [
    (
        "date",
        "date",
        "When the decision was made (ge, gt, le, lt; repeat for a range).",
    ),
    (
        "outcome",
        "token",
        "0: accepted or redirected; 4: rejected.",
    ),
    (
        "entity-identifier",
        "token",
        "The placer identifier of the ServiceRequest (system|value or value).",
    ),
    (
        "agent",
        "token",
        "The client that asked (authenticated client, else its address).",
    ),
    ("decision", "token", "accepted, rejected or redirected."),
    ("rule", "token", "A guidance rule that fired."),
    (
        "subject-identifier",
        "token",
        "The patient's identifier, e.g. the NHS number (system|value or value).",
    ),
    (
        "requester-organization",
        "token",
        "The requesting organisation's ODS code.",
    ),
    (
        "_sort",
        "special",
        "date (oldest first) or -date (newest first, the default).",
    ),
];

/// Page size when `_count` is not given, and the largest one allowed.
const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 1000;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/AuditEvent", get(search))
        .route("/AuditEvent/{id}", get(read))
        .route("/Provenance", get(provenance))
        .route("/$stats", get(stats))
}

fn store(state: &AppState) -> Result<&Arc<dyn ConsultStore>, ApiError> {
    state
        .store
        .as_ref()
        .map(|s| s.store())
        .ok_or(ApiError::NoStore)
}

fn unavailable(e: crate::store::StoreError) -> ApiError {
    ApiError::StoreUnavailable(e.to_string())
}

fn bad(msg: String) -> ApiError {
    ApiError::BadSearch(msg)
}

/// Records who read which consults; the answer goes out only once that is committed.
pub(crate) async fn record_access(
    state: &AppState,
    who: &Who,
    uri: &Uri,
    consults: Vec<String>,
) -> Result<(), ApiError> {
    let Some(sink) = &state.store else {
        return Err(ApiError::NoStore);
    };
    let what = match uri.query() {
        Some(q) => format!("GET {}?{q}", uri.path()),
        None => format!("GET {}", uri.path()),
    };
    sink.commit(Write::Access(AccessRecord {
        id: crate::store::record::new_consult_id(),
        at: now_us(),
        who: who.client().to_string(),
        what,
        consults,
    }))
    .await
    .map(|_| ())
    .map_err(unavailable)
}

async fn read(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    who: Who,
    uri: Uri,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    let run = async {
        let store = store(&state)?;
        let consult = store.get(&id).await.map_err(unavailable)?;
        let Some(c) = consult else {
            return Err(ApiError::UnknownResource {
                resource_type: "AuditEvent".into(),
                id: id.clone(),
            });
        };
        record_access(&state, &who, &uri, vec![c.id.clone()]).await?;
        Ok::<Value, ApiError>(fhir::audit_event(&c, &rules.site))
    };
    answer(run.await)
}

/// `GET /AuditEvent?...` parsed; unknown parameters are an error (a search that silently
/// ignored a filter would show more patients' consults than asked for).
fn parse_query(params: &[(String, String)]) -> Result<ConsultQuery, ApiError> {
    let mut q = ConsultQuery {
        newest_first: true,
        count: DEFAULT_COUNT,
        ..Default::default()
    };
    let value_of = |v: &str| v.rsplit('|').next().unwrap_or(v).to_string();
    for (k, v) in params {
        match k.as_str() {
            "date" => {
                let (prefix, text) = match v.get(..2) {
                    Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &v[2..]),
                    _ => ("eq", v.as_str()),
                };
                let (from, to) = time_span(text).map_err(|e| bad(format!("date: {e}")))?;
                let (since, until) = match prefix {
                    "ge" => (Some(from), None),
                    "gt" => (Some(to), None),
                    "lt" => (None, Some(from)),
                    "le" => (None, Some(to)),
                    _ => (Some(from), Some(to)),
                };
                if let Some(s) = since {
                    q.since = Some(q.since.map_or(s, |x| x.max(s)));
                }
                if let Some(u) = until {
                    q.until = Some(q.until.map_or(u, |x| x.min(u)));
                }
            }
            "outcome" => match v.as_str() {
                "0" | "4" => q.outcome = Some(v.clone()),
                _ => {
                    return Err(bad(format!(
                        "outcome: '{v}' is not one the gateway records (0 or 4)"
                    )))
                }
            },
            "decision" => match v.as_str() {
                "accepted" | "rejected" | "redirected" => q.decision = Some(v.clone()),
                _ => {
                    return Err(bad(format!(
                        "decision: '{v}' is not accepted, rejected or redirected"
                    )))
                }
            },
            "entity-identifier" => q.entity_identifier = Some(v.clone()),
            "agent" => q.client = Some(value_of(v)),
            "rule" => q.rule = Some(value_of(v)),
            "subject-identifier" => match v.split_once('|') {
                Some((s, val)) => {
                    if !s.is_empty() {
                        q.subject_system = Some(s.to_string());
                    }
                    q.subject_value = Some(val.to_string());
                }
                None => q.subject_value = Some(v.clone()),
            },
            "requester-organization" => q.requester_org = Some(value_of(v)),
            "_count" => {
                q.count = v
                    .parse::<usize>()
                    .map_err(|_| bad(format!("_count: '{v}' is not a number")))?
                    .clamp(1, MAX_COUNT)
            }
            "_sort" => match v.as_str() {
                "date" => q.newest_first = false,
                "-date" => q.newest_first = true,
                _ => return Err(bad(format!("_sort: '{v}' (sort by date or -date)"))),
            },
            "_cursor" => {
                let (t, id) = v
                    .split_once('.')
                    .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_string())))
                    .ok_or_else(|| bad("_cursor: not a cursor of this gateway".into()))?;
                q.after = Some((t, id));
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(bad(format!(
                    "'{other}' is not a search parameter of AuditEvent here; the parameters are {}",
                    AUDIT_EVENT_SEARCH.map(|p| p.0).join(", ")
                )))
            }
        }
    }
    Ok(q)
}

/// A `searchset` Bundle: its links, and one `match` entry per `(fullUrl, resource)`.
fn searchset(links: Vec<Value>, entries: impl Iterator<Item = (String, Value)>) -> Value {
    let entries: Vec<Value> = entries
        .map(|(url, resource)| {
            json!({ "fullUrl": url, "resource": resource, "search": { "mode": "match" } })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// A handler's answer: 200 and the resource, or the error's OperationOutcome.
fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(body) => Reply {
            status: StatusCode::OK,
            body,
        }
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The absolute URL of this server as the caller reached it.
fn base_url(headers: &HeaderMap, state: &AppState) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(&state.listen);
    format!("http://{host}")
}

fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn search(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    who: Who,
    uri: Uri,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    let run = async {
        let store = store(&state)?;
        let q = parse_query(&params)?;
        let page = store.search(&q).await.map_err(unavailable)?;
        record_access(
            &state,
            &who,
            &uri,
            page.consults.iter().map(|c| c.id.clone()).collect(),
        )
        .await?;
        let base = base_url(&headers, &state);
        let kept: Vec<String> = params
            .iter()
            .filter(|(k, _)| k != "_cursor")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let self_url = match uri.query() {
            Some(qs) => format!("{base}/AuditEvent?{qs}"),
            None => format!("{base}/AuditEvent"),
        };
        let mut links = vec![json!({ "relation": "self", "url": self_url })];
        if let Some((t, id)) = &page.next {
            let mut next = kept.clone();
            next.push(format!("_cursor={t}.{}", encode(id)));
            links.push(json!({ "relation": "next", "url": format!("{base}/AuditEvent?{}", next.join("&")) }));
        }
        let entries = page.consults.iter().map(|c| {
            (
                format!("{base}/AuditEvent/{}", c.id),
                fhir::audit_event(c, &rules.site),
            )
        });
        Ok::<Value, ApiError>(searchset(links, entries))
    };
    answer(run.await)
}

async fn provenance(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    who: Who,
    uri: Uri,
    Extension(CurrentRules(rules)): Extension<CurrentRules>,
) -> Response {
    let run = async {
        let store = store(&state)?;
        let mut target = None;
        for (k, v) in &params {
            match k.as_str() {
                "target" => target = Some(v.clone()),
                "_format" | "_pretty" => {}
                other => {
                    return Err(bad(format!(
                        "'{other}' is not a search parameter of Provenance here; search by target=ServiceRequest/{{id}}"
                    )))
                }
            }
        }
        let target = target.ok_or_else(|| {
            bad(
                "Provenance is searched by target=ServiceRequest/{id} (the redirected request)"
                    .into(),
            )
        })?;
        let id = target
            .rsplit_once("ServiceRequest/")
            .map(|(_, id)| id)
            .unwrap_or(&target);
        let consults = store.by_redirected(id).await.map_err(unavailable)?;
        record_access(
            &state,
            &who,
            &uri,
            consults.iter().map(|c| c.id.clone()).collect(),
        )
        .await?;
        let base = base_url(&headers, &state);
        let entries = consults
            .iter()
            .filter_map(|c| fhir::provenance(c, &rules.site))
            .map(|p| {
                (
                    format!("{base}/Provenance/{}", p["id"].as_str().unwrap_or_default()),
                    p,
                )
            });
        let links = vec![json!({ "relation": "self", "url": format!("{base}{uri}") })];
        Ok::<Value, ApiError>(searchset(links, entries))
    };
    answer(run.await)
}

async fn stats(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let run = async {
        let store = store(&state)?;
        let (mut since, mut until) = (None, None);
        for (k, v) in &params {
            match k.as_str() {
                "since" => since = Some(time_span(v).map_err(|e| bad(format!("since: {e}")))?.0),
                "until" => until = Some(time_span(v).map_err(|e| bad(format!("until: {e}")))?.0),
                "_format" | "_pretty" => {}
                other => {
                    return Err(bad(format!(
                        "'{other}' is not a parameter of $stats (since, until)"
                    )))
                }
            }
        }
        let s = store.stats(since, until).await.map_err(unavailable)?;
        Ok::<Value, ApiError>(fhir::stats_parameters(&s))
    };
    answer(run.await)
}

/// The CapabilityStatement entries of the consult record.
/// The gateway's own search parameters (contract §6) have their SearchParameter resources in
/// `profiles/` (`SearchParameter-AuditEvent-{name}.json`), the others are HL7's.
pub fn capability_resources(site: &Site) -> Vec<Value> {
    // `entity-identifier` and `agent` (a token here, a reference in R4) have no definition to
    // point at; `date` and `outcome` are R4's own.
    let definition = |name: &str| match name {
        "decision" | "rule" | "subject-identifier" | "requester-organization" => Some(format!(
            "{}/SearchParameter/AuditEvent-{name}",
            crate::store::record::canonical(site)
        )),
        "date" | "outcome" => Some(format!(
            "http://hl7.org/fhir/SearchParameter/AuditEvent-{name}"
        )),
        _ => None,
    };
    let search_param = |(name, ty, doc): &(&str, &str, &str)| {
        let mut p = json!({"name": name, "type": ty, "documentation": doc});
        if let Some(url) = definition(name) {
            p["definition"] = json!(url);
        }
        p
    };
    vec![
        json!({
            "type": "AuditEvent",
            "documentation": "One AuditEvent per consult (decided ServiceRequest); its id is the consult id. Reading is itself recorded.",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": AUDIT_EVENT_SEARCH.iter().filter(|p| p.0 != "_sort").map(search_param).collect::<Vec<_>>(),
        }),
        json!({
            "type": "Provenance",
            "documentation": "One Provenance per redirect: the redirected ServiceRequest, the original, the rule and the consult.",
            "interaction": [{"code": "search-type"}],
            "searchParam": [{"name": "target", "type": "reference", "documentation": "ServiceRequest/{id} of the redirected request."}],
        }),
    ]
}

/// `$stats` in the CapabilityStatement (`definition`: the OperationDefinition in `profiles/`).
pub fn stats_operation(definition: &str) -> Value {
    json!({
        "name": "stats",
        "definition": definition,
        "documentation": "GET /$stats?since=&until=: consults by decision, rule (fired, shadow-fired, overridden, override reasons) and client, and decision latency p50/p99, as a Parameters.",
    })
}
