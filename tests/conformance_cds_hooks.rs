//! Conformance suite, CDS Hooks 2.0 (cds-hooks.hl7.org/2.0) and the order-select / order-sign
//! hooks: each case cites the clause it checks.

mod common;

use common::harness::*;
use common::server::Server;
use serde_json::{json, Value};

const SELECT: &str = "/cds-services/imaging-referral-order-select";
const SIGN: &str = "/cds-services/imaging-referral-order-sign";

/// A request of `hook` whose draft orders are the examples given.
fn request(hook: &str, orders: &[Value]) -> Value {
    json!({
        "hook": hook,
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {
            "userId": "PractitionerRole/gp-1",
            "patientId": "patient-1",
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": orders.iter().map(|o| json!({"resource": o})).collect::<Vec<_>>(),
            },
        },
    })
}

fn call(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    let res = s.post(path, Some("application/json"), body.to_string());
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/json"), "{path}: {ct}");
    let text = res.text().expect("body");
    (status, serde_json::from_str(&text).expect("JSON"))
}

/// A ServiceRequest whose guidance rule needs the patient's age (US14) and has no patient of
/// its own: only the prefetched Patient can give it.
fn needs_the_age() -> Value {
    let b = example(AGE_BUNDLE);
    let mut sr = b["entry"]
        .as_array()
        .and_then(|es| {
            es.iter()
                .find(|e| e["resource"]["resourceType"] == "ServiceRequest")
        })
        .map(|e| e["resource"].clone())
        .expect("ServiceRequest");
    sr.as_object_mut().expect("object").remove("subject");
    sr
}

/// CDS Hooks 2.0 §prefetch: "If the CDS Client encounters errors prefetching the requested
/// data, OperationOutcome(s) SHOULD be used to communicate those errors" — the service treats
/// the key as not available and still answers with cards (never a 400 that leaves the
/// clinician without guidance).
#[test]
fn an_operation_outcome_as_prefetch_means_not_available() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let outcome = json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": "Patient could not be read"}]
    });
    let mut req = request("order-sign", &[needs_the_age()]);
    req["prefetch"] = json!({ "patient": outcome.clone() });
    let (status, body) = call(server(), SIGN, &req);
    assert_eq!(status, 200, "{body}");
    let cards = body["cards"].as_array().expect("cards");
    let missing = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "US14")
        .unwrap_or_else(|| panic!("no card about the age: {body}"));
    let detail = missing["detail"].as_str().unwrap_or("");
    assert!(detail.contains("could not prefetch: `patient`"), "{detail}");
    // A search Bundle holding only the OperationOutcome (search.mode outcome) is the same.
    req["prefetch"] = json!({ "patient": {
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": outcome, "search": {"mode": "outcome"}}]
    }});
    let (status, body) = call(server(), SIGN, &req);
    assert_eq!(status, 200, "{body}");
}

/// order-select context: `selections` is REQUIRED ("The FHIR id of the newly selected
/// order(s)"): a call without it is not a valid order-select request (400).
#[test]
fn order_select_requires_selections() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let sr = example(REJECTED);
    let id = sr["id"].as_str().expect("id").to_string();
    let req = request("order-select", std::slice::from_ref(&sr));
    let (status, body) = call(server(), SELECT, &req);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string());
    assert!(
        body.to_string().contains("context.selections is required"),
        "{body}"
    );
    let mut with = req.clone();
    with["context"]["selections"] = json!([format!("ServiceRequest/{id}")]);
    let (status, body) = call(server(), SELECT, &with);
    assert_eq!(status, 200, "{body}");
    assert!(!body["cards"].as_array().expect("cards").is_empty());
    // order-sign has no selections: every draft order is decided.
    let (status, _) = call(server(), SIGN, &request("order-sign", &[sr]));
    assert_eq!(status, 200);
}

/// CDS Hooks 2.0 §card: `detail` is for the clinician (said once), and `source.url` is "an
/// absolute URL to load (via GET, in a browser context) when a user clicks on this link to
/// learn more": a canonical URL nobody can open is not one.
#[test]
fn card_details_say_the_contact_once_and_sources_open() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let (status, body) = call(
        server(),
        SIGN,
        &request("order-sign", &[example(REDIRECTED)]),
    );
    assert_eq!(status, 200, "{body}");
    let cards = body["cards"].as_array().expect("cards");
    assert!(!cards.is_empty());
    for card in cards {
        let detail = card["detail"].as_str().unwrap_or("");
        assert!(!detail.contains("(ext 5378) (ext 5378)"), "{detail}");
        // The guidance is quoted as it is; the pathway's own line says the contact once.
        for line in detail.lines().filter(|l| l.starts_with("**Refer to:**")) {
            assert_eq!(line.matches("ext 5378").count(), 1, "{line}");
        }
        if let Some(url) = card["source"]["url"].as_str() {
            assert!(
                url.starts_with(&server().base),
                "source.url must be one the gateway serves: {url}"
            );
        }
    }
    // The published pathway CodeSystem says each contact once too.
    let (_, _, cs) = read(server().get("/CodeSystem/referral-pathway"));
    for c in cs["concept"].as_array().expect("concepts") {
        let def = c["definition"].as_str().unwrap_or("");
        assert!(!def.contains("(ext 5378) (ext 5378)"), "{def}");
        assert!(def.matches("ext ").count() <= 1, "{def}");
    }
}

/// CDS Hooks 2.0 §HTTP response: errors of the service are its JSON, not FHIR: an unknown
/// sub-path under /cds-services is a 404 `{"error": ...}`, not an OperationOutcome.
#[test]
fn unknown_sub_paths_answer_cds_hooks_errors() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    for path in [
        "/cds-services/imaging-referral-order-sign/feedback/extra",
        "/cds-services/a/b/c",
    ] {
        let (status, body) = call(server(), path, &json!({}));
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
        assert!(body.get("resourceType").is_none(), "{path}: {body}");
    }
    // A body over the limit, refused before the service reads it: CDS Hooks JSON too.
    let s = Server::start(&["--max-body-bytes", "200"]);
    let big = request("order-sign", &[example(ACCEPTED)]).to_string();
    let res = s.post(SIGN, Some("application/json"), big);
    assert_eq!(res.status().as_u16(), 413);
    let body: Value = serde_json::from_str(&res.text().expect("body")).expect("JSON");
    assert!(body["error"].is_string(), "{body}");
}
