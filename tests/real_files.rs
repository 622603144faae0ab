//! The 40 real third-party FHIR R4 files (HL7, US Core, UK Core) all parse and get a decision;
//! the XML and JSON forms of each UK Core example get the same decision.

mod common;

use common::*;
use std::path::PathBuf;

fn real_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["hl7-r4-core", "us-core", "uk-core"] {
        let d = fhir_examples().join(dir);
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_real_file_parses_and_gets_a_decision() {
    let files = real_files();
    assert_eq!(files.len(), 40, "the set holds 40 files");
    let mut requests = 0;
    for f in &files {
        let c = check_file(f)
            .unwrap_or_else(|e| panic!("{}: unusable: {:?}", f.display(), e.findings()));
        for r in c.requests() {
            assert!(!r.invalid, "{}: {:#?}", f.display(), r.findings);
            requests += 1;
        }
    }
    // 37 ServiceRequests and one in each of the 3 Bundles.
    assert_eq!(requests, 40);
}

#[test]
fn bundles_find_their_service_request_entry() {
    let c = check_file(&fhir_examples().join("hl7-r4-core/Bundle-micro.json")).expect("parses");
    let r = only(&c);
    assert_eq!(r.path.to_string(), "Bundle.entry[26].resource");
}

#[test]
fn uk_core_xml_and_json_agree() {
    let dir = fhir_examples().join("uk-core");
    let mut compared = 0;
    for e in std::fs::read_dir(dir.join("xml")).expect("xml dir") {
        let xml = e.expect("entry").path();
        let stem = xml.file_stem().expect("stem").to_string_lossy().to_string();
        let json = dir.join(format!("{stem}.json"));
        let a = check_file(&xml).unwrap_or_else(|e| panic!("{stem}.xml: {:?}", e.findings()));
        let b = check_file(&json).expect("json parses");
        let (ra, rb) = (only(&a), only(&b));
        assert_eq!(ra.decision, rb.decision, "{stem}");
        assert_eq!(ra.fired, rb.fired, "{stem}");
        assert_eq!(expressions(ra), expressions(rb), "{stem}");
        compared += 1;
    }
    assert_eq!(compared, 10);
}

#[test]
fn non_imaging_requests_fail_the_imaging_profile() {
    // HL7's lipid panel order: not imaging, no priority, no authoredOn. The gateway's profile
    // requires all three; the unknown procedure code is only a warning (extensible binding).
    let c =
        check_file(&fhir_examples().join("hl7-r4-core/ServiceRequest-lipid.json")).expect("parses");
    let r = only(&c);
    assert_eq!(r.decision, referral_gateway::finding::Decision::Rejected);
    assert!(
        !r.invalid,
        "valid FHIR, rejected by the profile: 422, not 400"
    );
    let errors: Vec<(&str, String)> = r
        .findings
        .iter()
        .filter(|f| f.is_error())
        .map(|f| (f.code.as_str(), f.expression[0].to_string()))
        .collect();
    for element in ["category", "priority", "authoredOn"] {
        assert!(
            errors.contains(&("required", format!("ServiceRequest.{element}"))),
            "{element}: {errors:?}"
        );
    }
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "code-invalid" && f.expression[0].to_string() == "ServiceRequest.code")
        .expect("binding warning");
    assert_eq!(w.severity, referral_gateway::finding::Severity::Warning);
    assert!(w.text.contains("LIPID") && w.text.contains("guidance could not be applied"));
}
