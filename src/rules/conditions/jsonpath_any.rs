//! `jsonpath_any`: every JSONPath selects at least one value of the ServiceRequest (each
//! expression is its own check).

use super::{holds, jsonpaths, Check, Condition, Cx, Facts, JsonPath, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "jsonpath_any",
    needs: Needs::Request,
    reads_reason: false,
    example: "jsonpath_any = ['$.bodySite[*].text']",
    doc: &["every expression selects at least one value"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct JsonPathAny(JsonPath);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    jsonpaths(w, cx)
        .into_iter()
        .map(|jp| Arc::new(JsonPathAny(jp)) as Arc<dyn Condition>)
        .collect()
}

impl Condition for JsonPathAny {
    fn check(&self, f: &Facts<'_>) -> Check {
        if self.0.selects_any(f.sr) {
            holds(format!("JSONPath {} matches", self.0.source), None)
        } else {
            Check::Fails
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile, compile_errors, request, run, with, Want::*};
    use serde_json::json;

    #[test]
    fn holds_and_fails() {
        let body_site = "jsonpath_any = ['$.bodySite[*].text']";
        let both = "jsonpath_any = ['$.bodySite[*].text', '$.note']";
        let cxr = request("Chest X-ray", "cough");
        let sited = with(cxr.clone(), json!({"bodySite": [{"text": "left"}]}));
        run(&[
            (body_site, sited.clone(), Holds),
            (body_site, cxr, Fails),
            (both, sited.clone(), Fails),
            (both, with(sited, json!({"note": [{"text": "n"}]})), Holds),
        ]);
    }

    #[test]
    fn each_expression_is_its_own_check() {
        let when = compile("jsonpath_any = ['$.a', '$.b']\n").expect("compiles");
        assert_eq!(when.conditions.len(), 2);
        assert!(when.conditions.iter().all(|c| c.asked == "$.a, $.b"));
    }

    #[test]
    fn an_expression_that_does_not_compile_is_an_error() {
        let e = compile_errors("jsonpath_any = [\n  '$.a',\n  '$[?(',\n]\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].message.starts_with("JSONPath '$[?(' does not compile"),
            "{e:?}"
        );
        assert_eq!(e[0].line, Some(4));
    }
}
