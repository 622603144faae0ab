//! `$explain` (contract §9): the decision and every step that led to it, as a FHIR Parameters
//! over HTTP and from `check --explain`, from one trace the engine records.

mod common;

use common::repo;
use common::server::{Server, FHIR_JSON, FHIR_XML};
use serde_json::Value;
use std::process::Command;

/// reqwest is built without its `json` feature here.
trait Json {
    fn json(self) -> Result<Value, serde_json::Error>;
}

impl Json for reqwest::blocking::Response {
    fn json(self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.text().unwrap_or_default())
    }
}

fn example(rel: &str) -> String {
    std::fs::read_to_string(repo().join("examples").join(rel)).expect("example")
}

fn params(v: &Value) -> &[Value] {
    v["parameter"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn parts(v: &Value) -> &[Value] {
    v["part"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn named<'a>(ps: &'a [Value], name: &str) -> Vec<&'a Value> {
    ps.iter().filter(|p| p["name"] == name).collect()
}

/// The value[x] of the one part called `name`.
fn value<'a>(ps: &'a [Value], name: &str) -> &'a Value {
    let p = named(ps, name);
    assert!(!p.is_empty(), "no part {name} in {ps:?}");
    p[0].as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")))
        .map(|(_, v)| v)
        .unwrap_or(&Value::Null)
}

fn rule<'a>(ps: &'a [Value], id: &str) -> &'a [Value] {
    named(ps, "rule")
        .into_iter()
        .map(parts)
        .find(|r| value(r, "id") == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

#[test]
fn explain_over_http_says_every_step() {
    let server = Server::start(&[]);
    let res = server.post(
        "/ServiceRequest/$explain",
        Some(FHIR_JSON),
        example("us/us13-calf-swelling-query-dvt.json"),
    );
    assert_eq!(res.status(), 200);
    let v: Value = res.json().expect("JSON");
    assert_eq!(v["resourceType"], "Parameters");
    let ps = params(&v);
    assert_eq!(value(ps, "decision"), "redirected");
    assert!(value(ps, "summary")
        .as_str()
        .is_some_and(|s| s.contains("US13")));
    // Words matched, with their place in the text.
    let words: Vec<&[Value]> = named(ps, "match")
        .into_iter()
        .map(parts)
        .filter(|m| value(m, "kind") == "word")
        .collect();
    let dvt = words
        .iter()
        .find(|m| {
            value(m, "concept")["code"]
                .as_str()
                .is_some_and(|c| c.contains("dvt"))
        })
        .unwrap_or_else(|| panic!("no DVT word match: {words:?}"));
    let text = value(dvt, "text").as_str().expect("text");
    let start = value(dvt, "start").as_u64().expect("start") as usize;
    let end = value(dvt, "end").as_u64().expect("end") as usize;
    let found: String = text.chars().skip(start).take(end - start).collect();
    assert_eq!(found, "dvt", "{text}");
    assert_eq!(value(dvt, "negated"), false);
    assert!(value(dvt, "expression")
        .as_str()
        .is_some_and(|e| e.starts_with("ServiceRequest.")));
    // Every rule was tried; US13 fired with each condition held.
    let us13 = rule(ps, "US13");
    assert_eq!(value(us13, "fired"), true);
    let conditions = named(us13, "condition");
    assert_eq!(conditions.len(), 2, "{us13:?}");
    for c in conditions {
        assert_eq!(value(parts(c), "held"), true);
        assert!(!value(parts(c), "why").as_str().unwrap_or("").is_empty());
    }
    let rules_tried = named(ps, "rule").len();
    assert!(rules_tried >= 20, "{rules_tried}");
    // A rule that did not fire names the condition that failed.
    let us05 = rule(ps, "US05");
    assert_eq!(value(us05, "fired"), false);
    assert!(named(us05, "condition")
        .iter()
        .any(|c| value(parts(c), "held") == false));
    // Context looked up, found or not.
    let context = named(ps, "context");
    assert!(!context.is_empty());
    for c in context {
        assert!(value(parts(c), "found").is_boolean());
        assert!(value(parts(c), "what").is_string());
        assert!(value(parts(c), "where").is_string());
    }
}

#[test]
fn a_code_match_names_system_code_and_concept() {
    let server = Server::start(&[]);
    let v: Value = server
        .post(
            "/ServiceRequest/$explain",
            Some(FHIR_JSON),
            example("us/us05-neck-pain-only-coded.json"),
        )
        .json()
        .expect("JSON");
    let ps = params(&v);
    assert_eq!(value(ps, "decision"), "rejected");
    let codes: Vec<&[Value]> = named(ps, "match")
        .into_iter()
        .map(parts)
        .filter(|m| value(m, "kind") == "code")
        .collect();
    let pain = codes
        .iter()
        .find(|m| value(m, "code") == "81680005")
        .unwrap_or_else(|| panic!("{codes:?}"));
    assert_eq!(value(pain, "system"), "http://snomed.info/sct");
    assert!(value(pain, "concept")["display"].is_string());
    assert_eq!(
        value(pain, "expression"),
        "ServiceRequest.reasonCode[0].coding[0]"
    );
}

#[test]
fn a_negated_word_is_said_negated() {
    let server = Server::start(&[]);
    let v: Value = server
        .post(
            "/ServiceRequest/$explain",
            Some(FHIR_JSON),
            example("us/us05-neck-pain-negated-mass.json"),
        )
        .json()
        .expect("JSON");
    let ps = params(&v);
    assert!(
        named(ps, "match")
            .into_iter()
            .map(parts)
            .any(|m| value(m, "negated") == true),
        "{v:#}"
    );
}

#[test]
fn a_bundle_has_one_request_per_service_request() {
    let server = Server::start(&[]);
    let res = server.post(
        "/ServiceRequest/$explain",
        Some(FHIR_JSON),
        example("us/us14-haematuria-age-45-bundle.json"),
    );
    assert_eq!(res.status(), 200);
    let v: Value = res.json().expect("JSON");
    let ps = params(&v);
    let requests = named(ps, "request");
    let bundle: Value =
        serde_json::from_str(&example("us/us14-haematuria-age-45-bundle.json")).expect("JSON");
    let service_requests = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "ServiceRequest")
        .count();
    assert_eq!(requests.len(), service_requests);
    let first = parts(requests[0]);
    assert!(value(first, "expression")
        .as_str()
        .is_some_and(|e| e.starts_with("Bundle.entry[")));
    assert_eq!(value(first, "decision"), "redirected");
    // The patient's age came from the Bundle.
    assert!(named(first, "context")
        .iter()
        .any(|c| value(parts(c), "what") == "patient age" && value(parts(c), "found") == true));
}

#[test]
fn explain_answers_in_xml_and_refuses_garbage_with_an_outcome() {
    let server = Server::start(&[]);
    let res = server
        .client
        .post(server.url("/ServiceRequest/$explain"))
        .header("content-type", FHIR_JSON)
        .header("accept", FHIR_XML)
        .body(example("general/gen01-cxr-with-clinical-question.json"))
        .send()
        .expect("POST");
    assert_eq!(res.status(), 200);
    let text = res.text().expect("body");
    assert!(text.contains("<Parameters"), "{text}");
    assert!(text.contains("accepted"), "{text}");
    let res = server.post("/ServiceRequest/$explain", Some(FHIR_JSON), "{not json");
    assert_eq!(res.status(), 400);
    let v: Value = res.json().expect("JSON");
    assert_eq!(v["resourceType"], "OperationOutcome");
}

#[test]
fn the_capability_statement_declares_explain() {
    let server = Server::start(&[]);
    let v: Value = server.get("/metadata").json().expect("JSON");
    let ops = v["rest"][0]["resource"][0]["operation"]
        .as_array()
        .expect("operations");
    assert!(
        ops.iter().any(|o| o["name"] == "explain"
            && o["definition"]
                .as_str()
                .is_some_and(|d| d.ends_with("/OperationDefinition/ServiceRequest-explain"))),
        "{ops:?}"
    );
}

/// `check --explain --format json` prints the same Parameters as the HTTP answer.
#[test]
fn check_explain_json_is_the_http_answer() {
    let file = repo().join("examples/us/us13-calf-swelling-query-dvt.json");
    let out = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["check", "--explain", "--format", "json"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let cli: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let server = Server::start(&[]);
    let http: Value = server
        .post(
            "/ServiceRequest/$explain",
            Some(FHIR_JSON),
            std::fs::read(&file).expect("file"),
        )
        .json()
        .expect("JSON");
    assert_eq!(cli, http);
}

/// `check --explain` as text: the steps, under the report.
#[test]
fn check_explain_text() {
    let out = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["check", "--explain"])
        .arg(repo().join("examples/us/us13-calf-swelling-query-dvt.json"))
        .env("COLUMNS", "100")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    for heading in [
        "Codes and words matched",
        "Context looked up",
        "Rules tried",
    ] {
        assert!(text.contains(heading), "{heading}\n{text}");
    }
    assert!(text.contains("US13 FIRED"), "{text}");
    assert!(text.contains("US05 not fired"), "{text}");
    assert!(text.contains("held"), "{text}");
    assert!(text.contains("failed"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

/// `check --explain` names the words the reader could not place: they are why GEN01 and the
/// "pain as the only symptom" rules did not fire, and where a terminology gap shows first.
#[test]
fn check_explain_names_the_words_it_could_not_place() {
    let sr = serde_json::json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": {"display": "Example patient (fictitious)"},
        "code": {"text": "US abdomen"},
        "reasonCode": [{"text": "abdominal pain, zzyzx for 2 weeks"}]
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["check", "--explain", "-"])
        .env("COLUMNS", "100")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        sr.to_string().as_bytes(),
    )
    .expect("write");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("waits");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let heading = text
        .find("Words not placed")
        .unwrap_or_else(|| panic!("no unplaced words heading\n{text}"));
    let after = &text[heading..];
    assert!(
        after.contains("ServiceRequest.reasonCode[0]: zzyzx"),
        "{text}"
    );
    // The pain is placed, and so are the duration and the function words.
    let line = after.lines().nth(1).unwrap_or_default();
    for placed in ["pain", "weeks", "for"] {
        assert!(!line.split(", ").any(|w| w.ends_with(placed)), "{line}");
    }
}

/// `$explain` carries the same unplaced words as `check --explain`, one `unplaced` parameter per
/// text, so the console and other clients can show why GEN01 or a pain-only rule held back.
#[test]
fn explain_over_http_names_the_words_it_could_not_place() {
    let server = Server::start(&[]);
    let sr = serde_json::json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": {"display": "Example patient (fictitious)"},
        "code": {"text": "US abdomen"},
        "reasonCode": [{"text": "abdominal pain, zzyzx for 2 weeks"}, {"text": "abdominal pain"}]
    });
    let res = server.post("/ServiceRequest/$explain", Some(FHIR_JSON), sr.to_string());
    assert_eq!(res.status(), 200);
    let v: Value = res.json().expect("JSON");
    let unplaced = named(params(&v), "unplaced");
    // Only the first reason holds a word the reader cannot place.
    assert_eq!(unplaced.len(), 1, "{v}");
    let p = parts(unplaced[0]);
    assert_eq!(value(p, "expression"), "ServiceRequest.reasonCode[0]");
    let words: Vec<&Value> = named(p, "word")
        .into_iter()
        .map(|w| &w["valueString"])
        .collect();
    assert_eq!(words, [&Value::from("zzyzx")], "{v}");
    // A reason that is fully placed has none, and US03 fires on it alone.
    let sr = serde_json::json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": {"display": "Example patient (fictitious)"},
        "code": {"text": "US abdomen"},
        "reasonCode": [{"text": "abdominal pain for 2 weeks"}]
    });
    let v: Value = server
        .post("/ServiceRequest/$explain", Some(FHIR_JSON), sr.to_string())
        .json()
        .expect("JSON");
    assert!(named(params(&v), "unplaced").is_empty(), "{v}");
}
