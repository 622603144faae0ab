//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cds;
pub mod harness;
pub mod oidc;
pub mod pg;
pub mod server;
pub mod upstream;

use referral_gateway::engine::{self, Checked, RequestResult};
use referral_gateway::parse::{Format, Limits, Unusable};
use referral_gateway::rules::RuleSet;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The first line a started server writes on stdout (its "listening on ADDR"), or "" when it
/// writes none within a minute (it failed to start: the caller says so with its log).
pub fn first_stdout_line(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let Some(stdout) = child.stdout.take() else {
        return String::new();
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_default()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real third-party FHIR R4 files (HL7, US Core, UK Core), copied into the repository
/// from the project's shared folder; their origins are in the README beside them.
pub fn fhir_examples() -> PathBuf {
    repo().join("tests").join("data").join("fhir-examples")
}

pub fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::load(&repo().join("rules")).expect("the shipped rules load"))
}

pub fn check_bytes(bytes: &[u8], format: Format) -> Result<Checked, Unusable> {
    engine::check(rules(), bytes, format, &Limits::default())
}

pub fn check_json(v: &Value) -> Result<Checked, Unusable> {
    check_bytes(v.to_string().as_bytes(), Format::Json)
}

pub fn check_file(path: &Path) -> Result<Checked, Unusable> {
    let bytes = std::fs::read(path).expect("readable");
    let format = Format::from_path(&path.to_string_lossy()).unwrap_or(Format::Json);
    check_bytes(&bytes, format)
}

/// The one request of a checked input.
pub fn only(c: &Checked) -> &RequestResult {
    let reqs: Vec<_> = c.requests().collect();
    assert_eq!(reqs.len(), 1, "expected one ServiceRequest");
    reqs[0]
}

pub fn expressions(r: &RequestResult) -> Vec<String> {
    r.findings
        .iter()
        .flat_map(|f| f.expression.iter().map(|p| p.to_string()))
        .collect()
}

/// Copies a folder tree (to make an editable copy of rules/ and examples/).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read") {
        let p = e.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

/// `v` (a ServiceRequest, or a Bundle of them) with what the imaging-referral profile requires
/// and a test about something else leaves out: the imaging category, a priority, a requester
/// and an authoring date. Elements already there are kept.
pub fn as_referral(mut v: Value) -> Value {
    fn complete(sr: &mut Value) {
        let Some(o) = sr.as_object_mut() else { return };
        if o.get("resourceType").and_then(Value::as_str) != Some("ServiceRequest") {
            return;
        }
        o.entry("category").or_insert_with(|| {
            serde_json::json!([{"coding": [{"system": "http://snomed.info/sct", "code": "363679005", "display": "Imaging"}]}])
        });
        o.entry("priority").or_insert_with(|| "routine".into());
        o.entry("authoredOn").or_insert_with(|| "2026-06-15".into());
        o.entry("requester")
            .or_insert_with(|| serde_json::json!({"display": "Dr Sam Example (fictitious GP)"}));
    }
    complete(&mut v);
    for key in ["entry", "parameter"] {
        let Some(entries) = v.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for e in entries {
            if let Some(r) = e.get_mut("resource") {
                complete(r);
            }
        }
    }
    v
}
