//! What the conformance suites (`tests/conformance_*.rs`) share: the example requests with a
//! known decision, and readers of the gateway's answers.

use super::repo;
use reqwest::blocking::Response;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

/// Examples with a known decision (each is one rule's own example).
pub const REJECTED: &str = "us/us05-neck-pain-only-coded.json";
pub const REDIRECTED: &str = "us/us13-calf-swelling-query-dvt.json";
pub const ACCEPTED: &str = "general/gen01-cxr-with-clinical-question.json";
/// A ServiceRequest with its Patient in a collection Bundle (the age rule needs it).
pub const AGE_BUNDLE: &str = "us/us14-haematuria-age-45-bundle.json";

/// The imaging-referral profile the gateway enforces.
pub const PROFILE: &str =
    "https://referral-gateway.example.org/fhir/StructureDefinition/imaging-referral";

pub fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

/// Status, headers and JSON body of a response.
pub fn read(res: Response) -> (u16, HeaderMap, Value) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
    (status, headers, body)
}

pub fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The decision code of an OperationOutcome (the issue whose coding is a referral-decision).
pub fn decision(oo: &Value) -> Option<String> {
    oo["issue"].as_array()?.iter().find_map(|i| {
        let c = &i["details"]["coding"][0];
        c["system"]
            .as_str()?
            .ends_with("/CodeSystem/referral-decision")
            .then(|| c["code"].as_str().map(str::to_string))?
    })
}

/// Asserts an OperationOutcome with an issue of `code`.
pub fn assert_outcome(body: &Value, code: &str) {
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    let codes: Vec<&str> = body["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert!(codes.contains(&code), "no issue of code {code}: {body}");
}

/// Every `issue.expression` of an OperationOutcome.
pub fn expressions(oo: &Value) -> Vec<String> {
    oo["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect()
}

/// A Bundle of `kind` whose entries are `(method, example or None)`: the example as the
/// resource of the entry, a `request` with that method (none for a collection).
pub fn bundle_of(kind: &str, entries: &[(&str, Option<&str>)]) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, (method, rel))| {
            let mut e = json!({});
            if let Some(rel) = rel {
                e["fullUrl"] = json!(format!("urn:uuid:00000000-0000-4000-8000-{i:012}"));
                e["resource"] = example(rel);
            }
            if kind != "collection" {
                let url = match (*method, rel) {
                    ("POST", _) => "ServiceRequest".to_string(),
                    _ => format!("ServiceRequest/example-{i}"),
                };
                e["request"] = json!({ "method": method, "url": url });
            }
            e
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": kind, "entry": entries })
}
