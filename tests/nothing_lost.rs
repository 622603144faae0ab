//! Nothing lost (issue 8), as properties over generated Bundles: in a batch every request entry
//! gets exactly one response entry, in the same order, with the decision the request gets on its
//! own; a transaction is all or nothing; a redirected ServiceRequest always references the one
//! it replaces.

mod common;

use common::{check_json, repo, rules};
use proptest::prelude::*;
use referral_gateway::engine::EntryResult;
use referral_gateway::finding::Decision;
use referral_gateway::outcome::response::{answer, Answer};
use serde_json::{json, Value};

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

/// Requests with a known decision on their own (each names its Patient in `contained`, so the
/// rest of the Bundle cannot change it).
const REQUESTS: [(&str, u16, Decision); 4] = [
    (
        "general/gen01-cxr-with-clinical-question.json",
        200,
        Decision::Accepted,
    ),
    ("us/us05-neck-pain-only-coded.json", 422, Decision::Rejected),
    (
        "us/us13-calf-swelling-query-dvt.json",
        200,
        Decision::Redirected,
    ),
    ("us/us02-labial-lump.json", 200, Decision::Redirected),
];

/// One generated Bundle entry and what it must get.
#[derive(Debug, Clone)]
enum Kind {
    /// REQUESTS[i], with or without its id.
    Request { which: usize, keep_id: bool },
    /// A ServiceRequest that is not valid FHIR.
    Invalid(usize),
    /// A Patient as context.
    Patient,
    /// An entry without a resource (a DELETE).
    NoResource,
    /// A resource type FHIR does not have.
    Unknown,
}

#[derive(Debug, Clone)]
struct Gen {
    kind: Kind,
    full_url: bool,
    method: Option<&'static str>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => (0..REQUESTS.len(), any::<bool>()).prop_map(|(which, keep_id)| Kind::Request { which, keep_id }),
        2 => (0..3usize).prop_map(Kind::Invalid),
        2 => Just(Kind::Patient),
        1 => Just(Kind::NoResource),
        1 => Just(Kind::Unknown),
    ]
}

fn entry() -> impl Strategy<Value = Gen> {
    (
        kind(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some("POST")), Just(Some("PUT"))],
    )
        .prop_map(|(kind, full_url, method)| Gen {
            kind,
            full_url,
            method,
        })
}

fn resource(g: &Gen) -> Option<Value> {
    Some(match g.kind {
        Kind::Request { which, keep_id } => {
            let mut sr = example(REQUESTS[which].0);
            if !keep_id {
                sr.as_object_mut().map(|m| m.remove("id"));
            }
            sr
        }
        Kind::Invalid(n) => {
            let mut sr = example(REQUESTS[0].0);
            match n {
                0 => sr["status"] = json!(7),
                1 => sr["colour"] = json!("blue"),
                _ => sr["reasonCode"] = json!([]),
            }
            sr
        }
        Kind::Patient => json!({ "resourceType": "Patient", "birthDate": "1970-01-01" }),
        Kind::NoResource => return None,
        Kind::Unknown => json!({ "resourceType": "Referral" }),
    })
}

fn full_url(i: usize) -> String {
    format!("urn:uuid:00000000-0000-4000-8000-{i:012}")
}

fn bundle(kind: &str, gens: &[Gen]) -> Value {
    let entries: Vec<Value> = gens
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut e = json!({});
            if g.full_url {
                e["fullUrl"] = json!(full_url(i));
            }
            if let Some(r) = resource(g) {
                e["resource"] = r;
            }
            if let Some(m) = g.method {
                e["request"] = json!({ "method": m, "url": "ServiceRequest" });
            }
            if matches!(g.kind, Kind::NoResource) {
                // Something an integration engine might batch up, that the gateway cannot check.
                e["request"] = json!({ "method": "DELETE", "url": "ServiceRequest/1" });
            }
            e
        })
        .collect();
    let mut b = json!({ "resourceType": "Bundle", "type": kind });
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    b
}

/// What an entry gets: its status line. The gateway performs no update of a ServiceRequest
/// and no delete (405); a PUT of context is read as context.
fn expected_status(g: &Gen) -> &'static str {
    match g.kind {
        Kind::Request { .. } | Kind::Invalid(_) if g.method == Some("PUT") => {
            "405 Method Not Allowed"
        }
        Kind::NoResource => "405 Method Not Allowed",
        Kind::Request { which, .. } => match REQUESTS[which].1 {
            200 => "200 OK",
            _ => "422 Unprocessable Entity",
        },
        Kind::Invalid(_) | Kind::Unknown => "400 Bad Request",
        Kind::Patient => "200 OK",
    }
}

fn expressions(oo: &Value) -> Vec<String> {
    oo["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["expression"].as_array().into_iter().flatten())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect()
}

/// The reference a redirect of entry `i` must carry.
fn replaced(gens: &[Gen], i: usize) -> Value {
    let g = &gens[i];
    if g.full_url {
        return json!({ "reference": full_url(i) });
    }
    match (
        &g.kind,
        resource(g).and_then(|r| r["id"].as_str().map(str::to_string)),
    ) {
        (_, Some(id)) => json!({ "reference": format!("ServiceRequest/{id}") }),
        _ => json!("no id"),
    }
}

fn decide(b: &Value) -> (Answer, Vec<EntryResult>) {
    let c = check_json(b).expect("a Bundle the gateway can read");
    let a = answer(&c, &rules().site);
    (a, c.entries)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn batch_answers_every_entry_once_in_order(gens in prop::collection::vec(entry(), 0..10)) {
        let b = bundle("batch", &gens);
        let (a, _) = decide(&b);
        prop_assert_eq!(a.status, 200);
        prop_assert_eq!(&a.body["type"], "batch-response");
        let got = a.body["entry"].as_array().cloned().unwrap_or_default();
        prop_assert_eq!(got.len(), gens.len(), "{}", a.body);
        for (i, (g, e)) in gens.iter().zip(&got).enumerate() {
            // Same order: the entry's outcome is about Bundle.entry[i].
            let here = format!("Bundle.entry[{i}]");
            let exprs = expressions(&e["response"]["outcome"]);
            prop_assert!(exprs.iter().any(|x| x.starts_with(&here)), "entry {}: {:?}", i, exprs);
            prop_assert!(exprs.iter().all(|x| !x.starts_with("Bundle.entry[") || x.starts_with(&format!("{here}.")) || x == &here), "entry {}: {:?}", i, exprs);
            // The decision it gets on its own.
            prop_assert_eq!(e["response"]["status"].as_str(), Some(expected_status(g)), "entry {}: {:?}", i, g);
            let redirected = g.method != Some("PUT")
                && matches!(g.kind, Kind::Request { which, .. } if REQUESTS[which].2 == Decision::Redirected);
            prop_assert_eq!(e.get("resource").is_some(), redirected, "entry {}", i);
            if let Some(new) = e.get("resource") {
                prop_assert_eq!(&new["resourceType"], "ServiceRequest");
                prop_assert_eq!(e["fullUrl"].as_str().map(str::to_string), new["id"].as_str().map(|id| format!("urn:uuid:{id}")));
                let replaces = new["replaces"].as_array().cloned().unwrap_or_default();
                prop_assert_eq!(replaces.len(), 1);
                match replaced(&gens, i) {
                    Value::String(_) => prop_assert_eq!(&replaces[0]["type"], "ServiceRequest"),
                    want => prop_assert_eq!(&replaces[0], &want),
                }
            }
        }
    }

    #[test]
    fn transaction_is_all_or_nothing(gens in prop::collection::vec(entry(), 0..10)) {
        let b = bundle("transaction", &gens);
        let (a, entries) = decide(&b);
        prop_assert_eq!(entries.len(), gens.len());
        let failing: Vec<usize> = gens
            .iter()
            .enumerate()
            .filter(|(_, g)| expected_status(g) != "200 OK")
            .map(|(i, _)| i)
            .collect();
        if failing.is_empty() {
            prop_assert_eq!(a.status, 200);
            prop_assert_eq!(&a.body["type"], "transaction-response");
            let got = a.body["entry"].as_array().map_or(0, Vec::len);
            prop_assert_eq!(got, gens.len());
        } else {
            // Nothing goes ahead: no response Bundle, no redirected request, and every failing
            // entry is named.
            let invalid = failing
                .iter()
                .any(|&i| matches!(expected_status(&gens[i]), "400 Bad Request" | "405 Method Not Allowed"));
            prop_assert_eq!(a.status, if invalid { 400 } else { 422 });
            prop_assert_eq!(&a.body["resourceType"], "OperationOutcome");
            prop_assert!(!a.body.to_string().contains("\"replaces\""));
            let exprs = expressions(&a.body);
            for i in failing {
                let here = format!("Bundle.entry[{i}]");
                prop_assert!(exprs.iter().any(|x| x.starts_with(&here)), "{} not named: {:?}", here, exprs);
            }
        }
    }
}

/// A redirect of a lone request without id or fullUrl still says what it replaces.
#[test]
fn redirect_of_a_request_without_id_names_it_by_identifier() {
    let mut sr = example(REQUESTS[2].0);
    sr.as_object_mut().map(|m| m.remove("id"));
    sr["identifier"] = json!([{ "system": "https://example.org/placer", "value": "ORD-1" }]);
    let c = check_json(&sr).expect("readable");
    let a = answer(&c, &rules().site);
    assert_eq!(a.body["resourceType"], "ServiceRequest", "{}", a.body);
    assert_eq!(a.body["replaces"][0]["identifier"]["value"], "ORD-1");
    sr.as_object_mut().map(|m| m.remove("identifier"));
    let c = check_json(&sr).expect("readable");
    let a = answer(&c, &rules().site);
    assert_eq!(
        a.body["replaces"][0]["type"], "ServiceRequest",
        "{}",
        a.body
    );
}
