//! What the fuzz targets check, shared by them. Each function panics (a libFuzzer crash) when
//! the gateway breaks one of its promises on an input, not only when it crashes:
//!
//! - every input gets an answer with a status the contract allows;
//! - every answer is a FHIR R4 resource that the strict R4 model reads and that can be written
//!   as well-formed XML (the gateway answers in XML when asked, and a failure there is a 500);
//! - a batch answer has one response entry per request entry; a transaction is all or nothing;
//! - a redirected ServiceRequest points at the request it replaces.

use referral_gateway::cli::report;
use referral_gateway::engine::{self, Checked, EntryResult};
use referral_gateway::finding::Decision;
use referral_gateway::outcome::response::{answer, unusable_answer, validate_answer, Answer};
use referral_gateway::parse::{BundleType, Format, InputKind, Limits};
use referral_gateway::rules::RuleSet;
use serde_json::Value;
use std::sync::OnceLock;

/// The rules shipped in the repository, compiled once per fuzzing process.
pub fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::embedded().expect("the shipped rules compile"))
}

/// The whole pipeline on one input, with every invariant checked.
pub fn pipeline(bytes: &[u8], format: Format) {
    let rules = rules();
    let site = &rules.site;
    let outcome = engine::check(rules, bytes, format, &Limits::default());
    let answers: Vec<Answer> = match &outcome {
        Err(u) => {
            let a = unusable_answer(u, site);
            assert!(matches!(a.status, 400 | 413), "unusable answered {}", a.status);
            vec![a]
        }
        Ok(c) => {
            let a = answer(c, site);
            assert!(
                matches!(a.status, 200 | 400 | 422),
                "answered {}: {}",
                a.status,
                a.body
            );
            check_nothing_lost(c, &a);
            let v = validate_answer(c, site);
            assert_eq!(v.status, 200);
            vec![a, v]
        }
    };
    // The report of `check --format text` must not fail either (it is empty for a Bundle
    // without ServiceRequests).
    let _ = report::render(rules, "fuzz", &outcome, 100, false);
    for a in &answers {
        writable(&a.body);
    }
}

/// The answer is R4 (strict model) and its XML form is well-formed.
pub fn writable(body: &Value) {
    // As the gateway writes XML answers (`negotiate::write`).
    let mut body = body.clone();
    referral_gateway::http::negotiate::xml_safe(&mut body);
    let body = &body;
    let xml = fhir_codec::json_to_xml(body)
        .unwrap_or_else(|e| panic!("the answer is not writable as FHIR XML: {e}\n{body}"));
    if let Err(e) = roxmltree::Document::parse(&xml) {
        panic!("the answer's XML is not well-formed: {e}\n{xml}");
    }
}

fn check_nothing_lost(c: &Checked, a: &Answer) {
    let InputKind::Bundle(kind) = c.input.kind else {
        if let Some(r) = c.requests().next() {
            if r.decision == Decision::Redirected {
                assert_eq!(a.body["resourceType"], "ServiceRequest");
                replaces(&a.body, &c.input.root);
            }
        }
        return;
    };
    let sent = c
        .input
        .root
        .get("entry")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    assert_eq!(c.entries.len(), sent, "an entry got no result");
    let rejected = c.entries.iter().any(|e| match e {
        EntryResult::Request(r) => r.decision == Decision::Rejected,
        EntryResult::Context { findings, .. } => findings.iter().any(|f| f.is_error()),
        EntryResult::NotPerformed { .. } => false,
    });
    if kind == BundleType::Transaction && rejected {
        assert_eq!(a.body["resourceType"], "OperationOutcome", "half-applied");
        assert_ne!(a.status, 200);
        return;
    }
    assert_eq!(a.status, 200);
    let got = a.body.get("entry").and_then(Value::as_array);
    assert_eq!(got.map_or(0, Vec::len), sent, "response entries: {}", a.body);
    for (i, e) in c.entries.iter().enumerate() {
        if let EntryResult::Request(r) = e {
            if let Some(new) = &r.redirected {
                let original = &c.input.root["entry"][i];
                let old_ref = original
                    .get("fullUrl")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                replaces_ref(new, old_ref.as_deref(), &original["resource"]);
            }
        }
    }
}

/// A redirected ServiceRequest names the one it replaces (when that one can be named).
fn replaces(new: &Value, old: &Value) {
    replaces_ref(new, None, old)
}

fn replaces_ref(new: &Value, full_url: Option<&str>, old: &Value) {
    let replaced = new
        .get("replaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(replaced.len(), 1, "a redirect replaces one request: {new}");
    let want = full_url.map(str::to_string).or_else(|| {
        old.get("id")
            .and_then(Value::as_str)
            .map(|id| format!("ServiceRequest/{id}"))
    });
    match want {
        Some(want) => assert_eq!(
            replaced[0]["reference"].as_str(),
            Some(want.as_str()),
            "redirect does not replace {want}: {new}"
        ),
        None => assert_eq!(replaced[0]["type"], "ServiceRequest", "{new}"),
    }
}

/// A rules folder with one file replaced or added: the first line of the input is the file's
/// path inside the folder, the rest its text. Compiling must give a rule set or errors, and a
/// rule set that compiled must decide the examples without failing.
pub fn rule_files(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (name, body) = text.split_once('\n').unwrap_or((text, ""));
    let mut files = referral_gateway::load::embedded_rule_files();
    match files.iter_mut().find(|(n, _)| n == name) {
        Some(f) => f.1 = body.to_string(),
        None => files.push((name.to_string(), body.to_string())),
    }
    files.sort();
    // A folder that is not on disk: rule examples are not looked up.
    let dir = std::path::Path::new("/nonexistent/referral-gateway-fuzz/rules");
    let profiles = referral_gateway::load::embedded_profile_files();
    match RuleSet::compile(&files, &profiles, dir) {
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                let _ = e.to_string();
            }
        }
        Ok(set) => {
            // The new rules decide a request that fires rules of every action.
            for sample in SAMPLES {
                let _ = engine::check(&set, sample.as_bytes(), Format::Json, &Limits::default())
                    .map(|c| answer(&c, &set.site));
            }
            let _ = referral_gateway::rules::publish::code_systems(&set);
        }
    }
}

/// Requests the rule-file target decides with each rule set it compiles.
const SAMPLES: [&str; 3] = [
    include_str!("../../examples/us/us13-calf-swelling-query-dvt.json"),
    include_str!("../../examples/us/us05-neck-pain-only-coded.json"),
    include_str!("../../examples/us/us14-haematuria-age-45-bundle.json"),
];
