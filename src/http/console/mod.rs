//! The radiology console (contract §9): `GET /console`, served by the gateway itself, for the
//! radiologists and managers who own the guidance.
//!
//! Server-rendered HTML (maud), SVG charts drawn here, one small hand-written script and one
//! style sheet, all embedded in the binary: a user installs nothing. The console never
//! decides anything itself: the playground calls the engine once, with the trace asked for,
//! and renders the same answer and the same `$explain` Parameters the FHIR API gives.
//!
//! - [`pages`]: the page frame, the rules catalogue and the playground;
//! - [`dashboard`]: the dashboard from the consult record; [`period`]: the period it counts;
//! - [`consults`]: consult search and the consult page;
//! - [`charts`]: SVG bar charts and time series with their numbers as a table;
//! - [`explain_route`]: `POST /ServiceRequest/$explain`.

pub mod charts;
pub mod consults;
pub mod dashboard;
pub mod explain_route;
pub mod pages;
pub mod period;

use crate::engine;
use crate::http::negotiate::NotFhir;
use crate::http::AppState;
use crate::outcome::response::{answer, unusable_answer};
use crate::parse::{Format, Limits};
use crate::rules::RuleSet;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use period::{Period, Usage};
use std::sync::Arc;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Examples offered in the playground, one of each decision (copied from `examples/`, so the
/// binary carries them).
pub const EXAMPLES: [(&str, &str, &str); 5] = [
    (
        "accepted",
        "Chest X-ray with a clinical question (accepted)",
        include_str!("../../../examples/general/gen01-cxr-with-clinical-question.json"),
    ),
    (
        "rejected",
        "Neck pain only, coded (rejected)",
        include_str!("../../../examples/us/us05-neck-pain-only-coded.json"),
    ),
    (
        "redirected",
        "Calf swelling ?DVT (redirected)",
        include_str!("../../../examples/us/us13-calf-swelling-query-dvt.json"),
    ),
    (
        "bundle",
        "Bundle: visible haematuria, age 45 (redirected)",
        include_str!("../../../examples/us/us14-haematuria-age-45-bundle.json"),
    ),
    (
        "negated",
        "Neck pain, a mass negated (rejected)",
        include_str!("../../../examples/us/us05-neck-pain-negated-mass.json"),
    ),
];

/// The console's routes, and `POST /ServiceRequest/$explain`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(rules_page))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route(
            "/console/playground",
            get(playground_page).post(playground_run),
        )
        .route("/console/dashboard", get(dashboard_page))
        .route("/console/consults", get(consults::search_page))
        .route("/console/consults/{id}", get(consults::consult_page))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route(
            "/ServiceRequest/$explain",
            post(explain_route::explain).get(explain_route::explain_consult),
        )
        .route(
            "/console/consults/{id}/explain",
            get(consults::explain_page),
        )
}

/// An HTML page: passed through the FHIR layer untouched, never cached (it shows live data).
pub fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut res = (status, markup.into_string()).into_response();
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res.extensions_mut().insert(NotFhir);
    res
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    res.extensions_mut().insert(NotFhir);
    res
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// The figures of a period from the consult store, for the catalogue.
async fn usage(state: &AppState, period: Period) -> Usage {
    let Some(sink) = &state.store else {
        return Usage::NoStore;
    };
    match sink
        .store()
        .stats(Some(period.since), Some(period.until))
        .await
    {
        Ok(stats) => Usage::Counted { period, stats },
        Err(e) => Usage::Unavailable(e.to_string()),
    }
}

async fn rules_page(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let rules = state.engine.rules();
    let usage = usage(&state, Period::from_query(&params)).await;
    html(StatusCode::OK, pages::rules(&rules, &usage))
}

#[derive(Debug, serde::Deserialize)]
struct ExampleQuery {
    example: Option<String>,
}

async fn playground_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ExampleQuery>,
) -> Response {
    let rules = state.engine.rules();
    let text = q
        .example
        .as_deref()
        .and_then(|name| EXAMPLES.iter().find(|(id, _, _)| *id == name))
        .map(|(_, _, text)| text.to_string())
        .unwrap_or_default();
    html(StatusCode::OK, pages::playground(&rules, &text, None))
}

/// The playground's form: the request text (`body`).
#[derive(Debug)]
struct PlaygroundForm {
    body: String,
}

/// What the playground shows for one request text: the answer a POST would get, and the
/// `$explain` Parameters, both from one engine call.
pub struct Tried {
    pub status: u16,
    pub answer: serde_json::Value,
    pub explanation: Option<serde_json::Value>,
    pub format: Format,
}

/// Runs the engine once, with the trace, on `text` (JSON or XML, sniffed).
pub fn try_request(rules: &RuleSet, text: &str, limits: &Limits) -> Tried {
    let bytes = text.trim_start().as_bytes();
    let format = Format::sniff(bytes).unwrap_or(Format::Json);
    match engine::check_explained(rules, bytes, format, limits) {
        Ok(checked) => {
            let a = answer(&checked, &rules.site);
            Tried {
                status: a.status,
                answer: a.body,
                explanation: Some(crate::explain::parameters(&checked)),
                format,
            }
        }
        Err(u) => {
            let a = unusable_answer(&u, &rules.site);
            Tried {
                status: a.status,
                answer: a.body,
                explanation: None,
                format,
            }
        }
    }
}

async fn playground_run(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let rules = state.engine.rules();
    let form = PlaygroundForm {
        body: form_urlencoded::parse(&body)
            .find(|(k, _)| k == "body")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default(),
    };
    if form.body.trim().is_empty() {
        return html(
            StatusCode::OK,
            pages::playground(
                &rules,
                "",
                Some(Err("Paste a ServiceRequest or a Bundle (JSON or XML), or upload a file, then press Decide and explain.")),
            ),
        );
    }
    let limits = state.engine.limits();
    let run_rules = rules.clone();
    let text = form.body.clone();
    let tried = tokio::task::spawn_blocking(move || try_request(&run_rules, &text, &limits)).await;
    match tried {
        Ok(t) => html(
            StatusCode::OK,
            pages::playground(&rules, &form.body, Some(Ok(&t))),
        ),
        Err(_) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::playground(&rules, &form.body, Some(Err("The decision engine failed."))),
        ),
    }
}

async fn dashboard_page(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let rules = state.engine.rules();
    let Some(sink) = &state.store else {
        // No consult record: what this process has counted since it started.
        return html(StatusCode::OK, pages::dashboard(&rules, &state.metrics));
    };
    let period = Period::from_query(&params);
    let store = sink.store();
    let figures = async {
        let stats = store.stats(Some(period.since), Some(period.until)).await?;
        let timeline = store
            .timeline(period.since, period.until, period.bucket_us)
            .await?;
        Ok::<_, crate::store::StoreError>((stats, timeline))
    };
    match figures.await {
        Ok((stats, timeline)) => html(
            StatusCode::OK,
            dashboard::dashboard(&rules, &period, &stats, &timeline),
        ),
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::page(
                "/console/dashboard",
                "Dashboard",
                &rules,
                maud::html! { div class="notice error" role="alert" { "The consult store did not answer: " (e.to_string()) } },
            ),
        ),
    }
}
