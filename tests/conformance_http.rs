//! Conformance suite, FHIR R4 RESTful API (http.html) and contract §4: each case cites the
//! clause it checks. The server is the real binary (`serve --listen 127.0.0.1:0`).

mod common;

use common::harness::*;
use common::server::{read_response, Server, FHIR_JSON};
use reqwest::Method;
use serde_json::Value;
use std::io::Write;

/// One server for the cases that do not change it.
fn post_json(
    s: &Server,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let mut req = s
        .client
        .post(s.url(path))
        .header("content-type", FHIR_JSON)
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().expect("POST")
}

/// http.html §ops "Prefer" and contract §4: `return=OperationOutcome` makes a 2xx answer the
/// decision OperationOutcome, also for a redirect; the other values change nothing without an
/// upstream server.
#[test]
fn prefer_return_operation_outcome_gives_the_decision_outcome() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let sr = example(REDIRECTED);
    let (status, headers, body) = read(post_json(
        s,
        "/ServiceRequest",
        &sr,
        &[("prefer", "return=OperationOutcome")],
    ));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(decision(&body).as_deref(), Some("redirected"));
    assert_eq!(
        header(&headers, "preference-applied"),
        "return=OperationOutcome"
    );
    // An accepted request's answer already is its OperationOutcome.
    let (status, _, body) = read(post_json(
        s,
        "/ServiceRequest",
        &example(ACCEPTED),
        &[("prefer", "return=OperationOutcome")],
    ));
    assert_eq!(
        (status, decision(&body).as_deref()),
        (200, Some("accepted"))
    );
    // minimal and representation do no harm: the redirected ServiceRequest, as without Prefer.
    for prefer in ["return=minimal", "return=representation", "respond-async"] {
        let (status, _, body) = read(post_json(s, "/ServiceRequest", &sr, &[("prefer", prefer)]));
        assert_eq!(status, 200, "{prefer}: {body}");
        assert_eq!(body["resourceType"], "ServiceRequest", "{prefer}: {body}");
    }
    // A rejection is a 422 OperationOutcome whatever is preferred.
    let (status, _, body) = read(post_json(
        s,
        "/ServiceRequest",
        &example(REJECTED),
        &[("prefer", "return=minimal")],
    ));
    assert_eq!(
        (status, decision(&body).as_deref()),
        (422, Some("rejected"))
    );
}

/// http.html §update, §delete, §patch: a server that does not perform an interaction answers
/// 405 Method Not Allowed (with `Allow`, RFC 9110 §15.5.6) and an OperationOutcome; §read of a
/// resource it does not have: 404. The gateway stores no ServiceRequest.
#[test]
fn update_delete_and_patch_of_a_service_request_are_405() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let res = s
            .client
            .request(method.clone(), s.url("/ServiceRequest/example-1"))
            .header("content-type", FHIR_JSON)
            .body(example(ACCEPTED).to_string())
            .send()
            .expect("send");
        let (status, headers, body) = read(res);
        assert_eq!(status, 405, "{method}: {body}");
        assert_outcome(&body, "not-supported");
        let allow = header(&headers, "allow");
        assert!(
            allow.contains("GET") && !allow.contains(method.as_str()),
            "{method}: Allow {allow}"
        );
    }
    let (status, _, body) = read(s.get("/ServiceRequest/example-1"));
    assert_eq!(status, 404, "{body}");
    assert_outcome(&body, "not-found");
}

/// http.html §mime-type: "If a client provides a generic mime type in the Accept header
/// (application/xml, text/json, or application/json), the server SHOULD respond with the
/// requested mime type"; servers MAY support the older `application/json+fhir` names.
#[test]
fn the_media_type_asked_for_is_answered_and_the_older_names_are_read() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    for (accept, want) in [
        ("application/json", "application/json; charset=utf-8"),
        ("text/json", "text/json; charset=utf-8"),
        (
            "application/fhir+json",
            "application/fhir+json; charset=utf-8",
        ),
        ("application/xml", "application/xml; charset=utf-8"),
    ] {
        let res = s
            .client
            .get(s.url("/metadata"))
            .header("accept", accept)
            .send()
            .expect("GET");
        assert_eq!(res.status().as_u16(), 200);
        let ct = res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert_eq!(ct, want, "Accept {accept}");
    }
    let xml = fhir_codec::json_to_xml(&example(ACCEPTED)).expect("XML");
    for ct in ["application/json+fhir", "text/json"] {
        let res = s.post("/ServiceRequest", Some(ct), example(ACCEPTED).to_string());
        assert_eq!(res.status().as_u16(), 200, "Content-Type {ct}");
    }
    for ct in ["application/xml+fhir", "text/xml"] {
        let res = s.post("/ServiceRequest", Some(ct), xml.clone());
        assert_eq!(res.status().as_u16(), 200, "Content-Type {ct}");
    }
}

/// http.html §version-parameter: the `fhirVersion` parameter names the FHIR version of a body
/// (Content-Type; a version the server does not read: 415) or of the answer wanted (Accept: 406).
/// This gateway is R4 only (4.0).
#[test]
fn another_fhir_version_is_refused() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let sr = example(ACCEPTED).to_string();
    let res = s.post(
        "/ServiceRequest",
        Some("application/fhir+json; fhirVersion=3.0"),
        sr.clone(),
    );
    let (status, _, body) = read(res);
    assert_eq!(status, 415, "{body}");
    assert_outcome(&body, "not-supported");
    let ok = s.post(
        "/ServiceRequest",
        Some("application/fhir+json; fhirVersion=4.0"),
        sr.clone(),
    );
    assert_eq!(ok.status().as_u16(), 200);
    let res = s
        .client
        .post(s.url("/ServiceRequest"))
        .header("content-type", "application/fhir+json; fhirVersion=4.0")
        .header("accept", "application/fhir+json; fhirVersion=3.0")
        .body(sr.clone())
        .send()
        .expect("POST");
    let (status, _, body) = read(res);
    assert_eq!(status, 406, "{body}");
    // Asked with the version, answered with it.
    let res = s
        .client
        .get(s.url("/metadata"))
        .header("accept", "application/fhir+json; fhirVersion=4.0")
        .send()
        .expect("GET");
    assert_eq!(
        res.headers()["content-type"],
        "application/fhir+json; fhirVersion=4.0; charset=utf-8"
    );
}

/// search.html §_id and http.html §search: the searchset honours `_id` and `url`, has a `self`
/// link (bundle.html: Bundle.link self "SHALL" be present on a search result, search.html
/// §self-link), and an empty result has no `entry` (json.html: arrays are never empty).
#[test]
fn conformance_resource_search_honours_id_and_has_a_self_link() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let (status, _, b) = read(s.get("/CodeSystem?_id=guidance-rule"));
    assert_eq!(status, 200);
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 1, "{b}");
    assert_eq!(b["entry"][0]["resource"]["id"], "guidance-rule");
    assert_eq!(b["entry"][0]["search"]["mode"], "match");
    let own = b["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "self"))
        .and_then(|l| l["url"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(own, s.url("/CodeSystem?_id=guidance-rule"));
    assert_eq!(
        b["entry"][0]["fullUrl"],
        s.url("/CodeSystem/guidance-rule").as_str()
    );
    // Several values: any matches.
    let (_, _, b) = read(s.get("/CodeSystem?_id=guidance-rule,referral-pathway"));
    assert_eq!(b["total"], 2, "{b}");
    // Nothing found: no empty entry array.
    let (status, _, b) = read(s.get("/CodeSystem?_id=nothing-of-that-id"));
    assert_eq!(status, 200);
    assert_eq!(b["total"], 0);
    assert!(b.get("entry").is_none(), "{b}");
    // An unknown parameter is ignored and left out of the self link (search.html §errors) ...
    let (status, _, b) = read(s.get("/ValueSet?name=x&_id=imaging-procedures"));
    assert_eq!((status, b["total"].as_u64()), (200, Some(1)), "{b}");
    assert_eq!(
        b["link"][0]["url"],
        s.url("/ValueSet?_id=imaging-procedures").as_str()
    );
    // ... unless the client asks for strict handling.
    let res = s
        .client
        .get(s.url("/ValueSet?name=x"))
        .header("prefer", "return=representation, handling=strict")
        .send()
        .expect("GET");
    let (status, _, body) = read(res);
    assert_eq!(status, 400, "{body}");
}

/// http.html §cors: "servers SHOULD support CORS"; a preflight is answered (not 405) and
/// scripts may read Location, ETag, X-Request-Id and X-Consult-Id of the answers.
#[test]
fn cors_preflight_and_exposed_headers() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    for path in [
        "/ServiceRequest",
        "/",
        "/$validate",
        "/metadata",
        "/cds-services/imaging-referral-order-sign",
    ] {
        let res = s
            .client
            .request(Method::OPTIONS, s.url(path))
            .header("origin", "https://ehr.example.org")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization, prefer",
            )
            .send()
            .expect("OPTIONS");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let h = res.headers();
        assert_eq!(header(h, "access-control-allow-origin"), "*", "{path}");
        assert!(
            header(h, "access-control-allow-methods").contains("POST"),
            "{path}"
        );
        let allowed = header(h, "access-control-allow-headers").to_ascii_lowercase();
        for want in ["content-type", "authorization", "prefer"] {
            assert!(allowed.contains(want), "{path}: {allowed}");
        }
    }
    let res = s
        .client
        .post(s.url("/ServiceRequest"))
        .header("origin", "https://ehr.example.org")
        .header("content-type", FHIR_JSON)
        .body(example(ACCEPTED).to_string())
        .send()
        .expect("POST");
    let h = res.headers();
    assert_eq!(header(h, "access-control-allow-origin"), "*");
    let exposed = header(h, "access-control-expose-headers").to_ascii_lowercase();
    for want in ["location", "etag", "x-request-id", "x-consult-id"] {
        assert!(exposed.contains(want), "{exposed}");
    }
}

/// http.html §read: the answer SHOULD carry `ETag` and `Last-Modified`; §cread: a client that
/// sends `If-None-Match` with the current ETag gets 304 Not Modified.
#[test]
fn conformance_reads_carry_etag_and_last_modified() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let res = s.get("/CodeSystem/referral-decision");
    assert_eq!(res.status().as_u16(), 200);
    let etag = header(res.headers(), "etag").to_string();
    let modified = header(res.headers(), "last-modified").to_string();
    assert!(etag.starts_with("W/\"") && etag.ends_with('"'), "{etag}");
    assert!(modified.ends_with(" GMT"), "{modified}");
    // Another resource, another ETag; the same resource, the same one.
    let other = s.get("/CodeSystem/guidance-rule");
    assert_ne!(header(other.headers(), "etag"), etag);
    let again = s.get("/CodeSystem/referral-decision");
    assert_eq!(header(again.headers(), "etag"), etag);
    let res = s
        .client
        .get(s.url("/CodeSystem/referral-decision"))
        .header("if-none-match", etag.as_str())
        .send()
        .expect("GET");
    assert_eq!(res.status().as_u16(), 304);
    assert_eq!(header(res.headers(), "etag"), etag);
    let res = s
        .client
        .get(s.url("/CodeSystem/referral-decision"))
        .header("if-none-match", "W/\"something-else\"")
        .send()
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
}

/// Contract §4 "body over the configured limits: 413 + OperationOutcome (too-costly)", for
/// every client: one that writes the whole body before it reads anything (Python's urllib,
/// integration engines) must read the 413 too, not a broken pipe or a reset.
#[test]
fn a_client_that_writes_the_whole_body_first_reads_the_413() {
    let s = Server::start(&["--max-body-bytes", "1000"]);
    // Larger than the socket buffers take in, so that a server that stops reading would stall
    // the client's write and then reset it.
    let body = vec![b' '; 3 * 1024 * 1024];
    for chunked in [false, true] {
        let mut conn = s.connect();
        let head = if chunked {
            "POST /ServiceRequest HTTP/1.1\r\nHost: t\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
        } else {
            format!(
                "POST /ServiceRequest HTTP/1.1\r\nHost: t\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
        };
        conn.write_all(head.as_bytes()).expect("head");
        if chunked {
            for part in body.chunks(64 * 1024) {
                conn.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .expect("chunk size");
                conn.write_all(part).expect("the whole body is written");
                conn.write_all(b"\r\n").expect("chunk end");
            }
            conn.write_all(b"0\r\n\r\n").expect("last chunk");
        } else {
            conn.write_all(&body).expect("the whole body is written");
        }
        conn.flush().expect("flush");
        let res = read_response(&mut conn).expect("a whole response after the whole body");
        assert_eq!(res.status, 413, "chunked {chunked}: {}", res.head);
        let oo = res.json();
        assert_outcome(&oo, "too-costly");
    }
    assert_eq!(s.get("/health").status().as_u16(), 200);
}

/// Contract §4: a 4xx always has its OperationOutcome body, in the negotiated format, whatever
/// the method: here on the new instance routes.
#[test]
fn errors_on_the_instance_routes_are_operation_outcomes() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let s = server();
    let res = s
        .client
        .delete(s.url("/ServiceRequest/x?_format=xml"))
        .send()
        .expect("DELETE");
    assert_eq!(res.status().as_u16(), 405);
    let text = res.text().expect("body");
    let oo = fhir_codec::xml_to_json(&text).expect("an XML OperationOutcome");
    assert_eq!(oo["resourceType"], "OperationOutcome");
}
