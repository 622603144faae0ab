//! Every class of bad input gets an answer, never a crash: the issue code, the FHIRPath of the
//! element, and line and column where the parser allows.

mod common;

use common::*;
use referral_gateway::finding::Finding;
use referral_gateway::outcome::response::unusable_answer;
use referral_gateway::parse::Unusable;

fn data(name: &str) -> std::path::PathBuf {
    repo().join("tests/data/bad").join(name)
}

fn finding_at<'a>(findings: &'a [Finding], path: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.expression.iter().any(|p| p.to_string() == path))
        .unwrap_or_else(|| panic!("no finding at {path}: {findings:#?}"))
}

fn invalid_request_findings(name: &str) -> Vec<Finding> {
    let c = check_file(&data(name)).expect("a ServiceRequest, even if invalid");
    let r = only(&c);
    assert!(r.invalid, "{name} must be invalid");
    r.findings.clone()
}

#[test]
fn invalid_json_has_line_and_column() {
    let err = check_file(&data("invalid-json.json")).expect_err("not JSON");
    let Unusable::Malformed(f) = &err else {
        panic!("malformed expected")
    };
    assert_eq!(f[0].code, "structure");
    assert_eq!(f[0].position, Some((5, 3)));
    let body = unusable_answer(&err, &rules().site);
    assert_eq!(body.status, 400);
    let issues = body.body["issue"].as_array().expect("issues");
    let ext = issues[1]["extension"]
        .as_array()
        .expect("line/col extensions");
    assert_eq!(
        ext[0]["url"],
        "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
    );
    assert_eq!(ext[0]["valueInteger"], 5);
    assert_eq!(ext[1]["valueInteger"], 3);
}

#[test]
fn invalid_xml_has_line_and_column() {
    let err = check_file(&data("invalid-xml.xml")).expect_err("not well-formed");
    assert_eq!(err.findings()[0].code, "structure");
    assert_eq!(err.findings()[0].position, Some((4, 1)));
}

#[test]
fn wrong_resource_type_is_not_supported() {
    let err =
        check_file(&data("wrong-resource-type.json")).expect_err("a Patient is not a request");
    assert_eq!(err.findings()[0].code, "not-supported");
    assert!(err.findings()[0].text.contains("Patient"));
    assert_eq!(unusable_answer(&err, &rules().site).status, 400);
}

#[test]
fn every_unknown_element_is_reported_with_path_and_position() {
    let f = invalid_request_findings("unknown-element.json");
    // An unknown element has no FHIRPath of its own: the expression names its parent, the
    // line and column the element itself.
    let colour = finding_at(&f, "ServiceRequest.code.coding[0]");
    assert!(colour.text.contains("'colour'"));
    assert_eq!(colour.code, "structure");
    assert_eq!(colour.position, Some((7, 66)));
    let urgency = finding_at(&f, "ServiceRequest.reasonCode[0]");
    assert_eq!(urgency.position, Some((11, 42)));
}

#[test]
fn unknown_xml_element_is_located() {
    let err = check_file(&data("unknown-element.xml")).expect_err("fhirbolt refuses it");
    let f = &err.findings()[0];
    assert_eq!(f.code, "structure");
    assert_eq!(f.expression[0].to_string(), "ServiceRequest");
    assert_eq!(f.position, Some((4, 3)));
}

#[test]
fn wrong_json_type_is_invalid() {
    let f = invalid_request_findings("wrong-type.json");
    let t = finding_at(&f, "ServiceRequest.reasonCode[1].text");
    assert_eq!(t.code, "invalid");
    assert_eq!(t.position, Some((8, 7)));
}

#[test]
fn impossible_dates_are_invalid() {
    let f = invalid_request_findings("invalid-dates.json");
    let authored = finding_at(&f, "ServiceRequest.authoredOn");
    assert_eq!(authored.code, "invalid");
    assert_eq!(authored.position, Some((7, 3)));
    let birth = finding_at(&f, "ServiceRequest.contained[0].birthDate");
    assert!(birth.text.contains("1968-02-31"));
}

#[test]
fn bindings_shapes_and_empty_values() {
    let f = invalid_request_findings("bad-bindings.json");
    assert_eq!(finding_at(&f, "ServiceRequest.status").code, "code-invalid");
    assert_eq!(
        finding_at(&f, "ServiceRequest.priority").code,
        "code-invalid"
    );
    assert_eq!(finding_at(&f, "ServiceRequest.category").code, "structure");
    assert_eq!(finding_at(&f, "ServiceRequest.note").code, "invalid");
    assert_eq!(
        finding_at(&f, "ServiceRequest.reasonCode[0].text").code,
        "invalid"
    );
}

#[test]
fn missing_required_elements_are_each_named_once() {
    let f = invalid_request_findings("missing-required.json");
    for element in ["status", "intent", "subject"] {
        let n = f
            .iter()
            .filter(|x| x.code == "required" && x.text.contains(&format!("'{element}'")))
            .count();
        assert_eq!(n, 1, "{element}: {f:#?}");
    }
}

#[test]
fn garbage_never_panics() {
    let inputs: Vec<&[u8]> = vec![
        b"",
        b"null",
        b"[]",
        b"{}",
        b"\xff\xfe",
        b"{\"resourceType\": 5}",
        b"{\"resourceType\": \"Bundle\", \"type\": \"batch\", \"entry\": []}",
        b"{\"resourceType\": \"Bundle\", \"type\": \"batch\", \"entry\": [{}, {\"resource\": []}, {\"resource\": {\"resourceType\": \"ServiceRequest\"}}]}",
        b"{\"resourceType\": \"ServiceRequest\", \"status\": \"active\", \"intent\": \"order\", \"subject\": {\"reference\": \"#\"}, \"contained\": [], \"reasonCode\": [[]]}",
        b"{\"resourceType\": \"Parameters\", \"parameter\": [{\"name\": \"resource\"}]}",
        b"<ServiceRequest xmlns=\"http://hl7.org/fhir\"><status value=\"\"/></ServiceRequest>",
        b"<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"batch\"/><entry><resource/></entry></Bundle>",
    ];
    for bytes in inputs {
        for format in [
            referral_gateway::parse::Format::Json,
            referral_gateway::parse::Format::Xml,
        ] {
            // Either an answer or an unusable-input report: both are fine, a panic is not.
            let _ = check_bytes(bytes, format);
        }
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(check_bytes(deep.as_bytes(), referral_gateway::parse::Format::Json).is_err());
}

#[test]
fn deep_xml_is_too_costly_not_a_crash() {
    let n = 200_000;
    let xml = format!(
        "<ServiceRequest xmlns=\"http://hl7.org/fhir\">{}{}</ServiceRequest>",
        "<extension url=\"x\">".repeat(n),
        "</extension>".repeat(n)
    );
    let err =
        check_bytes(xml.as_bytes(), referral_gateway::parse::Format::Xml).expect_err("too deep");
    assert!(matches!(err, Unusable::TooCostly(_)), "{err:?}");
}

#[test]
fn too_many_entries_is_too_costly() {
    let entries: Vec<serde_json::Value> = (0..1001)
        .map(|_| serde_json::json!({"resource": {"resourceType": "Basic", "code": {"text": "x"}}}))
        .collect();
    let b = serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
    let err = check_json(&b).expect_err("over the limit");
    assert!(matches!(err, Unusable::TooCostly(_)));
    assert_eq!(unusable_answer(&err, &rules().site).status, 413);
}
