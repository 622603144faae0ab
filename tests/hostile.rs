//! Hostile input over HTTP (issue 8): whatever an integration engine sends, the gateway answers
//! with the right 4xx and a FHIR OperationOutcome, within the configured limits of time and
//! memory, and serves the next request as before. Each test starts the real binary.

mod common;

use common::repo;
use common::server::{read_response, send_streaming, RawResponse, Server, FHIR_JSON, FHIR_XML};
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};

const ACCEPTED: &str = "general/gen01-cxr-with-clinical-question.json";
const REJECTED: &str = "us/us05-neck-pain-only-coded.json";

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

/// Peak server memory allowed after any hostile request (debug build, loopback).
const MAX_PEAK_RSS_KIB: u64 = 512 * 1024;

/// The issue codes of an OperationOutcome.
fn issue_codes(oo: &Value) -> Vec<String> {
    assert_eq!(oo["resourceType"], "OperationOutcome", "{oo}");
    oo["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| i["code"].as_str().map(str::to_string))
        .collect()
}

/// The answer: status, time taken, body as JSON.
struct Answer {
    status: u16,
    took: Duration,
    body: Value,
}

fn post(s: &Server, path: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Answer {
    let started = Instant::now();
    // Answers in JSON whatever was sent, to read them here.
    let mut req = s
        .client
        .post(s.url(path))
        .header("Accept", FHIR_JSON)
        .body(body.into());
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let res = req.send().expect("POST");
    let status = res.status().as_u16();
    let text = res.text().expect("body");
    let took = started.elapsed();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
    Answer { status, took, body }
}

/// Asserts a hostile request got `status` and an OperationOutcome with an issue of `code`,
/// within `within`.
fn refused(a: &Answer, status: u16, code: &str, within: Duration, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    let codes = issue_codes(&a.body);
    assert!(
        codes.iter().any(|c| c == code),
        "{what}: no issue {code} in {codes:?}: {}",
        a.body
    );
    assert!(a.took < within, "{what}: took {:?}", a.took);
}

/// The server is still alive, healthy, within its memory bound, and decides a normal request
/// as before.
fn still_serving(s: &mut Server) {
    assert!(s.alive(), "the server died:\n{}", s.log());
    assert_eq!(s.get("/health").status().as_u16(), 200);
    let a = post(
        s,
        "/ServiceRequest",
        Some(FHIR_JSON),
        example(REJECTED).to_string(),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    let a = post(
        s,
        "/ServiceRequest",
        Some(FHIR_JSON),
        example(ACCEPTED).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    if let Some(peak) = s.peak_rss_kib() {
        assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");
    }
    assert!(
        !s.log().contains("panicked"),
        "a panic was logged:\n{}",
        s.log()
    );
}

const QUICK: Duration = Duration::from_secs(10);

#[test]
fn invalid_utf8_is_400_structure() {
    let mut s = Server::start(&[]);
    let mut body = example(ACCEPTED).to_string().into_bytes();
    let at = body.len() / 2;
    body.splice(at..at, [0xff, 0xfe, 0xc3]);
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), body.clone());
    refused(&a, 400, "structure", QUICK, "invalid UTF-8 in JSON");
    let a = post(
        &s,
        "/ServiceRequest",
        Some(FHIR_XML),
        b"<ServiceRequest xmlns=\"http://hl7.org/fhir\"><status value=\"\xff\"/></ServiceRequest>"
            .to_vec(),
    );
    refused(&a, 400, "structure", QUICK, "invalid UTF-8 in XML");
    still_serving(&mut s);
}

#[test]
fn truncated_and_empty_bodies_are_400_structure() {
    let mut s = Server::start(&[]);
    let json = example(ACCEPTED).to_string();
    for cut in [1, json.len() / 3, json.len() - 1] {
        let a = post(
            &s,
            "/ServiceRequest",
            Some(FHIR_JSON),
            &json.as_bytes()[..cut],
        );
        refused(&a, 400, "structure", QUICK, &format!("JSON cut at {cut}"));
    }
    let xml = r#"<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/><intent value="order"/><subject><reference value="Pat"#;
    let a = post(&s, "/ServiceRequest", Some(FHIR_XML), xml);
    refused(&a, 400, "structure", QUICK, "truncated XML");
    for ct in [Some(FHIR_JSON), Some(FHIR_XML), None] {
        let a = post(&s, "/ServiceRequest", ct, Vec::new());
        refused(
            &a,
            400,
            "structure",
            QUICK,
            &format!("empty body as {ct:?}"),
        );
        let a = post(&s, "/", ct, b"  \r\n ".to_vec());
        refused(
            &a,
            400,
            "structure",
            QUICK,
            &format!("blank body as {ct:?}"),
        );
    }
    // The connection closes half-way through the announced body.
    let mut conn = s.connect();
    write!(
        conn,
        "POST /ServiceRequest HTTP/1.1\r\nHost: x\r\nContent-Type: {FHIR_JSON}\r\nContent-Length: {}\r\n\r\n{}",
        json.len(),
        &json[..json.len() / 2]
    )
    .expect("write");
    conn.shutdown(std::net::Shutdown::Write)
        .expect("half close");
    // The server may answer (400) or just close: either way it must not hang or fall over.
    let _ = read_response(&mut conn);
    still_serving(&mut s);
}

#[test]
fn json_nested_100000_deep_is_413_too_costly() {
    let mut s = Server::start(&[]);
    let n = 100_000;
    let arrays = format!(
        "{{\"resourceType\":\"ServiceRequest\",\"note\":{}{}}}",
        "[".repeat(n),
        "]".repeat(n)
    );
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), arrays);
    refused(&a, 413, "too-costly", QUICK, "arrays 100,000 deep");
    let objects = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    let a = post(&s, "/", Some(FHIR_JSON), objects);
    refused(&a, 413, "too-costly", QUICK, "objects 100,000 deep");
    // Just over the configured depth (64): the same answer.
    let mut deep = json!("x");
    for _ in 0..70 {
        deep = json!({ "extension": [deep] });
    }
    let mut sr = example(ACCEPTED);
    sr["extension"] = json!([deep]);
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), sr.to_string());
    refused(&a, 413, "too-costly", QUICK, "140 levels");
    // XML 100,000 elements deep.
    let xml = format!(
        "<ServiceRequest xmlns=\"http://hl7.org/fhir\">{}{}</ServiceRequest>",
        "<extension url=\"http://x\">".repeat(n),
        "</extension>".repeat(n)
    );
    let a = post(&s, "/ServiceRequest", Some(FHIR_XML), xml);
    refused(&a, 413, "too-costly", QUICK, "XML 100,000 deep");
    still_serving(&mut s);
}

/// 50 MB of a JSON string, in 64 KiB pieces, generated as it is sent.
fn fifty_mb() -> impl Iterator<Item = Vec<u8>> + Send {
    let start = b"{\"resourceType\":\"ServiceRequest\",\"note\":[{\"text\":\"".to_vec();
    std::iter::once(start).chain((0..800).map(|_| vec![b'a'; 64 * 1024]))
}

#[test]
fn body_of_50_mb_is_413_too_costly() {
    let mut s = Server::start(&[]);
    // Announced: refused before it is read.
    let head = format!(
        "POST /ServiceRequest HTTP/1.1\r\nHost: x\r\nContent-Type: {FHIR_JSON}\r\nContent-Length: {}\r\n\r\n",
        50 * 1024 * 1024
    );
    let (res, took) = send_streaming(&s.addr(), &head, fifty_mb());
    let res = res.expect("an answer before the connection closed");
    assert_eq!(res.status, 413, "{res:?}");
    assert!(issue_codes(&res.json()).contains(&"too-costly".to_string()));
    assert!(took < QUICK, "{took:?}");
    // Chunked, no length: cut off at the limit while it is read.
    let head = format!(
        "POST /ServiceRequest HTTP/1.1\r\nHost: x\r\nContent-Type: {FHIR_JSON}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let chunked = fifty_mb().map(|c| {
        let mut out = format!("{:x}\r\n", c.len()).into_bytes();
        out.extend_from_slice(&c);
        out.extend_from_slice(b"\r\n");
        out
    });
    let (res, took) = send_streaming(&s.addr(), &head, chunked);
    let res = res.expect("an answer before the connection closed");
    assert_eq!(res.status, 413, "{res:?}");
    assert!(issue_codes(&res.json()).contains(&"too-costly".to_string()));
    assert!(took < QUICK, "{took:?}");
    still_serving(&mut s);
}

/// `{"resourceType":"Bundle","type":"batch","entry":[{},{},...]}` with `n` entries.
fn tiny_entries(n: usize) -> Vec<u8> {
    let mut body = b"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[".to_vec();
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{}");
    }
    body.extend_from_slice(b"]}");
    body
}

#[test]
fn bundle_of_a_million_entries_is_413_too_costly() {
    let body = tiny_entries(1_000_000);
    // With the default limits the body size stops it.
    let mut s = Server::start(&[]);
    let a = post(&s, "/", Some(FHIR_JSON), body.clone());
    refused(
        &a,
        413,
        "too-costly",
        QUICK,
        "1,000,000 entries, default limits",
    );
    still_serving(&mut s);
    drop(s);
    // With room for the body, the entry limit does, in bounded time and memory.
    let mut s = Server::start(&["--max-body-bytes", "4000000"]);
    let a = post(&s, "/", Some(FHIR_JSON), body);
    refused(
        &a,
        413,
        "too-costly",
        QUICK,
        "1,000,000 entries, 4 MB allowed",
    );
    let text = a.body.to_string();
    assert!(text.contains("1000000 entries"), "{text}");
    still_serving(&mut s);
}

#[test]
fn duplicate_keys_are_400_structure() {
    let mut s = Server::start(&[]);
    let sr = example(ACCEPTED).to_string();
    // The same property twice: which one would the sender's system have meant?
    let twice = sr.replacen(
        "\"status\":\"active\"",
        "\"status\":\"active\",\"status\":\"revoked\"",
        1,
    );
    assert_ne!(twice, sr, "the example has a status");
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), twice);
    refused(&a, 400, "structure", QUICK, "status twice");
    assert!(
        a.body.to_string().contains("'status' appears twice"),
        "{}",
        a.body
    );
    // Nested, in a Bundle entry.
    let nested = format!(
        "{{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{{\"resource\":{sr},\"resource\":{sr}}}]}}"
    );
    let a = post(&s, "/", Some(FHIR_JSON), nested);
    refused(&a, 400, "structure", QUICK, "resource twice in an entry");
    still_serving(&mut s);
}

#[test]
fn nulls_and_empty_values_where_fhir_forbids_them_are_400() {
    let mut s = Server::start(&[]);
    let cases: [(&str, Value); 7] = [
        ("status", Value::Null),
        ("reasonCode", json!([])),
        ("note", json!([null])),
        ("code", json!({})),
        ("subject", json!({ "reference": "" })),
        ("category", json!([{}])),
        ("authoredOn", json!("")),
    ];
    for (key, bad) in cases {
        let mut sr = example(ACCEPTED);
        sr[key] = bad.clone();
        let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), sr.to_string());
        assert_eq!(a.status, 400, "{key}: {bad}: {}", a.body);
        assert!(a.took < QUICK);
        let text = a.body.to_string();
        assert!(
            text.contains(&format!("ServiceRequest.{key}")),
            "{key}: the element is not named: {text}"
        );
    }
    still_serving(&mut s);
}

#[test]
fn numbers_where_strings_belong_are_400() {
    let mut s = Server::start(&[]);
    for (key, bad) in [
        ("status", json!(1)),
        ("authoredOn", json!(20240101)),
        ("subject", json!({ "reference": 42 })),
        ("intent", json!(true)),
    ] {
        let mut sr = example(ACCEPTED);
        sr[key] = bad.clone();
        let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), sr.to_string());
        assert_eq!(a.status, 400, "{key}: {bad}: {}", a.body);
        assert!(a.took < QUICK);
        assert!(
            a.body
                .to_string()
                .contains(&format!("ServiceRequest.{key}")),
            "{key}: {}",
            a.body
        );
    }
    still_serving(&mut s);
}

#[test]
fn string_of_10_mb_is_413_and_a_long_text_is_decided_in_bounded_time() {
    // The bound is the server's own request timeout, set far above the seconds these take, so
    // that a loaded machine does not fail the test (speed is a benchmark's job) while reading
    // that is not linear (hours of CPU for the long note) still ends in a 503, not a 422.
    let mut s = Server::start(&["--request-timeout-secs", "120"]);
    // The client waits longer than the server would: a slow reading ends in the server's 503.
    s.client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .expect("client");
    let mut sr = example(ACCEPTED);
    sr["note"] = json!([{ "text": "lump ".repeat(2 * 1024 * 1024) }]);
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), sr.to_string());
    refused(&a, 413, "too-costly", QUICK, "10 MB string");
    // Within the body limit, 900 kB notes that once took the reader far longer than their size
    // (each is rejected as its example is, within the server's timeout):
    let long_notes = [
        // free text without a full stop (each mention rescanned all the text before it: hours
        // of CPU for this request)
        "neck pain ".repeat(90_000),
        // the same with one curly quote in it: a text that is not ASCII is read by the Unicode
        // patterns, whose word boundaries once sent every search to the PikeVM (80 s in release)
        format!("{}‘stiff’", "neck pain ".repeat(90_000)),
        // a supposition in every clause and no dash: each cue once looked for the next spaced
        // dash to the text's end (30 s in release, quadratic)
        "return if neck pain ".repeat(45_000),
        // numbered lists and no full stop: the last item of each list was read to the text's
        // end (60 s in release, quadratic)
        "1) neck lump - no 2) neck pain - yes ".repeat(25_000),
        // a cue of another request's problem in every clause and no full stop: each looked back
        // for its sentence's start (about 70 s in release)
        "neck pain (not for scan) ".repeat(36_000),
        // a patient's quoted message opened in every sentence but the first and never closed:
        // each opening looked for its close to the text's end (3.2 s for 90 kB in release,
        // quadratic; found by review of this session's reader)
        format!("Seen. {}", "Pt: ‘neck pain. ".repeat(56_000)),
    ];
    for note in long_notes {
        let mut sr = example(REJECTED);
        sr["note"] = json!([{ "text": note }]);
        let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), sr.to_string());
        assert_eq!(a.status, 422, "{}", a.body);
    }
    // A 900 kB id is not an id.
    let mut sr = example(ACCEPTED);
    sr["id"] = json!("a".repeat(900_000));
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), sr.to_string());
    refused(&a, 400, "invalid", Duration::from_secs(120), "900 kB id");
    still_serving(&mut s);
}

#[test]
fn xml_entities_are_never_expanded_or_fetched() {
    let mut s = Server::start(&[]);
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/><intent value="order"/><subject><reference value="Patient/1"/></subject><note><text value="&lol9;"/></note></ServiceRequest>"#;
    let external = r#"<?xml version="1.0"?>
<!DOCTYPE sr [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/><intent value="order"/><subject><reference value="Patient/1"/></subject><note><text value="&xxe;"/></note></ServiceRequest>"#;
    let parameter = r#"<?xml version="1.0"?>
<!DOCTYPE sr [ <!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote; ]>
<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/></ServiceRequest>"#;
    let undeclared =
        r#"<ServiceRequest xmlns="http://hl7.org/fhir"><status value="&xxe;"/></ServiceRequest>"#;
    for (what, xml) in [
        ("billion laughs", laughs),
        ("external entity", external),
        ("parameter entity", parameter),
        ("undeclared entity", undeclared),
    ] {
        for path in ["/ServiceRequest", "/$validate"] {
            let a = post(&s, path, Some(FHIR_XML), xml);
            refused(&a, 400, "structure", QUICK, what);
            let text = a.body.to_string();
            assert!(!text.contains("root:"), "{what}: a file was read: {text}");
            assert!(!text.contains("lollollol"), "{what}: expanded: {text}");
        }
    }
    still_serving(&mut s);
}

#[test]
fn wrong_and_missing_content_types() {
    let mut s = Server::start(&[]);
    let json = example(ACCEPTED).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/fhir+json; charset=latin1",
        "",
    ] {
        let a = post(&s, "/ServiceRequest", Some(ct), json.clone());
        refused(&a, 415, "not-supported", QUICK, ct);
    }
    // Declared XML, sent JSON (and the other way round): the declared format is read.
    let a = post(&s, "/ServiceRequest", Some(FHIR_XML), json.clone());
    refused(&a, 400, "structure", QUICK, "JSON declared as XML");
    let xml =
        r#"<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/></ServiceRequest>"#;
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), xml);
    refused(&a, 400, "structure", QUICK, "XML declared as JSON");
    // A Content-Type that is not text at all.
    let mut conn = s.connect();
    let mut head = b"POST /ServiceRequest HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\xff\xfe\r\nContent-Length: ".to_vec();
    head.extend_from_slice(format!("{}\r\n\r\n{json}", json.len()).as_bytes());
    conn.write_all(&head).expect("write");
    let res = read_response(&mut conn).expect("answer");
    assert_eq!(res.status, 415, "{res:?}");
    // Missing: the body is sniffed.
    let a = post(&s, "/ServiceRequest", None, json);
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(&s, "/ServiceRequest", None, "hello");
    refused(&a, 400, "structure", QUICK, "no Content-Type, not FHIR");
    still_serving(&mut s);
}

#[test]
fn resource_types_that_do_not_exist() {
    let mut s = Server::start(&[]);
    let a = post(
        &s,
        "/ServiceRequest",
        Some(FHIR_JSON),
        json!({"resourceType": "Referral", "status": "active"}).to_string(),
    );
    refused(&a, 400, "not-supported", QUICK, "resourceType Referral");
    let a = post(
        &s,
        "/ServiceRequest",
        Some(FHIR_XML),
        r#"<Referral xmlns="http://hl7.org/fhir"><status value="active"/></Referral>"#,
    );
    assert_eq!(a.status, 400, "{}", a.body);
    issue_codes(&a.body);
    // In a batch: that entry fails, the others are decided, one response entry each.
    let b = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            { "resource": { "resourceType": "Referral" } },
            { "fullUrl": "urn:uuid:9b1f0c56-1d3b-4a42-9d0a-5e2b9a3c0d11", "resource": example(ACCEPTED) },
            { "resource": { "resourceType": 7 } },
            { "request": { "method": "DELETE", "url": "ServiceRequest/1" } }
        ]
    });
    let a = post(&s, "/", Some(FHIR_JSON), b.to_string());
    assert_eq!(a.status, 200, "{}", a.body);
    let entries = a.body["entry"].as_array().expect("entries");
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "400 Bad Request",
            "200 OK",
            "400 Bad Request",
            "405 Method Not Allowed"
        ]
    );
    still_serving(&mut s);
}

#[test]
fn references_that_loop_or_point_nowhere_are_answered() {
    let mut s = Server::start(&[]);
    let mut looped = example(ACCEPTED);
    // requester → #r1 → organization #r2 → organization #r1; subject → #p1 → link → #p1;
    // a contained resource that contains one more (FHIR forbids it: dom-2).
    looped["contained"] = json!([
        { "resourceType": "PractitionerRole", "id": "r1", "organization": { "reference": "#r2" } },
        { "resourceType": "PractitionerRole", "id": "r2", "organization": { "reference": "#r1" } },
        { "resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01",
          "link": [{ "other": { "reference": "#p1" }, "type": "seealso" }] }
    ]);
    looped["requester"] = json!({ "reference": "#r1" });
    looped["subject"] = json!({ "reference": "#p1" });
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), looped.to_string());
    // PractitionerRole.organization may point only at an Organization (FHIR R4): the loop through
    // PractitionerRoles is refused as invalid (400); the Patient's loop through link is valid.
    assert!(matches!(a.status, 200 | 400 | 422), "{}", a.body);
    assert!(a.took < QUICK);

    let mut nested = example(ACCEPTED);
    nested["contained"] = json!([
        { "resourceType": "Patient", "id": "p1",
          "contained": [{ "resourceType": "Patient", "id": "p2" }] }
    ]);
    nested["subject"] = json!({ "reference": "#p1" });
    let a = post(&s, "/ServiceRequest", Some(FHIR_JSON), nested.to_string());
    refused(&a, 400, "invariant", QUICK, "contained in contained");
    assert!(
        a.body
            .to_string()
            .contains("ServiceRequest.contained[0].contained"),
        "{}",
        a.body
    );

    // In a Bundle, entries that refer to each other in a ring, and references to nothing.
    let mut sr = example(REJECTED);
    sr["subject"] = json!({ "reference": "urn:uuid:00000000-0000-4000-8000-000000000001" });
    sr["requester"] = json!({ "reference": "PractitionerRole/nowhere" });
    sr["supportingInfo"] =
        json!([{ "reference": "#missing" }, { "reference": "Observation/none" }]);
    let b = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
              "resource": { "resourceType": "Patient", "link": [{ "other": { "reference": "urn:uuid:00000000-0000-4000-8000-000000000002" }, "type": "seealso" }] } },
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
              "resource": { "resourceType": "Patient", "link": [{ "other": { "reference": "urn:uuid:00000000-0000-4000-8000-000000000001" }, "type": "seealso" }] } },
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000003", "resource": sr }
        ]
    });
    let a = post(&s, "/", Some(FHIR_JSON), b.to_string());
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["entry"].as_array().map(Vec::len), Some(3));
    assert!(a.took < QUICK);
    still_serving(&mut s);
}

#[test]
fn slow_client_sending_a_byte_a_second_gets_408_without_holding_up_others() {
    let mut s = Server::start(&["--body-timeout-secs", "2"]);
    let body = example(ACCEPTED).to_string().into_bytes();
    let head = format!(
        "POST /ServiceRequest HTTP/1.1\r\nHost: x\r\nContent-Type: {FHIR_JSON}\r\nContent-Length: {}\r\nX-Request-Id: trickle-1\r\n\r\n",
        body.len()
    );
    let trickle = body.into_iter().map(|b| {
        std::thread::sleep(Duration::from_secs(1));
        vec![b]
    });
    let addr = s.addr();
    let slow = std::thread::spawn(move || send_streaming(&addr, &head, trickle));
    // Meanwhile, the others are served.
    std::thread::sleep(Duration::from_millis(300));
    let a = post(
        &s,
        "/ServiceRequest",
        Some(FHIR_JSON),
        example(ACCEPTED).to_string(),
    );
    assert_eq!(a.status, 200);
    assert!(a.took < Duration::from_secs(2), "{:?}", a.took);
    let (res, took): (Option<RawResponse>, Duration) = slow.join().expect("slow client");
    let res = res.expect("a 408 answer, not just a closed connection");
    assert_eq!(res.status, 408, "{res:?}");
    assert!(res.head.contains("x-request-id: trickle-1"), "{}", res.head);
    assert!(issue_codes(&res.json()).contains(&"timeout".to_string()));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    still_serving(&mut s);
}

#[test]
fn slow_client_sending_its_headers_a_byte_a_second_is_cut_off() {
    let mut s = Server::start(&["--header-timeout-secs", "2"]);
    let mut conn = s.connect();
    let started = Instant::now();
    let head = format!("POST /ServiceRequest HTTP/1.1\r\nHost: x\r\nContent-Type: {FHIR_JSON}\r\n");
    let mut writer = conn.try_clone().expect("clone");
    let trickle = std::thread::spawn(move || {
        for b in head.bytes() {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    // Closed (possibly with a 408) once the head is overdue, not after the 60 s of the head.
    let res = read_response(&mut conn);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "{took:?}");
    if let Some(res) = res {
        assert_eq!(res.status, 408, "{res:?}");
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let _ = trickle.join();
    // An idle connection that sends nothing is closed the same way.
    let mut idle = s.connect();
    let started = Instant::now();
    let _ = read_response(&mut idle);
    assert!(started.elapsed() < Duration::from_secs(8));
    still_serving(&mut s);
}
