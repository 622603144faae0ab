//! A real FHIR client through the inline gateway (issue 16, contract §7): "a real FHIR client
//! (create, read, batch, transaction) works through the gateway as it would against the server
//! itself".
//!
//! The client is Medplum's `MedplumClient` (npm `@medplum/core`, over Node's own fetch), run by
//! the script `tests/support/fhir-upstream/client.js`: create, conditional create, read, vread,
//! update, history, search, a rejected order, a batch and two transactions. The same script
//! runs twice: straight against a real FHIR server (Medplum's FHIR router,
//! tests/support/fhir-upstream) and through the gateway in front of another one (each with its
//! own store: the servers in memory, the gateway a SQLite file of its own). The two runs must
//! agree in kind — statuses, what was created and read back, entries in order — except where the
//! gateway is meant to differ: the rejected order is refused with 422 + OperationOutcome, and
//! nothing of it (nor of a transaction holding it) reaches the server behind the gateway.
//!
//! Node (>= 20.19) runs the client and the servers: without it the test says so loudly and
//! skips, and fails when `CI=true` (tests/common/upstream.rs).

mod common;

use common::repo;
use common::server::Server;
use common::upstream::FhirUpstream;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

const PLACER_SYSTEM: &str = "https://gp.example.org/orders";
/// The order the rules accept, and one they reject (each a rule's own example).
const ACCEPTED: &str = "xr/xr04-query-zygoma-fracture-accepted.json";
const REJECTED: &str = "us/us05-neck-pain-only-coded.json";

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

/// Runs `client.js` against `base`; its report.
fn run_client(base: &str) -> Value {
    let fixtures = json!({
        "accepted": example(ACCEPTED),
        "rejected": example(REJECTED),
        "placerSystem": PLACER_SYSTEM,
    });
    let mut child = Command::new("node")
        .arg("client.js")
        .arg(base)
        .current_dir(repo().join("tests/support/fhir-upstream"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node client.js");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(fixtures.to_string().as_bytes())
        .expect("write the fixtures");
    let out = child.wait_with_output().expect("client.js");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.js against {base} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("client.js report not JSON ({e}): {stdout}"))
}

/// The report's step `name`.
fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report}"))
}

/// A step's outcome "in kind": without what differs between two servers by nature (ids,
/// versions, URLs).
fn in_kind(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "id" | "ids" | "versionId" | "location" | "etag" | "url"
                    )
                })
                .map(|(k, v)| (k.clone(), in_kind(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(in_kind).collect()),
        other => other.clone(),
    }
}

/// The statuses of a batch or transaction step's entries.
fn entry_statuses(s: &Value) -> Vec<String> {
    s["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {s}"))
        .iter()
        .map(|e| e["status"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The placer identifiers read back from a step's entries' locations, in entry order.
fn entry_placers(s: &Value) -> Vec<Option<String>> {
    s["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {s}"))
        .iter()
        .map(|e| e["read"]["placer"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn medplum_client_works_through_the_gateway_as_against_the_server() {
    let Some(direct) = FhirUpstream::start() else {
        return;
    };
    let Some(behind) = FhirUpstream::start() else {
        return;
    };
    let gw = Server::start(&["--upstream", &behind.base]);

    let against_server = run_client(&direct.base);
    let through_gateway = run_client(&gw.base);
    let (d, g) = (&against_server, &through_gateway);

    // The same script, the same steps in the same order.
    let names = |r: &Value| -> Vec<String> {
        r["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["step"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(names(d), names(g));

    // Against the server itself, every step succeeds as FHIR says (the rejected order is just
    // another ServiceRequest to it).
    let expected_direct = [
        ("create", 201),
        ("create-if-none-exist", 200),
        ("read", 200),
        ("vread", 200),
        ("update", 200),
        ("history", 200),
        ("search", 200),
        ("create-rejected", 201),
        ("batch", 200),
        ("transaction", 200),
        ("transaction-rejected", 200),
        ("search-all", 200),
    ];
    for (name, status) in expected_direct {
        let s = step(d, name);
        assert_eq!(s["status"], status, "{name} against the server: {s}");
        assert!(s.get("error").is_none(), "{name} against the server: {s}");
    }

    // Through the gateway: the same outcomes in kind, step by step.
    for name in [
        "create",
        "create-if-none-exist",
        "read",
        "vread",
        "update",
        "history",
        "search",
        "transaction",
    ] {
        assert_eq!(
            in_kind(step(g, name)),
            in_kind(step(d, name)),
            "{name}: through the gateway vs against the server\n{}",
            gw.log()
        );
    }

    // create: 201, the Location on the gateway, and read back through it by the client.
    let create = step(g, "create");
    assert_eq!(create["placer"], "C1", "{create}");
    let location = create["location"].as_str().expect("Location");
    assert!(
        location.starts_with(&format!(
            "{}/ServiceRequest/{}/_history/",
            gw.base,
            create["id"].as_str().expect("id")
        )),
        "Location {location} is not the created version on the gateway {}",
        gw.base
    );
    assert_eq!(create["locationRead"]["status"], 200, "{create}");
    assert_eq!(create["locationRead"]["id"], create["id"]);
    assert!(
        create["id"] != step(g, "create-rejected")["id"],
        "distinct orders"
    );
    for (name, key) in [
        ("create-if-none-exist", "sameId"),
        ("read", "sameId"),
        ("vread", "sameVersion"),
        ("update", "newVersion"),
        ("history", "allSameId"),
    ] {
        assert_eq!(step(g, name)[key], true, "{name}: {}", step(g, name));
    }
    assert_eq!(step(g, "history")["entries"], 2);
    assert_eq!(step(g, "search")["total"], 1);
    assert_eq!(step(g, "search")["ids"], json!([create["id"]]));
    let full_url = step(g, "search")["fullUrlRead"]["url"]
        .as_str()
        .expect("fullUrl");
    assert!(full_url.starts_with(&gw.base), "fullUrl {full_url}");

    // The rejected order: 422 + the gateway's OperationOutcome, which the client throws.
    let rejected = step(g, "create-rejected");
    assert_eq!(rejected["status"], 422, "{rejected}");
    assert_eq!(
        rejected["outcome"]["resourceType"], "OperationOutcome",
        "{rejected}"
    );
    assert!(
        rejected["outcome"]["issue"]
            .as_array()
            .expect("issues")
            .iter()
            .any(|i| i["severity"] == "error" && i["detail"] == "rejected"),
        "the outcome carries the rejected decision: {rejected}"
    );

    // batch: the same entries in the same order; the rejected one is the gateway's 422, the
    // others created upstream and read back through the gateway from their locations.
    let (bd, bg) = (step(d, "batch"), step(g, "batch"));
    assert_eq!(bg["type"], "batch-response");
    let statuses = entry_statuses(bg);
    assert_eq!(statuses.len(), 3, "{bg}");
    assert!(statuses[0].starts_with("201"), "{bg}");
    assert!(statuses[1].starts_with("422"), "{bg}");
    assert!(statuses[2].starts_with("201"), "{bg}");
    let direct_statuses = entry_statuses(bd);
    assert!(direct_statuses.iter().all(|s| s.starts_with("201")), "{bd}");
    let placers = entry_placers(bg);
    assert_eq!(placers[0].as_deref(), Some("B1"), "{bg}");
    assert_eq!(placers[2].as_deref(), Some("B2"), "{bg}");
    assert_eq!(entry_placers(bd)[0], placers[0]);
    assert_eq!(entry_placers(bd)[2], placers[2]);
    for i in [0, 2] {
        let e = &bg["entries"][i];
        assert_eq!(e["read"]["status"], 200, "{e}");
        assert!(
            e["location"]
                .as_str()
                .is_some_and(|l| l.starts_with(&gw.base)),
            "{e}"
        );
    }

    // transaction: both created, in order, read back through the gateway.
    let tg = step(g, "transaction");
    assert_eq!(tg["type"], "transaction-response");
    assert_eq!(
        entry_placers(tg),
        vec![Some("T1".to_string()), Some("T2".to_string())]
    );
    assert!(tg["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| e["location"]
            .as_str()
            .is_some_and(|l| l.starts_with(&gw.base))));

    // A transaction holding the rejected order: 422 + OperationOutcome, nothing committed.
    let tr = step(g, "transaction-rejected");
    assert_eq!(tr["status"], 422, "{tr}");
    assert_eq!(tr["outcome"]["resourceType"], "OperationOutcome", "{tr}");

    // What each server holds, as the client sees it: behind the gateway exactly the accepted
    // orders; the server itself also has the rejected ones and T3 of the refused transaction.
    let held_behind = step(g, "search-all");
    assert_eq!(
        held_behind["placers"],
        json!(["B1", "B2", "C1", "T1", "T2"]),
        "{held_behind}"
    );
    assert_eq!(
        step(d, "search-all")["placers"],
        json!(["B1", "B2", "C1", "T1", "T2", "T3", null, null, null]),
        "the server itself holds the rejected orders (no placer) and the refused transaction's"
    );
    let mut held: Vec<String> = behind
        .service_requests()
        .iter()
        .filter_map(|sr| {
            sr["identifier"]
                .as_array()?
                .iter()
                .find(|i| i["system"] == PLACER_SYSTEM)?["value"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    held.sort();
    assert_eq!(held, ["B1", "B2", "C1", "T1", "T2"]);
    assert_eq!(behind.service_requests().len(), 5);

    // Every call the client made through the gateway, read-backs included, went to the
    // gateway: nothing sent it to the server behind.
    for call in g["log"].as_array().expect("log") {
        let url = call["url"].as_str().expect("url");
        assert!(url.starts_with(&gw.base), "{call}");
    }
}
