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
    // Words the reader could not place are listed, with the text they are in.
    let xml_unplaced = r#"<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/><intent value="order"/><code><text value="US abdomen"/></code><subject><reference value="Patient/1"/></subject><reasonCode><text value="abdominal pain, zzyzx for 2 weeks"/></reasonCode></ServiceRequest>"#;
    let text = server
        .post(
            "/console/playground",
            Some("application/x-www-form-urlencoded"),
            form(xml_unplaced),
        )
        .text()
        .expect("body");
    let at = text
        .find("Words not placed")
        .unwrap_or_else(|| panic!("no unplaced words\n{text}"));
    assert!(text[at..].contains("zzyzx"), "{text}");
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

/// A scratch folder, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rg-console-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// POSTs an example; returns the consult id the gateway answered with.
fn decide(server: &Server, file: &str) -> String {
    let res = server.post("/ServiceRequest", Some(FHIR_JSON), example(file));
    res.headers()["x-consult-id"]
        .to_str()
        .expect("consult id")
        .to_string()
}

#[test]
fn a_consult_is_found_by_id_and_by_search_and_shows_why() {
    let server = Server::start(&[]);
    let rejected = decide(&server, "us/us05-neck-pain-only-coded.json");
    let redirected = decide(&server, "us/us13-calf-swelling-query-dvt.json");
    let accepted = decide(&server, "general/gen01-cxr-with-clinical-question.json");

    // By id: the search form sends it to the consult's page.
    let res = server.get(&format!("/console/consults?id={rejected}"));
    assert_eq!(res.status(), 200);
    assert!(res
        .url()
        .path()
        .ends_with(&format!("/console/consults/{rejected}")));
    let page = res.text().expect("body");
    assert!(page.contains(r#"class="decision rejected""#), "{page}");
    assert!(
        page.contains(r##"<a href="/console#rule-US05">US05</a>"##),
        "{page}"
    );
    assert!(
        page.contains("Please do not refer to US") || page.contains("neck"),
        "{page}"
    );
    assert!(page.contains("Not forwarded"), "{page}");
    assert!(page.contains("The request as received"), "{page}");
    let page = server
        .get(&format!("/console/consults/{redirected}"))
        .text()
        .expect("body");
    assert!(page.contains("The redirected request"), "{page}");
    assert!(page.contains("dvt-clinic"), "{page}");

    // Search: by decision, by rule, by date; newest first.
    let list = |q: &str| {
        let res = server.get(&format!("/console/consults?{q}"));
        assert_eq!(res.status(), 200, "{q}");
        res.text().expect("body")
    };
    let all = list("");
    let (a, b, c) = (
        all.find(&accepted).expect("accepted listed"),
        all.find(&redirected).expect("redirected listed"),
        all.find(&rejected).expect("rejected listed"),
    );
    assert!(a < b && b < c, "newest first");
    let only = list("decision=rejected");
    assert!(only.contains(&rejected) && !only.contains(&accepted) && !only.contains(&redirected));
    let only = list("rule=US13");
    assert!(only.contains(&redirected) && !only.contains(&rejected));
    let today = time::OffsetDateTime::now_utc().date();
    let day = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert!(list(&format!("date={day}")).contains(&rejected));
    assert!(!list("date=2001-01-01").contains(&rejected));
    assert!(list("date=2001-01-01").contains("No consult matches"));

    // Bad input is a 400 page, an unknown consult a 404 page: never a panic.
    assert_eq!(server.get("/console/consults?rule=NOPE").status(), 400);
    assert_eq!(server.get("/console/consults?date=yesterday").status(), 400);
    assert_eq!(
        server.get("/console/consults?id=not%20an%20id").status(),
        400
    );
    assert_eq!(server.get("/console/consults?cursor=zzz").status(), 400);
    let res = server.get("/console/consults/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(res.status(), 404);
    assert!(res.text().expect("body").contains("There is no consult"));
}

#[test]
fn consult_search_pages_without_repeating_or_skipping() {
    let server = Server::start(&[]);
    let mut ids: Vec<String> = (0..27)
        .map(|_| decide(&server, "general/gen01-cxr-with-clinical-question.json"))
        .collect();
    ids.reverse();
    let first = server.get("/console/consults").text().expect("body");
    let next = first
        .split(r#"href="/console/consults?cursor="#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a next page link");
    let second = server
        .get(&format!(
            "/console/consults?cursor={}",
            next.replace("&amp;", "&")
        ))
        .text()
        .expect("body");
    for (i, id) in ids.iter().enumerate() {
        let (here, there) = if i < 25 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        assert!(here.contains(id.as_str()), "consult {i} on its page");
        assert!(!there.contains(id.as_str()), "consult {i} only once");
    }
}

#[test]
fn the_catalogue_counts_hits_and_the_dashboard_reads_the_record() {
    let server = Server::start(&[]);
    for _ in 0..2 {
        decide(&server, "us/us05-neck-pain-only-coded.json");
    }
    decide(&server, "us/us13-calf-swelling-query-dvt.json");
    let text = server.get("/console?days=7").text().expect("body");
    assert!(
        text.contains(r#"<a href="/console/consults?rule=US05&amp;days=7">fired 2 times</a>"#),
        "{text}"
    );
    assert!(text.contains("counted over the last 7 days"), "{text}");
    let dash = server
        .get("/console/dashboard?days=7")
        .text()
        .expect("body");
    assert!(dash.contains("Consults per day by decision"), "{dash}");
    assert!(dash.contains("3 consults"), "{dash}");
    assert!(dash.contains("Decision latency (ms)"), "{dash}");
    assert!(dash.contains("No rule is in shadow mode"), "{dash}");
    // Today's column of the time series: 2 rejected, 1 redirected, 3 in all.
    assert!(
        dash.contains(r#"<td class="num">0</td><td class="num">1</td><td class="num">2</td><td class="num">3</td>"#),
        "{dash}"
    );
}

#[test]
fn without_a_store_the_dashboard_shows_the_process_counts() {
    let server = Server::start(&["--store", "none"]);
    server.post(
        "/ServiceRequest",
        Some(FHIR_JSON),
        example("us/us05-neck-pain-only-coded.json"),
    );
    let text = server.get("/console/dashboard").text().expect("body");
    assert!(text.contains("No consult store is configured"), "{text}");
    assert!(
        text.contains(r#"<th scope="row">US05</th><td class="num">1</td>"#),
        "{text}"
    );
    let text = server.get("/console/consults").text().expect("body");
    assert!(text.contains("No consult store is configured"), "{text}");
    let text = server.get("/console").text().expect("body");
    assert!(
        text.contains("hits and overrides are not counted"),
        "{text}"
    );
}

/// A department switches a rule to shadow mode in site data and reloads: the caller no longer
/// sees it, and the console shows the mode and what the rule would have decided.
#[test]
fn a_rule_switched_to_shadow_shows_its_would_be_decisions() {
    let dir = Scratch::new("shadow");
    let rules = dir.0.join("rules");
    common::copy_dir(&repo().join("rules"), &rules);
    let server = Server::start(&["--rules", rules.to_str().expect("path")]);
    let enforced = decide(&server, "us/us05-neck-pain-only-coded.json");
    let site = rules.join("site.toml");
    let text = std::fs::read_to_string(&site).expect("site");
    std::fs::write(&site, format!("{text}US05 = \"shadow\"\n")).expect("write");
    server.signal("-HUP");
    server.wait_for_metric("referral_gateway_rule_reloads_total{result=\"ok\"}", 1);
    let res = server.post(
        "/ServiceRequest",
        Some(FHIR_JSON),
        example("us/us05-neck-pain-only-coded.json"),
    );
    assert_eq!(res.status(), 200, "shadow: the caller is not refused");
    let shadowed = res.headers()["x-consult-id"]
        .to_str()
        .expect("id")
        .to_string();

    let catalogue = server.get("/console").text().expect("body");
    assert!(catalogue.contains("mode: shadow"), "{catalogue}");
    assert!(
        catalogue.contains("would have fired 1 times (shadow)"),
        "{catalogue}"
    );
    let dash = server.get("/console/dashboard").text().expect("body");
    assert!(dash.contains("US05 → would be rejected"), "{dash}");
    assert!(
        dash.contains(r#"<a href="/console/consults?shadow=US05&amp;days=30">1</a>"#),
        "{dash}"
    );
    let list = server
        .get("/console/consults?shadow=US05&days=30")
        .text()
        .expect("body");
    assert!(
        list.contains(&shadowed) && !list.contains(&enforced),
        "{list}"
    );
    let page = server
        .get(&format!("/console/consults/{shadowed}"))
        .text()
        .expect("body");
    assert!(page.contains(r#"class="decision accepted""#), "{page}");
    assert!(page.contains("an earlier rule set") || page.contains("the rules in force now"));
}

/// The value of the first parameter `name` of a Parameters.
fn param<'a>(p: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    p["parameter"]
        .as_array()?
        .iter()
        .find(|x| x["name"] == name)
}

/// Rule ids of the `rule` parameters that fired.
fn fired(p: &serde_json::Value) -> Vec<String> {
    p["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["name"] == "rule")
        .filter(|x| {
            x["part"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|y| y["name"] == "fired" && y["valueBoolean"] == true)
        })
        .filter_map(|x| {
            x["part"].as_array()?.iter().find(|y| y["name"] == "id")?["valueCode"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// Decide a request, change the rules and reload: the old consult is still explained under
/// the rules it was decided with, the new one under the new rules.
#[test]
fn a_past_consult_is_explained_under_the_rule_set_it_was_decided_with() {
    let dir = Scratch::new("reexplain");
    let rules = dir.0.join("rules");
    common::copy_dir(&repo().join("rules"), &rules);
    let server = Server::start(&["--rules", rules.to_str().expect("path")]);
    let old = decide(&server, "us/us05-neck-pain-only-coded.json");
    let us05 = std::fs::read_dir(rules.join("us"))
        .expect("us")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("US05"))
        })
        .expect("US05");
    let text = std::fs::read_to_string(&us05).expect("rule");
    std::fs::write(
        &us05,
        text.replacen("action = \"reject\"", "action = \"warn\"", 1),
    )
    .expect("write");
    server.signal("-HUP");
    server.wait_for_metric("referral_gateway_rule_reloads_total{result=\"ok\"}", 1);
    let new = decide(&server, "us/us05-neck-pain-only-coded.json");

    let explain = |id: &str| {
        let res = server.get(&format!("/ServiceRequest/$explain?consult={id}"));
        assert_eq!(res.status(), 200, "{id}");
        serde_json::from_str::<serde_json::Value>(&res.text().expect("body")).expect("Parameters")
    };
    let (then, now) = (explain(&old), explain(&new));
    assert_eq!(then["resourceType"], "Parameters");
    assert_eq!(
        param(&then, "consult").expect("consult")["valueString"],
        old.as_str()
    );
    assert_eq!(
        param(&then, "decision").expect("decision")["valueCode"],
        "rejected"
    );
    assert_eq!(
        param(&now, "decision").expect("decision")["valueCode"],
        "accepted"
    );
    assert_eq!(fired(&then), ["US05"]);
    assert_eq!(fired(&now), ["US05"]);
    let version = |p: &serde_json::Value| {
        param(p, "ruleSet").expect("ruleSet")["valueString"]
            .as_str()
            .expect("version")
            .to_string()
    };
    assert_ne!(version(&then), version(&now), "two rule sets");
    let health = server.get("/health").text().expect("health");
    assert!(health.contains(&version(&now)) && !health.contains(&version(&then)));

    // The console's consult page links to the same explanation, rendered.
    let page = server
        .get(&format!("/console/consults/{old}"))
        .text()
        .expect("body");
    assert!(page.contains("an earlier rule set"), "{page}");
    assert!(
        page.contains(&format!(r#"href="/console/consults/{old}/explain""#)),
        "{page}"
    );
    let page = server
        .get(&format!("/console/consults/{old}/explain"))
        .text()
        .expect("body");
    assert!(page.contains(r#"class="decision rejected""#), "{page}");
    assert!(page.contains(&version(&then)), "{page}");
    assert!(page.contains("Rules that fired (1)"), "{page}");

    // Asked wrongly: 4xx OperationOutcomes.
    for (q, status) in [
        ("", 400),
        ("?consult=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 404),
        ("?consult=x&colour=red", 400),
    ] {
        let res = server.get(&format!("/ServiceRequest/$explain{q}"));
        assert_eq!(res.status(), status, "{q}");
        let oo: serde_json::Value =
            serde_json::from_str(&res.text().expect("body")).expect("OperationOutcome");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{q}");
    }
}
