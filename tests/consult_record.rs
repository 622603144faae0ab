//! The consult record over HTTP (contract §6): consult ids on every answer, the record read
//! back as AuditEvent / Provenance / $stats, 503 while the store cannot commit and recovery
//! afterwards, nothing answered ever lost (SIGKILL included). Each server has its own
//! temporary store; the PostgreSQL tests their own database.

mod common;

use common::pg::TestDb;
use common::server::{Server, FHIR_JSON};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;

const REJECTED: &str = "us/us05-neck-pain-only-coded.json";
const REDIRECTED: &str = "us/us13-calf-swelling-query-dvt.json";
const ACCEPTED: &str = "general/gen01-cxr-with-clinical-question.json";
const CANONICAL: &str = "https://referral-gateway.example.org/fhir";

fn example(rel: &str) -> Value {
    let path = common::repo().join("examples").join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("example")).expect("JSON")
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rg-consult-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("scratch");
        Scratch(dir)
    }

    fn store(&self) -> String {
        format!("sqlite:{}", self.0.join("store.sqlite").display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn post(s: &Server, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = s.post(path, Some(FHIR_JSON), body.to_string());
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn get(s: &Server, path: &str) -> (u16, Value) {
    let res = s.get(path);
    let status = res.status().as_u16();
    let text = res.text().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn consult_ext(resource: &Value) -> Vec<String> {
    resource["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == format!("{CANONICAL}/StructureDefinition/consult-id"))
        .map(|e| {
            assert_eq!(
                e["valueIdentifier"]["system"],
                format!("{CANONICAL}/consult")
            );
            e["valueIdentifier"]["value"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect()
}

fn is_uuid_v7(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7) && !id.starts_with("urn:")
}

fn rule_set_version(s: &Server) -> String {
    let (_, health) = get(s, "/health");
    let v = health["extension"][0]["valueString"]
        .as_str()
        .expect("version")
        .to_string();
    assert_eq!(
        health["extension"][0]["url"],
        format!("{CANONICAL}/StructureDefinition/rule-set-version")
    );
    v
}

/// One decision of each kind, recorded and read back, on the store `store_arg` names.
fn decisions_are_recorded_and_read_back(s: &Server) {
    // Accepted: the id in the header and on the OperationOutcome, the same one.
    let (status, headers, oo) = post(s, "/ServiceRequest", &example(ACCEPTED));
    assert_eq!(status, 200, "{oo}");
    let id = headers["x-consult-id"]
        .to_str()
        .expect("header")
        .to_string();
    assert!(is_uuid_v7(&id), "{id}");
    assert_eq!(consult_ext(&oo), vec![id.clone()]);
    let (status, event) = get(s, &format!("/AuditEvent/{id}"));
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["resourceType"], "AuditEvent");
    assert_eq!(event["id"], id);
    assert_eq!(event["action"], "E");
    assert_eq!(event["outcome"], "0");
    let details = &event["entity"][0]["detail"];
    assert_eq!(
        details[0],
        json!({"type": "decision", "valueString": "accepted"})
    );
    assert_eq!(
        event["entity"][0]["what"]["reference"],
        "ServiceRequest/gen01-cxr-question"
    );
    // The rule set: the same version in the record, /health and /metadata.
    let version = rule_set_version(s);
    assert_eq!(version.len(), 16);
    let rule_set = event["entity"]
        .as_array()
        .expect("entities")
        .iter()
        .find(|e| e["what"]["identifier"]["system"] == format!("{CANONICAL}/rule-set"))
        .expect("rule-set entity");
    assert_eq!(rule_set["what"]["identifier"]["value"], version);
    let (_, meta) = get(s, "/metadata");
    assert_eq!(meta["extension"][0]["valueString"], version);
    assert!(meta["implementation"]["description"]
        .as_str()
        .expect("text")
        .contains(&version));
    let types: Vec<&str> = meta["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["type"].as_str())
        .collect();
    assert!(
        types.contains(&"AuditEvent") && types.contains(&"Provenance"),
        "{types:?}"
    );
    let stats_op = meta["rest"][0]["operation"]
        .as_array()
        .expect("operations")
        .iter()
        .find(|o| o["name"] == "stats")
        .expect("$stats declared");
    let definition = stats_op["definition"].as_str().expect("definition");
    let (status, od) = get(s, "/OperationDefinition/stats");
    assert_eq!(
        (status, od["url"].as_str()),
        (200, Some(definition)),
        "{od}"
    );

    // Rejected: 422, outcome 4, the rule that fired.
    let (status, headers, oo) = post(s, "/ServiceRequest", &example(REJECTED));
    assert_eq!(status, 422);
    let rejected = headers["x-consult-id"]
        .to_str()
        .expect("header")
        .to_string();
    assert_eq!(consult_ext(&oo), vec![rejected.clone()]);
    let (_, event) = get(s, &format!("/AuditEvent/{rejected}"));
    assert_eq!(event["outcome"], "4");
    let rules: Vec<&str> = event["entity"][0]["detail"]
        .as_array()
        .expect("details")
        .iter()
        .filter(|d| d["type"] == "rule")
        .filter_map(|d| d["valueString"].as_str())
        .collect();
    assert!(rules.contains(&"US05"), "{rules:?}");

    // Redirected: the consult id is an identifier of the new request; its Provenance links
    // it to the original, the rule and the consult.
    let (status, headers, sr) = post(s, "/ServiceRequest", &example(REDIRECTED));
    assert_eq!(status, 200);
    assert_eq!(sr["resourceType"], "ServiceRequest");
    let redirected = headers["x-consult-id"]
        .to_str()
        .expect("header")
        .to_string();
    let ids: Vec<&Value> = sr["identifier"]
        .as_array()
        .expect("identifier")
        .iter()
        .collect();
    assert!(
        ids.contains(&&json!({"system": format!("{CANONICAL}/consult"), "value": redirected})),
        "{sr}"
    );
    let sr_id = sr["id"].as_str().expect("id");
    let (status, bundle) = get(s, &format!("/Provenance?target=ServiceRequest/{sr_id}"));
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["type"], "searchset");
    let prov = &bundle["entry"][0]["resource"];
    assert_eq!(
        prov["target"][0]["reference"],
        format!("ServiceRequest/{sr_id}")
    );
    assert_eq!(
        prov["entity"][1]["what"]["reference"],
        format!("AuditEvent/{redirected}")
    );

    // A batch: each entry's outcome carries its own id; no header.
    let batch = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            { "fullUrl": "urn:uuid:0d6c0b5e-8f0e-4f57-9d3e-1c1b2f0a0001", "resource": example(ACCEPTED), "request": { "method": "POST", "url": "ServiceRequest" } },
            { "fullUrl": "urn:uuid:0d6c0b5e-8f0e-4f57-9d3e-1c1b2f0a0002", "resource": example(REJECTED), "request": { "method": "POST", "url": "ServiceRequest" } },
        ]
    });
    let (status, headers, resp) = post(s, "/", &batch);
    assert_eq!(status, 200, "{resp}");
    assert!(headers.get("x-consult-id").is_none());
    let entry_ids: Vec<String> = resp["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .flat_map(|e| consult_ext(&e["response"]["outcome"]))
        .collect();
    assert_eq!(entry_ids.len(), 2);
    assert_ne!(entry_ids[0], entry_ids[1]);
    let (_, e1) = get(s, &format!("/AuditEvent/{}", entry_ids[1]));
    assert_eq!(e1["outcome"], "4");
    assert!(e1["entity"][0]["detail"]
        .as_array()
        .expect("details")
        .contains(&json!({"type": "channel", "valueString": "batch entry 1"})));

    // $validate is a what-if: not recorded.
    let (status, headers, _) = post(s, "/ServiceRequest/$validate", &example(ACCEPTED));
    assert_eq!(status, 200);
    assert!(headers.get("x-consult-id").is_none());

    // Search: every consult once, newest first, in pages linked by `next`.
    let mut seen = Vec::new();
    let mut url = "/AuditEvent?_count=2".to_string();
    loop {
        let (status, page) = get(s, &url);
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["type"], "searchset");
        for e in page["entry"].as_array().into_iter().flatten() {
            seen.push(e["resource"]["id"].as_str().expect("id").to_string());
        }
        let next = page["link"]
            .as_array()
            .expect("links")
            .iter()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str());
        match next {
            Some(n) => url = n.trim_start_matches(&s.base).to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);
    assert_eq!(seen[4], id, "oldest last");
    let (_, rejected_only) = get(s, "/AuditEvent?outcome=4");
    assert_eq!(rejected_only["entry"].as_array().expect("entries").len(), 2);
    let (_, by_rule) = get(s, "/AuditEvent?rule=US05&decision=rejected");
    assert_eq!(by_rule["entry"].as_array().expect("entries").len(), 2);
    let (status, bad) = get(s, "/AuditEvent?colour=blue");
    assert_eq!(status, 400, "{bad}");
    let (status, _) = get(s, "/AuditEvent/not-a-consult");
    assert_eq!(status, 404);

    // Statistics.
    let (status, stats) = get(s, "/$stats");
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["resourceType"], "Parameters");
    assert_eq!(
        stats["parameter"][0],
        json!({"name": "total", "valueInteger": 5})
    );
    let decisions: Vec<(String, i64)> = stats["parameter"]
        .as_array()
        .expect("params")
        .iter()
        .filter(|p| p["name"] == "decision")
        .map(|p| {
            (
                p["part"][0]["valueCode"].as_str().unwrap_or("").to_string(),
                p["part"][1]["valueInteger"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        vec![
            ("accepted".into(), 2),
            ("redirected".into(), 1),
            ("rejected".into(), 2)
        ]
    );
    // Without a token the client is the address the requests came from.
    let client = stats["parameter"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == "client")
        .expect("client");
    assert_eq!(client["part"][0]["valueString"], "127.0.0.1", "{client}");
    assert_eq!(client["part"][1]["valueInteger"], 5);
}

#[test]
fn sqlite_records_every_decision() {
    let dir = Scratch::new("sqlite");
    let store = dir.store();
    let s = Server::start(&["--store", &store]);
    decisions_are_recorded_and_read_back(&s);
}

#[test]
fn postgres_records_every_decision() {
    let Some(db) = TestDb::create("postgres_records_every_decision") else {
        return;
    };
    let s = Server::start(&["--store", &db.url]);
    decisions_are_recorded_and_read_back(&s);
}

#[test]
fn a_retry_is_the_same_consult() {
    let s = Server::start(&[]);
    let mut sr = example(ACCEPTED);
    sr["identifier"] = json!([{"system": "https://gp.example/orders", "value": "ORD-1"}]);
    let (_, h1, _) = post(&s, "/ServiceRequest", &sr);
    let (_, h2, _) = post(&s, "/ServiceRequest", &sr);
    assert_eq!(h1["x-consult-id"], h2["x-consult-id"]);
    // Corrected and sent again under the same order number: a new consult.
    sr["reasonCode"][0]["text"] = json!("Cough for 8 weeks, ex-smoker, ?consolidation");
    let (_, h3, _) = post(&s, "/ServiceRequest", &sr);
    assert_ne!(h1["x-consult-id"], h3["x-consult-id"]);
    let (_, found) = get(
        &s,
        "/AuditEvent?entity-identifier=https://gp.example/orders|ORD-1",
    );
    assert_eq!(found["entry"].as_array().expect("entries").len(), 2);
}

#[test]
fn audit_body_hash_keeps_no_request() {
    let s = Server::start(&["--audit-body", "hash"]);
    let (_, h, _) = post(&s, "/ServiceRequest", &example(ACCEPTED));
    let id = h["x-consult-id"].to_str().expect("id");
    let (_, event) = get(&s, &format!("/AuditEvent/{id}"));
    let details = event["entity"][0]["detail"].as_array().expect("details");
    assert!(details.iter().any(|d| d["type"] == "request-sha256"));
    assert!(!details.iter().any(|d| d["type"] == "request"), "{event}");
    let s = Server::start(&[]);
    let (_, h, _) = post(&s, "/ServiceRequest", &example(ACCEPTED));
    let id = h["x-consult-id"].to_str().expect("id");
    let (_, event) = get(&s, &format!("/AuditEvent/{id}"));
    let details = event["entity"][0]["detail"].as_array().expect("details");
    assert!(details.iter().any(|d| d["type"] == "request"), "{event}");
}

#[test]
fn store_none_records_nothing() {
    let s = Server::start(&["--store", "none"]);
    let (status, headers, oo) = post(&s, "/ServiceRequest", &example(ACCEPTED));
    assert_eq!(status, 200);
    assert!(headers.get("x-consult-id").is_none());
    assert!(consult_ext(&oo).is_empty());
    let (status, _) = get(&s, "/AuditEvent");
    assert_eq!(status, 404);
    assert!(s.log().contains("NOT recorded"), "{}", s.log());
}

/// The 503 a request gets when its consult cannot be committed.
fn assert_store_503(status: u16, headers: &reqwest::header::HeaderMap, oo: &Value) {
    assert_eq!(status, 503, "{oo}");
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["code"], "transient");
    assert!(headers.get("x-consult-id").is_none());
}

/// Every consult id answered can be read back.
fn all_recorded(s: &Server, ids: &[String]) {
    for id in ids {
        let (status, event) = get(s, &format!("/AuditEvent/{id}"));
        assert_eq!(
            status, 200,
            "consult {id} answered but not recorded: {event}"
        );
    }
}

#[test]
fn a_locked_sqlite_file_is_503_then_recovers() {
    let dir = Scratch::new("locked");
    let store = dir.store();
    let s = Server::start(&["--store", &store]);
    let mut answered = Vec::new();
    let (_, h, _) = post(&s, "/ServiceRequest", &example(ACCEPTED));
    answered.push(h["x-consult-id"].to_str().expect("id").to_string());
    // Another process holds the write lock.
    let conn = rusqlite::Connection::open(dir.0.join("store.sqlite")).expect("open");
    conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let (status, headers, oo) = post(&s, "/ServiceRequest", &example(REJECTED));
    assert_store_503(status, &headers, &oo);
    assert_eq!(s.get("/health/ready").status().as_u16(), 503);
    conn.execute_batch("ROLLBACK").expect("unlock");
    drop(conn);
    let (status, h, _) = post(&s, "/ServiceRequest", &example(REJECTED));
    assert_eq!(status, 422);
    answered.push(h["x-consult-id"].to_str().expect("id").to_string());
    assert_eq!(s.get("/health/ready").status().as_u16(), 200);
    all_recorded(&s, &answered);
}

#[test]
fn a_full_sqlite_file_is_503_and_nothing_answered_is_lost() {
    let dir = Scratch::new("full");
    let mut answered = Vec::new();
    // A first consult, which also keeps the rule set (its files: a few hundred KiB); then
    // room for a few dozen more.
    {
        let s = Server::start(&["--store", &dir.store()]);
        let (status, h, _) = post(&s, "/ServiceRequest", &example(ACCEPTED));
        assert_eq!(status, 200);
        answered.push(h["x-consult-id"].to_str().expect("id").to_string());
    }
    let pages: u64 = rusqlite::Connection::open(dir.0.join("store.sqlite"))
        .expect("open")
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("page count");
    let store = format!("{}?max_pages={}", dir.store(), pages + 40);
    let s = Server::start(&["--store", &store]);
    let mut refused = 0;
    for _ in 0..400 {
        let (status, h, oo) = post(&s, "/ServiceRequest", &example(ACCEPTED));
        if status == 503 {
            assert_store_503(status, &h, &oo);
            refused += 1;
            if refused == 3 {
                break;
            }
        } else {
            assert_eq!(status, 200);
            answered.push(h["x-consult-id"].to_str().expect("id").to_string());
        }
    }
    assert_eq!(refused, 3, "the page limit never filled");
    assert!(answered.len() > 1, "some answered before the file filled");
    assert!(s.log().contains("full"), "the log says why");
    // Reading consults is itself recorded, so a full store cannot be read through either:
    // the operator makes room (here: lifts the limit) and every answered consult is there.
    drop(s);
    let s = Server::start(&["--store", &dir.store()]);
    all_recorded(&s, &answered);
}

#[test]
fn a_corrupt_sqlite_file_is_503_until_replaced() {
    let dir = Scratch::new("corrupt");
    let path = dir.0.join("store.sqlite");
    std::fs::write(&path, vec![0x5a; 8192]).expect("garbage");
    let store = dir.store();
    let s = Server::start(&["--store", &store]);
    let (status, headers, oo) = post(&s, "/ServiceRequest", &example(ACCEPTED));
    assert_store_503(status, &headers, &oo);
    assert_eq!(s.get("/health/ready").status().as_u16(), 503);
    assert_eq!(s.get("/health").status().as_u16(), 200, "alive, not ready");
    // The operator moves the bad file away; the gateway starts a new one by itself.
    std::fs::rename(&path, dir.0.join("store.sqlite.bad")).expect("move");
    let (status, h, _) = post(&s, "/ServiceRequest", &example(ACCEPTED));
    assert_eq!(status, 200);
    all_recorded(&s, &[h["x-consult-id"].to_str().expect("id").to_string()]);
}

#[test]
fn postgres_going_away_is_503_then_recovers() {
    let Some(db) = TestDb::create("postgres_going_away_is_503_then_recovers") else {
        return;
    };
    let s = Server::start(&["--store", &db.url]);
    let mut answered = Vec::new();
    let (status, h, _) = post(&s, "/ServiceRequest", &example(ACCEPTED));
    assert_eq!(status, 200);
    answered.push(h["x-consult-id"].to_str().expect("id").to_string());
    db.cut();
    let (status, headers, oo) = post(&s, "/ServiceRequest", &example(REJECTED));
    assert_store_503(status, &headers, &oo);
    assert_eq!(s.get("/health/ready").status().as_u16(), 503);
    db.restore();
    let (status, h, _) = post(&s, "/ServiceRequest", &example(REJECTED));
    assert_eq!(status, 422, "recovered by itself");
    answered.push(h["x-consult-id"].to_str().expect("id").to_string());
    all_recorded(&s, &answered);
}

/// SIGKILL in the middle of load: every consult whose answer was received is in the store
/// when the gateway starts again on it.
fn killed_mid_load_loses_nothing_answered(store: &str) {
    let mut s = Server::start(&["--store", store]);
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let base = s.base.clone();
    let mut workers = Vec::new();
    for w in 0..4 {
        let answered = answered.clone();
        let base = base.clone();
        workers.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let body = example(if w % 2 == 0 { ACCEPTED } else { REJECTED }).to_string();
            for _ in 0..10_000 {
                let Ok(res) = client
                    .post(format!("{base}/ServiceRequest"))
                    .header("content-type", FHIR_JSON)
                    .body(body.clone())
                    .send()
                else {
                    return;
                };
                let id = res
                    .headers()
                    .get("x-consult-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // The answer counts as received once its body is read whole.
                if res.bytes().is_ok() {
                    if let Some(id) = id {
                        answered.lock().expect("lock").push(id);
                    }
                }
            }
        }));
    }
    while answered.lock().expect("lock").len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SIGKILL: no shutdown, no flush.
    let _ = std::process::Command::new("kill")
        .args(["-9", &s.pid().to_string()])
        .status();
    for w in workers {
        let _ = w.join();
    }
    // The signal is delivered asynchronously: give the process a moment to be gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!s.alive(), "SIGKILL did not stop the gateway");
    let answered = answered.lock().expect("lock").clone();
    let s2 = Server::start(&["--store", store]);
    all_recorded(&s2, &answered);
}

#[test]
fn sqlite_kill_9_loses_nothing_answered() {
    let dir = Scratch::new("kill");
    killed_mid_load_loses_nothing_answered(&dir.store());
}

#[test]
fn postgres_kill_9_loses_nothing_answered() {
    let Some(db) = TestDb::create("postgres_kill_9_loses_nothing_answered") else {
        return;
    };
    killed_mid_load_loses_nothing_answered(&db.url);
}

#[test]
fn audit_export_and_purge() {
    let dir = Scratch::new("export");
    let store = dir.store();
    let mut ids = Vec::new();
    {
        let s = Server::start(&["--store", &store]);
        for ex in [ACCEPTED, REJECTED, REDIRECTED] {
            let (_, h, _) = post(&s, "/ServiceRequest", &example(ex));
            ids.push(h["x-consult-id"].to_str().expect("id").to_string());
        }
    }
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
            .arg("audit")
            .args(args)
            .args(["--store", &store])
            .env_remove("REFERRAL_GATEWAY_STORE")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let ndjson = cli(&["export", "--since", "2000-01-01"]);
    let exported: Vec<String> = ndjson
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one AuditEvent per line");
            assert_eq!(v["resourceType"], "AuditEvent");
            v["id"].as_str().expect("id").to_string()
        })
        .collect();
    assert_eq!(exported, ids, "oldest first, every consult once");
    assert!(cli(&["export", "--since", "2100-01-01"]).is_empty());
    let purged = cli(&["purge", "--before", "2100-01-01"]);
    assert!(purged.starts_with("3 consults"), "{purged}");
    assert!(cli(&["export", "--since", "2000-01-01"]).is_empty());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let p = e.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

/// A shadow rule changes nothing for the caller — the answer is the one the gateway gives
/// without the rule at all — and everything in the record: it is listed as shadow-fired, its
/// finding is kept, and `$stats` counts it.
#[test]
fn a_shadow_rule_changes_nothing_for_the_caller_and_everything_in_the_record() {
    let dir = Scratch::new("shadow");
    let shadow = dir.0.join("shadow/rules");
    let without = dir.0.join("without/rules");
    copy_dir(&common::repo().join("rules"), &shadow);
    copy_dir(&common::repo().join("rules"), &without);
    let site = shadow.join("site.toml");
    let text = std::fs::read_to_string(&site).expect("site");
    std::fs::write(&site, format!("{text}US05 = \"shadow\"\n")).expect("write");
    let us05 = std::fs::read_dir(without.join("us"))
        .expect("us")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("US05"))
        })
        .expect("the US05 rule file");
    std::fs::remove_file(us05).expect("remove US05");
    let with_shadow = Server::start(&["--rules", shadow.to_str().expect("path")]);
    let without_rule = Server::start(&["--rules", without.to_str().expect("path")]);
    let enforced = Server::start(&[]);
    let strip = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("extension");
        }
        v
    };
    let (s1, h1, a1) = post(&with_shadow, "/ServiceRequest", &example(REJECTED));
    let (s2, _, a2) = post(&without_rule, "/ServiceRequest", &example(REJECTED));
    let (s3, _, _) = post(&enforced, "/ServiceRequest", &example(REJECTED));
    assert_eq!(s3, 422, "US05 enforced rejects this request");
    assert_eq!(
        (s1, strip(a1.clone())),
        (s2, strip(a2)),
        "shadow = as if the rule did not exist"
    );
    assert!(
        !a1.to_string().contains("US05"),
        "the caller never sees the shadow rule: {a1}"
    );
    // $validate hides it too.
    let (_, _, v) = post(
        &with_shadow,
        "/ServiceRequest/$validate",
        &example(REJECTED),
    );
    assert!(!v.to_string().contains("US05"), "{v}");
    // The record has it.
    let id = h1["x-consult-id"].to_str().expect("id");
    let (_, event) = get(&with_shadow, &format!("/AuditEvent/{id}"));
    let details = event["entity"][0]["detail"].as_array().expect("details");
    assert!(
        details.contains(&json!({"type": "shadow-rule", "valueString": "US05"})),
        "{event}"
    );
    assert!(!details.contains(&json!({"type": "rule", "valueString": "US05"})));
    let outcome = &event["contained"][0];
    assert!(
        outcome
            .to_string()
            .contains("shadow rule, not shown to the caller: US05"),
        "{outcome}"
    );
    let (_, stats) = get(&with_shadow, "/$stats");
    let rule = stats["parameter"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == "rule" && p["part"][0]["valueString"] == "US05")
        .expect("US05 in $stats");
    assert_eq!(rule["part"][1], json!({"name": "fired", "valueInteger": 0}));
    assert_eq!(
        rule["part"][2],
        json!({"name": "shadowFired", "valueInteger": 1})
    );
}

/// `advise`: the rule that would reject only warns, the order is accepted, and the record keeps
/// the rule as fired. `rules list` and `rules lint` show the mode; a mode for no rule is a load
/// error naming the line.
#[test]
fn an_advise_rule_warns_and_the_order_goes_ahead() {
    let dir = Scratch::new("advise");
    let rules = dir.0.join("advise/rules");
    copy_dir(&common::repo().join("rules"), &rules);
    let site = rules.join("site.toml");
    let text = std::fs::read_to_string(&site).expect("site");
    std::fs::write(&site, format!("{text}US05 = \"advise\"\n")).expect("write");
    let s = Server::start(&["--rules", rules.to_str().expect("path")]);
    let (status, h, oo) = post(&s, "/ServiceRequest", &example(REJECTED));
    assert_eq!(status, 200, "advice does not reject: {oo}");
    let us05: Vec<&Value> = oo["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter(|i| i.to_string().contains("US05"))
        .collect();
    assert!(!us05.is_empty(), "the caller is told: {oo}");
    for i in &us05 {
        assert_ne!(i["severity"], "error", "{i}");
    }
    assert!(oo.to_string().contains("advise mode"), "{oo}");
    let id = h["x-consult-id"].to_str().expect("id");
    let (_, event) = get(&s, &format!("/AuditEvent/{id}"));
    let details = event["entity"][0]["detail"].as_array().expect("details");
    assert!(details.contains(&json!({"type": "decision", "valueString": "accepted"})));
    assert!(details.contains(&json!({"type": "rule", "valueString": "US05"})));

    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
            .arg("rules")
            .args(args)
            .args(["--rules", rules.to_str().expect("path")])
            .env_remove("REFERRAL_GATEWAY_RULES")
            .output()
            .expect("run")
    };
    let list = String::from_utf8(cli(&["list"]).stdout).expect("UTF-8");
    assert!(
        list.lines()
            .any(|l| l.starts_with("US05") && l.ends_with("[advise]")),
        "{list}"
    );
    let lint = String::from_utf8(cli(&["lint"]).stdout).expect("UTF-8");
    assert!(lint.contains("rule modes: US05 advise"), "{lint}");
    std::fs::write(&site, format!("{text}NO99 = \"shadow\"\n")).expect("write");
    let bad = cli(&["lint"]);
    assert!(!bad.status.success(), "a mode for no rule fails the lint");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("site.toml") && err.contains("no rule 'NO99'"),
        "{err}"
    );
}

/// The gateway's own AuditEvent search parameters (contract §6) are published as SearchParameter
/// resources, named by the CapabilityStatement, and search what their expressions say: the
/// patient and requesting-organisation entities of the AuditEvent.
#[test]
fn own_search_parameters_are_published_and_search_the_audit_event() {
    let dir = Scratch::new("searchparams");
    let s = Server::start(&["--store", &dir.store()]);
    let (_, capability) = get(&s, "/metadata");
    let audit = capability["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "AuditEvent")
        .expect("AuditEvent in the CapabilityStatement")
        .clone();
    for name in [
        "decision",
        "rule",
        "subject-identifier",
        "requester-organization",
    ] {
        let param = audit["searchParam"]
            .as_array()
            .expect("searchParam")
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} declared"));
        let url = format!("{CANONICAL}/SearchParameter/AuditEvent-{name}");
        assert_eq!(param["definition"], url.as_str());
        let (status, sp) = get(&s, &format!("/SearchParameter/AuditEvent-{name}"));
        assert_eq!(status, 200, "{name}: {sp}");
        assert_eq!(sp["url"], url.as_str());
        assert_eq!(sp["code"], name);
        assert_eq!(sp["base"], json!(["AuditEvent"]));
    }

    // A request naming its patient by NHS number and its requester by ODS code.
    let mut sr = example(ACCEPTED);
    sr["contained"][0]["identifier"] =
        json!([{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}]);
    sr["requester"] = json!({"reference": "#org"});
    sr["contained"]
        .as_array_mut()
        .expect("contained")
        .push(json!({"resourceType": "Organization", "id": "org", "name": "Example Surgery",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y99999"}]}));
    let (status, h, _) = post(&s, "/ServiceRequest", &sr);
    assert_eq!(status, 200);
    let id = h["x-consult-id"].to_str().expect("id").to_string();
    let (status, _, _) = post(&s, "/ServiceRequest", &example(REJECTED));
    assert_eq!(status, 422);

    let (_, event) = get(&s, &format!("/AuditEvent/{id}"));
    let entities = event["entity"].as_array().expect("entities");
    let patient = entities
        .iter()
        .find(|e| e["role"]["code"] == "1")
        .expect("a patient entity (role 1)");
    assert_eq!(patient["what"]["identifier"]["value"], "9000000009");
    assert_eq!(
        patient["what"]["identifier"]["system"],
        "https://fhir.nhs.uk/Id/nhs-number"
    );
    let org = entities
        .iter()
        .find(|e| e["type"]["code"] == "3")
        .expect("an organisation entity (type 3)");
    assert_eq!(org["what"]["identifier"]["value"], "Y99999");

    let found = |query: &str| -> Vec<String> {
        let (status, bundle) = get(&s, &format!("/AuditEvent?{query}"));
        assert_eq!(status, 200, "{query}: {bundle}");
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"]["id"].as_str().expect("id").to_string())
            .collect()
    };
    assert_eq!(
        found("subject-identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009"),
        [id.as_str()]
    );
    assert_eq!(found("requester-organization=Y99999"), [id.as_str()]);
    assert_eq!(found("decision=accepted"), [id]);
    assert!(found("subject-identifier=9000000001").is_empty());
}

/// `check` records nothing unless given `--store`; with it, every decision is a consult in that
/// store (contract §6), its answer names the consult, and `audit export` reads it back.
#[test]
fn check_records_consults_only_with_store() {
    let dir = Scratch::new("check-store");
    let store = dir.store();
    let check = |extra: &[&str]| -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
            .arg("check")
            .args(extra)
            .arg(common::repo().join("examples").join(ACCEPTED))
            .arg(common::repo().join("examples").join(REJECTED))
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("a Bundle of answers")
    };
    let unrecorded = check(&[]);
    assert!(unrecorded["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| consult_ext(&e["resource"]).is_empty()));
    assert!(
        !dir.0.join("store.sqlite").exists(),
        "nothing written without --store"
    );

    let recorded = check(&["--store", &store]);
    let ids: Vec<String> = recorded["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .flat_map(|e| consult_ext(&e["resource"]))
        .collect();
    assert_eq!(ids.len(), 2, "one consult per file: {recorded}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args([
            "audit",
            "export",
            "--since",
            "2000-01-01",
            "--store",
            &store,
        ])
        .env_remove("REFERRAL_GATEWAY_STORE")
        .output()
        .expect("run");
    assert!(out.status.success());
    let exported: Vec<Value> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("AuditEvent"))
        .collect();
    assert_eq!(
        exported
            .iter()
            .map(|e| e["id"].as_str().expect("id"))
            .collect::<Vec<_>>(),
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(exported[0]["outcome"], "0");
    assert_eq!(exported[1]["outcome"], "4");

    // A store that cannot be opened stops `check` before anything is decided.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["check", "--store", "mysql://nowhere"])
        .arg(common::repo().join("examples").join(ACCEPTED))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
