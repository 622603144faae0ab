//! `jsonpath_none`: no JSONPath selects anything in the ServiceRequest (each expression is its
//! own check).

use super::{jsonpaths, Check, Condition, Cx, Facts, JsonPath, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "jsonpath_none",
    needs: Needs::Request,
    reads_reason: false,
    example: "jsonpath_none = ['$.doNotPerform']",
    doc: &["no expression selects anything"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct JsonPathNone(JsonPath);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    jsonpaths(w, cx)
        .into_iter()
        .map(|jp| Arc::new(JsonPathNone(jp)) as Arc<dyn Condition>)
        .collect()
}

impl Condition for JsonPathNone {
    fn check(&self, f: &Facts<'_>) -> Check {
        if self.0.selects_any(f.sr) {
            Check::Fails
        } else {
            Check::Holds(None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{request, run, with, Want::*};
    use serde_json::json;

    #[test]
    fn holds_and_fails() {
        let none = "jsonpath_none = ['$.doNotPerform']";
        let cxr = request("Chest X-ray", "cough");
        run(&[
            (none, cxr.clone(), Holds),
            (none, with(cxr, json!({"doNotPerform": true})), Fails),
        ]);
    }
}
