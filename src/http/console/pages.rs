//! The console's views, written with maud (HTML checked at compile time, escaped by default).

use super::charts::{self, Bar};
use super::period::{chooser, Usage};
use super::{Tried, EXAMPLES};
use crate::http::metrics::Metrics;
use crate::rules::rule::Rule;
use crate::rules::RuleSet;
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

/// The views, in the order of the navigation.
const VIEWS: [(&str, &str); 4] = [
    ("/console", "Rules"),
    ("/console/playground", "Playground"),
    ("/console/dashboard", "Dashboard"),
    ("/console/consults", "Consults"),
];

/// The page frame: skip link, header with navigation and the rule-set version, main.
pub(super) fn page(current: &str, title: &str, rules: &RuleSet, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Referral gateway console" }
                link rel="stylesheet" href="/console/assets/console.css";
                // No favicon request (it would be a 404).
                link rel="icon" href="data:,";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    p class="brand" { "Referral gateway console" }
                    nav aria-label="Console views" {
                        ul {
                            @for (href, name) in VIEWS {
                                li {
                                    @if href == current {
                                        a href=(href) aria-current="page" { (name) }
                                    } @else {
                                        a href=(href) { (name) }
                                    }
                                }
                            }
                        }
                    }
                    p class="version" {
                        "Rule set " code { (rules.version) }
                        " · " (rules.rules.len()) " rules"
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn action_badge(rule: &Rule) -> Markup {
    let a = rule.def.action.as_str();
    html! { span class={"badge " (a)} { (a) } }
}

/// The rule's mode (contract §6): the site's `[rule_modes]`, else `enforce`.
fn mode(rules: &RuleSet, rule: &Rule) -> &'static str {
    rules.site.rule_mode(&rule.def.id).as_str()
}

fn pathway_line(rules: &RuleSet, rule: &Rule) -> Option<Markup> {
    let p = rule.def.pathway.as_deref()?;
    let site = &rules.site;
    Some(match site.pathway(p) {
        Some(p) => html! {
            a href={"#pathway-" (p.id)} { (p.name) } " — " (p.booking)
        },
        None => html! { code { (p) } },
    })
}

/// The rules catalogue: every rule with its guidance, why, advice, examples and mode; the
/// pathway directory.
pub fn rules(rules: &RuleSet, usage: &Usage) -> Markup {
    let body = html! {
        p class="lede" {
            "Every guidance rule the gateway applies, as the rule files in "
            code { "rules/" } " say it. A department changes a rule or its mode in "
            code { "rules/site.toml" } " and reloads; this page shows the rules in force."
        }
        @match usage {
            Usage::Counted { period, .. } => {
                p { "Hits and overrides are counted over " (period.name()) " from the consult record." }
                (chooser("/console", period))
            }
            Usage::NoStore => {
                div class="notice" role="note" { "No consult store is configured (" code { "serve --store" } "), so hits and overrides are not counted." }
            }
            Usage::Unavailable(e) => {
                div class="notice error" role="alert" { "The consult store did not answer, so hits and overrides are not shown: " (e) }
            }
        }
        div class="filter" {
            label for="rule-filter" {
                "Find a rule"
                input type="search" id="rule-filter" name="q" autocomplete="off"
                    placeholder="id, words of the guidance, pathway…";
            }
            p id="rule-count" role="status" aria-live="polite" { (rules.rules.len()) " rules" }
        }
        nav aria-label="Rules by id" {
            p { @for r in &rules.rules { a href={"#rule-" (r.def.id)} { (r.def.id) } " " } }
        }
        @for r in &rules.rules {
            article class={"rule " (r.def.action.as_str())} id={"rule-" (r.def.id)} aria-labelledby={"rule-" (r.def.id) "-title"} {
                h2 id={"rule-" (r.def.id) "-title"} { (r.def.id) " — " (r.def.title) }
                p {
                    (action_badge(r)) " "
                    span class={"badge " (mode(rules, r))} { "mode: " (mode(rules, r)) }
                    " · " (r.def.section)
                }
                dl {
                    dt { "Guidance" } dd { blockquote { (r.def.guidance.trim()) } }
                    dt { "Why" } dd { (r.def.why) }
                    dt { "Advice" } dd { (r.def.advice) }
                    @if let Some(p) = pathway_line(rules, r) { dt { "Pathway" } dd { (p) } }
                    dt { "Hits, overrides" } dd { (usage_line(r, usage)) }
                    dt { "Examples" }
                    dd {
                        @if r.def.examples.is_empty() { "none" }
                        ul {
                            @for ex in &r.def.examples {
                                li { code { (ex.file) } " → " span class={"badge " (ex.expect.code())} { (ex.expect.code()) } }
                            }
                        }
                    }
                    dt { "Rule file" } dd { code { "rules/" (r.file) } }
                }
            }
        }
        h2 id="pathways" { "Pathway directory" }
        table {
            caption { "Where redirected requests go (site data, rules/site.toml)" }
            thead { tr { th scope="col" { "Pathway" } th scope="col" { "Contact" } th scope="col" { "How to refer" } th scope="col" { "Hours" } th scope="col" { "Rules" } } }
            tbody {
                @for p in &rules.site.pathways {
                    tr id={"pathway-" (p.id)} {
                        th scope="row" { (p.name) br; code { (p.id) } }
                        td { (p.contact) }
                        td { (p.booking) }
                        td { @if p.hours.is_empty() { "—" } @else { (p.hours) } }
                        td {
                            @for r in rules.rules.iter().filter(|r| r.def.pathway.as_deref() == Some(p.id.as_str())) {
                                a href={"#rule-" (r.def.id)} { (r.def.id) } " "
                            }
                        }
                    }
                }
            }
        }
        h2 { "Duty radiologist" }
        p { (rules.site.duty_radiologist_advice()) }
    };
    page("/console", "Rules", rules, body)
}

/// A rule's hits (fired, or would have fired in shadow mode) and override rate over the
/// period, with links to those consults.
fn usage_line(rule: &Rule, usage: &Usage) -> Markup {
    let Usage::Counted { period, stats } = usage else {
        return html! { "Not counted (no consult record)." };
    };
    let id = &rule.def.id;
    let s = stats.rules.iter().find(|s| &s.id == id);
    let fired = s.map_or(0, |s| s.fired);
    let shadow = s.map_or(0, |s| s.shadow_fired);
    let overridden = s.map_or(0, |s| s.overridden);
    let window = format!("&days={}", period.days);
    html! {
        span class="hits" {
            @if fired > 0 {
                a href={"/console/consults?rule=" (id) (window)} { "fired " (fired) " times" }
            } @else { "fired 0 times" }
            @if shadow > 0 {
                ", " a href={"/console/consults?shadow=" (id) (window)} { "would have fired " (shadow) " times (shadow)" }
            }
            "; overridden " (overridden) " times"
            @if let Some(rate) = override_rate(fired, overridden) { " (override rate " (rate) ")" }
            " in " (period.name()) "."
        }
    }
}

/// Overrides as a share of the times the rule fired: `25%`; none when it never fired.
pub fn override_rate(fired: i64, overridden: i64) -> Option<String> {
    (fired > 0).then(|| format!("{:.0}%", overridden as f64 * 100.0 / fired as f64))
}

/// The parts of a `Parameters` parameter (or of a part).
pub(super) fn parts(p: &Value) -> &[Value] {
    p.get("part")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn named<'a>(ps: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    ps.iter()
        .filter(move |p| p.get("name").and_then(Value::as_str) == Some(name))
}

/// The `value[x]` of the first part called `name`.
fn value<'a>(ps: &'a [Value], name: &'a str) -> Option<&'a Value> {
    let p = named(ps, name).next()?;
    p.as_object()?
        .iter()
        .find(|(k, _)| k.starts_with("value"))
        .map(|(_, v)| v)
}

pub(super) fn text_of(ps: &[Value], name: &str) -> String {
    match value(ps, name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v @ Value::Object(_)) => v
            .get("display")
            .or_else(|| v.get("code"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

fn flag(ps: &[Value], name: &str) -> bool {
    value(ps, name).and_then(Value::as_bool).unwrap_or(false)
}

/// The text of a word match with the words marked.
fn marked(text: &str, start: Option<usize>, end: Option<usize>, negated: bool) -> Markup {
    match (start, end) {
        (Some(s), Some(e)) if s <= e => {
            let chars: Vec<char> = text.chars().collect();
            let e = e.min(chars.len());
            let s = s.min(e);
            let before: String = chars[..s].iter().collect();
            let words: String = chars[s..e].iter().collect();
            let after: String = chars[e..].iter().collect();
            html! {
                "“" (before)
                @if negated { mark class="negated" { (words) } } @else { mark { (words) } }
                (after) "”"
            }
        }
        _ => html! { "“" (text) "”" },
    }
}

/// One request's explanation, rendered from the `$explain` Parameters parts.
pub(super) fn explanation(ps: &[Value]) -> Markup {
    let matches: Vec<&Value> = named(ps, "match").collect();
    let context: Vec<&Value> = named(ps, "context").collect();
    let unplaced: Vec<&Value> = named(ps, "unplaced").collect();
    let rules: Vec<&Value> = named(ps, "rule").collect();
    let (fired, quiet): (Vec<&Value>, Vec<&Value>) =
        rules.iter().partition(|r| flag(parts(r), "fired"));
    html! {
        h3 { "Codes and words matched" }
        @if matches.is_empty() { p { "None: no code or words of the request matched a concept of the terminology." } }
        @else {
            table {
                caption class="visually-hidden" { "Codes and words matched" }
                thead { tr { th scope="col" { "Concept" } th scope="col" { "Found as" } th scope="col" { "Where" } th scope="col" { "Read as" } } }
                tbody {
                    @for m in &matches {
                        @let p = parts(m);
                        @let negated = flag(p, "negated");
                        tr {
                            th scope="row" { (text_of(p, "concept")) }
                            td {
                                @if text_of(p, "kind") == "code" {
                                    "code " code { (text_of(p, "code")) }
                                    @let system = text_of(p, "system");
                                    @if !system.is_empty() { " (" (crate::terminology::system_name(&system)) ")" }
                                    @let display = text_of(p, "text");
                                    @if !display.is_empty() { " “" (display) "”" }
                                } @else {
                                    "words "
                                    (marked(&text_of(p, "text"), value(p, "start").and_then(Value::as_u64).map(|v| v as usize), value(p, "end").and_then(Value::as_u64).map(|v| v as usize), negated))
                                }
                            }
                            td { code { (text_of(p, "expression")) } }
                            td {
                                @if negated { span class="failed" { "negated" } }
                                @else if flag(p, "questioned") { "a question" }
                                @else { "present" }
                                @let trigger = text_of(p, "trigger");
                                @if !trigger.is_empty() { " (by “" (trigger) "”)" }
                            }
                        }
                    }
                }
            }
        }
        @if !unplaced.is_empty() {
            h3 { "Words not placed" }
            p { "Neither a concept nor an everyday word: read as possibly clinical, so they never reject, and they keep the clinical-question and pain-only rules from firing. A word here that is plainly not clinical belongs in the terminology's everyday words." }
            ul {
                @for u in &unplaced {
                    @let p = parts(u);
                    li {
                        code { (text_of(p, "expression")) } ": "
                        (named(p, "word").filter_map(|w| w.get("valueString").and_then(Value::as_str)).collect::<Vec<_>>().join(", "))
                    }
                }
            }
        }
        h3 { "Context looked up" }
        @if context.is_empty() { p { "No context was needed." } }
        @else {
            table {
                caption class="visually-hidden" { "Context looked up" }
                thead { tr { th scope="col" { "What" } th scope="col" { "Found" } th scope="col" { "Where" } } }
                tbody {
                    @for c in &context {
                        @let p = parts(c);
                        tr {
                            th scope="row" { (text_of(p, "what")) }
                            td { @if flag(p, "found") { span class="held" { "found" } } @else { span class="failed" { "not found" } } }
                            td { (text_of(p, "where")) }
                        }
                    }
                }
            }
        }
        h3 { "Rules that fired (" (fired.len()) ")" }
        @if fired.is_empty() { p { "None." } }
        @for r in &fired { (rule_tried(r)) }
        details {
            summary { "Rules tried that did not fire (" (quiet.len()) ")" }
            @for r in &quiet { (rule_tried(r)) }
        }
    }
}

fn rule_tried(r: &Value) -> Markup {
    let p = parts(r);
    let id = text_of(p, "id");
    html! {
        section aria-label={"Rule " (id)} {
            h4 {
                a href={"/console#rule-" (id)} { (id) } " — " (text_of(p, "title")) " "
                @if flag(p, "needsContext") { span class="badge rejected" { "needs context" } }
                @else if flag(p, "fired") { span class="badge rejected" { "fired" } }
                @else { span class="badge enforce" { "did not fire" } }
            }
            table {
                caption class="visually-hidden" { "Conditions of rule " (id) }
                thead { tr { th scope="col" { "Condition" } th scope="col" { "Held" } th scope="col" { "Why" } } }
                tbody {
                    @for c in named(p, "condition") {
                        @let cp = parts(c);
                        @let why = text_of(cp, "why");
                        tr {
                            th scope="row" { code { (text_of(cp, "name")) } }
                            td {
                                @if flag(cp, "held") { span class="held" { "held" } }
                                @else if why.starts_with("not known") { span class="unknown" { "not known" } }
                                @else { span class="failed" { "failed" } }
                            }
                            td { (why) }
                        }
                    }
                }
            }
        }
    }
}

/// The findings of one OperationOutcome as the GP would read them.
pub(super) fn findings(oo: &Value) -> Markup {
    let issues = oo
        .get("issue")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    html! {
        ul class="findings" {
            @for (i, issue) in issues.iter().enumerate() {
                // The first issue carries the decision, shown above.
                @if i > 0 {
                    li {
                        strong { (issue.get("severity").and_then(Value::as_str).unwrap_or("")) }
                        @if let Some(rule) = issue.pointer("/details/coding/0/code").and_then(Value::as_str) {
                            " " a href={"/console#rule-" (rule)} { (rule) }
                        }
                        ": " (issue.pointer("/details/text").and_then(Value::as_str).unwrap_or(""))
                        @if let Some(at) = issue.pointer("/expression/0").and_then(Value::as_str) {
                            br; small { "at " code { (at) } }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn decision_block(decision: &str, summary: &str) -> Markup {
    html! {
        div class={"decision " (decision)} role="status" {
            strong { "Decision: " (decision) }
            p { (summary) }
        }
    }
}

/// The playground: a form, and once run, the decision, the findings, the redirected request
/// and the explanation.
pub fn playground(rules: &RuleSet, text: &str, result: Option<Result<&Tried, &str>>) -> Markup {
    let body = html! {
        p class="lede" {
            "Paste a ServiceRequest or a Bundle (FHIR R4, JSON or XML), or upload a file, and see "
            "what the gateway decides and why. Nothing you try here is recorded as a consult."
        }
        div class="playground" {
            p { "Start from an example:" }
            ul class="examples" {
                @for (id, name, _) in EXAMPLES {
                    li { a class="button secondary" href={"/console/playground?example=" (id)} { (name) } }
                }
            }
            form method="post" action="/console/playground" {
                label for="body" { strong { "Request (JSON or XML)" } }
                textarea id="body" name="body" spellcheck="false" { (text) }
                div class="actions" {
                    label for="upload" { "Or upload a file " }
                    input type="file" id="upload" accept=".json,.xml,application/json,application/fhir+json,application/xml,application/fhir+xml";
                    button type="submit" { "Decide and explain" }
                }
            }
        }
        @match result {
            None => {}
            Some(Err(message)) => { div class="notice error" role="alert" { (message) } }
            Some(Ok(t)) => { (tried(t)) }
        }
    };
    page("/console/playground", "Playground", rules, body)
}

fn tried(t: &Tried) -> Markup {
    let answer = &t.answer;
    let pretty = serde_json::to_string_pretty(answer).unwrap_or_default();
    let redirected = answer.get("resourceType").and_then(Value::as_str) == Some("ServiceRequest");
    html! {
        section aria-labelledby="result" {
            h2 id="result" tabindex="-1" { "Result" }
            @match &t.explanation {
                None => {
                    div class="decision rejected" role="status" {
                        strong { "The input could not be used (HTTP " (t.status) ")" }
                    }
                    (findings(&json_with_first_issue_skipped(answer)))
                }
                Some(ex) => {
                    @let ps = parts_of_root(ex);
                    @if named(ps, "request").next().is_some() {
                        @for (i, req) in named(ps, "request").enumerate() {
                            @let rp = parts(req);
                            h3 { "Request " (i + 1) " — " code { (text_of(rp, "expression")) } }
                            (decision_block(&text_of(rp, "decision"), &text_of(rp, "summary")))
                            details { summary { "How it was decided" } (explanation(rp)) }
                        }
                        h3 { "What the gateway answers (HTTP " (t.status) ")" }
                        pre tabindex="0" aria-label="The answer" { code { (pretty) } }
                    } @else {
                        (decision_block(&text_of(ps, "decision"), &text_of(ps, "summary")))
                        @if redirected {
                            h3 { "The redirected request" }
                            p { "The gateway answers with this new ServiceRequest, addressed to the pathway:" }
                            pre tabindex="0" aria-label="The redirected request" { code { (pretty) } }
                        } @else {
                            h3 { "Findings, as the GP reads them" }
                            (findings(answer))
                        }
                        h2 { "Explanation" }
                        (explanation(ps))
                        @if !redirected {
                            details { summary { "The OperationOutcome the gateway answers (HTTP " (t.status) ")" } pre tabindex="0" aria-label="The OperationOutcome" { code { (pretty) } } }
                        }
                    }
                }
            }
        }
    }
}

/// An unusable input's OperationOutcome lists its problems from the first issue on; the
/// findings list skips the first issue (a decision), so one is put before them.
fn json_with_first_issue_skipped(oo: &Value) -> Value {
    let mut issues = vec![Value::Null];
    issues.extend(
        oo.get("issue")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    );
    serde_json::json!({ "issue": issues })
}

pub(super) fn parts_of_root(parameters: &Value) -> &[Value] {
    parameters
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A counter of the Prometheus text, by label: `name{a="x",b="y"} 3`.
fn counters(text: &str, name: &str, label: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some((labels, n)) = rest.strip_prefix('{').and_then(|r| r.rsplit_once("} ")) else {
            continue;
        };
        let Ok(n) = n.trim().parse::<f64>() else {
            continue;
        };
        let key = format!("{label}=\"");
        let Some(v) = labels
            .split(key.as_str())
            .nth(1)
            .and_then(|v| v.split('"').next())
        else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| k == v) {
            Some((_, total)) => *total += n,
            None => out.push((v.to_string(), n)),
        }
    }
    out
}

/// The dashboard without a consult store (`--store none`): what this gateway process has
/// counted since it started (the counters of `/metrics`).
pub fn dashboard(rules: &RuleSet, metrics: &Metrics) -> Markup {
    let text = metrics.render();
    let decisions = counters(&text, "referral_gateway_decisions_total", "decision");
    let colour = |d: &str| match d {
        "accepted" => charts::ACCEPTED,
        "rejected" => charts::REJECTED,
        "redirected" => charts::REDIRECTED,
        _ => charts::NEUTRAL,
    };
    let decision_bars: Vec<Bar> = ["accepted", "redirected", "rejected"]
        .iter()
        .map(|d| Bar {
            label: d.to_string(),
            value: decisions
                .iter()
                .find(|(k, _)| k == d)
                .map_or(0.0, |(_, n)| *n),
            colour: colour(d),
        })
        .collect();
    let mut hits = counters(&text, "referral_gateway_rule_hits_total", "rule");
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let hit_bars: Vec<Bar> = hits
        .iter()
        .take(12)
        .map(|(rule, n)| Bar {
            label: rule.clone(),
            value: *n,
            colour: charts::NEUTRAL,
        })
        .collect();
    let feedback = counters(&text, "referral_gateway_cds_feedback_total", "outcome");
    let feedback_bars: Vec<Bar> = feedback
        .iter()
        .map(|(o, n)| Bar {
            label: o.clone(),
            value: *n,
            colour: if o == "overridden" {
                charts::REJECTED
            } else {
                charts::ACCEPTED
            },
        })
        .collect();
    let body = html! {
        p class="lede" {
            "What the gateway has decided. Each picture has its numbers one click away, under "
            "“The numbers”."
        }
        div class="notice" role="note" {
            "No consult store is configured (" code { "serve --store" } "): these figures are this "
            "gateway process's own counts since it started. With the store, the dashboard shows "
            "consults over time, overrides with their reasons, shadow rules' would-be decisions and "
            "latency percentiles over a chosen period."
        }
        div class="charts" {
            (charts::bar_chart("decisions", "Decisions since start", "requests", &decision_bars))
            (charts::bar_chart("top-rules", "Top rules (times fired)", "times fired", &hit_bars))
            (charts::bar_chart("feedback", "CDS Hooks feedback on cards", "cards", &feedback_bars))
        }
    };
    page("/console/dashboard", "Dashboard", rules, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_label_and_summed() {
        let text = "# HELP x\nreferral_gateway_decisions_total{route=\"/ServiceRequest\",decision=\"accepted\",status=\"200\"} 3\nreferral_gateway_decisions_total{route=\"/\",decision=\"accepted\",status=\"200\"} 2\nreferral_gateway_decisions_total{route=\"/\",decision=\"rejected\",status=\"422\"} 1\n";
        let c = counters(text, "referral_gateway_decisions_total", "decision");
        assert_eq!(
            c,
            vec![("accepted".to_string(), 5.0), ("rejected".to_string(), 1.0)]
        );
    }

    #[test]
    fn words_are_marked_by_character_position() {
        let out = marked("calf swelling ?dvt", Some(15), Some(18), false).into_string();
        assert!(out.contains("<mark>dvt</mark>"), "{out}");
        let out = marked("no mass", Some(3), Some(7), true).into_string();
        assert!(
            out.contains(r#"<mark class="negated">mass</mark>"#),
            "{out}"
        );
    }
}
