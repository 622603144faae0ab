//! No patient data in the logs (issue 8): requests carrying a name, an NHS number and a date of
//! birth, decided, redirected, rejected, invalid and unreadable, in JSON and XML; none of them
//! may appear in the gateway's info-level JSON logs.

mod common;

use common::repo;
use common::server::{Server, FHIR_JSON, FHIR_XML};
use serde_json::{json, Value};

const FAMILY: &str = "Quackenbush";
const GIVEN: &str = "Bartholomew";
const NHS_NUMBER: &str = "9434765919";
const BIRTH_DATE: &str = "1961-03-17";

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "pat",
        "identifier": [{ "system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER }],
        "name": [{ "family": FAMILY, "given": [GIVEN] }],
        "birthDate": BIRTH_DATE
    })
}

/// An example request about our patient, with the patient's details in its free text too.
fn about_patient(rel: &str) -> Value {
    let mut sr = example(rel);
    sr["contained"] = json!([patient()]);
    sr["subject"] = json!({ "reference": "#pat", "display": format!("{GIVEN} {FAMILY}") });
    sr["identifier"] =
        json!([{ "system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER }]);
    sr["note"] =
        json!([{ "text": format!("{GIVEN} {FAMILY}, NHS {NHS_NUMBER}, born {BIRTH_DATE}") }]);
    sr
}

#[test]
fn names_nhs_numbers_and_birth_dates_never_reach_the_logs() {
    let s = Server::start(&["--log-format", "json"]);
    let mut answered = Vec::new();
    let mut send = |path: &str, ct: &str, body: String| {
        let res = s.post(path, Some(ct), body);
        answered.push(res.status().as_u16());
    };
    for rel in [
        "general/gen01-cxr-with-clinical-question.json",
        "us/us05-neck-pain-only-coded.json",
        "us/us13-calf-swelling-query-dvt.json",
    ] {
        let sr = about_patient(rel);
        send("/ServiceRequest", FHIR_JSON, sr.to_string());
        send("/$validate", FHIR_JSON, sr.to_string());
        // Invalid FHIR: the error messages quote the element, not its value.
        let mut bad = sr.clone();
        bad["status"] = json!(NHS_NUMBER.parse::<u64>().expect("number"));
        bad["authoredOn"] = json!(format!("{BIRTH_DATE}T25:99"));
        send("/ServiceRequest", FHIR_JSON, bad.to_string());
        // A Bundle with the Patient as its own entry, as a transaction.
        let mut in_bundle = sr.clone();
        in_bundle["subject"] =
            json!({ "reference": "urn:uuid:00000000-0000-4000-8000-000000000001" });
        let b = json!({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [
                { "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": patient(),
                  "request": { "method": "POST", "url": "Patient" } },
                { "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002", "resource": in_bundle,
                  "request": { "method": "POST", "url": "ServiceRequest" } }
            ]
        });
        send("/", FHIR_JSON, b.to_string());
    }
    // Unreadable bodies: JSON and XML cut off right after the patient's details.
    let text = about_patient("us/us05-neck-pain-only-coded.json").to_string();
    let cut = text.find(BIRTH_DATE).expect("birth date") + BIRTH_DATE.len();
    send("/ServiceRequest", FHIR_JSON, text[..cut].to_string());
    send(
        "/ServiceRequest",
        FHIR_XML,
        format!("<ServiceRequest xmlns=\"http://hl7.org/fhir\"><contained><Patient><name><family value=\"{FAMILY}\"/></name><birthDate value=\"{BIRTH_DATE}\"/></Patient></contained><{NHS_NUMBER}/>"),
    );
    send(
        "/ServiceRequest",
        FHIR_XML,
        format!("<ServiceRequest xmlns=\"http://hl7.org/fhir\"><status value=\"{FAMILY}\"/><intent value=\"order\"/><subject><display value=\"{GIVEN} {BIRTH_DATE}\"/></subject></ServiceRequest>"),
    );
    // In the URL and headers too (a query string the gateway does not use).
    let res = s
        .client
        .post(s.url(&format!(
            "/ServiceRequest?patient={FAMILY}&nhs={NHS_NUMBER}"
        )))
        .header("Content-Type", FHIR_JSON)
        .body(about_patient("us/us05-neck-pain-only-coded.json").to_string())
        .send()
        .expect("POST");
    answered.push(res.status().as_u16());

    // Every request was answered, with the range of answers intended.
    for want in [200, 400, 422] {
        assert!(answered.contains(&want), "no {want} in {answered:?}");
    }
    // Log lines are written as the responses go out; allow the last one to land.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = s.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.iter().filter(|l| l.contains("\"status\":")).count() >= answered.len(),
        "expected a log line per response:\n{log}"
    );
    for l in &lines {
        serde_json::from_str::<Value>(l)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
    }
    for secret in [FAMILY, GIVEN, NHS_NUMBER, "943 476 5919", BIRTH_DATE] {
        let hits: Vec<&&str> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "'{secret}' in the logs:\n{hits:#?}");
    }
}
