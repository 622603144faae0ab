//! The console in a real browser: headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from tests/support/browser/, no browser download) opens every view, tries
//! the playground on an example of each decision, uploads a file, searches consults, looks a
//! consult up by id and explains it under its own rule set, switches a rule to shadow mode in
//! a copy of the site data and finds its would-be decisions on the dashboard, and runs
//! axe-core on every page (no serious or critical violation), with no JavaScript error and no
//! failed request. Screenshots go to a scratch folder, or to docs/screenshots/ with
//! `UPDATE_SCREENSHOTS=1` (the README shows those).
//!
//! Without chromium or node the test says so loudly and skips; with `CI=true` it fails
//! (`.ci/steps/14-chromium.sh` installs them).

mod common;

use common::repo;
use common::server::Server;
use std::path::Path;
use std::process::Command;

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn missing(what: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!(
        "\n=====================================================================\n\
         SKIPPED: the console's browser tests need {what}.\n\
         Install it (apt-get install -y chromium chromium-driver nodejs npm) or run\n\
         .ci/steps/14-chromium.sh.\n\
         =====================================================================\n"
    );
    assert!(
        !ci,
        "CI=true: the browser tests must run, but {what} is missing"
    );
}

#[test]
fn the_console_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return missing("Chromium (/usr/bin/chromium)");
    }
    if !have("node", "--version") || !have("npm", "--version") {
        return missing("node and npm");
    }
    let support = repo().join("tests/support/browser");
    if !support.join("node_modules/playwright-core").is_dir()
        || !support.join("node_modules/axe-core").is_dir()
    {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&support)
            .output()
            .expect("npm runs");
        assert!(
            out.status.success(),
            "npm ci in tests/support/browser failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let shots = if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        repo().join("docs/screenshots")
    } else {
        std::env::temp_dir().join(format!("rg-screenshots-{}", std::process::id()))
    };
    // The gateway on a copy of rules/, with its own temp store.
    // In a folder of its own: the gateway checks the examples in the folder beside rules/, and
    // a stray /tmp/examples must not be read as this copy's.
    let rules = std::env::temp_dir()
        .join(format!("rg-browser-{}", std::process::id()))
        .join("rules");
    let _ = std::fs::remove_dir_all(&rules);
    common::copy_dir(&repo().join("rules"), &rules);
    let server = Server::start(&["--rules", rules.to_str().expect("path")]);
    // Something on the dashboard: a decision of each kind.
    let mut rejected = None;
    for file in [
        "general/gen01-cxr-with-clinical-question.json",
        "us/us05-neck-pain-only-coded.json",
        "us/us13-calf-swelling-query-dvt.json",
    ] {
        let body = std::fs::read(repo().join("examples").join(file)).expect("example");
        let res = server.post("/ServiceRequest", Some(common::server::FHIR_JSON), body);
        if res.status() == 422 {
            rejected = res.headers()["x-consult-id"]
                .to_str()
                .ok()
                .map(str::to_string);
        }
    }
    let rejected = rejected.expect("US05 rejected the neck-pain request");
    // The department switches US05 to shadow mode in site data and reloads; the same request
    // is now accepted, and US05's would-be rejection is recorded.
    let site = rules.join("site.toml");
    let text = std::fs::read_to_string(&site).expect("site.toml");
    std::fs::write(&site, format!("{text}US05 = \"shadow\"\n")).expect("write site.toml");
    server.signal("-HUP");
    server.wait_for_metric("referral_gateway_rule_reloads_total{result=\"ok\"}", 1);
    let body =
        std::fs::read(repo().join("examples/us/us05-neck-pain-only-coded.json")).expect("example");
    let res = server.post("/ServiceRequest", Some(common::server::FHIR_JSON), body);
    assert_eq!(res.status(), 200, "US05 in shadow mode refuses nothing");
    let out = Command::new("node")
        .arg(support.join("console.mjs"))
        .arg(&server.base)
        .arg(&shots)
        .arg(repo().join("examples"))
        .arg(&rejected)
        .arg("US05")
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    for view in ["rules", "playground", "dashboard", "consults"] {
        let png = shots.join(format!("{view}.png"));
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "no screenshot {}",
            png.display()
        );
    }
    if !shots.starts_with(repo()) {
        let _ = std::fs::remove_dir_all(&shots);
    }
    let _ = std::fs::remove_dir_all(&rules);
}
