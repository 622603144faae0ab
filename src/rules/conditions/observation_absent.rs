//! `observation_absent`: the request carries no result of this observation kind
//! (`terminology/observations.toml`, by code or words) dated within `within_days` of the
//! request (default: `renal_function_max_age_days` of site.toml). An undated result of the
//! kind is missing context.

use super::{holds, Check, Condition, Cx, Facts, Kind, Needs, Written};
use crate::context::Missing;
use crate::terminology::{text, Table};
use serde_json::Value;
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "observation_absent",
    needs: Needs::Context("the date of each such result"),
    reads_reason: false,
    example: r#"observation_absent = { kind = "renal-function", within_days = 90 }"#,
    doc: &[
        "no such result within the days (default:",
        "site.toml renal_function_max_age_days)",
    ],
    compile,
    shown,
};

/// `kind within N days`, or `kind` when the site's default applies.
fn shown(v: &toml::Value) -> String {
    let kind = v.get("kind").map(super::shown).unwrap_or_default();
    match v.get("within_days") {
        Some(d) => format!("{kind} within {d} days"),
        None => kind,
    }
}

#[derive(Debug)]
struct ObservationAbsent {
    /// The observation concept.
    kind: usize,
    days: i64,
}

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    let Some(table) = w.value.as_table() else {
        cx.error(
            w,
            None,
            "observation_absent is a table { kind = \"...\", within_days = N }",
        );
        return Vec::new();
    };
    if let Some(other) = table.keys().find(|k| *k != "kind" && *k != "within_days") {
        cx.error(
            w,
            None,
            format!("observation_absent has no field '{other}' (kind, within_days)"),
        );
        return Vec::new();
    }
    let Some(kind_name) = table.get("kind").and_then(toml::Value::as_str) else {
        cx.error(w, None, "observation_absent needs kind = \"...\"");
        return Vec::new();
    };
    let days = match table.get("within_days") {
        None => cx.site.renal_function_max_age_days,
        Some(d) => match d.as_integer() {
            Some(d) => d,
            None => {
                cx.error(w, None, "observation_absent.within_days is a whole number");
                return Vec::new();
            }
        },
    };
    match cx.terms.find(Table::Observation, kind_name) {
        Some(kind) => vec![Arc::new(ObservationAbsent { kind, days })],
        None => {
            cx.error(
                w,
                Some(kind_name),
                format!("unknown observation kind '{kind_name}'"),
            );
            Vec::new()
        }
    }
}

impl Condition for ObservationAbsent {
    fn check(&self, f: &Facts<'_>) -> Check {
        let days = self.days;
        let concept = &f.terms.observations[self.kind];
        let of_kind = f.ctx.observations.iter().filter(|o| {
            let Some(code) = o.resource.get("code") else {
                return false;
            };
            let coded = code
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    concept.codes.iter().any(|d| {
                        c.get("system").and_then(Value::as_str) == Some(d.system.as_str())
                            && c.get("code").and_then(Value::as_str) == Some(d.code.as_str())
                    })
                });
            let texts = code.get("text").and_then(Value::as_str).into_iter().chain(
                code.get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("display").and_then(Value::as_str)),
            );
            coded
                || concept.pattern.as_ref().is_some_and(|re| {
                    texts.map(|t| text::normalise(t, &f.terms.forms)).any(|t| {
                        f.terms
                            .reader
                            .mentions(re, &t, f.mapped.as_of)
                            .iter()
                            .any(|x| !x.negated)
                    })
                })
        });
        let mut undated = None;
        let mut newest: Option<i64> = None;
        for o in of_kind {
            match o.effective {
                Some(d) => {
                    let age = (f.ctx.authored - d.latest).whole_days();
                    if (0..=days).contains(&age) || (age < 0 && age > -2) {
                        return Check::Fails;
                    }
                    newest = Some(newest.map_or(age, |n: i64| n.min(age)));
                }
                None => undated = Some(o.path.clone()),
            }
        }
        if let Some(path) = undated {
            return Check::Unknown(Missing {
                what: "date of the supporting result",
                looked: format!(
                    "the {} Observation has no effective date or issued time",
                    concept.title
                ),
                at: path,
            });
        }
        let why = match newest {
            Some(n) => format!(
                "the newest {} result is {n} days old (limit {days} days)",
                concept.title
            ),
            None => format!("no {} result is given in supportingInfo", concept.title),
        };
        holds(
            why,
            Some(if f.sr.get("supportingInfo").is_some() {
                f.at.field("supportingInfo")
            } else {
                f.at.clone()
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile, compile_errors, request, run, with, Want::*};
    use serde_json::{json, Value};

    /// A CT colonography request with an eGFR result dated `date` (none when empty) in
    /// supportingInfo.
    fn with_egfr(date: &str) -> Value {
        let sr = request("CT colonography", "change in bowel habit");
        let mut obs = json!({
            "resourceType": "Observation", "id": "egfr", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "62238-1"}], "text": "eGFR"},
            "valueQuantity": {"value": 68, "unit": "mL/min/1.73m2"},
        });
        if !date.is_empty() {
            obs["effectiveDateTime"] = json!(date);
        }
        let mut contained = sr["contained"].as_array().cloned().unwrap_or_default();
        contained.push(obs);
        with(
            sr,
            json!({"contained": contained, "supportingInfo": [{"reference": "#egfr"}]}),
        )
    }

    #[test]
    fn holds_and_fails() {
        let renal = r#"observation_absent = { kind = "renal-function", within_days = 90 }"#;
        // Written 2026-06-15.
        run(&[
            (
                renal,
                request("CT colonography", "change in bowel habit"),
                Holds,
            ),
            (renal, with_egfr("2026-05-16"), Fails),
            (renal, with_egfr("2026-03-17"), Fails),
            (renal, with_egfr("2026-03-16"), Holds),
            (renal, with_egfr(""), Unknown),
        ]);
    }

    #[test]
    fn within_days_defaults_to_the_site() {
        let when = compile("observation_absent = { kind = \"renal-function\" }\n").expect("ok");
        assert_eq!(when.conditions[0].asked, "renal-function");
        assert!(format!("{:?}", when.conditions[0].condition).contains("days: 90"));
    }

    #[test]
    fn problems_are_named() {
        let e = compile_errors("observation_absent = { kind = \"nope\" }\n");
        assert_eq!(e[0].message, "unknown observation kind 'nope'");
        let e = compile_errors("observation_absent = { kind = \"renal-function\", days = 3 }\n");
        assert_eq!(
            e[0].message,
            "observation_absent has no field 'days' (kind, within_days)"
        );
    }
}
