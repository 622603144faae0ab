//! The CDS Hooks 2.0 service end to end, over HTTP against the real binary: discovery, each
//! decision as cards, `order-select` with and without `selections`, prefetch present, null and
//! missing, feedback, malformed requests. Every answer is checked against the CDS Hooks 2.0
//! response shapes ([`assert_cds_response`]) and every `create` action's resource as FHIR R4.
//!
//! [`cds_request`] (in `common::cds`, shared with the snapshots) is a small CDS Hooks client: it turns any file of `examples/` into the
//! request an EHR would send (the ServiceRequests as `draftOrders`, the Patient, Practitioner
//! and PractitionerRole with its Organization as `prefetch`), so every rule's own examples
//! drive both hooks ([`every_rule_example_drives_both_hooks`]).

mod common;

use common::cds::{cds_request, select_every_order, USER};
use common::server::Server;
use common::{repo, rules};
use referral_gateway::finding::Decision;
use reqwest::blocking::Response;
use serde_json::{json, Value};

const SELECT: &str = "/cds-services/imaging-referral-order-select";
const SIGN: &str = "/cds-services/imaging-referral-order-sign";
const JSON: &str = "application/json";

/// Examples with a known decision (each one rule's own example).
const NOT_JUSTIFIED: &str = "us/us05-neck-pain-only-coded.json"; // US05, not_justified
const MISSING_INFORMATION: &str = "general/gen01-no-clinical-information.json"; // GEN01
const REDIRECTED: &str = "us/us13-calf-swelling-query-dvt.json"; // US13 → DVT clinic
const ACCEPTED: &str = "general/gen01-cxr-with-clinical-question.json";
const AGE_BUNDLE: &str = "us/us14-haematuria-age-45-bundle.json"; // US14 needs the age
const ORGANISATION_BUNDLE: &str = "ct/ct01-ctc-unauthorised-centre.json"; // CT01 needs the org

/// One server for the tests that only read (feedback tests start their own, to count alone).
fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

fn hook_of(path: &str) -> &'static str {
    if path == SELECT {
        "order-select"
    } else {
        "order-sign"
    }
}

/// A request whose draftOrders are several single-ServiceRequest examples.
fn several_orders(hook: &str, examples: &[&str]) -> Value {
    let entries: Vec<Value> = examples
        .iter()
        .map(|e| json!({ "resource": example(e) }))
        .collect();
    let mut req = json!({
        "hook": hook,
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {
            "userId": USER,
            "patientId": "cds-test-patient",
            "draftOrders": { "resourceType": "Bundle", "type": "collection", "entry": entries },
        },
    });
    select_every_order(&mut req);
    req
}

fn read(res: Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = res.text().expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
    (status, ct, body)
}

/// Calls a service and returns its cards, after checking the answer's shape.
fn call(s: &Server, path: &str, request: &Value) -> Vec<Value> {
    let (status, ct, body) = read(s.post(path, Some(JSON), request.to_string()));
    assert_eq!(status, 200, "{body:#}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_cds_response(&body);
    body["cards"].as_array().cloned().unwrap_or_default()
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

fn non_empty_str(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.trim().is_empty())
}

/// CDS Hooks forbids `null` and empty strings, arrays and objects (but the cards array).
fn assert_nothing_empty(v: &Value, at: &str) {
    match v {
        Value::Null => panic!("null at {at}"),
        Value::String(s) => assert!(!s.is_empty(), "empty string at {at}"),
        Value::Array(a) => {
            assert!(!a.is_empty(), "empty array at {at}");
            a.iter()
                .enumerate()
                .for_each(|(i, x)| assert_nothing_empty(x, &format!("{at}[{i}]")));
        }
        Value::Object(m) => {
            assert!(!m.is_empty(), "empty object at {at}");
            m.iter()
                .for_each(|(k, x)| assert_nothing_empty(x, &format!("{at}.{k}")));
        }
        _ => {}
    }
}

fn assert_coding(c: &Value, at: &str, display_required: bool) {
    assert!(non_empty_str(&c["system"]), "{at}.system");
    assert!(non_empty_str(&c["code"]), "{at}.code");
    assert!(
        !display_required || non_empty_str(&c["display"]),
        "{at}.display"
    );
}

/// The CDS Hooks 2.0 response shapes: required fields, their types and value sets, and the
/// specification's constraints (summary under 140 characters, selectionBehavior with
/// suggestions, at most one recommended suggestion for `at-most-one`, display on override
/// reasons, `resource` for create and `resourceId` for delete). The `create` resources must
/// be valid FHIR R4.
fn assert_cds_response(body: &Value) {
    let cards = body["cards"].as_array().expect("cards is an array");
    for (i, card) in cards.iter().enumerate() {
        let at = format!("cards[{i}]");
        assert_nothing_empty(card, &at);
        let known = [
            "uuid",
            "summary",
            "detail",
            "indicator",
            "source",
            "suggestions",
            "selectionBehavior",
            "overrideReasons",
            "links",
            // Every CDS Hooks element may carry an `extension` object: the consult id.
            "extension",
        ];
        for k in card.as_object().expect("card object").keys() {
            assert!(known.contains(&k.as_str()), "{at}: unknown field {k}");
        }
        assert!(card.get("uuid").is_none_or(is_uuid), "{at}.uuid");
        assert!(
            card.get("extension").is_none_or(Value::is_object),
            "{at}.extension"
        );
        let summary = card["summary"].as_str().expect("summary");
        assert!(
            !summary.is_empty() && summary.chars().count() < 140,
            "{at}.summary: {summary}"
        );
        assert!(
            card.get("detail").is_none_or(Value::is_string),
            "{at}.detail"
        );
        assert!(
            ["info", "warning", "critical"].contains(&card["indicator"].as_str().unwrap_or("")),
            "{at}.indicator"
        );
        let source = &card["source"];
        assert!(non_empty_str(&source["label"]), "{at}.source.label");
        if let Some(url) = source.get("url") {
            assert!(
                url.as_str()
                    .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://")),
                "{at}.source.url"
            );
        }
        if let Some(topic) = source.get("topic") {
            assert_coding(topic, &format!("{at}.source.topic"), false);
        }
        for (j, r) in card["overrideReasons"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            assert_coding(r, &format!("{at}.overrideReasons[{j}]"), true);
        }
        let Some(suggestions) = card.get("suggestions") else {
            continue;
        };
        let behaviour = card["selectionBehavior"]
            .as_str()
            .expect("selectionBehavior with suggestions");
        assert!(["at-most-one", "any"].contains(&behaviour));
        let suggestions = suggestions.as_array().expect("suggestions array");
        let recommended = suggestions
            .iter()
            .filter(|s| s["isRecommended"] == true)
            .count();
        assert!(behaviour != "at-most-one" || recommended <= 1);
        for (j, s) in suggestions.iter().enumerate() {
            let at = format!("{at}.suggestions[{j}]");
            assert!(non_empty_str(&s["label"]), "{at}.label");
            assert!(s.get("uuid").is_none_or(is_uuid), "{at}.uuid");
            assert!(
                s.get("isRecommended").is_none_or(Value::is_boolean),
                "{at}.isRecommended"
            );
            for (k, a) in s["actions"].as_array().into_iter().flatten().enumerate() {
                let at = format!("{at}.actions[{k}]");
                assert!(non_empty_str(&a["description"]), "{at}.description");
                match a["type"].as_str() {
                    Some("create") | Some("update") => {
                        assert!(a["resource"]["resourceType"].is_string(), "{at}.resource");
                        fhir_codec::check_json(&a["resource"])
                            .unwrap_or_else(|e| panic!("{at}.resource is not FHIR R4: {e:?}"));
                    }
                    Some("delete") => {
                        let id = a["resourceId"].as_str().expect("delete has resourceId");
                        assert!(
                            id.split_once('/')
                                .is_some_and(|(t, i)| !t.is_empty() && !i.is_empty()),
                            "{at}.resourceId {id}"
                        );
                    }
                    other => panic!("{at}.type {other:?}"),
                }
            }
        }
    }
}

fn rule_of(card: &Value) -> &str {
    card["source"]["topic"]["code"].as_str().unwrap_or("")
}

/// A 4xx JSON error with an `error` message; returns the body.
fn error(res: Response, status: u16) -> Value {
    let (got, ct, body) = read(res);
    assert_eq!(got, status, "{body:#}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(non_empty_str(&body["error"]), "{body:#}");
    body
}

fn details(body: &Value) -> String {
    body["details"].to_string()
}

#[test]
fn discovery_lists_one_service_per_hook_with_prefetch() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let (status, ct, doc) = read(server().get("/cds-services"));
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"));
    let services = doc["services"].as_array().expect("services");
    let hooks: Vec<&str> = services.iter().filter_map(|s| s["hook"].as_str()).collect();
    assert_eq!(hooks, ["order-select", "order-sign"]);
    for s in services {
        assert!(
            non_empty_str(&s["id"])
                && non_empty_str(&s["description"])
                && non_empty_str(&s["title"])
        );
        assert_eq!(s["prefetch"]["patient"], "Patient/{{context.patientId}}");
        assert!(s["prefetch"]["practitionerRole"]
            .as_str()
            .is_some_and(|q| q.contains("{{userPractitionerRoleId}}")));
        assert!(s["prefetch"]["practitioner"]
            .as_str()
            .is_some_and(|q| q.contains("{{userPractitionerId}}")));
    }
    assert!(services
        .iter()
        .any(|s| format!("/cds-services/{}", s["id"].as_str().unwrap_or("")) == SIGN));
}

#[test]
fn rejection_the_guidance_calls_unjustified_is_a_critical_card() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cards = call(
        server(),
        SIGN,
        &cds_request("order-sign", &example(NOT_JUSTIFIED), &[]),
    );
    assert_eq!(cards.len(), 1, "{cards:#?}");
    let card = &cards[0];
    assert_eq!(card["indicator"], "critical");
    assert_eq!(rule_of(card), "US05");
    assert!(card["source"]["topic"]["system"]
        .as_str()
        .is_some_and(|s| s.ends_with("/CodeSystem/guidance-rule")));
    // No source.url: the CodeSystem's canonical URL is not a page a clinician can open.
    assert!(card["source"].get("url").is_none(), "{card:#}");
    assert!(card.get("suggestions").is_none());
    let detail = card["detail"].as_str().expect("detail");
    assert!(
        detail.contains("> US is not helpful for neck pain"),
        "the guidance quoted: {detail}"
    );
    assert!(detail.contains("**What to do instead:**"));
    assert!(
        detail.contains("Duty Radiologist (ext 8435"),
        "whom to contact: {detail}"
    );
    assert!(card["overrideReasons"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
}

#[test]
fn rejection_for_missing_information_is_a_warning_card() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cards = call(
        server(),
        SIGN,
        &cds_request("order-sign", &example(MISSING_INFORMATION), &[]),
    );
    // GEN01's card, and the profile's: its invariant irf-1 wants a reason or a note too.
    assert_eq!(cards.len(), 2, "{cards:#?}");
    assert!(cards.iter().all(|c| c["indicator"] == "warning"));
    assert!(cards.iter().any(|c| rule_of(c) == "GEN01"), "{cards:#?}");
    assert!(cards
        .iter()
        .any(|c| c["detail"].as_str().is_some_and(|d| d.contains("irf-1"))));
}

#[test]
fn order_missing_what_the_profile_requires_gets_a_profile_card() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let mut order = example(ACCEPTED);
    let Some(o) = order.as_object_mut() else {
        panic!("example is an object")
    };
    o.remove("priority");
    let cards = call(server(), SIGN, &cds_request("order-sign", &order, &[]));
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert_eq!(cards[0]["indicator"], "warning");
    let detail = cards[0]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("priority") && detail.contains("`ServiceRequest.priority`"),
        "{detail}"
    );
}

#[test]
fn redirect_card_replaces_the_order_with_the_redirected_service_request() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let original = example(REDIRECTED);
    let cards = call(s, SIGN, &cds_request("order-sign", &original, &[]));
    assert_eq!(cards.len(), 1, "{cards:#?}");
    let card = &cards[0];
    assert_eq!(rule_of(card), "US13");
    assert_eq!(card["indicator"], "warning");
    assert_eq!(card["selectionBehavior"], "at-most-one");
    let suggestions = card["suggestions"].as_array().expect("suggestions");
    assert_eq!(suggestions.len(), 1);
    assert_eq!(suggestions[0]["isRecommended"], true);
    let actions = suggestions[0]["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0]["type"], "delete");
    assert_eq!(
        actions[0]["resourceId"],
        format!("ServiceRequest/{}", original["id"].as_str().expect("id"))
    );
    assert_eq!(actions[1]["type"], "create");
    let created = &actions[1]["resource"];
    // Exactly what POST /ServiceRequest answers for the same order (but the new id).
    let fhir = s.post(
        "/ServiceRequest",
        Some("application/fhir+json"),
        original.to_string(),
    );
    assert_eq!(fhir.status().as_u16(), 200);
    let mut from_fhir: Value =
        serde_json::from_str(&fhir.text().expect("body")).expect("redirected ServiceRequest");
    assert_eq!(from_fhir["resourceType"], "ServiceRequest");
    from_fhir["id"] = created["id"].clone();
    // Each carries the id of its own consult (the CDS call and the POST are two consults).
    let consult_ids = |sr: &Value| -> Vec<Value> {
        sr["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["system"] == "https://referral-gateway.example.org/fhir/consult")
            .cloned()
            .collect()
    };
    assert_eq!(consult_ids(created).len(), 1, "{created}");
    assert_eq!(
        consult_ids(created)[0]["value"],
        card["extension"]["referral-gateway-consult-id"]
    );
    assert_ne!(consult_ids(created), consult_ids(&from_fhir));
    from_fhir["identifier"] = created["identifier"].clone();
    assert_eq!(created, &from_fhir);
    assert_eq!(created["status"], "draft");
    assert_eq!(created["performerType"]["coding"][0]["code"], "dvt-clinic");
    assert_eq!(
        created["replaces"][0]["reference"],
        actions[0]["resourceId"]
    );
    fhir_codec::check_json(created).expect("the created resource is FHIR R4");
    assert!(card["summary"]
        .as_str()
        .is_some_and(|t| t.contains("DVT clinic")));
}

#[test]
fn accepted_order_has_no_card() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    for path in [SIGN, SELECT] {
        let cards = call(
            server(),
            path,
            &cds_request(hook_of(path), &example(ACCEPTED), &[]),
        );
        assert!(cards.is_empty(), "{path}: {cards:#?}");
    }
}

#[test]
fn order_select_with_selections_checks_only_the_orders_chosen() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let mut req = several_orders("order-select", &[NOT_JUSTIFIED, REDIRECTED, ACCEPTED]);
    let redirected_id = example(REDIRECTED)["id"].as_str().expect("id").to_string();
    req["context"]["selections"] = json!([format!("ServiceRequest/{redirected_id}")]);
    let cards = call(server(), SELECT, &req);
    assert_eq!(cards.iter().map(rule_of).collect::<Vec<_>>(), ["US13"]);

    let rejected_id = example(NOT_JUSTIFIED)["id"]
        .as_str()
        .expect("id")
        .to_string();
    req["context"]["selections"] = json!([format!("ServiceRequest/{rejected_id}")]);
    let cards = call(server(), SELECT, &req);
    assert_eq!(cards.iter().map(rule_of).collect::<Vec<_>>(), ["US05"]);
}

#[test]
fn order_select_of_every_order_and_order_sign_check_every_draft_order() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    for path in [SELECT, SIGN] {
        let req = several_orders(hook_of(path), &[NOT_JUSTIFIED, REDIRECTED, ACCEPTED]);
        let cards = call(server(), path, &req);
        let mut rules: Vec<&str> = cards.iter().map(rule_of).collect();
        rules.sort_unstable();
        assert_eq!(rules, ["US05", "US13"], "{path}");
    }
}

#[test]
fn prefetched_patient_gives_the_age_rules_their_context() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cards = call(
        server(),
        SIGN,
        &cds_request("order-sign", &example(AGE_BUNDLE), &[]),
    );
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert_eq!(rule_of(&cards[0]), "US14");
    let create = &cards[0]["suggestions"][0]["actions"][1]["resource"];
    assert_eq!(
        create["performerType"]["coding"][0]["code"],
        "haematuria-clinic"
    );
}

#[test]
fn missing_patient_prefetch_is_a_card_saying_what_was_needed() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cards = call(
        server(),
        SIGN,
        &cds_request("order-sign", &example(AGE_BUNDLE), &["patient"]),
    );
    assert_eq!(cards.len(), 1, "{cards:#?}");
    let card = &cards[0];
    assert_eq!(card["indicator"], "warning");
    assert_eq!(rule_of(card), "US14");
    assert!(card.get("suggestions").is_none());
    let detail = card["detail"].as_str().expect("detail");
    assert!(detail.contains("patient age"), "{detail}");
    assert!(
        detail.contains("did not send these prefetch keys") && detail.contains("`patient`"),
        "{detail}"
    );
    assert!(card["summary"]
        .as_str()
        .is_some_and(|s| s.starts_with("More information needed")));
}

#[test]
fn null_prefetch_means_no_data_and_is_not_reported_as_not_sent() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let mut req = cds_request("order-sign", &example(AGE_BUNDLE), &[]);
    req["prefetch"]["patient"] = Value::Null;
    let cards = call(server(), SIGN, &req);
    assert_eq!(cards.len(), 1, "{cards:#?}");
    let detail = cards[0]["detail"].as_str().expect("detail");
    assert!(detail.contains("patient age"), "{detail}");
    assert!(!detail.contains("`patient`"), "{detail}");
}

#[test]
fn prefetched_practitioner_role_gives_the_organisation_rules_their_context() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cards = call(
        server(),
        SIGN,
        &cds_request("order-sign", &example(ORGANISATION_BUNDLE), &[]),
    );
    assert_eq!(
        cards.iter().map(rule_of).collect::<Vec<_>>(),
        ["CT01"],
        "{cards:#?}"
    );
    assert_eq!(cards[0]["indicator"], "warning");
    assert!(!cards[0]["summary"]
        .as_str()
        .unwrap_or("")
        .starts_with("More information"));

    let cards = call(
        server(),
        SIGN,
        &cds_request(
            "order-sign",
            &example(ORGANISATION_BUNDLE),
            &["practitionerRole"],
        ),
    );
    let missing: Vec<&Value> = cards.iter().filter(|c| rule_of(c) == "CT01").collect();
    assert_eq!(missing.len(), 1, "{cards:#?}");
    assert!(
        missing[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`practitionerRole`")),
        "{:#}",
        missing[0]
    );
}

#[test]
fn another_patients_prefetch_is_refused() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let mut req = cds_request("order-sign", &example(AGE_BUNDLE), &[]);
    req["context"]["patientId"] = json!("someone-else");
    let body = error(server().post(SIGN, Some(JSON), req.to_string()), 400);
    assert!(details(&body).contains("prefetch.patient"), "{body:#}");
}

#[test]
fn invalid_fhir_in_a_draft_order_is_a_card_not_an_error() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let mut order = example(NOT_JUSTIFIED);
    order["status"] = json!("not-a-status");
    let cards = call(server(), SIGN, &cds_request("order-sign", &order, &[]));
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert_eq!(cards[0]["indicator"], "warning");
    assert!(
        cards[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ServiceRequest.status")),
        "{:#}",
        cards[0]
    );
}

/// A change that spoils a good request.
type Edit = dyn Fn(&mut Value);

#[test]
fn malformed_requests_are_400_saying_what_is_wrong() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let good = cds_request("order-sign", &example(NOT_JUSTIFIED), &[]);
    let bad_json = error(s.post(SIGN, Some(JSON), "{\"hook\": "), 400);
    assert!(bad_json["error"]
        .as_str()
        .is_some_and(|e| e.contains("not JSON")));
    error(s.post(SIGN, Some(JSON), "[]"), 400);

    let without = |k: &str| {
        let mut r = good.clone();
        r.as_object_mut().expect("object").remove(k);
        r
    };
    for k in ["hook", "hookInstance", "context"] {
        let body = error(s.post(SIGN, Some(JSON), without(k).to_string()), 400);
        assert!(
            details(&body).contains(&format!("{k} is required")),
            "{body:#}"
        );
    }
    let cases: Vec<(&str, Box<Edit>, &str)> = vec![
        (
            "hook mismatch",
            Box::new(|r| r["hook"] = json!("order-select")),
            "answers the 'order-sign' hook",
        ),
        (
            "hookInstance",
            Box::new(|r| r["hookInstance"] = json!("not-a-uuid")),
            "not a UUID",
        ),
        (
            "draftOrders type",
            Box::new(|r| r["context"]["draftOrders"] = example(NOT_JUSTIFIED)),
            "must be a FHIR Bundle, not a ServiceRequest",
        ),
        (
            "draftOrders missing",
            Box::new(|r| {
                r["context"]
                    .as_object_mut()
                    .map(|c| c.remove("draftOrders"));
            }),
            "context.draftOrders is required",
        ),
        (
            "userId",
            Box::new(|r| r["context"]["userId"] = json!("Device/1")),
            "context.userId",
        ),
        (
            "patientId",
            Box::new(|r| r["context"]["patientId"] = json!(42)),
            "context.patientId must be a string",
        ),
        (
            "prefetch",
            Box::new(|r| r["prefetch"] = json!({ "patient": "Patient/1" })),
            "prefetch.patient",
        ),
        (
            "prefetch type",
            Box::new(|r| r["prefetch"] = json!({ "patient": { "resourceType": "Observation" } })),
            "holds no Patient",
        ),
    ];
    for (name, edit, expected) in cases {
        let mut r = good.clone();
        edit(&mut r);
        let body = error(s.post(SIGN, Some(JSON), r.to_string()), 400);
        assert!(details(&body).contains(expected), "{name}: {body:#}");
    }
    let mut two = good.clone();
    two["hookInstance"] = json!(1);
    two["context"]["draftOrders"] = json!("none");
    let body = error(s.post(SIGN, Some(JSON), two.to_string()), 400);
    assert_eq!(
        body["details"].as_array().map(Vec::len),
        Some(2),
        "every problem is listed: {body:#}"
    );

    let mut sel = cds_request("order-select", &example(NOT_JUSTIFIED), &[]);
    sel["context"]["selections"] = json!(["ServiceRequest/not-in-draft-orders"]);
    let body = error(s.post(SELECT, Some(JSON), sel.to_string()), 400);
    assert!(
        details(&body).contains("is not a resource of context.draftOrders"),
        "{body:#}"
    );
    sel["context"]["selections"] = json!([]);
    error(s.post(SELECT, Some(JSON), sel.to_string()), 400);

    error(s.post(SIGN, Some("text/plain"), good.to_string()), 415);
    let unknown = error(
        s.post(
            "/cds-services/no-such-service",
            Some(JSON),
            good.to_string(),
        ),
        404,
    );
    assert!(details(&unknown).contains("imaging-referral-order-sign"));
    let wrong_method = s.get(SIGN);
    assert_eq!(
        wrong_method
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    error(wrong_method, 405);
    // The server still answers.
    assert!(call(s, SIGN, &good).len() == 1);
}

#[test]
fn feedback_is_counted_by_rule_and_logged_without_patient_data() {
    let s = Server::start(&[]);
    let req = several_orders("order-sign", &[NOT_JUSTIFIED, REDIRECTED]);
    let cards = call(&s, SIGN, &req);
    let card = |rule: &str| {
        cards
            .iter()
            .find(|c| rule_of(c) == rule)
            .cloned()
            .expect("card")
    };
    let (rejected, redirected) = (card("US05"), card("US13"));
    let reason = &rejected["overrideReasons"][0];
    let comment = "Comment naming Ash Example";
    let feedback = json!({ "feedback": [
        { "card": rejected["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-15T10:00:00Z",
          "overrideReason": { "reason": { "system": reason["system"], "code": reason["code"] }, "userComment": comment } },
        { "card": redirected["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-06-15T10:00:01Z",
          "acceptedSuggestions": [{ "id": redirected["suggestions"][0]["uuid"] }] },
        { "card": uuid::Uuid::new_v4().to_string(), "outcome": "overridden", "outcomeTimestamp": "2026-06-15T10:00:02Z" },
    ]});
    let (status, ct, body) = read(s.post(
        &format!("{SIGN}/feedback"),
        Some(JSON),
        feedback.to_string(),
    ));
    assert_eq!(status, 200, "{body:#}");
    assert!(ct.starts_with("application/json"));
    assert_eq!(body["received"], 3);

    let metrics = s.get("/metrics").text().expect("metrics");
    for line in [
        r#"referral_gateway_cds_feedback_total{service="imaging-referral-order-sign",rule="US05",outcome="overridden"} 1"#,
        r#"referral_gateway_cds_feedback_total{service="imaging-referral-order-sign",rule="US13",outcome="accepted"} 1"#,
        r#"referral_gateway_cds_feedback_total{service="imaging-referral-order-sign",rule="unknown",outcome="overridden"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }
    // The decisions of CDS Hooks calls are counted like the FHIR endpoints' ones.
    assert!(metrics.contains(r#"referral_gateway_decisions_total{route="/cds-services/{id}",decision="redirected",status="200"} 1"#), "{metrics}");

    // Feedback on a card of the other service is not this service's.
    let other = json!({ "feedback": [{ "card": rejected["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-15T10:00:03Z" }] });
    assert_eq!(
        s.post(&format!("{SELECT}/feedback"), Some(JSON), other.to_string())
            .status()
            .as_u16(),
        200
    );
    let metrics = s.get("/metrics").text().expect("metrics");
    assert!(metrics.contains(r#"referral_gateway_cds_feedback_total{service="imaging-referral-order-select",rule="unknown",outcome="overridden"} 1"#), "{metrics}");

    // Stored against the card's consult (contract §6): the card names its consult, which is in
    // the record as a CDS Hooks consult, and $stats counts the override with its reason.
    let consult = rejected["extension"]["referral-gateway-consult-id"]
        .as_str()
        .expect("the card's consult id");
    let json_of = |path: &str| -> Value {
        serde_json::from_str(&s.get(path).text().expect("body")).expect("JSON")
    };
    let event = json_of(&format!("/AuditEvent/{consult}"));
    assert_eq!(event["id"], consult, "{event}");
    assert!(
        event.to_string().contains("order-sign/"),
        "the channel names the hook and its instance: {event}"
    );
    let stats = json_of("/$stats");
    let rule = |id: &str| -> Value {
        stats["parameter"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "rule" && p["part"][0]["valueString"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {stats}"))
    };
    let us05 = rule("US05");
    assert_eq!(
        us05["part"][3],
        json!({"name": "overridden", "valueInteger": 1}),
        "{us05}"
    );
    assert_eq!(
        us05["part"][4]["part"][0]["valueCode"], reason["code"],
        "{us05}"
    );
    assert_eq!(
        rule("US13")["part"][3]["valueInteger"],
        0,
        "accepted, not overridden"
    );

    let log = s.log();
    assert!(
        log.contains("CDS Hooks feedback") && log.contains("US05"),
        "{log}"
    );
    for private in [comment, "Ash", "cds-test-patient", USER] {
        assert!(!log.contains(private), "the log shows `{private}`:\n{log}");
    }
}

#[test]
fn malformed_feedback_is_400() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let path = format!("{SIGN}/feedback");
    error(s.post(&path, Some(JSON), "not json"), 400);
    let body = error(
        s.post(
            &path,
            Some(JSON),
            json!({ "feedback": [{ "card": "x", "outcome": "ignored" }] }).to_string(),
        ),
        400,
    );
    let d = details(&body);
    assert!(
        d.contains("feedback[0].card")
            && d.contains("feedback[0].outcome")
            && d.contains("outcomeTimestamp"),
        "{body:#}"
    );
    error(
        s.post(&path, Some(JSON), json!({ "feedback": [] }).to_string()),
        400,
    );
    error(
        s.post(
            "/cds-services/nope/feedback",
            Some(JSON),
            json!({ "feedback": [] }).to_string(),
        ),
        404,
    );
}

#[test]
fn browser_clients_get_cors_headers() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let res = s
        .client
        .request(reqwest::Method::OPTIONS, s.url(SIGN))
        .header("Origin", "https://sandbox.cds-hooks.org")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .expect("preflight");
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        res.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
}

/// The client harness: every example of every rule, through both hooks, gets the cards its
/// expected decision calls for.
#[test]
fn every_rule_example_drives_both_hooks() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let mut n = 0;
    for rule in &rules().rules {
        for ex in &rule.def.examples {
            let fhir = example(&ex.file);
            for path in [SELECT, SIGN] {
                let cards = call(s, path, &cds_request(hook_of(path), &fhir, &[]));
                let what = format!("{} ({}) via {path}: {cards:#?}", ex.file, rule.def.id);
                match ex.expect {
                    Decision::Accepted => assert!(cards.is_empty(), "{what}"),
                    Decision::Rejected => {
                        assert!(
                            !cards.is_empty()
                                && cards.iter().all(|c| c.get("suggestions").is_none()),
                            "{what}"
                        );
                        if ex.fires.unwrap_or(true) {
                            assert!(cards.iter().any(|c| rule_of(c) == rule.def.id), "{what}");
                        }
                    }
                    Decision::Redirected => {
                        assert_eq!(cards.len(), 1, "{what}");
                        assert_eq!(
                            cards[0]["suggestions"][0]["actions"]
                                .as_array()
                                .map(Vec::len),
                            Some(2),
                            "{what}"
                        );
                        if ex.fires.unwrap_or(true) {
                            assert_eq!(rule_of(&cards[0]), rule.def.id, "{what}");
                        }
                    }
                }
                n += 1;
            }
        }
    }
    assert!(n >= 2 * 26, "only {n} calls");
}

/// `order-sign` stamps each draft order it decided (contract §9): one `systemActions` `update`
/// per order, the order as sent with the consult-id extension and the decision coding in
/// `meta.tag`; the consult it names is the one recorded. `order-select` proposes nothing.
#[test]
fn order_sign_stamps_each_draft_order_with_its_consult_and_decision() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let s = &own;
    let req = several_orders("order-sign", &[NOT_JUSTIFIED, REDIRECTED, ACCEPTED]);
    let (status, _, body) = read(s.post(SIGN, Some(JSON), req.to_string()));
    assert_eq!(status, 200, "{body:#}");
    assert_cds_response(&body);
    let actions = body["systemActions"].as_array().expect("systemActions");
    assert_eq!(actions.len(), 3, "{body:#}");
    let mut decisions = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        assert_eq!(a["type"], "update", "{a:#}");
        assert!(non_empty_str(&a["description"]));
        let order = &a["resource"];
        fhir_codec::check_json(order)
            .unwrap_or_else(|e| panic!("systemActions[{i}].resource is not FHIR R4: {e:?}"));
        // The order as the EHR sent it, plus the stamp.
        let sent = &req["context"]["draftOrders"]["entry"][i]["resource"];
        assert_eq!(order["id"], sent["id"]);
        assert_eq!(order["code"], sent["code"]);
        let ext = order["extension"]
            .as_array()
            .and_then(|l| {
                l.iter().find(|e| {
                    e["url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("/StructureDefinition/consult-id"))
                })
            })
            .expect("the consult-id extension");
        let id = ext["valueIdentifier"]["value"]
            .as_str()
            .expect("consult id");
        assert!(ext["valueIdentifier"]["system"]
            .as_str()
            .is_some_and(|s| s.ends_with("/consult")));
        let tag = order["meta"]["tag"]
            .as_array()
            .and_then(|t| {
                t.iter().find(|c| {
                    c["system"]
                        .as_str()
                        .is_some_and(|s| s.ends_with("/CodeSystem/referral-decision"))
                })
            })
            .expect("the decision coding");
        let decision = tag["code"].as_str().expect("code").to_string();
        // The consult recorded under that id has that decision.
        let (st, _, event) = read(s.get(&format!("/AuditEvent/{id}")));
        assert_eq!(st, 200, "{event:#}");
        assert!(
            event["entity"][0]["detail"]
                .as_array()
                .is_some_and(|d| d.contains(&json!({"type": "decision", "valueString": decision}))),
            "{event:#}"
        );
        decisions.push(decision);
    }
    assert_eq!(decisions, ["rejected", "redirected", "accepted"]);

    let req = several_orders("order-select", &[NOT_JUSTIFIED]);
    let (_, _, body) = read(s.post(SELECT, Some(JSON), req.to_string()));
    assert!(body.get("systemActions").is_none(), "{body:#}");
}
