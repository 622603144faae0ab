//! `requester_org_in`: the requesting organisation's ODS code is in this site list
//! (`site.toml [site_lists]`).

use super::{org_check, site_list, Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "requester_org_in",
    needs: Needs::Context("the requesting organisation's ODS code"),
    reads_reason: false,
    example: r#"requester_org_in = "ct-colonography-centres""#,
    doc: &["a site list of site.toml [site_lists]"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct RequesterOrgIn(String);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    site_list(w, cx)
        .map(|l| Arc::new(RequesterOrgIn(l)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for RequesterOrgIn {
    fn check(&self, f: &Facts<'_>) -> Check {
        org_check(f, &self.0, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile_errors, request, run, with, Want::*};
    use serde_json::json;

    fn from(ods: &str) -> serde_json::Value {
        with(
            request("CT colonography", "change in bowel habit"),
            json!({"requester": {"identifier": {
                "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}}}),
        )
    }

    #[test]
    fn holds_and_fails() {
        let list = r#"requester_org_in = "ct-colonography-centres""#;
        run(&[
            (list, from("RXX01"), Holds),
            (list, from("rxx01"), Holds),
            (list, from("Y99999"), Fails),
            // a general practice named, no ODS code: the list cannot be checked
            (
                list,
                request("CT colonography", "change in bowel habit"),
                Unknown,
            ),
        ]);
    }

    #[test]
    fn the_list_is_a_site_list() {
        let e = compile_errors("requester_org_in = \"nowhere\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0].message,
            "unknown site list 'nowhere' (site.toml [site_lists])"
        );
    }
}
