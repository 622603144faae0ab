//! What the reference validator finds, the gateway finds (issue 20): Bundle integrity, safe
//! narrative, required bindings and primitive formats on every element of every resource, and
//! reference target types checked on the resource a reference resolves to.
//!
//! Each case starts from a shipped example the guidance accepts and changes one thing.

mod common;

use common::*;
use referral_gateway::engine::{Checked, EntryResult};
use referral_gateway::finding::{Decision, Finding};
use referral_gateway::parse::Unusable;
use serde_json::{json, Value};

fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(name)).expect("example");
    serde_json::from_str(&text).expect("json")
}

/// A batch Bundle of Patient, Practitioner, Organization, PractitionerRole and ServiceRequest.
fn bundle() -> Value {
    example("xr/xr08-back-pain-red-flags-bundle-accepted.json")
}

fn single() -> Value {
    example("general/gen01-cxr-with-clinical-question.json")
}

fn accepted(v: &Value) -> Checked {
    let c = check_json(v).unwrap_or_else(|e| panic!("refused: {:#?}", e.findings()));
    for r in c.requests() {
        assert!(!r.invalid, "invalid: {:#?}", r.findings);
        assert_eq!(r.decision, Decision::Accepted, "{:#?}", r.findings);
    }
    c
}

fn refused(v: &Value) -> Vec<Finding> {
    match check_json(v) {
        Err(Unusable::Malformed(f)) => f,
        Ok(c) => panic!("not refused: {:#?}", c.entries),
        Err(e) => panic!("{e:?}"),
    }
}

/// The error findings of the one ServiceRequest, which must be invalid.
fn invalid(v: &Value) -> Vec<Finding> {
    let c = check_json(v).unwrap_or_else(|e| panic!("refused whole: {:#?}", e.findings()));
    let r = only(&c);
    assert!(r.invalid, "valid: {:#?}", r.findings);
    assert_eq!(r.decision, Decision::Rejected);
    r.findings
        .iter()
        .filter(|f| f.is_error())
        .cloned()
        .collect()
}

fn at(f: &[Finding], path: &str) -> Finding {
    f.iter()
        .find(|f| f.expression.iter().any(|p| p.to_string() == path))
        .cloned()
        .unwrap_or_else(|| panic!("nothing at {path}: {f:#?}"))
}

fn entry_index(b: &Value, rt: &str) -> usize {
    b["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .position(|e| e["resource"]["resourceType"] == rt)
        .expect("entry of that type")
}

// --- Bundle integrity -------------------------------------------------------------------------

#[test]
fn the_examples_pass() {
    accepted(&bundle());
    accepted(&single());
}

#[test]
fn duplicate_full_url_is_refused_instead_of_decided_on_the_first() {
    let mut b = bundle();
    let p = entry_index(&b, "Patient");
    let mut twin = b["entry"][p].clone();
    twin["resource"]["birthDate"] = json!("2015-01-01");
    b["entry"].as_array_mut().expect("entries").push(twin);
    let f = refused(&b);
    let last = b["entry"].as_array().expect("entries").len() - 1;
    let bdl7 = at(&f, &format!("Bundle.entry[{last}].fullUrl"));
    assert_eq!(bdl7.code, "invariant");
    assert!(bdl7.text.contains("bdl-7"), "{bdl7:?}");
}

#[test]
fn the_version_exception_of_bdl_7() {
    let mut b = bundle();
    let p = entry_index(&b, "Patient");
    let mut twin = b["entry"][p].clone();
    b["entry"][p]["resource"]["meta"] = json!({"versionId": "1"});
    twin["resource"]["meta"] = json!({"versionId": "2"});
    twin["request"] = json!({"method": "PUT", "url": "Patient/xr08-red-flags-pat"});
    b["entry"].as_array_mut().expect("entries").push(twin);
    // Not a bdl-7 error (whatever else the guidance says of two versions).
    if let Err(e) = check_json(&b) {
        assert!(
            !e.findings().iter().any(|f| f.text.contains("bdl-7")),
            "{:#?}",
            e.findings()
        );
    }
}

#[test]
fn full_url_forms_are_checked() {
    let p = entry_index(&bundle(), "Patient");
    for (url, expect) in [
        ("Patient/xr08-red-flags-pat", "relative"),
        (
            "https://gp.example.org/fhir/Patient/xr08-red-flags-pat/_history/1",
            "bdl-8",
        ),
        (
            "https://gp.example.org/fhir/Patient/someone-else",
            "id 'someone-else'",
        ),
        (
            "https://gp.example.org/fhir/Practitioner/xr08-red-flags-pat",
            "type Practitioner",
        ),
        (
            "urn:uuid:5b3b6457-xxxx",
            "urn:uuid: URI is followed by a UUID",
        ),
    ] {
        let mut b = bundle();
        b["entry"][p]["fullUrl"] = json!(url);
        let f = refused(&b);
        let found = at(&f, &format!("Bundle.entry[{p}].fullUrl"));
        assert!(found.text.contains(expect), "{url}: {found:?}");
    }
    // A RESTful fullUrl that agrees with the resource, and the request reference to it.
    let mut b = bundle();
    let url = "https://gp.example.org/fhir/Patient/xr08-red-flags-pat";
    let old = b["entry"][p]["fullUrl"].clone();
    b["entry"][p]["fullUrl"] = json!(url);
    let s = entry_index(&b, "ServiceRequest");
    assert_eq!(b["entry"][s]["resource"]["subject"]["reference"], old);
    b["entry"][s]["resource"]["subject"]["reference"] = json!(url);
    accepted(&b);
}

#[test]
fn reference_to_a_resource_of_the_wrong_type_is_an_error() {
    // subject resolves to the Practitioner entry: FHIR allows Patient, Group, Location, Device.
    let mut b = bundle();
    let s = entry_index(&b, "ServiceRequest");
    let prac = entry_index(&b, "Practitioner");
    b["entry"][s]["resource"]["subject"]["reference"] = b["entry"][prac]["fullUrl"].clone();
    let c = check_json(&b).expect("a decision per entry");
    let r = only(&c);
    assert!(r.invalid, "{:#?}", r.findings);
    let f = at(
        &r.findings,
        &format!("Bundle.entry[{s}].resource.subject.reference"),
    );
    assert!(f.text.contains("points at a Practitioner"), "{f:?}");
    // A contained Observation as the requester.
    let mut v = single();
    v["contained"]
        .as_array_mut()
        .expect("contained")
        .push(json!({"resourceType": "Observation", "id": "obs", "status": "final", "code": {"text": "x"}}));
    v["requester"] = json!({"reference": "#obs"});
    let f = invalid(&v);
    at(&f, "ServiceRequest.requester.reference");
    // Reference.type that contradicts the resolved resource.
    let mut v = single();
    v["subject"]["type"] = json!("Group");
    let f = invalid(&v);
    at(&f, "ServiceRequest.subject.type");
}

// --- Narrative --------------------------------------------------------------------------------

fn with_narrative(div: &str) -> Value {
    let mut v = single();
    v["text"] = json!({"status": "generated", "div": div});
    v
}

#[test]
fn safe_narrative_is_accepted() {
    accepted(&with_narrative(
        r#"<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="en-GB"><p><b>Chest X-ray</b> &amp; <a href="https://example.org">guidance</a></p><table><tr><td>Cough</td></tr></table></div>"#,
    ));
}

#[test]
fn unsafe_narrative_is_an_error_on_the_request() {
    for div in [
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p><script>fetch('https://evil.example')</script></div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><img src="x" onerror="alert(1)"/></div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><form><input name="a"/></form>x</div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:alert(1)">x</a></div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml">Chest&nbsp;X-ray</div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml">   </div>"#,
        r#"<div>No namespace</div>"#,
    ] {
        let f = invalid(&with_narrative(div));
        let n = at(&f, "ServiceRequest.text.div");
        assert_eq!(n.code, "invariant", "{div}");
        assert!(
            n.text.contains("txt-1") || n.text.contains("txt-2"),
            "{div}: {n:?}"
        );
    }
}

#[test]
fn unsafe_narrative_in_xml_is_an_error_too() {
    let xml = std::fs::read_to_string(repo().join("tests/data/xml/referral.xml")).expect("data");
    let xml = xml.replacen(
        "  <contained>",
        r#"<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p onmouseover="steal()">Chest X-ray</p></div></text><contained>"#,
        1,
    );
    let c = check_bytes(xml.as_bytes(), referral_gateway::parse::Format::Xml).expect("decided");
    let r = only(&c);
    assert!(r.invalid);
    let n = at(&r.findings, "ServiceRequest.text.div");
    assert!(n.text.contains("'onmouseover'"), "{n:?}");
}

#[test]
fn unsafe_narrative_on_a_context_resource_is_reported() {
    let mut b = bundle();
    let p = entry_index(&b, "Patient");
    b["entry"][p]["resource"]["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script>y</div>"});
    let c = check_json(&b).expect("decided");
    let EntryResult::Context { findings, .. } = &c.entries[p] else {
        panic!("context entry expected")
    };
    at(findings, &format!("Bundle.entry[{p}].resource.text.div"));
}

// --- Required bindings and primitive formats on every resource --------------------------------

#[test]
fn required_bindings_on_context_resources() {
    let mut b = bundle();
    b["entry"].as_array_mut().expect("entries").push(json!({
        "fullUrl": "urn:uuid:7f1f6a52-5d33-4c1b-9e0c-2f6a0c1d9b10",
        "resource": {"resourceType": "Immunization", "status": "given", "vaccineCode": {"text": "flu"},
            "patient": {"reference": "urn:uuid:5b3b6457-5b35-525f-aa99-145b0e80fe4d"}, "occurrenceDateTime": "2025-10-01"},
        "request": {"method": "POST", "url": "Immunization"}
    }));
    let c = check_json(&b).expect("decided");
    let last = c.entries.len() - 1;
    let EntryResult::Context { findings, .. } = &c.entries[last] else {
        panic!("context entry expected")
    };
    let f = at(findings, &format!("Bundle.entry[{last}].resource.status"));
    assert_eq!(f.code, "code-invalid");
    assert!(
        f.text.contains("'given'") && f.text.contains("completed"),
        "{f:?}"
    );
}

#[test]
fn required_bindings_on_the_request_and_its_data_types() {
    let mut v = single();
    v["priority"] = json!("soon");
    v["contained"][0]["telecom"] = json!([{"system": "beeper", "value": "1"}]);
    let f = invalid(&v);
    at(&f, "ServiceRequest.priority");
    at(&f, "ServiceRequest.contained[0].telecom[0].system");
}

#[test]
fn primitive_formats_are_checked() {
    let mut v = single();
    v["supportingInfo"] = json!([{"reference": "#doc"}]);
    v["contained"]
        .as_array_mut()
        .expect("contained")
        .push(json!({
            "resourceType": "DocumentReference", "id": "doc", "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "data": "not base64 at all!"}}]
        }));
    v["identifier"] = json!([{"system": "urn:oid:1.2.x"}]);
    v["occurrenceDateTime"] = json!("2026-06-31");
    let f = invalid(&v);
    at(&f, "ServiceRequest.contained[1].content[0].attachment.data");
    at(&f, "ServiceRequest.identifier[0].system");
    at(&f, "ServiceRequest.occurrenceDateTime");
    // Valid base64 (with line breaks, as MIME writes it) passes.
    let mut v = single();
    v["supportingInfo"] = json!([{"reference": "#doc"}]);
    v["contained"]
        .as_array_mut()
        .expect("contained")
        .push(json!({
            "resourceType": "DocumentReference", "id": "doc", "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "data": "Q2hlc3Qg\nWC1yYXk="}}]
        }));
    accepted(&v);
}

// --- Links, references read by the Bundle rules, narrative links ------------------------------

#[test]
fn a_link_relation_occurs_once() {
    let mut b = bundle();
    let self_link = json!({"relation": "self", "url": "https://gp.example.org/fhir/batch/1"});
    b["link"] = json!([self_link.clone(), {"relation": "alternate", "url": "https://x.org/a"}]);
    accepted(&b);
    b["link"] = json!([self_link.clone(), self_link]);
    let f = refused(&b);
    let l = at(&f, "Bundle.link[1].relation");
    assert_eq!(l.code, "invalid");
    assert!(l.text.contains("'self' occurs more than once"), "{l:?}");
}

#[test]
fn a_type_id_reference_is_read_against_a_urn_uuid_entry() {
    // The batch's entries are identified by urn:uuid: `PractitionerRole/<uuid>` reads as
    // `urn:uuid:<uuid>`, here the Organization's entry.
    let mut b = bundle();
    let s = entry_index(&b, "ServiceRequest");
    let org = entry_index(&b, "Organization");
    let role = entry_index(&b, "PractitionerRole");
    let uuid = |i: usize| {
        b["entry"][i]["fullUrl"]
            .as_str()
            .and_then(|u| u.strip_prefix("urn:uuid:"))
            .expect("urn:uuid fullUrl")
            .to_string()
    };
    let (org_uuid, role_uuid) = (uuid(org), uuid(role));
    b["entry"][s]["resource"]["requester"]["reference"] =
        json!(format!("PractitionerRole/{org_uuid}"));
    let c = check_json(&b).expect("a decision per entry");
    let r = only(&c);
    assert!(r.invalid, "{:#?}", r.findings);
    let f = at(
        &r.findings,
        &format!("Bundle.entry[{s}].resource.requester.reference"),
    );
    assert_eq!(f.code, "structure");
    assert!(
        f.text.contains(&format!("'urn:uuid:{org_uuid}'")) && f.text.contains("Organization"),
        "{f:?}"
    );
    // Read the same way, the role's own uuid names the role: no contradiction.
    b["entry"][s]["resource"]["requester"]["reference"] =
        json!(format!("PractitionerRole/{role_uuid}"));
    let c = check_json(&b).expect("a decision per entry");
    assert!(!only(&c).invalid, "{:#?}", only(&c).findings);
}

#[test]
fn a_reference_to_a_resource_in_two_versions_names_the_version() {
    let mut b = bundle();
    let p = entry_index(&b, "Patient");
    let s = entry_index(&b, "ServiceRequest");
    let url = "https://gp.example.org/fhir/Patient/xr08-red-flags-pat";
    b["entry"][p]["fullUrl"] = json!(url);
    b["entry"][p]["resource"]["meta"] = json!({"versionId": "1"});
    let mut twin = b["entry"][p].clone();
    twin["resource"]["meta"] = json!({"versionId": "2"});
    twin["request"] = json!({"method": "PUT", "url": "Patient/xr08-red-flags-pat"});
    b["entry"].as_array_mut().expect("entries").push(twin);
    let last = b["entry"].as_array().expect("entries").len() - 1;
    b["entry"][s]["resource"]["subject"]["reference"] = json!(url);
    let c = check_json(&b).expect("a decision per entry");
    let r = only(&c);
    assert!(r.invalid, "{:#?}", r.findings);
    let f = at(
        &r.findings,
        &format!("Bundle.entry[{s}].resource.subject.reference"),
    );
    assert_eq!(f.code, "multiple-matches");
    assert!(f.text.contains(&format!("(entries {p}, {last})")), "{f:?}");
    // Naming the version resolves to one entry.
    b["entry"][s]["resource"]["subject"]["reference"] = json!(format!("{url}/_history/2"));
    let c = check_json(&b).expect("a decision per entry");
    assert!(
        !only(&c)
            .findings
            .iter()
            .any(|f| f.code == "multiple-matches"),
        "{:#?}",
        only(&c).findings
    );
}

#[test]
fn narrative_links_are_addresses() {
    let f = invalid(&with_narrative(
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Requested by <a href="urn:uuid:6c240939-3fdf-5c06-ac3c-bbd2866c1023">Dr Jones</a></p></div>"#,
    ));
    let n = at(&f, "ServiceRequest.text.div");
    assert_eq!(n.code, "invalid");
    assert!(
        n.text
            .contains("'urn:uuid:6c240939-3fdf-5c06-ac3c-bbd2866c1023'"),
        "{n:?}"
    );
    accepted(&with_narrative(
        r##"<div xmlns="http://www.w3.org/1999/xhtml"><p>See <a href="#req">the request</a>, <a href="mailto:gp@example.org">the GP</a> and <a href="https://example.org/guidance">guidance</a>.</p></div>"##,
    ));
}
