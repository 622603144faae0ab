//! Every rule's own examples, and the edge cases of the guidance.

mod common;

use common::*;
use referral_gateway::cli::rules_cmd::run_examples;
use referral_gateway::finding::Decision;
use serde_json::{json, Value};

/// The requests built here test the guidance rules: give them what the profile requires.
fn check_json(
    v: &Value,
) -> Result<referral_gateway::engine::Checked, referral_gateway::parse::Unusable> {
    common::check_json(&as_referral(v.clone()))
}

#[test]
fn every_rule_example_gives_its_expected_decision() {
    let runs = run_examples(rules());
    assert!(
        runs.len() >= 2 * rules().rules.len(),
        "every rule has examples both ways"
    );
    let failed: Vec<_> = runs.iter().filter(|r| !r.passed()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn every_rule_has_a_firing_and_a_quiet_example() {
    for rule in &rules().rules {
        let fires = rule
            .def
            .examples
            .iter()
            .any(|e| e.fires.unwrap_or(e.expect != Decision::Accepted));
        let quiet = rule.def.examples.iter().any(|e| e.fires == Some(false));
        assert!(
            fires && quiet,
            "rule {} needs both a firing example and a near miss",
            rule.def.id
        );
    }
}

#[test]
fn every_example_file_is_used_by_a_rule() {
    let mut used: Vec<String> = rules()
        .rules
        .iter()
        .flat_map(|r| r.def.examples.iter().map(|e| e.file.clone()))
        .collect();
    used.sort();
    for dir in ["general", "us", "xr", "ct"] {
        for e in std::fs::read_dir(repo().join("examples").join(dir)).expect("dir") {
            let name = format!("{dir}/{}", e.expect("entry").file_name().to_string_lossy());
            assert!(
                used.binary_search(&name).is_ok(),
                "{name} is not an example of any rule"
            );
        }
    }
}

/// A US kidney request for haematuria for a patient born on `birth`, authored 2026-06-15.
fn haematuria(birth: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "contained": [{"resourceType": "Patient", "id": "pat", "birthDate": birth}],
        "status": "active", "intent": "order",
        "code": {"text": "US kidneys and bladder"},
        "subject": {"reference": "#pat"},
        "authoredOn": "2026-06-15",
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "197941005", "display": "Frank hematuria"}]}]
    })
}

fn decision(v: &Value) -> (Decision, Vec<String>) {
    let c = check_json(v).expect("usable");
    let r = only(&c);
    (r.decision, r.fired.clone())
}

#[test]
fn haematuria_age_boundary_is_exact() {
    assert_eq!(
        decision(&haematuria("1981-06-15")).0,
        Decision::Redirected,
        "45 today: not under 45"
    );
    assert_eq!(
        decision(&haematuria("1981-06-16")).0,
        Decision::Accepted,
        "44, turns 45 tomorrow"
    );
    assert_eq!(decision(&haematuria("1990-01-01")).0, Decision::Accepted);
}

/// The request is rejected with a `required` issue; returns (text, expression).
fn required_issue(v: &Value) -> (String, String) {
    let c = check_json(v).expect("usable");
    let r = only(&c);
    assert_eq!(r.decision, Decision::Rejected);
    let req = r
        .findings
        .iter()
        .find(|f| f.code == "required")
        .expect("a required issue");
    (req.text.clone(), req.expression[0].to_string())
}

#[test]
fn unknown_or_partial_age_is_never_guessed() {
    // A year alone straddles 45: the age is not known.
    let (text, at) = required_issue(&haematuria("1981"));
    assert!(text.contains("age"), "{text}");
    assert_eq!(at, "ServiceRequest.contained[0].birthDate");
    // No patient at all.
    let mut v = haematuria("1981-06-15");
    v["subject"] = json!({"reference": "Patient/elsewhere"});
    v.as_object_mut().expect("object").remove("contained");
    let (text, at) = required_issue(&v);
    assert!(text.contains("Patient/elsewhere"), "{text}");
    assert_eq!(at, "ServiceRequest.subject");
}

fn ct_colonography(egfr_date: &str) -> Value {
    json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000001", "resource": {
                "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "418714002", "display": "Virtual computed tomography colonoscopy"}]},
                "subject": {"reference": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000002"},
                "requester": {"reference": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000003"},
                "authoredOn": "2026-06-15",
                "reasonCode": [{"text": "change in bowel habit, ?colorectal cancer"}],
                "supportingInfo": [{"reference": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000005"}]}},
            {"fullUrl": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000002", "resource": {"resourceType": "Patient", "birthDate": "1955-03-01"}},
            {"fullUrl": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000003", "resource": {"resourceType": "PractitionerRole",
                "organization": {"reference": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000004"}}},
            {"fullUrl": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000004", "resource": {"resourceType": "Organization",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RXX01"}]}},
            {"fullUrl": "urn:uuid:9a0e2c34-5b0f-4d7e-8f1a-000000000005", "resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]}, "effectiveDateTime": egfr_date}}
        ]
    })
}

#[test]
fn renal_function_must_be_recent() {
    // 2026-06-15 minus 90 days is 2026-03-17.
    assert_eq!(
        decision(&ct_colonography("2026-03-17")).0,
        Decision::Accepted,
        "90 days old"
    );
    let (d, fired) = decision(&ct_colonography("2026-03-16"));
    assert_eq!(d, Decision::Rejected, "91 days old");
    assert_eq!(fired, vec!["CT02"]);
}

#[test]
fn a_request_matching_two_rules_lists_both_and_redirect_wins() {
    let c = check_file(&repo().join("examples/xr/xr02-chronic-intractable-coccydynia.json"))
        .expect("usable");
    let r = only(&c);
    assert_eq!(r.fired, vec!["XR01", "XR02"]);
    assert_eq!(
        r.decision,
        Decision::Redirected,
        "a redirect takes precedence over a rejection"
    );
    let ids: Vec<&str> = r
        .findings
        .iter()
        .filter_map(|f| f.rule.as_ref().map(|x| x.id.as_str()))
        .collect();
    assert!(ids.contains(&"XR01") && ids.contains(&"XR02"));
    let sr = r.redirected.as_ref().expect("redirected request");
    assert_eq!(
        sr["performerType"]["coding"][0]["code"],
        "pain-clinic-or-orthopaedics"
    );
    assert_eq!(sr["status"], "draft");
}

fn neck(reason: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "code": {"text": "USS neck"}, "subject": {"reference": "Patient/1"},
        "reasonCode": [{"text": reason}]
    })
}

#[test]
fn negated_findings_do_not_count() {
    assert_eq!(
        decision(&neck("neck pain, no palpable mass")).1,
        vec!["US05"]
    );
    assert_eq!(
        decision(&neck("neck pain. Denies dysphagia")).1,
        vec!["US05"]
    );
    assert!(decision(&neck("neck pain with a palpable mass"))
        .1
        .is_empty());
}

#[test]
fn codes_from_each_system_are_recognised() {
    // SNOMED CT procedure, LOINC procedure, free text only.
    for code in [
        json!({"coding": [{"system": "http://snomed.info/sct", "code": "840361000"}]}),
        json!({"coding": [{"system": "http://loinc.org", "code": "24972-2"}]}),
        json!({"text": "XR L-spine"}),
    ] {
        let v = json!({
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "code": code, "subject": {"reference": "Patient/1"},
            "reasonCode": [{"text": "LBP for 6 weeks"}]
        });
        assert_eq!(decision(&v).1, vec!["XR08"], "{v}");
    }
}

#[test]
fn unknown_reason_codes_are_named_in_a_warning() {
    let v = json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "code": {"text": "XR lumbar spine"}, "subject": {"reference": "Patient/1"},
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "1234567"}]}]
    });
    let c = check_json(&v).expect("usable");
    let r = only(&c);
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "code-invalid")
        .expect("warning");
    assert!(w.text.contains("1234567"));
    assert_eq!(
        w.expression[0].to_string(),
        "ServiceRequest.reasonCode[0].coding[0]"
    );
}

#[test]
fn two_week_wait_is_found_in_an_extension() {
    let v = json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "extension": [{"url": "https://example.org/fhir/StructureDefinition/referral-priority",
            "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": "TWO_WEEK_WAIT"}}],
        "code": {"text": "CT chest abdomen pelvis"}, "subject": {"reference": "Patient/1"},
        "reasonCode": [{"text": "weight loss, ?lung cancer"}]
    });
    let (d, fired) = decision(&v);
    assert_eq!(d, Decision::Redirected);
    assert_eq!(fired, vec!["GEN02"]);
}

#[test]
fn parameters_with_a_resource_part_is_checked_like_its_resource() {
    let sr: Value = serde_json::from_slice(
        &std::fs::read(repo().join("examples/us/us05-neck-pain-only-coded.json")).expect("example"),
    )
    .expect("JSON");
    let p = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "create"}, {"name": "resource", "resource": sr}]});
    let c = check_json(&p).expect("usable");
    let r = only(&c);
    assert_eq!(r.fired, vec!["US05"]);
    assert_eq!(
        c.input.root_path.to_string(),
        "Parameters.parameter[1].resource"
    );
}

#[test]
fn bundle_entries_may_hold_only_a_resource() {
    let sr: Value = serde_json::from_slice(
        &std::fs::read(repo().join("examples/us/us05-neck-pain-only-coded.json")).expect("example"),
    )
    .expect("JSON");
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": sr}]});
    let c = check_json(&b).expect("usable");
    assert_eq!(only(&c).fired, vec!["US05"]);
}

#[test]
fn reason_references_resolve_to_coded_conditions() {
    let bundle = |condition_code: Value| {
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:3c1d2e4f-0000-4000-8000-000000000001", "resource": {
                "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "code": {"text": "XR lumbar spine"}, "subject": {"reference": "Patient/1"},
                "reasonReference": [{"reference": "urn:uuid:3c1d2e4f-0000-4000-8000-000000000002"}]}},
            {"fullUrl": "urn:uuid:3c1d2e4f-0000-4000-8000-000000000002", "resource": {
                "resourceType": "Condition", "subject": {"reference": "Patient/1"}, "code": condition_code}}
        ]})
    };
    // A coded low back pain Condition is read through the reference.
    let lbp = bundle(
        json!({"coding": [{"system": "http://snomed.info/sct", "code": "279039007", "display": "Low back pain"}]}),
    );
    assert_eq!(decision(&lbp).1, vec!["XR08"]);
    // An osteoporotic collapse Condition lifts the rejection.
    let collapse =
        bundle(json!({"coding": [{"system": "http://snomed.info/sct", "code": "240198002"}]}));
    assert!(decision(&collapse).1.is_empty());
}
