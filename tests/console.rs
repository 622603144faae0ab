//! The console over HTTP (contract §9), without a browser: every view answers HTML, the
//! playground decides and explains, the assets are served from the binary. The browser tests
//! (tests/browser.rs) drive the same pages in Chromium.

mod common;

use common::repo;
use common::server::{Server, FHIR_JSON};

fn example(rel: &str) -> String {
    std::fs::read_to_string(repo().join("examples").join(rel)).expect("example")
}

fn form(body: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("body", body)
        .finish()
}

#[test]
fn every_view_is_html() {
    let server = Server::start(&[]);
    for path in [
        "/console",
        "/console/playground",
        "/console/dashboard",
        "/console/consults",
    ] {
        let res = server.get(path);
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("text/html"),
            "{path}"
        );
        assert!(res.headers().contains_key("content-security-policy"));
        let text = res.text().expect("body");
        assert!(text.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(text.contains(r#"<html lang="en">"#), "{path}");
        assert!(text.contains(r#"<main id="main""#), "{path}");
    }
    for (path, kind) in [
        ("/console/assets/console.css", "text/css"),
        ("/console/assets/console.js", "text/javascript"),
    ] {
        let res = server.get(path);
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with(kind));
    }
}

#[test]
fn the_catalogue_shows_every_rule_and_pathway() {
    let server = Server::start(&[]);
    let text = server.get("/console").text().expect("body");
    let rules = std::fs::read_dir(repo().join("rules/us"))
        .expect("rules")
        .chain(std::fs::read_dir(repo().join("rules/xr")).expect("rules"));
    for f in rules {
        let name = f.expect("file").file_name().to_string_lossy().to_string();
        let id = name.split('-').next().expect("id");
        assert!(text.contains(&format!(r#"id="rule-{id}""#)), "{id}");
    }
    // The guidance quote, the advice, the pathway directory and the duty radiologist.
    assert!(text.contains("Please do not refer to US"));
    assert!(text.contains("refer directly to the DVT clinic"));
    assert!(text.contains(r#"id="pathway-dvt-clinic""#));
    assert!(text.contains("ext 8435"));
    assert!(text.contains("mode: enforce"));
}

#[test]
fn the_playground_decides_and_explains_each_decision() {
    let server = Server::start(&[]);
    for (file, decision) in [
        ("general/gen01-cxr-with-clinical-question.json", "accepted"),
        ("us/us05-neck-pain-only-coded.json", "rejected"),
        ("us/us13-calf-swelling-query-dvt.json", "redirected"),
    ] {
        let res = server.post(
            "/console/playground",
            Some("application/x-www-form-urlencoded"),
            form(&example(file)),
        );
        assert_eq!(res.status(), 200, "{file}");
        let text = res.text().expect("body");
        assert!(
            text.contains(&format!(r#"class="decision {decision}""#)),
            "{file}: {text}"
        );
        assert!(text.contains("Codes and words matched"), "{file}");
        assert!(text.contains("Rules that fired"), "{file}");
        if decision == "redirected" {
            assert!(text.contains("The redirected request"), "{file}");
            assert!(text.contains("dvt-clinic"), "{file}");
        }
    }
    // XML, a Bundle, and input that is not FHIR.
    let xml = r#"<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/><intent value="order"/><code><text value="USS doppler legs"/></code><subject><reference value="Patient/1"/></subject><reasonCode><text value="calf swelling ?DVT"/></reasonCode></ServiceRequest>"#;
    let text = server
        .post(
            "/console/playground",
            Some("application/x-www-form-urlencoded"),
            form(xml),
        )
        .text()
        .expect("body");
    assert!(text.contains(r#"class="decision "#), "{text}");
    let text = server
        .post(
            "/console/playground",
            Some("application/x-www-form-urlencoded"),
            form(&example("us/us14-haematuria-age-45-bundle.json")),
        )
        .text()
        .expect("body");
    assert!(text.contains("Request 1"), "{text}");
    let res = server.post(
        "/console/playground",
        Some("application/x-www-form-urlencoded"),
        form("{not json"),
    );
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .expect("body")
        .contains("The input could not be used"));
}

#[test]
fn the_playground_records_nothing_and_escapes_what_it_echoes() {
    let server = Server::start(&[]);
    let hostile = r#"{"resourceType":"ServiceRequest","note":[{"text":"</textarea><script>alert(1)</script>"}]}"#;
    let text = server
        .post(
            "/console/playground",
            Some("application/x-www-form-urlencoded"),
            form(hostile),
        )
        .text()
        .expect("body");
    assert!(!text.contains("<script>alert(1)</script>"), "{text}");
    assert!(text.contains("&lt;script&gt;"), "{text}");
    // Playground calls are not decisions of the gateway: nothing counted.
    let metrics = server.get("/metrics").text().expect("metrics");
    assert!(
        !metrics.contains("referral_gateway_decisions_total{"),
        "{metrics}"
    );
}

#[test]
fn the_dashboard_draws_what_the_gateway_decided() {
    let server = Server::start(&[]);
    for (file, n) in [
        ("us/us05-neck-pain-only-coded.json", 2),
        ("us/us13-calf-swelling-query-dvt.json", 1),
    ] {
        for _ in 0..n {
            server.post("/ServiceRequest", Some(FHIR_JSON), example(file));
        }
    }
    let text = server.get("/console/dashboard").text().expect("body");
    assert!(text.contains("<svg"), "{text}");
    assert!(text.contains(r#"role="img""#));
    // The numbers behind the pictures.
    assert!(
        text.contains(r#"<th scope="row">rejected</th><td class="num">2</td>"#),
        "{text}"
    );
    assert!(
        text.contains(r#"<th scope="row">redirected</th><td class="num">1</td>"#),
        "{text}"
    );
    assert!(
        text.contains(r#"<th scope="row">US05</th><td class="num">2</td>"#),
        "{text}"
    );
}
