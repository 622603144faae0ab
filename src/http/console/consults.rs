//! Consult search and the consult page, read from the consult record (contract §6, §9).
//! Reading consults is access to patient data: each search and each consult opened is recorded
//! (who, what, which consults), as the FHIR reads are.

use super::html;
use super::pages::{decision_block, explanation, findings, page, parts_of_root, text_of};
use super::period::Period;
use crate::http::audit::record_access;
use crate::http::consult::Who;
use crate::http::AppState;
use crate::rules::RuleSet;
use crate::store::{instant, time_span, Consult, ConsultQuery, FeedbackRecord, Page};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;

const PAGE_SIZE: usize = 25;

/// The search form, as asked (every field as typed, so the form shows it again).
#[derive(Debug, Default, Clone)]
pub struct SearchForm {
    pub id: String,
    pub date: String,
    pub days: String,
    pub decision: String,
    pub rule: String,
    pub shadow: String,
    pub client: String,
    pub cursor: String,
}

impl SearchForm {
    fn from_query(params: &[(String, String)]) -> Self {
        let mut f = SearchForm::default();
        for (k, v) in params {
            let v = v.trim().to_string();
            match k.as_str() {
                "id" => f.id = v,
                "date" => f.date = v,
                "days" => f.days = v,
                "decision" => f.decision = v,
                "rule" => f.rule = v,
                "shadow" => f.shadow = v,
                "client" => f.client = v,
                "cursor" => f.cursor = v,
                _ => {}
            }
        }
        f
    }

    /// The store query of the form (an empty form lists the newest consults).
    fn query(&self, rules: &RuleSet) -> Result<ConsultQuery, String> {
        let mut q = ConsultQuery {
            newest_first: true,
            count: PAGE_SIZE,
            ..Default::default()
        };
        if !self.date.is_empty() {
            let (from, to) = time_span(&self.date).map_err(|e| format!("Date: {e}"))?;
            q.since = Some(from);
            q.until = Some(to);
        } else if !self.days.is_empty() {
            let p = Period::from_query(&[("days".into(), self.days.clone())]);
            q.since = Some(p.since);
            q.until = Some(p.until);
        }
        match self.decision.as_str() {
            "" => {}
            "accepted" | "rejected" | "redirected" => q.decision = Some(self.decision.clone()),
            other => {
                return Err(format!(
                    "Decision: '{other}' is not accepted, rejected or redirected."
                ))
            }
        }
        let known = |id: &str| rules.rules.iter().any(|r| r.def.id == id);
        if !self.rule.is_empty() {
            if !known(&self.rule) {
                return Err(format!("Rule: there is no rule '{}'.", self.rule));
            }
            q.rule = Some(self.rule.clone());
        }
        if !self.shadow.is_empty() {
            if !known(&self.shadow) {
                return Err(format!("Shadow rule: there is no rule '{}'.", self.shadow));
            }
            q.shadow_rule = Some(self.shadow.clone());
        }
        if !self.client.is_empty() {
            q.client = Some(self.client.clone());
        }
        if !self.cursor.is_empty() {
            let after = self
                .cursor
                .split_once('.')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_string())))
                .ok_or("That page link is not one of this console's.")?;
            q.after = Some(after);
        }
        Ok(q)
    }

    /// The query string of the next page.
    fn next(&self, after: &(i64, String)) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("date", &self.date),
            ("days", &self.days),
            ("decision", &self.decision),
            ("rule", &self.rule),
            ("shadow", &self.shadow),
            ("client", &self.client),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.append_pair("cursor", &format!("{}.{}", after.0, after.1));
        s.finish()
    }
}

/// A time as people read it: `2026-03-01 10:30:00 UTC`.
pub fn when(us: i64) -> String {
    let t = instant(us);
    format!("{} UTC", t.get(..19).unwrap_or(&t).replace('T', " "))
}

/// A consult id as typed: a UUID's characters only (it goes into a path).
fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

pub async fn search_page(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    who: Who,
    uri: Uri,
) -> Response {
    let rules = state.engine.rules();
    let form = SearchForm::from_query(&params);
    if !form.id.is_empty() && plausible_id(&form.id) {
        return Redirect::to(&format!("/console/consults/{}", form.id)).into_response();
    }
    let unavailable = |e: String| (StatusCode::SERVICE_UNAVAILABLE, e);
    let result: Result<Option<Page>, (StatusCode, String)> = async {
        if !form.id.is_empty() {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "'{}' is not a consult id (a UUID such as 0190a1b2-…).",
                    form.id
                ),
            ));
        }
        let q = form
            .query(&rules)
            .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let Some(sink) = &state.store else {
            return Ok(None);
        };
        let page = sink
            .store()
            .search(&q)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        record_access(
            &state,
            &who,
            &uri,
            page.consults.iter().map(|c| c.id.clone()).collect(),
        )
        .await
        .map_err(|e| unavailable(e.to_string()))?;
        Ok(Some(page))
    }
    .await;
    let status = result.as_ref().err().map_or(StatusCode::OK, |(s, _)| *s);
    html(
        status,
        search(
            &rules,
            &form,
            state.store.is_some(),
            result.as_ref().map_err(|(_, e)| e),
        ),
    )
}

fn select(id: &str, label: &str, current: &str, options: &[(String, String)]) -> Markup {
    html! {
        label for=(id) { (label)
            select id=(id) name=(id) {
                option value="" { "any" }
                @for (value, name) in options {
                    @if value == current { option value=(value) selected { (name) } }
                    @else { option value=(value) { (name) } }
                }
            }
        }
    }
}

pub fn search(
    rules: &RuleSet,
    form: &SearchForm,
    have_store: bool,
    result: Result<&Option<Page>, &String>,
) -> Markup {
    let decisions: Vec<(String, String)> = ["accepted", "redirected", "rejected"]
        .iter()
        .map(|d| (d.to_string(), d.to_string()))
        .collect();
    let rule_options: Vec<(String, String)> = rules
        .rules
        .iter()
        .map(|r| (r.def.id.clone(), format!("{} — {}", r.def.id, r.def.title)))
        .collect();
    let body = html! {
        p class="lede" { "Look up a consult by its id, or search by date, decision, rule and client. Newest first." }
        form method="get" action="/console/consults" class="filter" {
            label for="consult-id" { "Consult id" input type="search" id="consult-id" name="id" autocomplete="off" value=(form.id); }
            label for="date" { "Date" input type="date" id="date" name="date" value=(form.date); }
            (select("decision", "Decision", &form.decision, &decisions))
            (select("rule", "Rule fired", &form.rule, &rule_options))
            (select("shadow", "Shadow rule would have fired", &form.shadow, &rule_options))
            label for="client" { "Client" input type="text" id="client" name="client" autocomplete="off" value=(form.client); }
            @if !form.days.is_empty() && form.date.is_empty() { input type="hidden" name="days" value=(form.days); }
            button type="submit" { "Search" }
        }
        @if !have_store {
            div class="notice" role="note" {
                "No consult store is configured for this gateway, so there are no consults to show. "
                "Every decided ServiceRequest is recorded once the store is configured (" code { "serve --store" } ")."
            }
        }
        @match result {
            Err(e) => { div class="notice error" role="alert" { (e) } }
            Ok(None) => {}
            Ok(Some(page)) => { (results(page, form)) }
        }
    };
    page("/console/consults", "Consults", rules, body)
}

fn rule_links(ids: &[String]) -> Markup {
    html! {
        @for (i, id) in ids.iter().enumerate() {
            @if i > 0 { " " }
            a href={"/console#rule-" (id)} { (id) }
        }
    }
}

fn results(page: &Page, form: &SearchForm) -> Markup {
    html! {
        @if page.consults.is_empty() {
            p role="status" { "No consult matches." }
        } @else {
            table id="consult-results" {
                caption { (page.consults.len()) " consults" @if page.next.is_some() { " (more on the next page)" } }
                thead { tr {
                    th scope="col" { "Decided" } th scope="col" { "Consult" } th scope="col" { "Decision" }
                    th scope="col" { "Rules fired" } th scope="col" { "Shadow" } th scope="col" { "Channel" } th scope="col" { "Client" }
                } }
                tbody {
                    @for c in &page.consults {
                        tr {
                            td { (when(c.decided_at)) }
                            th scope="row" { a href={"/console/consults/" (c.id)} { code { (c.id) } } }
                            td { span class={"badge " (c.decision)} { (c.decision) } }
                            td { (rule_links(&c.fired)) }
                            td { (rule_links(&c.shadow_fired)) }
                            td { (c.channel) }
                            td { (c.client) }
                        }
                    }
                }
            }
            @if let Some(after) = &page.next {
                p { a class="button secondary" href={"/console/consults?" (form.next(after))} { "Next page" } }
            }
        }
    }
}

pub async fn consult_page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    who: Who,
    uri: Uri,
) -> Response {
    let rules = state.engine.rules();
    let found: Result<Option<(Consult, Vec<FeedbackRecord>)>, String> = async {
        let Some(sink) = &state.store else {
            return Err("No consult store is configured for this gateway (serve --store).".into());
        };
        let store = sink.store();
        let Some(c) = store.get(&id).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let feedback = store.feedback(&c.id).await.map_err(|e| e.to_string())?;
        record_access(&state, &who, &uri, vec![c.id.clone()])
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some((c, feedback)))
    }
    .await;
    match found {
        Ok(Some((c, feedback))) => html(StatusCode::OK, consult(&rules, &c, &feedback)),
        Ok(None) => html(
            StatusCode::NOT_FOUND,
            page(
                "/console/consults",
                "Consult not found",
                &rules,
                html! {
                    p role="alert" { "There is no consult " code { (id) } " in the consult record (it may have been purged)." }
                    p { a href="/console/consults" { "Search consults" } }
                },
            ),
        ),
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            page(
                "/console/consults",
                "Consult",
                &rules,
                html! { div class="notice error" role="alert" { (e) } },
            ),
        ),
    }
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| json.to_string())
}

/// What the upstream answered, in a sentence.
fn forwarding(json: Option<&str>) -> Markup {
    let Some(v) = json.and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
        return html! { "Not forwarded (the gateway answered the caller itself)." };
    };
    let status = v.get("status").and_then(Value::as_u64);
    let location = v.get("location").and_then(Value::as_str);
    let fault = v.get("fault").and_then(Value::as_str);
    html! {
        @if v.get("forwarded").and_then(Value::as_bool) == Some(true) {
            "Forwarded to the upstream FHIR server"
            @if let Some(s) = status { ", which answered HTTP " (s) }
            @if let Some(l) = location { " (" code { (l) } ")" }
            "."
        } @else {
            "Not forwarded"
            @if let Some(f) = fault { ": " (f) }
            @if let Some(s) = status { " (HTTP " (s) ")" }
            "."
        }
    }
}

pub fn consult(rules: &RuleSet, c: &Consult, feedback: &[FeedbackRecord]) -> Markup {
    let outcome: Value = serde_json::from_str(&c.outcome).unwrap_or(Value::Null);
    let channel = match (c.entry_index, &c.hook_instance) {
        (_, Some(h)) => format!("{} ({h})", c.channel),
        (Some(i), None) => format!("{} entry {i}", c.channel),
        _ => c.channel.clone(),
    };
    let body = html! {
        (decision_block(&c.decision, &c.summary))
        dl class="consult" {
            dt { "Consult id" } dd { code id="consult-id-value" { (c.id) } }
            dt { "Received, decided" } dd { (when(c.received_at)) ", " (when(c.decided_at)) " (" (format!("{:.1}", c.latency_us as f64 / 1000.0)) " ms)" }
            dt { "Rule set" } dd {
                code { (c.rule_set) }
                @if c.rule_set == rules.version { " (the rules in force now)" } @else { " (an earlier rule set)" }
                " · " a href={"/console/consults/" (c.id) "/explain"} { "Explain under the rules it was decided with" }
            }
            dt { "Client" } dd { (c.client) }
            dt { "Channel" } dd { (channel) }
            @if let Some(p) = &c.placer_identifier { dt { "Placer identifier" } dd { code { (p) } } }
            dt { "HTTP status" } dd { (c.http_status) }
            dt { "Rules fired" } dd { @if c.fired.is_empty() { "none" } @else { (rule_links(&c.fired)) } }
            dt { "Shadow rules that would have fired" } dd { @if c.shadow_fired.is_empty() { "none" } @else { (rule_links(&c.shadow_fired)) } }
            dt { "Forwarding" } dd { (forwarding(c.forwarding.as_deref())) }
        }
        h2 { "Findings" }
        p { "As recorded: the OperationOutcome of the decision, shadow findings included." }
        (findings(&outcome))
        @if let Some(r) = &c.redirected {
            h2 { "The redirected request" }
            pre tabindex="0" aria-label="The redirected request" { code { (pretty(r)) } }
        }
        h2 { "CDS Hooks feedback" }
        @if feedback.is_empty() { p { "None received." } }
        @else {
            table {
                caption class="visually-hidden" { "CDS Hooks feedback on this consult's cards" }
                thead { tr { th scope="col" { "Received" } th scope="col" { "Rule" } th scope="col" { "Outcome" } th scope="col" { "Reason" } } }
                tbody {
                    @for f in feedback {
                        tr {
                            td { (when(f.received_at)) }
                            th scope="row" { @if let Some(r) = &f.rule_id { a href={"/console#rule-" (r)} { (r) } } @else { "—" } }
                            td { (f.outcome) }
                            td { (f.reason_display.as_deref().or(f.reason_code.as_deref()).unwrap_or("—")) }
                        }
                    }
                }
            }
        }
        h2 { "The request as received" }
        @match &c.request_body {
            Some(b) => { details { summary { "The ServiceRequest (SHA-256 " code { (c.request_hash.get(..12).unwrap_or(&c.request_hash)) } "…)" } pre tabindex="0" aria-label="The request as received" { code { (pretty(b)) } } } }
            None => { p { "Only its SHA-256 was kept (" code { "--audit-body hash" } "): " code { (c.request_hash) } } }
        }
        details {
            summary { "The recorded OperationOutcome" }
            pre tabindex="0" aria-label="The recorded OperationOutcome" { code { (pretty(&c.outcome)) } }
        }
    };
    page("/console/consults", "Consult", rules, body)
}

/// `/console/consults/{id}/explain`: the consult explained again under the rule set it was
/// decided with — the same `$explain` Parameters as `GET /ServiceRequest/$explain?consult=`.
pub async fn explain_page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    who: Who,
    uri: Uri,
) -> Response {
    let rules = state.engine.rules();
    match super::explain_route::reexplain(&state, &id, &who, &uri).await {
        Ok(done) => {
            let c = &done.consult;
            let ps = parts_of_root(&done.parameters);
            let body = html! {
                p class="lede" {
                    "Consult " a href={"/console/consults/" (c.id)} { code { (c.id) } } ", decided "
                    (when(c.decided_at)) ", explained again from its request as recorded, under the rule set it was decided with: "
                    code id="explained-rule-set" { (done.rules.version) }
                    @if done.rules.version == rules.version { " (the rules in force now)." }
                    @else { " (an earlier rule set; the rules in force now are " code { (rules.version) } ")." }
                }
                @let decided = text_of(ps, "decision");
                @if decided != c.decision {
                    div class="notice" role="note" {
                        "Recorded decision: " strong { (c.decision) } ". The request alone explains as " strong { (decided) }
                        ": a Bundle entry or a CDS Hooks draft was decided with context (the Bundle, the prefetch) the record does not keep."
                    }
                }
                (decision_block(&decided, &text_of(ps, "summary")))
                h2 { "Explanation" }
                (explanation(ps))
            };
            html(
                StatusCode::OK,
                page("/console/consults", "Consult explained", &rules, body),
            )
        }
        Err(e) => {
            let status = e.status();
            html(
                status,
                page(
                    "/console/consults",
                    "Consult explained",
                    &rules,
                    html! { div class="notice error" role="alert" { (e.to_string()) } },
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consult_ids_are_checked_before_they_go_into_a_path() {
        assert!(plausible_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!plausible_id(""));
        assert!(!plausible_id("../metadata"));
        assert!(!plausible_id("x y"));
    }

    #[test]
    fn the_next_page_keeps_the_filters() {
        let f = SearchForm {
            decision: "rejected".into(),
            rule: "US05".into(),
            ..Default::default()
        };
        assert_eq!(
            f.next(&(12, "abc".into())),
            "decision=rejected&rule=US05&cursor=12.abc"
        );
    }
}
