//! The inline gateway (contract §7) end to end, against a real FHIR server as the upstream
//! (Medplum's FHIR router over its in-memory repository, tests/support/fhir-upstream). Faults a
//! real server cannot produce on demand (refused connections, slowness, 5xx) use the TCP
//! stub of tests/common/upstream.rs, and say so.

mod common;

use common::server::{Server, FHIR_JSON};
use common::upstream::{refused_base, Fault, FaultStub, FhirUpstream};
use common::{copy_dir, repo};
use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CONSULT_SYSTEM: &str = "https://referral-gateway.example.org/fhir/consult";

fn example(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(path)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

/// An accepted order with a placer identifier of its own.
fn accepted(placer: &str) -> Value {
    let mut sr = example("xr/xr04-query-zygoma-fracture-accepted.json");
    sr["identifier"] = json!([{
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
        "system": "https://gp.example.org/orders",
        "value": placer
    }]);
    sr
}

/// The gateway in front of `upstream`, with extra flags.
fn gateway(upstream: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--upstream", upstream];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn post(s: &Server, path: &str, body: &Value) -> RequestBuilder {
    s.client
        .post(s.url(path))
        .header("content-type", FHIR_JSON)
        .body(body.to_string())
}

fn json_of(res: Response) -> Value {
    let text = res.text().expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn decision_code(oo: &Value) -> String {
    oo["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn consult_ids(sr: &Value) -> Vec<String> {
    sr["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"] == CONSULT_SYSTEM)
        .filter_map(|i| i["value"].as_str().map(str::to_string))
        .collect()
}

/// An accepted order is created upstream: 201, Location on the gateway (readable back through
/// it), ETag, the created resource with the consult identifier, X-Consult-Id.
#[test]
fn accepted_order_is_created_upstream_and_read_back_through_the_gateway() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let res = post(&gw, "/ServiceRequest", &accepted("ORD-1"))
        .send()
        .expect("POST");
    assert_eq!(res.status(), 201, "{}", gw.log());
    let location = header(&res, "location").expect("Location");
    let etag = header(&res, "etag").expect("ETag");
    let consult = header(&res, "x-consult-id").expect("X-Consult-Id");
    assert!(
        location.starts_with(&format!("{}/ServiceRequest/", gw.base)),
        "Location {location} is not on the gateway {}",
        gw.base
    );
    let created = json_of(res);
    assert_eq!(created["resourceType"], "ServiceRequest");
    let id = created["id"].as_str().expect("id").to_string();
    assert_ne!(id, "xr04-zygoma", "the server assigns the id of a create");
    assert_eq!(
        etag,
        format!(
            "W/\"{}\"",
            created["meta"]["versionId"].as_str().expect("vid")
        )
    );
    assert_eq!(consult_ids(&created), vec![consult.clone()]);
    // What the upstream holds is exactly that one order.
    let held = up.service_requests();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["id"], id.as_str());
    // The Location (a version URL) and the plain read both work through the gateway.
    let back = gw.client.get(&location).send().expect("GET Location");
    assert_eq!(back.status(), 200);
    assert_eq!(json_of(back)["id"], id.as_str());
    let read = gw.get(&format!("/ServiceRequest/{id}"));
    assert_eq!(read.status(), 200);
    assert_eq!(header(&read, "etag").as_deref(), Some(etag.as_str()));
    // The consult records what the upstream answered (contract §6, §7).
    let event = json_of(gw.get(&format!("/AuditEvent/{consult}")));
    let forwarding = event["entity"]
        .as_array()
        .expect("entities")
        .iter()
        .flat_map(|e| e["detail"].as_array().into_iter().flatten())
        .find(|d| d["type"] == "forwarding")
        .unwrap_or_else(|| panic!("no forwarding result in {event}"));
    let result: Value =
        serde_json::from_str(forwarding["valueString"].as_str().expect("text")).expect("JSON");
    assert_eq!(result["forwarded"], true, "{result}");
    assert_eq!(result["status"], 201, "{result}");
    assert!(
        result["location"]
            .as_str()
            .is_some_and(|l| l.contains(&format!("ServiceRequest/{id}"))),
        "{result}"
    );
}

/// The same order sent twice (a caller's retry) is one order upstream: the second answer is
/// the upstream's 200 with the order already there.
#[test]
fn a_resent_order_is_not_created_twice() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let first = post(&gw, "/ServiceRequest", &accepted("ORD-2"))
        .send()
        .expect("POST");
    assert_eq!(first.status(), 201);
    let first_consult = header(&first, "x-consult-id");
    let id = json_of(first)["id"].clone();
    let second = post(&gw, "/ServiceRequest", &accepted("ORD-2"))
        .send()
        .expect("POST");
    assert_eq!(second.status(), 200, "a conditional create that matched");
    // A retry is the same consult (contract §6): the first one's id.
    assert!(first_consult.is_some());
    assert_eq!(header(&second, "x-consult-id"), first_consult);
    assert_eq!(json_of(second)["id"], id);
    assert_eq!(up.service_requests().len(), 1);
    // Another placer identifier is another order.
    let other = post(&gw, "/ServiceRequest", &accepted("ORD-3"))
        .send()
        .expect("POST");
    assert_eq!(other.status(), 201);
    assert_eq!(up.service_requests().len(), 2);
}

/// The caller's own If-None-Exist is the condition when it sends one; without any placer
/// identifier the consult identifier is.
#[test]
fn callers_if_none_exist_and_the_consult_identifier() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let sr = accepted("ORD-4");
    let first = post(&gw, "/ServiceRequest", &sr)
        .header(
            "if-none-exist",
            "identifier=https://gp.example.org/orders|ORD-4",
        )
        .send()
        .expect("POST");
    assert_eq!(first.status(), 201);
    // The caller names an order that exists: nothing new is created, whatever the body.
    let again = post(&gw, "/ServiceRequest", &accepted("ORD-5"))
        .header(
            "if-none-exist",
            "identifier=https://gp.example.org/orders|ORD-4",
        )
        .send()
        .expect("POST");
    assert_eq!(again.status(), 200);
    assert_eq!(up.service_requests().len(), 1);
    // No identifier at all: each POST is its own consult, so its own order.
    let mut bare = example("xr/xr04-query-zygoma-fracture-accepted.json");
    bare.as_object_mut().map(|o| o.remove("identifier"));
    for _ in 0..2 {
        let res = post(&gw, "/ServiceRequest", &bare).send().expect("POST");
        assert_eq!(res.status(), 201);
        let consult = header(&res, "x-consult-id").expect("consult id");
        let created = json_of(res);
        assert_eq!(consult_ids(&created), vec![consult]);
    }
    assert_eq!(up.service_requests().len(), 3);
}

/// Prefer: return=minimal is an empty body; return=OperationOutcome is the gateway's decision;
/// both with the upstream's status and Location.
#[test]
fn prefer_shapes_the_answer() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let minimal = post(&gw, "/ServiceRequest", &accepted("ORD-6"))
        .header("prefer", "return=minimal")
        .send()
        .expect("POST");
    assert_eq!(minimal.status(), 201);
    assert!(header(&minimal, "location").is_some());
    assert!(minimal.text().expect("body").is_empty());
    let oo = post(&gw, "/ServiceRequest", &accepted("ORD-7"))
        .header("prefer", "return=OperationOutcome")
        .send()
        .expect("POST");
    assert_eq!(oo.status(), 201);
    assert!(header(&oo, "location").is_some());
    let oo = json_of(oo);
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(decision_code(&oo), "accepted");
    // Asked for XML, the created resource comes back as XML.
    let xml = post(&gw, "/ServiceRequest", &accepted("ORD-8"))
        .header("accept", "application/fhir+xml")
        .send()
        .expect("POST");
    assert_eq!(xml.status(), 201);
    let xml = xml.text().expect("body");
    assert!(
        xml.contains("<ServiceRequest xmlns=\"http://hl7.org/fhir\""),
        "{xml}"
    );
    assert_eq!(up.service_requests().len(), 3);
}

/// A rejected order is 422 and never reaches the upstream; a redirected one, on a pathway
/// that returns (the default), is today's 200 + redirected ServiceRequest, nothing forwarded.
#[test]
fn rejected_and_returned_redirects_are_not_forwarded() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let rejected = post(
        &gw,
        "/ServiceRequest",
        &example("us/us05-neck-pain-only-coded.json"),
    )
    .send()
    .expect("POST");
    assert_eq!(rejected.status(), 422);
    assert_eq!(decision_code(&json_of(rejected)), "rejected");
    let redirected = post(
        &gw,
        "/ServiceRequest",
        &example("us/us13-suspected-dvt-coded.json"),
    )
    .send()
    .expect("POST");
    assert_eq!(redirected.status(), 200);
    let sr = json_of(redirected);
    assert_eq!(sr["resourceType"], "ServiceRequest");
    assert_eq!(sr["performerType"]["coding"][0]["code"], "dvt-clinic");
    assert!(up.service_requests().is_empty(), "nothing was forwarded");
}

/// Rules whose DVT clinic pathway says `forward = "upstream"`.
fn rules_forwarding_dvt() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!(
            "rg-upstream-rules-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ))
        // In a folder of its own: the gateway checks the examples in the folder beside rules/.
        .join("rules");
    copy_dir(&repo().join("rules"), &dir);
    let site = dir.join("site.toml");
    let text = std::fs::read_to_string(&site).expect("site");
    let marker = "id = \"dvt-clinic\"\n";
    assert!(text.contains(marker));
    std::fs::write(
        &site,
        text.replace(marker, "id = \"dvt-clinic\"\nforward = \"upstream\"\n"),
    )
    .expect("write site");
    dir
}

/// A redirect to a pathway that forwards: the redirected ServiceRequest is created upstream.
#[test]
fn redirect_to_a_forwarding_pathway_is_created_upstream() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let rules = rules_forwarding_dvt();
    let profiles = repo().join("profiles");
    let gw = gateway(
        &up.base,
        &[
            "--rules",
            rules.to_str().expect("path"),
            "--profiles",
            profiles.to_str().expect("path"),
        ],
    );
    let res = post(
        &gw,
        "/ServiceRequest",
        &example("us/us13-suspected-dvt-coded.json"),
    )
    .send()
    .expect("POST");
    assert_eq!(res.status(), 201, "{}", gw.log());
    let location = header(&res, "location").expect("Location");
    assert!(location.starts_with(&gw.base));
    let created = json_of(res);
    assert_eq!(created["status"], "draft");
    assert_eq!(created["performerType"]["coding"][0]["code"], "dvt-clinic");
    let held = up.service_requests();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["performerType"]["coding"][0]["code"], "dvt-clinic");
    // Prefer: return=OperationOutcome gives the gateway's decision: redirected.
    let oo = post(
        &gw,
        "/ServiceRequest",
        &example("us/us13-suspected-dvt-coded.json"),
    )
    .header("prefer", "return=OperationOutcome")
    .send()
    .expect("POST");
    assert_eq!(oo.status(), 201);
    assert_eq!(decision_code(&json_of(oo)), "redirected");
    let _ = std::fs::remove_dir_all(rules);
}

/// Search and history pass through with their links on the gateway; PUT (cancelling an
/// order) and PATCH reach the upstream.
#[test]
fn reads_searches_and_updates_pass_through() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let mut ids = Vec::new();
    for n in 0..3 {
        let res = post(&gw, "/ServiceRequest", &accepted(&format!("ORD-S{n}")))
            .send()
            .expect("POST");
        assert_eq!(res.status(), 201);
        ids.push(json_of(res)["id"].as_str().expect("id").to_string());
    }
    let page = gw.get("/ServiceRequest?_count=2");
    assert_eq!(page.status(), 200);
    let page = json_of(page);
    assert_eq!(page["type"], "searchset");
    assert_eq!(page["total"], 3);
    let next = page["link"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .expect("a next link")
        .to_string();
    assert!(
        next.starts_with(&gw.base),
        "next link {next} is not on the gateway"
    );
    assert!(page["entry"][0]["fullUrl"]
        .as_str()
        .expect("fullUrl")
        .starts_with(&gw.base));
    let rest = json_of(gw.client.get(&next).send().expect("next page"));
    assert_eq!(rest["entry"].as_array().map(Vec::len), Some(1));
    // Search by the placer identifier through the gateway.
    let found = json_of(gw.get("/ServiceRequest?identifier=https://gp.example.org/orders|ORD-S1"));
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], ids[1].as_str());

    // Cancel an order with a PUT of status revoked, then PATCH its note.
    let mut order = json_of(gw.get(&format!("/ServiceRequest/{}", ids[0])));
    order["status"] = json!("revoked");
    let put = gw
        .client
        .put(gw.url(&format!("/ServiceRequest/{}", ids[0])))
        .header("content-type", FHIR_JSON)
        .body(order.to_string())
        .send()
        .expect("PUT");
    assert_eq!(put.status(), 200);
    assert_eq!(json_of(put)["status"], "revoked");
    let patch = gw
        .client
        .patch(gw.url(&format!("/ServiceRequest/{}", ids[0])))
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op":"add","path":"/note","value":[{"text":"cancelled by the GP"}]}]"#)
        .send()
        .expect("PATCH");
    assert_eq!(patch.status(), 200);
    let held = up.get(&format!("/ServiceRequest/{}", ids[0]));
    assert_eq!(held["status"], "revoked");
    assert_eq!(held["note"][0]["text"], "cancelled by the GP");
    // Its history (three versions), through the gateway.
    let history = json_of(gw.get(&format!("/ServiceRequest/{}/_history", ids[0])));
    assert_eq!(history["type"], "history");
    assert_eq!(history["entry"].as_array().map(Vec::len), Some(3));
    let first_version = history["entry"][2]["resource"]["meta"]["versionId"]
        .as_str()
        .expect("vid")
        .to_string();
    let vread = json_of(gw.get(&format!(
        "/ServiceRequest/{}/_history/{first_version}",
        ids[0]
    )));
    assert_eq!(vread["status"], "active");
    // A read of something the upstream does not have is its 404, as FHIR.
    let missing = gw.get("/ServiceRequest/does-not-exist");
    assert_eq!(missing.status(), 404);
    assert_eq!(json_of(missing)["resourceType"], "OperationOutcome");
    // Types site data does not list are not passed through.
    assert_eq!(gw.get("/Patient/1").status(), 404);
}

/// Without --upstream nothing passes through and nothing is forwarded (a decision service).
#[test]
fn without_an_upstream_the_gateway_only_decides() {
    let gw = Server::start(&[]);
    assert_eq!(gw.get("/ServiceRequest/1").status(), 404);
    assert_eq!(gw.get("/ServiceRequest").status(), 405);
    let res = post(&gw, "/ServiceRequest", &accepted("ORD-N"))
        .send()
        .expect("POST");
    assert_eq!(res.status(), 200);
    assert!(header(&res, "location").is_none());
}

/// Start-up refuses an upstream deadline that is not shorter than the request timeout.
#[test]
fn start_up_refuses_an_upstream_deadline_past_the_request_timeout() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args([
            "serve",
            "--store",
            "none",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--upstream-timeout-secs",
            "30",
            "--request-timeout-secs",
            "30",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("upstream-timeout-secs"), "{err}");
}

fn assert_transient(res: Response, status: u16) -> Value {
    assert_eq!(res.status(), status);
    assert!(header(&res, "retry-after").is_some(), "Retry-After");
    let oo = json_of(res);
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["code"], "transient");
    oo
}

/// Refused connections (no server: the stub case) → 502; after 5 failures the breaker opens
/// → 503 at once, and /health and /metrics say so.
#[test]
fn refused_upstream_is_502_then_the_breaker_opens() {
    let gw = gateway(&refused_base(), &["--upstream-timeout-secs", "2"]);
    for _ in 0..5 {
        assert_transient(
            post(&gw, "/ServiceRequest", &accepted("ORD-F"))
                .send()
                .expect("POST"),
            502,
        );
    }
    let started = Instant::now();
    let open = post(&gw, "/ServiceRequest", &accepted("ORD-F"))
        .send()
        .expect("POST");
    assert_transient(open, 503);
    assert!(started.elapsed() < Duration::from_millis(500), "fails fast");
    let health = gw.get("/health");
    assert_eq!(
        health.status(),
        200,
        "the upstream does not change readiness"
    );
    assert!(health
        .text()
        .expect("body")
        .contains("circuit breaker open"));
    let metrics = gw.get("/metrics").text().expect("metrics");
    assert!(metrics.contains("referral_gateway_upstream_breaker_state{state=\"open\"} 1"));
    assert!(metrics.contains("referral_gateway_upstream_calls_total{result=\"unreachable\"} 5"));
    // A rejected order is still answered: the upstream is not needed for it.
    let rejected = post(
        &gw,
        "/ServiceRequest",
        &example("us/us05-neck-pain-only-coded.json"),
    )
    .send()
    .expect("POST");
    assert_eq!(rejected.status(), 422);
}

/// The breaker probes the upstream again after --upstream-breaker-secs and closes.
#[test]
fn the_breaker_probes_back() {
    let stub = FaultStub::start(Fault::Status(503));
    let gw = gateway(
        &stub.base,
        &[
            "--upstream-timeout-secs",
            "2",
            "--upstream-breaker-secs",
            "1",
        ],
    );
    for _ in 0..5 {
        assert_transient(gw.get("/ServiceRequest/x"), 502);
    }
    assert_transient(gw.get("/ServiceRequest/x"), 503);
    // Healthy again (the stub now answers 404: the upstream answers).
    *stub.fault.lock().expect("lock") = Fault::Status(404);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(gw.get("/ServiceRequest/x").status(), 404);
    assert!(gw
        .get("/health")
        .text()
        .expect("body")
        .contains("circuit breaker closed"));
}

/// A 5xx upstream (the stub) → 502; an idempotent call (a conditional create, a read) is tried
/// 1 + 2 times, a PATCH once.
#[test]
fn retries_only_for_idempotent_calls() {
    let stub = FaultStub::start(Fault::Status(500));
    let gw = gateway(&stub.base, &["--upstream-timeout-secs", "5"]);
    assert_transient(
        post(&gw, "/ServiceRequest", &accepted("ORD-R"))
            .send()
            .expect("POST"),
        502,
    );
    assert_eq!(stub.hits(), 3, "a conditional create is retried twice");
    assert_transient(gw.get("/ServiceRequest/1"), 502);
    assert_eq!(stub.hits(), 6);
    let patch = gw
        .client
        .patch(gw.url("/ServiceRequest/1"))
        .header("content-type", "application/json-patch+json")
        .body("[]")
        .send()
        .expect("PATCH");
    assert_transient(patch, 502);
    assert_eq!(stub.hits(), 7, "a PATCH is sent once");
}

/// A slow upstream (the stub) → 504 when the one deadline passes, retries included.
#[test]
fn slow_upstream_is_504_within_the_deadline() {
    let stub = FaultStub::start(Fault::Slow(Duration::from_secs(5)));
    let gw = gateway(&stub.base, &["--upstream-timeout-secs", "1"]);
    let started = Instant::now();
    let oo = assert_transient(
        post(&gw, "/ServiceRequest", &accepted("ORD-T"))
            .send()
            .expect("POST"),
        504,
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(oo["issue"][0]["details"]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("never created twice"));
}

/// A batch: accepted entries go upstream as one batch, the answer merges the upstream's
/// per-entry answers with the gateway's own (rejections, redirects, context) in order.
#[test]
fn batch_merges_upstream_answers_with_rejections_in_order() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let entries: Vec<Value> = [
        accepted("ORD-B1"),
        example("us/us05-neck-pain-only-coded.json"),
        accepted("ORD-B2"),
        example("us/us13-suspected-dvt-coded.json"),
    ]
    .into_iter()
    .map(|r| json!({"resource": r, "request": {"method": "POST", "url": "ServiceRequest"}}))
    .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
    let res = post(&gw, "/", &bundle).send().expect("POST");
    assert_eq!(res.status(), 200, "{}", gw.log());
    let b = json_of(res);
    assert_eq!(b["type"], "batch-response");
    let status = |i: usize| {
        b["entry"][i]["response"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(status(0).starts_with("201"), "{}", status(0));
    assert!(status(1).starts_with("422"), "{}", status(1));
    assert!(status(2).starts_with("201"), "{}", status(2));
    assert!(status(3).starts_with("200"), "{}", status(3));
    assert_eq!(
        b["entry"][3]["resource"]["performerType"]["coding"][0]["code"],
        "dvt-clinic"
    );
    let loc = b["entry"][0]["response"]["location"]
        .as_str()
        .expect("location");
    assert!(loc.starts_with(&gw.base), "{loc}");
    assert_eq!(
        decision_code(&b["entry"][0]["response"]["outcome"]),
        "accepted"
    );
    assert_eq!(gw.client.get(loc).send().expect("GET").status(), 200);
    let held = up.service_requests();
    assert_eq!(held.len(), 2);
    // Sent again: nothing new upstream.
    let again = post(&gw, "/", &bundle).send().expect("POST");
    assert_eq!(again.status(), 200);
    assert_eq!(up.service_requests().len(), 2);
}

/// A transaction: any rejected entry → 422 and nothing upstream; else one upstream
/// transaction; the upstream failing it commits nothing.
#[test]
fn transaction_is_all_or_nothing_across_gateway_and_upstream() {
    let Some(up) = FhirUpstream::start() else {
        return;
    };
    let gw = gateway(&up.base, &[]);
    let tx = |resources: Vec<Value>| json!({"resourceType": "Bundle", "type": "transaction", "entry": resources.into_iter().map(|r| json!({"resource": r, "request": {"method": "POST", "url": "ServiceRequest"}})).collect::<Vec<_>>()});
    let with_rejected = tx(vec![
        accepted("ORD-T1"),
        example("us/us05-neck-pain-only-coded.json"),
    ]);
    let res = post(&gw, "/", &with_rejected).send().expect("POST");
    assert_eq!(res.status(), 422);
    assert!(up.service_requests().is_empty());

    let good = tx(vec![accepted("ORD-T2"), accepted("ORD-T3")]);
    let res = post(&gw, "/", &good).send().expect("POST");
    assert_eq!(res.status(), 200, "{}", gw.log());
    let b = json_of(res);
    assert_eq!(b["type"], "transaction-response");
    assert_eq!(up.service_requests().len(), 2);

    // Two orders already upstream share a condition; a transaction that names it fails
    // upstream (412: more than one match), and its other, new order is not committed.
    let dup = |v: &str| {
        let mut sr = accepted(v);
        sr["identifier"]
            .as_array_mut()
            .expect("ids")
            .push(json!({"system": "https://gp.example.org/episode", "value": "EP-1"}));
        sr
    };
    for v in ["ORD-D1", "ORD-D2"] {
        assert_eq!(
            post(&gw, "/ServiceRequest", &dup(v))
                .send()
                .expect("POST")
                .status(),
            201
        );
    }
    let before = up.service_requests().len();
    let mut failing = tx(vec![accepted("ORD-T4"), accepted("ORD-T5")]);
    failing["entry"][1]["request"]["ifNoneExist"] =
        json!("identifier=https://gp.example.org/episode|EP-1");
    let res = post(&gw, "/", &failing).send().expect("POST");
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(
        up.service_requests().len(),
        before,
        "nothing of the failed transaction was committed"
    );
}

/// The CapabilityStatement declares create and the passthrough reads only with an upstream.
#[test]
fn capability_statement_declares_what_the_upstream_adds() {
    let codes = |s: &Server| -> Vec<String> {
        let cs = json_of(s.get("/metadata"));
        cs["rest"][0]["resource"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["type"] == "ServiceRequest")
            .expect("ServiceRequest")["interaction"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i["code"].as_str().map(str::to_string))
            .collect()
    };
    let with = gateway(&refused_base(), &[]);
    let c = codes(&with);
    for code in [
        "create",
        "read",
        "vread",
        "history-instance",
        "search-type",
        "update",
        "patch",
    ] {
        assert!(c.iter().any(|x| x == code), "{code} in {c:?}");
    }
    let without = Server::start(&[]);
    let c = codes(&without);
    assert!(!c.iter().any(|x| x == "read" || x == "create"), "{c:?}");
}

/// A client key pair made by Node's crypto (`keygen.js`): `(private.pem, public.pem)`.
fn client_keys(kind: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "rg-keys-{kind}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let status = std::process::Command::new("node")
        .arg(repo().join("tests/support/fhir-upstream/keygen.js"))
        .arg(&dir)
        .arg(kind)
        .status()
        .expect("node keygen.js");
    assert!(status.success());
    (dir.join("private.pem"), dir.join("public.pem"))
}

/// A static bearer token: the upstream refuses the gateway without it (502, the caller cannot
/// cure that), serves it with it; the token never appears in the log.
#[test]
fn static_token_reaches_the_upstream() {
    let Some(up) = FhirUpstream::start_with(&["--static-token", "s3cret-token-value"]) else {
        return;
    };
    let without = gateway(&up.base, &[]);
    assert_transient(
        post(&without, "/ServiceRequest", &accepted("ORD-A1"))
            .send()
            .expect("POST"),
        502,
    );
    let with = gateway(&up.base, &["--upstream-token", "s3cret-token-value"]);
    let res = post(&with, "/ServiceRequest", &accepted("ORD-A1"))
        .send()
        .expect("POST");
    assert_eq!(res.status(), 201, "{}", with.log());
    assert_eq!(with.get("/ServiceRequest?_count=5").status(), 200);
    assert!(!with.log().contains("s3cret-token-value"));
}

/// SMART Backend Services with an RS384 and an ES384 client assertion, verified by the
/// upstream's token endpoint (Node's crypto): one token serves many calls; when the upstream
/// forgets it (401), the gateway fetches a new one once and the call succeeds.
#[test]
fn smart_backend_services_client_credentials() {
    for kind in ["rsa", "ec"] {
        let Some(probe) = FhirUpstream::start() else {
            return;
        };
        drop(probe);
        let (private, public) = client_keys(kind);
        let up = FhirUpstream::start_with(&[
            "--client-id",
            "referral-gateway",
            "--client-public-key",
            public.to_str().expect("path"),
        ])
        .expect("upstream");
        let token_url = format!("{}/auth/token", up.base);
        let gw = gateway(
            &up.base,
            &[
                "--upstream-client-id",
                "referral-gateway",
                "--upstream-key",
                private.to_str().expect("path"),
                "--upstream-token-url",
                &token_url,
            ],
        );
        for n in 0..3 {
            let res = post(
                &gw,
                "/ServiceRequest",
                &accepted(&format!("ORD-{kind}-{n}")),
            )
            .send()
            .expect("POST");
            assert_eq!(res.status(), 201, "{kind}: {}", gw.log());
        }
        assert_eq!(
            up.get("/auth/stats")["issued"],
            1,
            "{kind}: the token is cached"
        );
        let revoked = up
            .client
            .post(format!("{}/auth/revoke", up.base))
            .send()
            .expect("revoke");
        assert_eq!(revoked.status(), 200);
        let res = post(&gw, "/ServiceRequest", &accepted(&format!("ORD-{kind}-x")))
            .send()
            .expect("POST");
        assert_eq!(res.status(), 201, "{kind}: refreshed after a 401");
        assert_eq!(up.get("/auth/stats")["issued"], 2);
        // The upstream now wants a token: count through the gateway, which has one.
        let held = |gw: &Server| json_of(gw.get("/ServiceRequest?_count=100"))["total"].clone();
        assert_eq!(held(&gw), 4, "{kind}: nothing duplicated");

        // A client the upstream does not know gets no token: 502, nothing created.
        let stranger = gateway(
            &up.base,
            &[
                "--upstream-client-id",
                "someone-else",
                "--upstream-key",
                private.to_str().expect("path"),
                "--upstream-token-url",
                &token_url,
            ],
        );
        assert_transient(
            post(&stranger, "/ServiceRequest", &accepted("ORD-Z"))
                .send()
                .expect("POST"),
            502,
        );
        assert_eq!(held(&gw), 4);
        let _ = std::fs::remove_dir_all(private.parent().expect("dir"));
    }
}

/// The same client key given as a JWK (RSA and EC P-384, as Node's crypto exports them): the
/// upstream's token endpoint verifies the assertion against the public PEM, and the assertion
/// carries the JWK's `kid` unless `--upstream-key-id` says otherwise. A JWK Set of one private
/// key serves as well.
#[test]
fn smart_backend_services_with_a_jwk_key() {
    for kind in ["rsa", "ec"] {
        let Some(probe) = FhirUpstream::start() else {
            return;
        };
        drop(probe);
        let (private, public) = client_keys(kind);
        let jwk_path = private.with_file_name("private.jwk");
        let jwk: Value =
            serde_json::from_str(&std::fs::read_to_string(&jwk_path).expect("jwk")).expect("JSON");
        assert_eq!(jwk["kty"], if kind == "rsa" { "RSA" } else { "EC" });
        let set_path = private.with_file_name("private-set.jwks");
        let mut public_only = jwk.clone();
        for k in ["d", "p", "q", "dp", "dq", "qi"] {
            public_only.as_object_mut().map(|o| o.remove(k));
        }
        public_only["kid"] = json!("another-public-key");
        std::fs::write(&set_path, json!({"keys": [public_only, jwk]}).to_string())
            .expect("write the set");
        let up = FhirUpstream::start_with(&[
            "--client-id",
            "referral-gateway",
            "--client-public-key",
            public.to_str().expect("path"),
        ])
        .expect("upstream");
        let token_url = format!("{}/auth/token", up.base);
        let smart = |key: &std::path::Path, extra: &[&str]| {
            let mut args = vec![
                "--upstream-client-id",
                "referral-gateway",
                "--upstream-key",
                key.to_str().expect("path"),
                "--upstream-token-url",
                &token_url,
            ];
            args.extend_from_slice(extra);
            gateway(&up.base, &args)
        };
        let cases: [(&std::path::Path, &[&str], String); 3] = [
            (&jwk_path, &[], format!("{kind}-client-key")),
            (
                &jwk_path,
                &["--upstream-key-id", "registered-kid"],
                "registered-kid".into(),
            ),
            (&set_path, &[], format!("{kind}-client-key")),
        ];
        for (n, (key, extra, kid)) in cases.iter().enumerate() {
            let gw = smart(key, extra);
            let res = post(
                &gw,
                "/ServiceRequest",
                &accepted(&format!("ORD-J{kind}-{n}")),
            )
            .send()
            .expect("POST");
            assert_eq!(res.status(), 201, "{kind} {}: {}", key.display(), gw.log());
            let stats = up.get("/auth/stats");
            assert_eq!(stats["issued"], n + 1, "{kind}: one token per gateway");
            assert_eq!(stats["lastKid"], kid.as_str(), "{kind}: {stats}");
        }
        let _ = std::fs::remove_dir_all(private.parent().expect("dir"));
    }
}

/// Start-up refuses a JWK it cannot sign with (another curve; a public key only), saying why.
#[test]
fn start_up_refuses_an_unusable_jwk() {
    let dir = std::env::temp_dir().join(format!("rg-badjwk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cases = [
        (
            json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}),
            "P-384",
        ),
        (json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}), "\"d\""),
        (
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB", "p": "AQ", "q": "AQ", "dp": "AQ", "dq": "AQ", "qi": "AQ"}),
            "RS384",
        ),
    ];
    for (n, (jwk, said)) in cases.iter().enumerate() {
        let key = dir.join(format!("key-{n}.jwk"));
        std::fs::write(&key, jwk.to_string()).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
            .args(["serve", "--store", "none", "--listen", "127.0.0.1:0"])
            .args(["--upstream", "http://127.0.0.1:9"])
            .args(["--upstream-client-id", "c"])
            .args(["--upstream-token-url", "http://127.0.0.1:9/t"])
            .arg("--upstream-key")
            .arg(&key)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{jwk}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(said), "{jwk}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Start-up refuses a key that cannot sign RS384 or ES384.
#[test]
fn start_up_refuses_an_unusable_key() {
    let dir = std::env::temp_dir().join(format!("rg-badkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args([
            "serve",
            "--store",
            "none",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
        ])
        .args([
            "--upstream-client-id",
            "c",
            "--upstream-token-url",
            "http://127.0.0.1:9/t",
        ])
        .arg("--upstream-key")
        .arg(&key)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RS384"));
    let _ = std::fs::remove_dir_all(dir);
}
