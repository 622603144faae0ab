//! The explanation of decisions (contract §9): the engine's [`Trace`] of each ServiceRequest,
//! written as the FHIR `Parameters` of `POST /ServiceRequest/$explain` (and `check --explain
//! --format json`) or as text for `check --explain`. The console renders the Parameters.
//! Nothing here decides: it only writes down what the engine recorded.

use crate::engine::trace::{MatchStep, RuleStep, Trace};
use crate::engine::{Checked, RequestResult};
use crate::parse::InputKind;
use crate::site::Site;
use serde_json::{json, Value};

/// The canonical URL of the `$explain` OperationDefinition (published in `profiles/`).
pub fn operation_url(site: &Site) -> String {
    format!(
        "{}/OperationDefinition/ServiceRequest-explain",
        site.canonical.trim_end_matches('/')
    )
}

fn part(name: &str, key: &str, value: Value) -> Value {
    let mut p = json!({ "name": name });
    p[key] = value;
    p
}

fn string(name: &str, value: &str) -> Value {
    part(name, "valueString", json!(value))
}

fn boolean(name: &str, value: bool) -> Value {
    part(name, "valueBoolean", json!(value))
}

fn match_parameter(m: &MatchStep) -> Value {
    let mut concept = json!({ "code": m.concept, "display": m.concept_title });
    if let Some(system) = &m.concept_system {
        concept["system"] = json!(system);
    }
    let mut parts = vec![
        part("kind", "valueCode", json!(m.kind.as_str())),
        part("concept", "valueCoding", concept),
    ];
    if let Some(system) = &m.system {
        parts.push(part("system", "valueUri", json!(system)));
    }
    if let Some(code) = &m.code {
        parts.push(part("code", "valueCode", json!(code)));
    }
    if let Some(text) = &m.text {
        parts.push(string("text", text));
    }
    parts.push(string("expression", &m.expression.to_string()));
    if let (Some(start), Some(end)) = (m.start, m.end) {
        parts.push(part("start", "valueInteger", json!(start)));
        parts.push(part("end", "valueInteger", json!(end)));
    }
    parts.push(boolean("negated", m.negated));
    if let Some(context) = m.context {
        parts.push(string("context", context));
    }
    parts.push(boolean("questioned", m.questioned));
    if let Some(trigger) = &m.trigger {
        parts.push(string("trigger", trigger));
    }
    json!({ "name": "match", "part": parts })
}

fn rule_parameter(r: &RuleStep) -> Value {
    let mut parts = vec![
        part("id", "valueCode", json!(r.id)),
        string("title", &r.title),
        part("action", "valueCode", json!(r.action)),
        boolean("fired", r.fired),
    ];
    if r.needs_context {
        parts.push(boolean("needsContext", true));
    }
    for c in &r.conditions {
        let mut cond = vec![string("name", c.name)];
        // A condition that could not be checked for want of context did not hold.
        cond.push(boolean("held", c.held == Some(true)));
        cond.push(string("why", &c.why));
        parts.push(json!({ "name": "condition", "part": cond }));
    }
    json!({ "name": "rule", "part": parts })
}

/// The parameters of one request: decision, summary, then each step.
fn request_parameters(r: &RequestResult) -> Vec<Value> {
    let mut out = vec![
        part("decision", "valueCode", json!(r.decision.code())),
        string("summary", &r.summary),
    ];
    let empty = Trace::default();
    let trace = r.trace.as_deref().unwrap_or(&empty);
    out.extend(trace.matches.iter().map(match_parameter));
    out.extend(trace.context.iter().map(|c| {
        json!({ "name": "context", "part": [
            string("what", &c.what),
            string("where", &c.place),
            boolean("found", c.found),
        ]})
    }));
    out.extend(trace.unplaced.iter().map(|(path, words)| {
        let mut parts = vec![string("expression", &path.to_string())];
        parts.extend(words.iter().map(|w| string("word", w)));
        json!({ "name": "unplaced", "part": parts })
    }));
    out.extend(trace.rules.iter().map(rule_parameter));
    out
}

/// The `$explain` answer: a `Parameters` resource. A single ServiceRequest's steps are its
/// parameters; a Bundle has one `request` parameter per ServiceRequest entry, holding them as
/// parts after the entry's `expression`.
pub fn parameters(checked: &Checked) -> Value {
    let parameter: Vec<Value> = match checked.input.kind {
        InputKind::ServiceRequest => checked
            .requests()
            .next()
            .map(request_parameters)
            .unwrap_or_default(),
        InputKind::Bundle(_) => checked
            .requests()
            .map(|r| {
                let mut parts = vec![string("expression", &r.path.to_string())];
                parts.extend(request_parameters(r));
                json!({ "name": "request", "part": parts })
            })
            .collect(),
    };
    json!({ "resourceType": "Parameters", "parameter": parameter })
}

/// The explanation as text, for `check --explain`: one block per request, each step on its
/// own line, wrapped by the caller's layout.
pub fn text(r: &RequestResult) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    let empty = Trace::default();
    let trace = r.trace.as_deref().unwrap_or(&empty);
    lines.push((0, "Codes and words matched".into()));
    if trace.matches.is_empty() {
        lines.push((1, "none".into()));
    }
    for m in &trace.matches {
        let found = match m.kind {
            crate::engine::trace::MatchKind::Code => format!(
                "code {} {}{}",
                m.system
                    .as_deref()
                    .map(crate::terminology::system_name)
                    .unwrap_or(""),
                m.code.as_deref().unwrap_or(""),
                m.text
                    .as_deref()
                    .map(|t| format!(" '{t}'"))
                    .unwrap_or_default()
            ),
            crate::engine::trace::MatchKind::Word => match (&m.text, m.start, m.end) {
                (Some(t), Some(s), Some(e)) => {
                    let words: String = t.chars().skip(s).take(e - s).collect();
                    format!("words '{words}' at {s}..{e} of \"{t}\"")
                }
                (Some(t), _, _) => format!("words in \"{t}\""),
                _ => "words".into(),
            },
        };
        let mut how = Vec::new();
        if m.negated {
            how.push(m.context.unwrap_or("negated").to_string());
        }
        if m.questioned {
            how.push("a question".to_string());
        }
        if let Some(t) = &m.trigger {
            how.push(format!("by '{t}'"));
        }
        lines.push((
            1,
            format!(
                "{} {} ({}): {found} at {}{}",
                m.table,
                m.concept,
                m.concept_title,
                m.expression,
                if how.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", how.join(", "))
                }
            ),
        ));
    }
    if !trace.unplaced.is_empty() {
        lines.push((0, "Words not placed (read as possibly clinical)".into()));
        for (path, words) in &trace.unplaced {
            lines.push((1, format!("{path}: {}", words.join(", "))));
        }
    }
    lines.push((0, "Context looked up".into()));
    for c in &trace.context {
        lines.push((
            1,
            format!(
                "{} {}: {}",
                if c.found { "found    " } else { "not found" },
                c.what,
                c.place
            ),
        ));
    }
    lines.push((0, "Rules tried".into()));
    for rule in &trace.rules {
        lines.push((
            1,
            format!(
                "{} {} ({}): {}",
                rule.id,
                if rule.needs_context {
                    "needs context"
                } else if rule.fired {
                    "FIRED"
                } else {
                    "not fired"
                },
                rule.action,
                rule.title
            ),
        ));
        for c in &rule.conditions {
            let mark = match c.held {
                Some(true) => "held     ",
                Some(false) => "failed   ",
                None => "not known",
            };
            lines.push((2, format!("{mark} {}: {}", c.name, c.why)));
        }
    }
    lines
}
