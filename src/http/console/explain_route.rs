//! `POST /ServiceRequest/$explain` (contract §9): the decision and every step that led to it,
//! as a FHIR `Parameters`. A what-if question: not a consult, recorded nowhere.
//!
//! `GET /ServiceRequest/$explain?consult={id}`: a past consult explained again, under the rule
//! set it was decided with (contract §6: the store keeps every rule set the gateway ran).

use crate::engine;
use crate::http::consult::Who;
use crate::http::error::ApiError;
use crate::http::negotiate::{FhirBody, Reply, SentFormat};
use crate::http::AppState;
use crate::outcome::response::unusable_answer;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The OperationDefinition's short description, for the CapabilityStatement.
pub const DOCUMENTATION: &str = "POST /ServiceRequest/$explain with a ServiceRequest, a Bundle or a Parameters holding one: 200 + Parameters with the decision, the summary and every step (codes and words matched, context looked up, each rule tried with its conditions); one 'request' parameter per ServiceRequest of a Bundle. Not recorded. GET /ServiceRequest/$explain?consult={id}: a past consult explained again under the rule set it was decided with (its request as recorded; the answer names the consult and the ruleSet); reading it is recorded as access.";

pub async fn explain(State(state): State<Arc<AppState>>, body: FhirBody) -> Response {
    let limits = state.engine.limits();
    let FhirBody {
        bytes,
        format,
        rules,
    } = body;
    let done = tokio::task::spawn_blocking(move || {
        match engine::check_explained(&rules, &bytes, format, &limits) {
            Err(unusable) => {
                let a = unusable_answer(&unusable, &rules.site);
                (a.status, a.body)
            }
            Ok(checked) => (200, crate::explain::parameters(&checked)),
        }
    })
    .await;
    let mut res = match done {
        Ok((status, body)) => Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        }
        .into_response(),
        Err(e) => ApiError::Internal(format!("the decision engine failed: {e}")).into_response(),
    };
    res.extensions_mut().insert(SentFormat(format));
    res
}

/// A consult, explained again: the consult as recorded, the rule set it was decided with, and
/// the `$explain` Parameters of its request under that rule set.
pub struct Reexplained {
    pub consult: crate::store::Consult,
    pub rules: Arc<crate::rules::RuleSet>,
    pub parameters: serde_json::Value,
}

/// Rule sets recompiled from the store for old consults, the most recently used last (a few:
/// compiling one takes a while, and the same old consults tend to be looked at together).
static OLD_RULE_SETS: std::sync::Mutex<Vec<Arc<crate::rules::RuleSet>>> =
    std::sync::Mutex::new(Vec::new());
const OLD_RULE_SETS_KEPT: usize = 3;

/// The rule set of version `version`: the one in force when it is that one, else the files
/// the store kept, compiled again.
async fn rule_set_of(
    state: &AppState,
    version: &str,
) -> Result<Arc<crate::rules::RuleSet>, ApiError> {
    let current = state.engine.rules();
    if current.version == version {
        return Ok(current);
    }
    {
        let mut kept = OLD_RULE_SETS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = kept.iter().position(|r| r.version == version) {
            let r = kept.remove(i);
            kept.push(r.clone());
            return Ok(r);
        }
    }
    let sink = state.store.as_ref().ok_or(ApiError::NoStore)?;
    let files = sink
        .store()
        .rule_set(version)
        .await
        .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?
        .ok_or_else(|| {
            ApiError::Internal(format!("rule set {version} is not in the consult store"))
        })?;
    let dir = current.dir.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        let v: serde_json::Value =
            serde_json::from_str(&files).map_err(|e| format!("its files are not readable: {e}"))?;
        let list = |key: &str| -> crate::load::SourceFiles {
            v.get(key)
                .and_then(serde_json::Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, t)| (k.clone(), t.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        crate::rules::RuleSet::compile(&list("rules"), &list("profiles"), &dir).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("compiling rule set {version} failed: {e}")))?
    .map_err(|e| ApiError::Internal(format!("rule set {version} does not compile: {e}")))?;
    let compiled = Arc::new(compiled);
    let mut kept = OLD_RULE_SETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    kept.push(compiled.clone());
    if kept.len() > OLD_RULE_SETS_KEPT {
        kept.remove(0);
    }
    Ok(compiled)
}

/// Explains consult `id` again under the rule set it was decided with (contract §6, §9). Reading
/// the consult's request is access to patient data: it is recorded like a FHIR read.
pub async fn reexplain(
    state: &AppState,
    id: &str,
    who: &Who,
    uri: &Uri,
) -> Result<Reexplained, ApiError> {
    let sink = state.store.as_ref().ok_or(ApiError::NoStore)?;
    let consult = sink
        .store()
        .get(id)
        .await
        .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?
        .ok_or_else(|| ApiError::UnknownResource {
            resource_type: "AuditEvent".into(),
            id: id.to_string(),
        })?;
    crate::http::audit::record_access(state, who, uri, vec![consult.id.clone()]).await?;
    let Some(body) = consult.request_body.clone() else {
        return Err(ApiError::InvalidParameter(format!(
            "consult: {id} was recorded with --audit-body hash, so its request was not kept and cannot be explained again"
        )));
    };
    let rules = rule_set_of(state, &consult.rule_set).await?;
    let limits = state.engine.limits();
    let run_rules = rules.clone();
    let parameters = tokio::task::spawn_blocking(move || {
        match engine::check_explained(
            &run_rules,
            body.as_bytes(),
            crate::parse::Format::Json,
            &limits,
        ) {
            Ok(checked) => Ok(crate::explain::parameters(&checked)),
            Err(u) => Err(unusable_answer(&u, &run_rules.site).body),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the decision engine failed: {e}")))?
    .map_err(|oo| {
        ApiError::Internal(format!(
            "the recorded request of consult {id} is no longer usable: {}",
            oo.pointer("/issue/0/diagnostics")
                .or_else(|| oo.pointer("/issue/0/details/text"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unusable input")
        ))
    })?;
    Ok(Reexplained {
        consult,
        rules,
        parameters,
    })
}

/// `GET /ServiceRequest/$explain?consult={id}`: the `$explain` Parameters of a past consult,
/// under the rule set it was decided with, with `consult` and `ruleSet` parameters saying which.
pub async fn explain_consult(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    who: Who,
    uri: Uri,
) -> Response {
    let run = async {
        let mut id = None;
        for (k, v) in &params {
            match k.as_str() {
                "consult" => id = Some(v.clone()),
                "_format" | "_pretty" => {}
                other => {
                    return Err(ApiError::InvalidParameter(format!(
                        "'{other}' is not a parameter of GET $explain (consult)"
                    )))
                }
            }
        }
        let id = id.ok_or_else(|| {
            ApiError::InvalidParameter(
                "GET /ServiceRequest/$explain needs consult={id}; to explain a new request, POST it".into(),
            )
        })?;
        let done = reexplain(&state, &id, &who, &uri).await?;
        let mut parameters = done.parameters;
        if let Some(list) = parameters
            .get_mut("parameter")
            .and_then(serde_json::Value::as_array_mut)
        {
            list.insert(
                0,
                serde_json::json!({ "name": "ruleSet", "valueString": done.consult.rule_set }),
            );
            list.insert(
                0,
                serde_json::json!({ "name": "consult", "valueString": done.consult.id }),
            );
        }
        Ok::<_, ApiError>(parameters)
    };
    match run.await {
        Ok(body) => Reply {
            status: StatusCode::OK,
            body,
        }
        .into_response(),
        Err(e) => e.into_response(),
    }
}
