//! `priority`: `ServiceRequest.priority` is one of these FHIR request-priority codes.

use super::{holds, Check, Condition, Cx, Facts, Kind, Needs, Written};
use serde_json::Value;
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "priority",
    needs: Needs::Request,
    reads_reason: false,
    example: r#"priority = ["urgent", "asap", "stat"]"#,
    doc: &["ServiceRequest.priority is one of these"],
    compile,
    shown: super::shown,
};

/// The FHIR request-priority codes.
const CODES: [&str; 4] = ["routine", "urgent", "asap", "stat"];

#[derive(Debug)]
struct Priority(Vec<String>);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    let list = w.strings(cx);
    let mut ok = true;
    for p in &list {
        if !CODES.contains(&p.as_str()) {
            cx.error(
                w,
                Some(p),
                format!("priority '{p}' is not a FHIR request-priority code"),
            );
            ok = false;
        }
    }
    if !ok || list.is_empty() {
        return Vec::new();
    }
    vec![Arc::new(Priority(list))]
}

impl Condition for Priority {
    fn check(&self, f: &Facts<'_>) -> Check {
        match f.sr.get("priority").and_then(Value::as_str) {
            Some(p) if self.0.iter().any(|x| x == p) => {
                holds(format!("priority {p}"), Some(f.at.field("priority")))
            }
            _ => Check::Fails,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile_errors, request, run, with, Want::*};
    use serde_json::json;

    #[test]
    fn holds_and_fails() {
        let urgent = r#"priority = ["urgent", "asap"]"#;
        let cxr = request("Chest X-ray", "cough");
        run(&[
            (
                urgent,
                with(cxr.clone(), json!({"priority": "urgent"})),
                Holds,
            ),
            (
                urgent,
                with(cxr.clone(), json!({"priority": "asap"})),
                Holds,
            ),
            (urgent, cxr.clone(), Fails),
            (urgent, with(cxr, json!({"priority": null})), Fails),
        ]);
    }

    #[test]
    fn only_request_priority_codes() {
        let e = compile_errors("priority = [\"soon\"]\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0].message,
            "priority 'soon' is not a FHIR request-priority code"
        );
    }
}
