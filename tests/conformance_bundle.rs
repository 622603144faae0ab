//! Conformance suite, FHIR R4 Bundle (bundle.html) and batch / transaction (http.html
//! §transaction), with contract §1 and §4: each case cites the clause it checks.

mod common;

use common::harness::*;
use common::server::{Server, FHIR_JSON};
use serde_json::Value;

fn post(s: &Server, path: &str, body: &Value, prefer: Option<&str>) -> (u16, Value) {
    let mut req = s
        .client
        .post(s.url(path))
        .header("content-type", FHIR_JSON)
        .body(body.to_string());
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    let (status, _, body) = read(req.send().expect("POST"));
    (status, body)
}

/// bundle.html bdl-4 ("A batch-response or transaction-response has entry.response"; only
/// they may) and contract §1 (a collection is treated as a batch): a collection Bundle is
/// answered with a `batch-response`, one entry with a `response` per entry.
#[test]
fn a_collection_is_answered_as_a_batch_response() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let b = example(AGE_BUNDLE);
    assert_eq!(b["type"], "collection");
    let n = b["entry"].as_array().map_or(0, Vec::len);
    let (status, answer) = post(server(), "/", &b, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "batch-response", "{answer}");
    let entries = answer["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), n);
    assert!(entries.iter().all(|e| e["response"]["status"].is_string()));
}

/// http.html §transaction (batch rules): each entry is processed as the interaction its
/// `request.method` names would be; a server answers an interaction it does not perform with
/// 405. The gateway decides on POSTed ServiceRequests, reads POSTed or PUT context, and stores
/// nothing: GET, DELETE, PATCH and the PUT of a ServiceRequest are 405 in their entry.
#[test]
fn batch_entries_are_answered_by_their_method() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let b = bundle_of(
        "batch",
        &[
            ("POST", Some(REJECTED)),
            ("PUT", Some(ACCEPTED)),
            ("GET", None),
            ("DELETE", None),
            ("POST", Some(ACCEPTED)),
        ],
    );
    let (status, answer) = post(server(), "/", &b, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "batch-response");
    let entries = answer["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 5);
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "422 Unprocessable Entity",
            "405 Method Not Allowed",
            "405 Method Not Allowed",
            "405 Method Not Allowed",
            "200 OK"
        ]
    );
    assert_eq!(
        decision(&entries[0]["response"]["outcome"]).as_deref(),
        Some("rejected")
    );
    for (i, e) in entries.iter().enumerate().skip(1).take(3) {
        let oo = &e["response"]["outcome"];
        assert_outcome(oo, "not-supported");
        assert_eq!(
            expressions(oo),
            [format!("Bundle.entry[{i}].request.method")],
            "{oo}"
        );
        // Nothing was decided: no decision issue.
        assert_eq!(decision(oo), None, "{oo}");
    }
    assert_eq!(
        decision(&entries[4]["response"]["outcome"]).as_deref(),
        Some("accepted")
    );
}

/// http.html §transaction: a transaction is all or nothing; an entry the server cannot process
/// fails the whole transaction with one OperationOutcome (contract §4: naming Bundle.entry[i]).
#[test]
fn a_transaction_with_a_method_not_performed_fails_whole() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let b = bundle_of(
        "transaction",
        &[("POST", Some(ACCEPTED)), ("PUT", Some(ACCEPTED))],
    );
    let (status, oo) = post(server(), "/", &b, None);
    assert_eq!(status, 400, "{oo}");
    assert_outcome(&oo, "not-supported");
    assert!(
        expressions(&oo).contains(&"Bundle.entry[1].request.method".to_string()),
        "{oo}"
    );
    let ok = bundle_of("transaction", &[("POST", Some(ACCEPTED))]);
    let (status, answer) = post(server(), "/", &ok, None);
    assert_eq!(
        (status, answer["type"].as_str()),
        (200, Some("transaction-response"))
    );
}

/// http.html §ops "Prefer" in a batch: the preference applies to each entry; with
/// `return=OperationOutcome` an entry carries its outcome, not the redirected resource.
#[test]
fn prefer_return_operation_outcome_in_a_batch() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let b = bundle_of(
        "batch",
        &[("POST", Some(REDIRECTED)), ("POST", Some(ACCEPTED))],
    );
    let (_, plain) = post(server(), "/", &b, None);
    assert_eq!(
        plain["entry"][0]["resource"]["resourceType"],
        "ServiceRequest"
    );
    let (status, answer) = post(server(), "/", &b, Some("return=OperationOutcome"));
    assert_eq!(status, 200, "{answer}");
    let first = &answer["entry"][0];
    assert!(first.get("resource").is_none(), "{first}");
    assert_eq!(
        decision(&first["response"]["outcome"]).as_deref(),
        Some("redirected")
    );
}
