//! A radiology department adds a local rule with no Rust: a TOML file in a copy of rules/.
//! The rule uses the conditions the shipped rules do not: JSONPath, priority, text patterns,
//! age below a bound and the requester's organisation in a site list.

mod common;

use common::{as_referral, copy_dir};
use referral_gateway::engine;
use referral_gateway::finding::Decision;
use referral_gateway::parse::{Format, Limits};
use referral_gateway::rules::RuleSet;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const LOCAL_RULE: &str = r#"
id = "LOC01"
title = "Urgent left-sided chest X-rays for children from the site's own practices are flagged"
section = "Local"
guidance = "Local agreement: urgent paediatric chest films from our practices are reported the same day."
action = "warn"
issue_code = "informational"
focus = "procedure"
why = "A local reporting agreement applies."
advice = "Phone the reporting room after the film."

[when]
procedure = ["xr-chest"]
priority = ["urgent", "asap"]
age_below = 16
requester_org_in = "ct-colonography-centres"
text_any = ['wheez\w*']
jsonpath_any = ["$.bodySite[?@.text == 'left']"]
jsonpath_none = ["$.doNotPerform"]
"#;

fn load() -> (RuleSet, PathBuf) {
    let dir = std::env::temp_dir().join(format!("rg-local-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        &dir.join("rules"),
    );
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &dir.join("examples"),
    );
    std::fs::create_dir_all(dir.join("rules/local")).expect("mkdir");
    std::fs::write(
        dir.join("rules/local/LOC01-urgent-paediatric-cxr.toml"),
        LOCAL_RULE,
    )
    .expect("write");
    (
        RuleSet::load(&dir.join("rules")).expect("the local rule compiles"),
        dir,
    )
}

fn request(priority: &str, birth: &str, side: &str) -> Value {
    json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:5d1c0f1e-0000-4000-8000-000000000001", "resource": {
                "resourceType": "ServiceRequest", "status": "active", "intent": "order", "priority": priority,
                "code": {"text": "CXR"}, "bodySite": [{"text": side}],
                "subject": {"reference": "urn:uuid:5d1c0f1e-0000-4000-8000-000000000002"},
                "requester": {"reference": "Organization/practice"},
                "authoredOn": "2026-06-15",
                "reasonCode": [{"text": "wheezy for 3 days, ?pneumonia"}]}},
            {"fullUrl": "urn:uuid:5d1c0f1e-0000-4000-8000-000000000002", "resource": {"resourceType": "Patient", "birthDate": birth}},
            {"resource": {"resourceType": "Organization", "id": "practice",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RXX01"}]}}
        ]
    })
}

fn fired(rules: &RuleSet, v: &Value) -> (Decision, Vec<String>) {
    let c = engine::check(
        rules,
        as_referral(v.clone()).to_string().as_bytes(),
        Format::Json,
        &Limits::default(),
    )
    .expect("usable");
    let r = c.requests().next().expect("one request");
    (r.decision, r.fired.clone())
}

#[test]
fn a_local_rule_needs_no_rust() {
    let (rules, dir) = load();
    assert!(rules.rules.iter().any(|r| r.def.id == "LOC01"));
    let (decision, ids) = fired(&rules, &request("urgent", "2015-01-01", "left"));
    assert_eq!(ids, vec!["LOC01"]);
    assert_eq!(
        decision,
        Decision::Accepted,
        "a warn rule does not change the decision"
    );
    // Each condition, broken on its own, stops it.
    assert!(
        fired(&rules, &request("routine", "2015-01-01", "left"))
            .1
            .is_empty(),
        "priority"
    );
    assert!(
        fired(&rules, &request("urgent", "1990-01-01", "left"))
            .1
            .is_empty(),
        "age"
    );
    assert!(
        fired(&rules, &request("urgent", "2015-01-01", "right"))
            .1
            .is_empty(),
        "JSONPath"
    );
    let mut other_org = request("urgent", "2015-01-01", "left");
    other_org["entry"][2]["resource"]["identifier"][0]["value"] = json!("A81001");
    assert!(fired(&rules, &other_org).1.is_empty(), "site list");
    let mut no_wheeze = request("urgent", "2015-01-01", "left");
    no_wheeze["entry"][0]["resource"]["reasonCode"][0]["text"] =
        json!("cough, no wheeze, ?pneumonia");
    assert!(fired(&rules, &no_wheeze).1.is_empty(), "negated text");
    let mut not_performed = request("urgent", "2015-01-01", "left");
    not_performed["entry"][0]["resource"]["doNotPerform"] = json!(true);
    assert!(fired(&rules, &not_performed).1.is_empty(), "jsonpath_none");
    let _ = std::fs::remove_dir_all(dir);
}
