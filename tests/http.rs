//! The HTTP gateway end to end (contract §4): each test starts the real binary with
//! `serve --listen 127.0.0.1:0` (`common::server::Server`, with its own consult store), reads
//! the bound address from its first line on stdout, and talks to it over loopback. The server
//! is killed when the test's `Server` is dropped.

mod common;

use common::server::{Server, FHIR_JSON, FHIR_XML};
use common::{copy_dir, repo};
use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

/// Examples with a known decision (each is one rule's own example).
const REJECTED: &str = "us/us05-neck-pain-only-coded.json";
const REDIRECTED: &str = "us/us13-calf-swelling-query-dvt.json";
const ACCEPTED: &str = "general/gen01-cxr-with-clinical-question.json";

/// A scratch folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rg-http-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Status, headers and JSON body of a response.
fn read(res: Response) -> (u16, HeaderMap, Value) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
    (status, headers, body)
}

fn content_type(h: &HeaderMap) -> &str {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The decision code of an OperationOutcome (the issue whose coding is a referral-decision).
fn decision(oo: &Value) -> Option<String> {
    oo["issue"].as_array()?.iter().find_map(|i| {
        let c = &i["details"]["coding"][0];
        c["system"]
            .as_str()?
            .ends_with("/CodeSystem/referral-decision")
            .then(|| c["code"].as_str().map(str::to_string))?
    })
}

fn rule_ids(oo: &Value) -> Vec<String> {
    oo["issue"]
        .as_array()
        .map(|is| {
            is.iter()
                .filter_map(|i| {
                    let c = &i["details"]["coding"][0];
                    c["system"]
                        .as_str()?
                        .ends_with("/CodeSystem/guidance-rule")
                        .then(|| c["code"].as_str().map(str::to_string))?
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_outcome(body: &Value, code: &str) {
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    let codes: Vec<&str> = body["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert!(codes.contains(&code), "no issue of code {code}: {body}");
}

fn bundle(kind: &str, examples: &[&str]) -> Value {
    let entries: Vec<Value> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{i:012}"),
                "resource": example(e),
                "request": { "method": "POST", "url": "ServiceRequest" }
            })
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": kind, "entry": entries })
}

#[test]
fn accepted_service_request_gets_200_operation_outcome() {
    let s = Server::start(&[]);
    let (status, headers, body) = read(s.post_json("/ServiceRequest", &example(ACCEPTED)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        content_type(&headers),
        "application/fhir+json; charset=utf-8"
    );
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(decision(&body).as_deref(), Some("accepted"));
    assert_eq!(body["issue"][0]["severity"], "information");
}

#[test]
fn redirected_service_request_gets_200_redirected_service_request() {
    let s = Server::start(&[]);
    let original = example(REDIRECTED);
    let (status, _, body) = read(s.post_json("/ServiceRequest", &original));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resourceType"], "ServiceRequest");
    assert_eq!(body["status"], "draft");
    assert_ne!(body["id"], original["id"]);
    assert_eq!(body["meta"]["tag"][0]["code"], "redirected");
    assert_eq!(body["performerType"]["coding"][0]["code"], "dvt-clinic");
}

#[test]
fn rejected_service_request_gets_422_with_the_rule() {
    let s = Server::start(&[]);
    let (status, _, body) = read(s.post_json("/ServiceRequest", &example(REJECTED)));
    assert_eq!(status, 422, "{body}");
    assert_eq!(decision(&body).as_deref(), Some("rejected"));
    assert_eq!(rule_ids(&body), ["US05"]);
    assert_outcome(&body, "business-rule");
}

#[test]
fn malformed_json_gets_400_with_line_and_column() {
    let s = Server::start(&[]);
    let (status, _, body) = read(s.post(
        "/ServiceRequest",
        Some(FHIR_JSON),
        "{\n  \"resourceType\": \"ServiceRequest\",\n  \"status\": }",
    ));
    assert_eq!(status, 400, "{body}");
    assert_outcome(&body, "structure");
    let issue = body["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .find(|i| i["code"] == "structure")
        .expect("structure issue");
    let ext = |url: &str| {
        issue["extension"]
            .as_array()
            .expect("extensions")
            .iter()
            .find(|e| e["url"].as_str().is_some_and(|u| u.ends_with(url)))
            .map(|e| e["valueInteger"].clone())
    };
    assert_eq!(ext("operationoutcome-issue-line"), Some(json!(3)));
    assert_eq!(ext("operationoutcome-issue-col"), Some(json!(13)));

    // Not FHIR at all, and no Content-Type to go by.
    let (status, _, body) = read(s.post("/ServiceRequest", None, "hello"));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    // An empty body.
    let (status, _, body) = read(s.post("/", Some(FHIR_JSON), ""));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn wrong_resource_type_for_the_endpoint_gets_400() {
    let s = Server::start(&[]);
    let batch = bundle("batch", &[ACCEPTED]);
    let (status, _, body) = read(s.post_json("/ServiceRequest", &batch));
    assert_eq!(status, 400, "{body}");
    assert_outcome(&body, "invalid");
    assert_eq!(body["issue"][1]["expression"][0], "Bundle");

    let (status, _, body) = read(s.post_json("/", &example(ACCEPTED)));
    assert_eq!(status, 400, "{body}");
    assert_outcome(&body, "invalid");

    let params = json!({
        "resourceType": "Parameters",
        "parameter": [{ "name": "resource", "resource": example(ACCEPTED) }]
    });
    let (status, _, body) = read(s.post_json("/ServiceRequest", &params));
    assert_eq!(status, 400, "{body}");

    // A resource the gateway does not check at all.
    let patient = json!({ "resourceType": "Patient", "id": "p" });
    let (status, _, body) = read(s.post_json("/ServiceRequest", &patient));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn unsupported_media_types_get_415() {
    let s = Server::start(&[]);
    let body = example(ACCEPTED).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/fhir+json; charset=iso-8859-1",
    ] {
        let (status, headers, oo) = read(s.post("/ServiceRequest", Some(ct), body.clone()));
        assert_eq!(status, 415, "{ct}: {oo}");
        assert_eq!(
            content_type(&headers),
            "application/fhir+json; charset=utf-8"
        );
        assert_outcome(&oo, "not-supported");
    }
    // Accepted spellings.
    for ct in [
        "application/json",
        "application/fhir+json; charset=UTF-8",
        "application/fhir+json; fhirVersion=4.0",
    ] {
        let res = s.post("/ServiceRequest", Some(ct), body.clone());
        assert_eq!(res.status().as_u16(), 200, "{ct}");
    }
}

#[test]
fn body_over_the_limit_gets_413_operation_outcome() {
    let s = Server::start(&["--max-body-bytes", "600"]);
    let body = example(ACCEPTED).to_string();
    assert!(body.len() > 600);
    // With a Content-Length: refused by the body-limit layer before it is read.
    let (status, headers, oo) = read(s.post("/ServiceRequest", Some(FHIR_JSON), body.clone()));
    assert_eq!(status, 413, "{oo}");
    assert_eq!(
        content_type(&headers),
        "application/fhir+json; charset=utf-8"
    );
    assert_outcome(&oo, "too-costly");
    assert!(headers.contains_key("x-request-id"));
    // Chunked, no Content-Length: cut off while it is read.
    let chunked = reqwest::blocking::Body::new(std::io::Cursor::new(body.into_bytes()));
    let res = s
        .client
        .post(s.url("/ServiceRequest"))
        .header(CONTENT_TYPE, FHIR_JSON)
        .body(chunked)
        .send()
        .expect("POST");
    let (status, _, oo) = read(res);
    assert_eq!(status, 413, "{oo}");
    assert_outcome(&oo, "too-costly");
    // The server is still there.
    assert_eq!(s.get("/health").status().as_u16(), 200);
}

#[test]
fn bundle_over_the_entry_or_depth_limit_gets_413() {
    let s = Server::start(&["--max-bundle-entries", "2", "--max-depth", "12"]);
    let (status, _, body) =
        read(s.post_json("/", &bundle("batch", &[ACCEPTED, ACCEPTED, REJECTED])));
    assert_eq!(status, 413, "{body}");
    assert_outcome(&body, "too-costly");
    let (status, _, body) = read(s.post_json("/", &bundle("batch", &[ACCEPTED, REJECTED])));
    assert_eq!(status, 200, "{body}");

    let mut deep = json!("x");
    for _ in 0..20 {
        deep = json!({ "extension": [deep] });
    }
    let mut sr = example(ACCEPTED);
    sr["code"]["extension"] = json!([{ "url": "http://example.org/deep", "extension": [deep] }]);
    let (status, _, body) = read(s.post_json("/ServiceRequest", &sr));
    assert_eq!(status, 413, "{body}");
    assert_outcome(&body, "too-costly");
}

#[test]
fn unknown_path_gets_404_and_wrong_method_405() {
    let s = Server::start(&[]);
    let (status, headers, body) = read(s.get("/Patient/123"));
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        content_type(&headers),
        "application/fhir+json; charset=utf-8"
    );
    assert_outcome(&body, "not-found");
    let (status, _, body) = read(s.post_json("/Patient", &json!({"resourceType": "Patient"})));
    assert_eq!(status, 404, "{body}");

    for (method, path) in [
        (reqwest::Method::GET, "/ServiceRequest"),
        (reqwest::Method::DELETE, "/ServiceRequest"),
        (reqwest::Method::GET, "/"),
        (reqwest::Method::PUT, "/$validate"),
        (reqwest::Method::POST, "/metadata"),
    ] {
        let res = s
            .client
            .request(method.clone(), s.url(path))
            .send()
            .expect("send");
        let allow = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (status, _, body) = read(res);
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_outcome(&body, "not-supported");
        assert!(!allow.is_empty(), "{method} {path}: no Allow header");
    }
}

#[test]
fn batch_answers_each_entry_with_its_own_decision() {
    let s = Server::start(&[]);
    let (status, _, body) =
        read(s.post_json("/", &bundle("batch", &[REJECTED, REDIRECTED, ACCEPTED])));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resourceType"], "Bundle");
    assert_eq!(body["type"], "batch-response");
    let entries = body["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["response"]["status"], "422 Unprocessable Entity");
    assert_eq!(
        decision(&entries[0]["response"]["outcome"]).as_deref(),
        Some("rejected")
    );
    assert_eq!(rule_ids(&entries[0]["response"]["outcome"]), ["US05"]);
    assert_eq!(entries[1]["response"]["status"], "200 OK");
    assert_eq!(
        decision(&entries[1]["response"]["outcome"]).as_deref(),
        Some("redirected")
    );
    assert_eq!(entries[1]["resource"]["resourceType"], "ServiceRequest");
    assert_eq!(
        entries[1]["resource"]["performerType"]["coding"][0]["code"],
        "dvt-clinic"
    );
    assert_eq!(entries[2]["response"]["status"], "200 OK");
    assert_eq!(
        decision(&entries[2]["response"]["outcome"]).as_deref(),
        Some("accepted")
    );
    assert!(entries[2].get("resource").is_none());

    // A collection Bundle with its context resources (the patient's age comes from it).
    let (status, _, body) =
        read(s.post_json("/", &example("us/us14-haematuria-age-45-bundle.json")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entry"].as_array().map(Vec::len), Some(4));
}

#[test]
fn transaction_is_all_or_nothing() {
    let s = Server::start(&[]);
    let (status, _, body) = read(s.post_json("/", &bundle("transaction", &[ACCEPTED, REJECTED])));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(decision(&body).as_deref(), Some("rejected"));
    assert_eq!(rule_ids(&body), ["US05"]);
    let expressions: Vec<&str> = body["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .flat_map(|i| i["expression"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(
        expressions.iter().any(|e| e.starts_with("Bundle.entry[1]")),
        "{expressions:?}"
    );
    assert!(
        !expressions.iter().any(|e| e.starts_with("Bundle.entry[0]")),
        "{expressions:?}"
    );

    let (status, _, body) = read(s.post_json("/", &bundle("transaction", &[ACCEPTED, REDIRECTED])));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "transaction-response");
    assert_eq!(
        body["entry"][1]["resource"]["resourceType"],
        "ServiceRequest"
    );
}

#[test]
fn validate_answers_200_whatever_the_decision() {
    let s = Server::start(&[]);
    for path in ["/ServiceRequest/$validate", "/$validate"] {
        let (status, _, body) = read(s.post_json(path, &example(REJECTED)));
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(decision(&body).as_deref(), Some("rejected"));
        assert_eq!(rule_ids(&body), ["US05"]);
    }
    let params = json!({
        "resourceType": "Parameters",
        "parameter": [{ "name": "resource", "resource": example(REDIRECTED) }]
    });
    let (status, _, body) = read(s.post_json("/ServiceRequest/$validate", &params));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(decision(&body).as_deref(), Some("redirected"));

    let (status, _, body) =
        read(s.post_json("/$validate", &bundle("transaction", &[ACCEPTED, REJECTED])));
    assert_eq!(status, 200, "{body}");
    let decisions: Vec<String> = body["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| {
            let c = &i["details"]["coding"][0];
            c["system"]
                .as_str()?
                .ends_with("referral-decision")
                .then(|| c["code"].as_str().map(str::to_string))?
        })
        .collect();
    assert_eq!(decisions, ["accepted", "rejected"]);
    // Unusable input is still 400.
    let (status, _, _) = read(s.post("/$validate", Some(FHIR_JSON), "{"));
    assert_eq!(status, 400);
}

#[test]
fn xml_in_and_out() {
    let s = Server::start(&[]);
    let xml = fhir_codec::json_to_xml(&example(REJECTED)).expect("to XML");

    // XML in: the answer follows the request's format.
    let res = s.post("/ServiceRequest", Some(FHIR_XML), xml.clone());
    assert_eq!(res.status().as_u16(), 422);
    assert_eq!(
        content_type(res.headers()),
        "application/fhir+xml; charset=utf-8"
    );
    let text = res.text().expect("body");
    let oo = fhir_codec::xml_to_json(&text).expect("FHIR XML answer");
    assert_eq!(rule_ids(&oo), ["US05"]);

    // No Content-Type: sniffed as XML.
    let res = s.post("/ServiceRequest", None, xml.clone());
    assert_eq!(res.status().as_u16(), 422);
    assert_eq!(
        content_type(res.headers()),
        "application/fhir+xml; charset=utf-8"
    );

    // XML in, JSON out by _format; and by Accept.
    let (status, headers, body) = read(s.post(
        "/ServiceRequest?_format=json",
        Some("application/xml"),
        xml.clone(),
    ));
    assert_eq!(status, 422);
    assert_eq!(
        content_type(&headers),
        "application/fhir+json; charset=utf-8"
    );
    assert_eq!(rule_ids(&body), ["US05"]);
    let res = s
        .client
        .post(s.url("/ServiceRequest"))
        .header(CONTENT_TYPE, FHIR_XML)
        .header("accept", "application/fhir+json")
        .body(xml)
        .send()
        .expect("POST");
    assert_eq!(
        content_type(res.headers()),
        "application/fhir+json; charset=utf-8"
    );

    // JSON in, XML out: a redirected ServiceRequest, and a batch-response.
    let res = s
        .client
        .post(s.url("/ServiceRequest"))
        .header(CONTENT_TYPE, FHIR_JSON)
        .header("accept", "application/fhir+xml")
        .body(example(REDIRECTED).to_string())
        .send()
        .expect("POST");
    assert_eq!(res.status().as_u16(), 200);
    let sr = fhir_codec::xml_to_json(&res.text().expect("body")).expect("XML");
    assert_eq!(sr["resourceType"], "ServiceRequest");
    assert_eq!(sr["performerType"]["coding"][0]["code"], "dvt-clinic");
    let res = s.post(
        "/?_format=application/fhir%2Bxml",
        Some(FHIR_JSON),
        bundle("batch", &[REJECTED, ACCEPTED]).to_string(),
    );
    assert_eq!(res.status().as_u16(), 200);
    let b = fhir_codec::xml_to_json(&res.text().expect("body")).expect("XML");
    assert_eq!(b["type"], "batch-response");

    // Errors follow the negotiation too.
    let res = s
        .client
        .get(s.url("/nowhere?_format=xml"))
        .send()
        .expect("GET");
    assert_eq!(res.status().as_u16(), 404);
    let oo = fhir_codec::xml_to_json(&res.text().expect("body")).expect("XML");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    // Malformed XML: 400 with line and column, in XML.
    let res = s.post("/ServiceRequest", Some(FHIR_XML), "<ServiceRequest xmlns=\"http://hl7.org/fhir\">\n<status value=\"active\">\n</ServiceRequest>");
    assert_eq!(res.status().as_u16(), 400);
    let oo = fhir_codec::xml_to_json(&res.text().expect("body")).expect("XML");
    assert!(
        oo["issue"]
            .to_string()
            .contains("operationoutcome-issue-line"),
        "{oo}"
    );

    // A format nobody can have.
    let (status, headers, body) = read(s.post(
        "/ServiceRequest?_format=yaml",
        Some(FHIR_JSON),
        example(ACCEPTED).to_string(),
    ));
    assert_eq!(status, 406, "{body}");
    assert_eq!(
        content_type(&headers),
        "application/fhir+json; charset=utf-8"
    );
    assert_outcome(&body, "not-supported");
}

#[test]
fn request_id_is_echoed_or_generated_and_logged() {
    let s = Server::start(&["--log-format", "json"]);
    let res = s
        .client
        .post(s.url("/ServiceRequest"))
        .header(CONTENT_TYPE, FHIR_JSON)
        .header("x-request-id", "test-req-0001")
        .body(example(REJECTED).to_string())
        .send()
        .expect("POST");
    assert_eq!(res.headers()["x-request-id"], "test-req-0001");
    let res = s.get("/nowhere");
    let generated = res.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert_eq!(generated.len(), 36, "{generated}");
    let res = s.post("/ServiceRequest", Some("text/plain"), "x");
    assert!(res.headers().contains_key("x-request-id"));

    // The log line of the response carries the request id, the decision and the rule ids,
    // and no patient data.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let log = s.log();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("test-req-0001") && l.contains("finished processing request"))
        {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no response log line:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let v: Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["span"]["request_id"], "test-req-0001");
    assert_eq!(v["span"]["decision"], "rejected");
    assert_eq!(v["span"]["rules"], "US05");
    assert_eq!(v["span"]["path"], "/ServiceRequest");
    assert_eq!(v["fields"]["status"], 422);
    let log = s.log();
    assert!(log.contains(&generated), "generated id not logged");
    for private in ["Ash", "1988-01-25", "Neck pain"] {
        assert!(
            !log.contains(private),
            "patient data `{private}` in the log:\n{log}"
        );
    }
}

#[test]
fn metrics_count_decisions_statuses_and_rule_hits() {
    let s = Server::start(&[]);
    for _ in 0..2 {
        s.post_json("/ServiceRequest", &example(REJECTED));
    }
    s.post_json("/ServiceRequest", &example(ACCEPTED));
    s.post_json("/", &bundle("batch", &[REJECTED, REDIRECTED]));
    s.post("/ServiceRequest", Some("text/plain"), "x");
    let res = s.get("/metrics");
    assert_eq!(res.status().as_u16(), 200);
    assert!(content_type(res.headers()).starts_with("text/plain; version=0.0.4"));
    let m = res.text().expect("metrics");
    for line in [
        "referral_gateway_http_requests_total{method=\"POST\",route=\"/ServiceRequest\",status=\"422\"} 2",
        "referral_gateway_http_requests_total{method=\"POST\",route=\"/ServiceRequest\",status=\"200\"} 1",
        "referral_gateway_http_requests_total{method=\"POST\",route=\"/ServiceRequest\",status=\"415\"} 1",
        "referral_gateway_http_requests_total{method=\"POST\",route=\"/\",status=\"200\"} 1",
        "referral_gateway_decisions_total{route=\"/ServiceRequest\",decision=\"rejected\",status=\"422\"} 2",
        "referral_gateway_decisions_total{route=\"/ServiceRequest\",decision=\"accepted\",status=\"200\"} 1",
        "referral_gateway_decisions_total{route=\"/\",decision=\"rejected\",status=\"422\"} 1",
        "referral_gateway_decisions_total{route=\"/\",decision=\"redirected\",status=\"200\"} 1",
        "referral_gateway_rule_hits_total{rule=\"US05\"} 3",
        "referral_gateway_request_duration_seconds_count{route=\"/ServiceRequest\"} 4",
        "referral_gateway_request_duration_seconds_bucket{route=\"/ServiceRequest\",le=\"+Inf\"} 4",
        "referral_gateway_rules_loaded 26",
    ] {
        assert!(m.lines().any(|l| l == line), "missing `{line}` in\n{m}");
    }
    assert!(
        m.contains("referral_gateway_rule_hits_total{rule=\"US13\""),
        "{m}"
    );
    // _format and Accept do not turn the metrics into FHIR.
    let res = s
        .client
        .get(s.url("/metrics"))
        .header("accept", "text/plain")
        .send()
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
}

#[test]
fn metadata_is_a_capability_statement_of_what_is_served() {
    let s = Server::start(&[]);
    let (status, headers, cs) = read(s.get("/metadata"));
    assert_eq!(status, 200);
    assert_eq!(
        content_type(&headers),
        "application/fhir+json; charset=utf-8"
    );
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["status"], "active");
    assert_eq!(cs["kind"], "instance");
    assert_eq!(cs["software"]["name"], "referral-gateway");
    assert_eq!(cs["software"]["version"], env!("CARGO_PKG_VERSION"));
    let formats = cs["format"].to_string();
    assert!(
        formats.contains("json") && formats.contains("xml"),
        "{formats}"
    );
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    let sr = rest["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "ServiceRequest")
        .expect("ServiceRequest");
    // Nothing is created without an upstream server (contract §7): no create interaction.
    assert!(sr.get("interaction").is_none(), "{sr}");
    assert_eq!(sr["operation"][0]["name"], "validate");
    assert_eq!(
        sr["supportedProfile"],
        json!(["https://referral-gateway.example.org/fhir/StructureDefinition/imaging-referral"])
    );
    let system: Vec<&str> = rest["interaction"]
        .as_array()
        .expect("interactions")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert_eq!(system, ["batch", "transaction"]);
    assert_eq!(rest["operation"][0]["name"], "validate");

    // Everything advertised is served.
    let (status, _, _) = read(s.post_json("/ServiceRequest", &example(ACCEPTED)));
    assert_eq!(status, 200);
    for kind in system {
        let (status, _, body) = read(s.post_json("/", &bundle(kind, &[ACCEPTED])));
        assert_eq!(status, 200, "{kind}: {body}");
    }
    for path in ["/ServiceRequest/$validate", "/$validate"] {
        let (status, _, _) = read(s.post_json(path, &example(ACCEPTED)));
        assert_eq!(status, 200, "{path}");
    }
    // And as XML.
    let res = s.get("/metadata?_format=xml");
    let xml = fhir_codec::xml_to_json(&res.text().expect("body")).expect("XML");
    assert_eq!(xml["fhirVersion"], "4.0.1");
}

#[test]
fn the_conformance_resources_are_served() {
    let s = Server::start(&[]);
    let (status, _, sd) = read(s.get("/StructureDefinition/imaging-referral"));
    assert_eq!(status, 200);
    assert_eq!(sd["resourceType"], "StructureDefinition");
    assert_eq!(
        sd["url"],
        "https://referral-gateway.example.org/fhir/StructureDefinition/imaging-referral"
    );
    for (ty, id) in [
        ("CodeSystem", "guidance-rule"),
        ("ValueSet", "imaging-procedures"),
        ("ConceptMap", "imaging-procedures"),
    ] {
        let (status, _, r) = read(s.get(&format!("/{ty}/{id}")));
        assert_eq!(status, 200, "{ty}/{id}");
        assert_eq!(r["resourceType"], ty);
        assert_eq!(r["id"], id);
    }
    let (status, _, body) = read(s.get("/ValueSet/nope"));
    assert_eq!(status, 404);
    assert_outcome(&body, "not-found");
    let (status, _, bundle) = read(s.get("/ValueSet"));
    assert_eq!(status, 200);
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 2);
    let (_, _, one) = read(s.get(
        "/StructureDefinition?url=https://referral-gateway.example.org/fhir/StructureDefinition/imaging-referral",
    ));
    assert_eq!(one["total"], 1);
    // $validate?profile= checks against the profile named; an unknown one is a 400.
    let (status, _, oo) = read(s.post_json(
        "/$validate?profile=https://referral-gateway.example.org/fhir/StructureDefinition/imaging-referral",
        &example(ACCEPTED),
    ));
    assert_eq!(status, 200, "{oo}");
    let (status, _, oo) = read(s.post_json(
        "/$validate?profile=https://example.org/StructureDefinition/unknown",
        &example(ACCEPTED),
    ));
    assert_eq!(status, 400, "{oo}");
    assert_outcome(&oo, "not-supported");
}

#[test]
fn a_missing_profiles_folder_stops_start_up_with_a_clear_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--profiles",
            "/nonexistent/profiles",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/profiles"), "{err}");
}

#[test]
fn health_says_the_rules_are_loaded() {
    let s = Server::start(&[]);
    let (status, headers, body) = read(s.get("/health"));
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["severity"], "information");
    let text = body["issue"][0]["details"]["text"].as_str().expect("text");
    assert!(
        text.starts_with("ready: 26 guidance rules loaded"),
        "{text}"
    );
}

#[test]
fn sighup_reloads_good_rules_and_keeps_the_old_ones_on_errors() {
    let tmp = TempDir::new("rules");
    copy_dir(&repo().join("rules"), &tmp.0.join("rules"));
    copy_dir(&repo().join("examples"), &tmp.0.join("examples"));
    let rules = tmp.0.join("rules");
    let s = Server::start(&["--rules", rules.to_str().expect("path")]);
    let neck = example(REJECTED).to_string();
    assert_eq!(
        s.post("/ServiceRequest", Some(FHIR_JSON), neck.clone())
            .status()
            .as_u16(),
        422
    );

    // Requests keep running through both reloads: every one gets a proper answer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let url = s.url("/ServiceRequest");
        let body = neck.clone();
        std::thread::spawn(move || {
            let client = Client::new();
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let res = client
                    .post(&url)
                    .header(CONTENT_TYPE, FHIR_JSON)
                    .body(body.clone())
                    .send();
                statuses.push(res.map(|r| r.status().as_u16()).unwrap_or(0));
            }
            statuses
        })
    };

    // US05 now only warns: the same request is accepted.
    let file = rules.join("us").join("US05-neck-pain.toml");
    let text = std::fs::read_to_string(&file).expect("rule");
    std::fs::write(
        &file,
        text.replacen("action = \"reject\"", "action = \"warn\"", 1),
    )
    .expect("write");
    s.signal("-HUP");
    s.wait_for_metric("referral_gateway_rule_reloads_total{result=\"ok\"}", 1);
    let (status, _, body) = read(s.post("/ServiceRequest", Some(FHIR_JSON), neck.clone()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&body).as_deref(), Some("accepted"));
    assert_eq!(rule_ids(&body), ["US05"]);

    // A broken rule file: the reload fails, the warn-only rules stay in force.
    std::fs::write(
        rules.join("us").join("US99-broken.toml"),
        "id = \"US99\"\naction = [not toml",
    )
    .expect("write");
    s.signal("-HUP");
    s.wait_for_metric("referral_gateway_rule_reloads_total{result=\"failed\"}", 1);
    let (status, _, body) = read(s.post("/ServiceRequest", Some(FHIR_JSON), neck));
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&body).as_deref(), Some("accepted"));
    let (status, _, health) = read(s.get("/health"));
    assert_eq!(status, 200);
    assert!(
        health.to_string().contains("1 reloads, 1 failed"),
        "{health}"
    );
    assert!(
        s.log().contains("US99-broken.toml"),
        "the load error is not logged"
    );

    stop.store(true, Ordering::SeqCst);
    let statuses = load.join().expect("load thread");
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| *s == 422 || *s == 200),
        "a request failed during reload: {statuses:?}"
    );
}

#[test]
fn slow_request_times_out_with_503_operation_outcome() {
    let s = Server::start(&["--request-timeout-secs", "1"]);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // Announce 1000 bytes, send 10, and wait.
    write!(
        conn,
        "POST /ServiceRequest HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\nX-Request-Id: slow-1\r\n\r\n{{\"resource"
    )
    .expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the head and the announced body are in.
    loop {
        let n = conn.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-request-id: slow-1"),
        "{text}"
    );
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    let oo: Value = serde_json::from_str(body).expect("JSON body");
    assert_outcome(&oo, "timeout");
    // Still serving.
    assert_eq!(s.get("/health").status().as_u16(), 200);
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let mut s = Server::start(&[]);
    assert_eq!(s.get("/health").status().as_u16(), 200);
    s.signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = s.exited() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn unloadable_rules_stop_the_server_from_starting() {
    let tmp = TempDir::new("norules");
    let out = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0", "--rules"])
        .arg(&tmp.0)
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("site.toml"));
}
