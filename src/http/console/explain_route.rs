//! `POST /ServiceRequest/$explain` (contract §9): the decision and every step that led to it,
//! as a FHIR `Parameters`. A what-if question: not a consult, recorded nowhere.

use crate::engine;
use crate::http::error::ApiError;
use crate::http::negotiate::{FhirBody, Reply, SentFormat};
use crate::http::AppState;
use crate::outcome::response::unusable_answer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The OperationDefinition's short description, for the CapabilityStatement.
pub const DOCUMENTATION: &str = "POST /ServiceRequest/$explain with a ServiceRequest, a Bundle or a Parameters holding one: 200 + Parameters with the decision, the summary and every step (codes and words matched, context looked up, each rule tried with its conditions); one 'request' parameter per ServiceRequest of a Bundle. Not recorded.";

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
