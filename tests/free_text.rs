//! Free text as GPs write it (tests/data/free-text.toml): shorthand, negation, questions.

mod common;

use common::*;
use referral_gateway::finding::Decision;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Case {
    code: String,
    reason: String,
    #[serde(default)]
    birth: Option<String>,
    decision: Decision,
    rules: Vec<String>,
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[test]
fn free_text_cases() {
    let text = std::fs::read_to_string(repo().join("tests/data/free-text.toml")).expect("cases");
    let cases: Cases = toml::from_str(&text).expect("TOML");
    let mut failures = Vec::new();
    for c in &cases.cases {
        let mut sr = json!({
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "contained": [{"resourceType": "Patient", "id": "p", "birthDate": c.birth.as_deref().unwrap_or("1960-01-01")}],
            "code": {"text": c.code}, "subject": {"reference": "#p"}, "authoredOn": "2026-06-15"
        });
        if !c.reason.is_empty() {
            sr["reasonCode"] = json!([{"text": c.reason}]);
        }
        let checked = check_json(&as_referral(sr)).expect("usable");
        let r = only(&checked);
        if r.decision != c.decision || r.fired != c.rules {
            failures.push(format!(
                "{} | {}: expected {:?} {:?}, got {:?} {:?}",
                c.code, c.reason, c.decision, c.rules, r.decision, r.fired
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
