//! Issue 5: the StructureDefinitions in profiles/ drive the checks. Each kind of constraint
//! with a request that passes and one that fails; `meta.profile` known and unknown; the shipped
//! profile against every example; a broken profile stops the load; and an edit of the JSON
//! (a `min`) changes the gateway's answer.

mod common;

use common::*;
use referral_gateway::engine::{self, RequestResult};
use referral_gateway::finding::{Decision, Severity};
use referral_gateway::parse::{Format, Limits};
use referral_gateway::rules::RuleSet;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const PROFILE: &str =
    "https://referral-gateway.example.org/fhir/StructureDefinition/imaging-referral";

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("JSON")
}

fn decide_with(rules: &RuleSet, v: &Value, asked: &[String]) -> RequestResult {
    let c = engine::check_with_profiles(
        rules,
        v.to_string().as_bytes(),
        Format::Json,
        &Limits::default(),
        asked,
    )
    .expect("usable");
    let r = c.requests().next().expect("one request").clone();
    r
}

fn decide(v: &Value) -> RequestResult {
    decide_with(rules(), v, &[])
}

/// The profile's findings (no guidance rule), as `(severity, code, expression)`.
fn profile_issues(r: &RequestResult) -> Vec<(Severity, &'static str, String)> {
    r.findings
        .iter()
        .filter(|f| f.rule.is_none() && f.code != "informational")
        .map(|f| {
            (
                f.severity,
                f.code.as_str(),
                f.expression
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn has(r: &RequestResult, code: &str, expression: &str) -> bool {
    profile_issues(r)
        .iter()
        .any(|(s, c, e)| *s == Severity::Error && *c == code && e == expression)
}

/// A request that meets the profile: accepted, no profile finding.
fn valid() -> Value {
    example("general/gen01-cxr-with-clinical-question.json")
}

#[test]
fn every_profile_file_is_fhir_r4_for_fhirbolt() {
    let mut n = 0;
    for e in std::fs::read_dir(repo().join("profiles")).expect("profiles/") {
        let path = e.expect("entry").path();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        fhir_codec::check_json(&v).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 10, "{n} files");
    let c = &rules().conformance;
    assert_eq!(c.profiles.len(), 1);
    assert_eq!(c.profiles[0].url, PROFILE);
    assert!(c
        .value_sets
        .contains_key("https://referral-gateway.example.org/fhir/ValueSet/imaging-procedures"));
}

#[test]
fn cardinality_min() {
    let ok = decide(&valid());
    assert_eq!(ok.decision, Decision::Accepted);
    assert!(profile_issues(&ok).is_empty(), "{:?}", profile_issues(&ok));
    let r = decide(&example("profile/profile-missing-priority.json"));
    assert_eq!(r.decision, Decision::Rejected);
    assert!(!r.invalid, "valid FHIR: rejected (422), not unusable (400)");
    assert_eq!(r.decision_code.as_str(), "required");
    assert!(
        has(&r, "required", "ServiceRequest.priority"),
        "{:?}",
        profile_issues(&r)
    );
    let r = decide(&example("profile/profile-missing-requester-and-date.json"));
    assert!(has(&r, "required", "ServiceRequest.requester"));
    assert!(has(&r, "required", "ServiceRequest.authoredOn"));
}

#[test]
fn pattern_slice_min_and_max() {
    let r = decide(&example("profile/profile-category-not-imaging.json"));
    assert_eq!(r.decision, Decision::Rejected);
    assert!(
        has(&r, "required", "ServiceRequest.category"),
        "{:?}",
        profile_issues(&r)
    );
    let r = decide(&example("profile/profile-two-imaging-categories.json"));
    assert!(
        has(&r, "value", "ServiceRequest.category"),
        "{:?}",
        profile_issues(&r)
    );
    // Another category beside the imaging one is fine: the slicing is open.
    let mut v = valid();
    v["category"]
        .as_array_mut()
        .expect("category")
        .push(json!({"text": "Outpatient"}));
    assert!(profile_issues(&decide(&v)).is_empty());
    // No category at all: one error, not one for the element and one for the slice.
    let mut v = valid();
    v.as_object_mut().expect("object").remove("category");
    let issues = profile_issues(&decide(&v));
    assert_eq!(
        issues
            .iter()
            .filter(|(_, _, e)| e == "ServiceRequest.category")
            .count(),
        1,
        "{issues:?}"
    );
}

#[test]
fn fixed_value() {
    let r = decide(&example("profile/profile-do-not-perform.json"));
    assert_eq!(r.decision, Decision::Rejected);
    assert!(
        has(&r, "value", "ServiceRequest.doNotPerform"),
        "{:?}",
        profile_issues(&r)
    );
    let mut v = valid();
    v["doNotPerform"] = json!(false);
    assert!(profile_issues(&decide(&v)).is_empty());
}

#[test]
fn reference_target_type() {
    let r = decide(&example("profile/profile-subject-is-a-group.json"));
    assert_eq!(r.decision, Decision::Rejected);
    assert!(
        has(&r, "value", "ServiceRequest.subject"),
        "{:?}",
        profile_issues(&r)
    );
    // Resolved through the Bundle: a urn:uuid that is a Patient passes, a Group fails.
    let bundle = |ty: &str| {
        let mut sr = valid();
        sr.as_object_mut().expect("object").remove("contained");
        sr["subject"] = json!({"reference": "urn:uuid:6f1e1c3a-0000-4000-8000-000000000001"});
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:6f1e1c3a-0000-4000-8000-000000000002", "resource": sr},
            {"fullUrl": "urn:uuid:6f1e1c3a-0000-4000-8000-000000000001", "resource": {"resourceType": ty, "id": "x"}}
        ]})
    };
    let at = "Bundle.entry[0].resource.subject";
    assert!(!has(&decide(&bundle("Patient")), "value", at));
    assert!(has(&decide(&bundle("Group")), "value", at));
}

#[test]
fn extensible_binding_warns_and_never_rejects() {
    let r = decide(&example(
        "profile/profile-unmapped-procedure-code-accepted.json",
    ));
    assert_eq!(r.decision, Decision::Accepted);
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "code-invalid" && f.rule.is_none())
        .expect("binding warning");
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.expression[0].to_string(), "ServiceRequest.code");
    assert!(w.text.contains("MAULR"), "{}", w.text);
    // The display ("MRA Upper Limb Rt") still names an MRI, so the guidance was applied: the
    // other warning says no tip names the examination, not that the code was not understood.
    let others: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning && !std::ptr::eq(*f, w))
        .collect();
    assert_eq!(others.len(), 1, "{others:#?}");
    assert!(others[0].text.contains("no tip for this examination"));
    assert!(!r
        .findings
        .iter()
        .any(|f| f.text.contains("guidance could not be applied")));
    // Text alone satisfies an extensible binding.
    let mut v = valid();
    v["code"] = json!({"text": "Chest X-ray"});
    assert!(profile_issues(&decide(&v)).is_empty());
}

#[test]
fn invariants() {
    // irf-1: a reason or a note.
    let r = decide(&example("general/gen01-no-clinical-information.json"));
    assert_eq!(r.decision, Decision::Rejected);
    assert!(
        has(&r, "invariant", "ServiceRequest"),
        "{:?}",
        profile_issues(&r)
    );
    let mut v = example("general/gen01-no-clinical-information.json");
    v["note"] = json!([{"text": "?gallstones, RUQ pain after meals"}]);
    assert!(!has(&decide(&v), "invariant", "ServiceRequest"));
    // irf-2, on ServiceRequest.code: coded or described.
    let mut v = valid();
    v["code"] = json!({"extension": [{"url": "https://example.org/x", "valueString": "x"}]});
    let r = decide(&v);
    assert!(
        has(&r, "invariant", "ServiceRequest.code"),
        "{:?}",
        profile_issues(&r)
    );
}

#[test]
fn declared_profiles_known_and_unknown() {
    let r = decide(&example(
        "profile/profile-declares-imaging-referral-accepted.json",
    ));
    assert_eq!(r.decision, Decision::Accepted);
    assert!(profile_issues(&r).is_empty(), "checked once, and it passes");
    let r = decide(&example(
        "profile/profile-declares-unknown-profile-accepted.json",
    ));
    assert_eq!(r.decision, Decision::Accepted);
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "not-supported")
        .expect("warning");
    assert_eq!(w.severity, Severity::Warning);
    assert!(w
        .text
        .contains("https://fhir.example.org/StructureDefinition/some-other-referral"));
    assert_eq!(
        w.expression[0].to_string(),
        "ServiceRequest.meta.profile[0]"
    );
}

#[test]
fn the_shipped_profile_accepts_every_example_but_those_built_to_fail_it() {
    let mut failing = Vec::new();
    for dir in ["general", "us", "xr", "ct", "profile"] {
        for e in std::fs::read_dir(repo().join("examples").join(dir)).expect("dir") {
            let path = e.expect("entry").path();
            let c = check_file(&path).expect("usable");
            for r in c.requests() {
                if r.findings.iter().any(|f| f.is_error() && f.rule.is_none()) {
                    failing.push(format!(
                        "{dir}/{}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ));
                }
            }
        }
    }
    failing.sort();
    assert_eq!(
        failing,
        vec![
            "general/gen01-no-clinical-information.json",
            "profile/profile-category-not-imaging.json",
            "profile/profile-do-not-perform.json",
            "profile/profile-missing-priority.json",
            "profile/profile-missing-requester-and-date.json",
            "profile/profile-subject-is-a-group.json",
            "profile/profile-two-imaging-categories.json",
        ]
    );
}

/// A copy of rules/ and profiles/ in a temporary folder, to edit.
struct Copy(PathBuf);

impl Copy {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rg-profile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&repo().join("rules"), &dir.join("rules"));
        copy_dir(&repo().join("profiles"), &dir.join("profiles"));
        Copy(dir)
    }

    fn edit(&self, file: &str, f: impl FnOnce(&mut Value)) {
        let path = self.0.join("profiles").join(file);
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        f(&mut v);
        std::fs::write(&path, v.to_string()).expect("write");
    }

    fn load(&self) -> Result<RuleSet, Vec<referral_gateway::rules::LoadError>> {
        RuleSet::load(&self.0.join("rules"))
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn element<'a>(sd: &'a mut Value, id: &str) -> &'a mut Value {
    sd["differential"]["element"]
        .as_array_mut()
        .expect("elements")
        .iter_mut()
        .find(|e| e["id"] == id)
        .expect("element")
}

const SD: &str = "StructureDefinition-imaging-referral.json";

#[test]
fn editing_min_in_the_json_changes_the_answer() {
    let request = example("profile/profile-missing-priority.json");
    assert_eq!(decide(&request).decision, Decision::Rejected);
    let copy = Copy::new("min");
    copy.edit(SD, |sd| {
        element(sd, "ServiceRequest.priority")["min"] = json!(0)
    });
    let relaxed = copy.load().expect("loads");
    let r = decide_with(&relaxed, &request, &[]);
    assert_eq!(r.decision, Decision::Accepted, "{:?}", profile_issues(&r));
    // And the other way: a min on an element the shipped profile leaves optional.
    copy.edit(SD, |sd| {
        element(sd, "ServiceRequest.note")["min"] = json!(1)
    });
    let stricter = copy.load().expect("loads");
    let r = decide_with(&stricter, &valid(), &[]);
    assert_eq!(r.decision, Decision::Rejected);
    assert!(has(&r, "required", "ServiceRequest.note"));
}

#[test]
fn required_binding_from_the_json() {
    let copy = Copy::new("required");
    copy.edit(SD, |sd| {
        element(sd, "ServiceRequest.code")["binding"]["strength"] = json!("required")
    });
    let rules = copy.load().expect("loads");
    let r = decide_with(
        &rules,
        &example("profile/profile-unmapped-procedure-code-accepted.json"),
        &[],
    );
    assert_eq!(r.decision, Decision::Rejected);
    assert!(
        has(&r, "code-invalid", "ServiceRequest.code"),
        "{:?}",
        profile_issues(&r)
    );
    assert_eq!(
        decide_with(&rules, &valid(), &[]).decision,
        Decision::Accepted
    );
}

#[test]
fn a_profile_asked_for_or_declared_is_checked_when_the_gateway_has_it() {
    // A second profile, not enforced: only checked when declared or asked for ($validate).
    let copy = Copy::new("second");
    let mut sd: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("profiles").join(SD)).expect("read"),
    )
    .expect("JSON");
    sd["id"] = json!("urgent-imaging-referral");
    sd["url"] = json!("https://example.org/fhir/StructureDefinition/urgent-imaging-referral");
    sd["name"] = json!("UrgentImagingReferral");
    sd["differential"]["element"] = json!([
        {"id": "ServiceRequest.priority", "path": "ServiceRequest.priority", "fixedCode": "urgent"}
    ]);
    std::fs::write(copy.0.join("profiles/second.json"), sd.to_string()).expect("write");
    let rules = copy.load().expect("loads");
    let url = "https://example.org/fhir/StructureDefinition/urgent-imaging-referral".to_string();
    assert!(profile_issues(&decide_with(&rules, &valid(), &[])).is_empty());
    let asked = decide_with(&rules, &valid(), std::slice::from_ref(&url));
    assert!(
        has(&asked, "value", "ServiceRequest.priority"),
        "{:?}",
        profile_issues(&asked)
    );
    let mut declared = valid();
    declared["meta"] = json!({"profile": [url]});
    assert!(has(
        &decide_with(&rules, &declared, &[]),
        "value",
        "ServiceRequest.priority"
    ));
}

fn load_errors(copy: &Copy) -> String {
    match copy.load() {
        Ok(_) => panic!("a broken profile must not load: {}", copy.0.display()),
        Err(es) => es
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn a_broken_profile_stops_the_load_with_a_clear_message() {
    let copy = Copy::new("broken-vs");
    copy.edit(SD, |sd| {
        element(sd, "ServiceRequest.code")["binding"]["valueSet"] =
            json!("https://example.org/ValueSet/missing")
    });
    let e = load_errors(&copy);
    assert!(
        e.contains("profiles/StructureDefinition-imaging-referral.json")
            && e.contains("https://example.org/ValueSet/missing"),
        "{e}"
    );

    let copy = Copy::new("broken-path");
    copy.edit(SD, |sd| {
        let el = element(sd, "ServiceRequest.priority");
        el["path"] = json!("ServiceRequest.priorty");
    });
    let e = load_errors(&copy);
    assert!(e.contains("no element ServiceRequest.priorty"), "{e}");

    let copy = Copy::new("broken-invariant");
    copy.edit(SD, |sd| {
        element(sd, "ServiceRequest")["constraint"][0]["expression"] =
            json!("reasonCode.exists( or")
    });
    let e = load_errors(&copy);
    assert!(e.contains("irf-1") && e.contains("does not parse"), "{e}");

    let copy = Copy::new("broken-json");
    std::fs::write(copy.0.join("profiles").join(SD), "{ not json").expect("write");
    let e = load_errors(&copy);
    assert!(e.contains(SD), "{e}");

    let copy = Copy::new("not-fhir");
    copy.edit(SD, |sd| sd["colour"] = json!("red"));
    let e = load_errors(&copy);
    assert!(e.contains("not a valid FHIR R4 resource"), "{e}");

    // The CLI says the same and fails.
    let copy = Copy::new("cli");
    copy.edit(SD, |sd| {
        element(sd, "ServiceRequest.priority")["max"] = json!("many")
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["rules", "lint", "--rules"])
        .arg(copy.0.join("rules"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("max 'many'"), "{text}");
}

#[test]
fn lint_lists_what_is_enforced() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["rules", "lint"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(PROFILE) && text.contains("enforced on every request"),
        "{text}"
    );
    assert!(Path::new(&repo().join("profiles").join(SD)).is_file());
}
