//! `requester_org_not_in`: the requesting organisation's ODS code is not in this site list
//! (`site.toml [site_lists]`). Without an ODS code, a requester the request's words call a
//! general practice (markers `general-practice`, `not-general-practice`) is not in the list:
//! a GP surgery is not an authorised centre.

use super::{org_check, site_list, Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "requester_org_not_in",
    needs: Needs::Context("the ODS code, or words naming a general practice"),
    reads_reason: false,
    example: r#"requester_org_not_in = "ct-colonography-centres""#,
    doc: &["not in that site list"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct RequesterOrgNotIn(String);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    site_list(w, cx)
        .map(|l| Arc::new(RequesterOrgNotIn(l)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for RequesterOrgNotIn {
    fn check(&self, f: &Facts<'_>) -> Check {
        org_check(f, &self.0, false)
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{request, run, with, Want::*};
    use serde_json::json;

    fn by(requester: serde_json::Value) -> serde_json::Value {
        with(
            request("CT colonography", "change in bowel habit"),
            json!({ "requester": requester }),
        )
    }

    #[test]
    fn holds_and_fails() {
        let list = r#"requester_org_not_in = "ct-colonography-centres""#;
        let ods = |v: &str| json!({"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": v}});
        run(&[
            (list, by(ods("Y99999")), Holds),
            (list, by(ods("RXX01")), Fails),
            // no ODS code, but the words say a general practice
            (
                list,
                by(json!({"display": "Dr Sam Example, Example Surgery GP practice"})),
                Holds,
            ),
            // "General Surgery" is a hospital specialty, not a GP surgery
            (
                list,
                by(json!({"display": "Mr Lee, General Surgery"})),
                Unknown,
            ),
            (list, by(json!({"display": "Dr Lee"})), Unknown),
        ]);
    }
}
