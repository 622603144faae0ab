//! A rule's `yields_to` (rules/README.md): when the more specific tip fires too, it speaks for
//! the request alone. US01 (a benign lump) yields to US04 (a benign lesion under follow-up).

mod common;

use common::{as_referral, copy_dir};
use referral_gateway::engine::{self, trace::Trace};
use referral_gateway::finding::Decision;
use referral_gateway::parse::{Format, Limits};
use referral_gateway::rules::RuleSet;
use serde_json::json;
use std::path::{Path, PathBuf};

const FOLLOW_UP: &str =
    "Lipoma R forearm, soft, mobile, non-tender, 3 cm, unchanged since 2024. Yearly scan please.";
const LUMP_ONLY: &str = "Lipoma R forearm, soft, mobile, non-tender, 3 cm.";

fn shipped() -> RuleSet {
    RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).expect("shipped rules")
}

/// A copy of the shipped rules and examples in a folder of its own, edited by `edit`.
fn edited(name: &str, edit: impl Fn(&Path)) -> (Result<RuleSet, String>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("rg-yields-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&repo.join("rules"), &dir.join("rules"));
    copy_dir(&repo.join("examples"), &dir.join("examples"));
    edit(&dir.join("rules"));
    let loaded = RuleSet::load(&dir.join("rules")).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    });
    (loaded, dir)
}

fn request(reason: &str) -> Vec<u8> {
    as_referral(json!({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "code": {"text": "US soft tissue R forearm"}, "authoredOn": "2026-06-15",
        "subject": {"reference": "#p"}, "requester": {"display": "Dr Example (fictitious GP)"},
        "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"}],
        "reasonCode": [{"text": reason}]
    }))
    .to_string()
    .into_bytes()
}

fn decided(rules: &RuleSet, reason: &str) -> (Decision, Vec<String>, Option<Vec<String>>) {
    let checked =
        engine::check(rules, &request(reason), Format::Json, &Limits::default()).expect("usable");
    let r = checked.requests().next().expect("one request");
    (
        r.decision,
        r.fired.clone(),
        r.shadow.as_ref().map(|s| s.fired.clone()),
    )
}

fn explained(rules: &RuleSet, reason: &str) -> Trace {
    let checked =
        engine::check_explained(rules, &request(reason), Format::Json, &Limits::default())
            .expect("usable");
    let r = checked.requests().next().expect("one request");
    (**r.trace.as_ref().expect("a trace")).clone()
}

#[test]
fn the_follow_up_tip_speaks_for_a_benign_lesion_under_follow_up() {
    let rules = shipped();
    assert_eq!(
        decided(&rules, FOLLOW_UP),
        (Decision::Rejected, vec!["US04".to_string()], None)
    );
    // Without the follow-up, US04 does not fire and US01 speaks.
    assert_eq!(
        decided(&rules, LUMP_ONLY),
        (Decision::Rejected, vec!["US01".to_string()], None)
    );
}

#[test]
fn explain_says_which_rule_was_yielded_to() {
    let trace = explained(&shipped(), FOLLOW_UP);
    let us01 = trace.rules.iter().find(|r| r.id == "US01").expect("US01");
    assert!(!us01.fired);
    let step = us01
        .conditions
        .iter()
        .find(|c| c.name == "yields_to")
        .expect("a yields_to step");
    assert_eq!(step.held, Some(false));
    assert!(step.why.contains("US04 fired"), "{}", step.why);
    // Every other condition of US01 held: it yielded, it did not fail.
    assert!(us01
        .conditions
        .iter()
        .filter(|c| c.name != "yields_to")
        .all(|c| c.held == Some(true)));
}

#[test]
fn a_rule_in_shadow_mode_is_never_yielded_to() {
    let (rules, dir) = edited("shadow", |rules| {
        let site = rules.join("site.toml");
        let text = std::fs::read_to_string(&site).expect("site.toml");
        let text = text.replace("[rule_modes]\n", "[rule_modes]\nUS04 = \"shadow\"\n");
        std::fs::write(&site, text).expect("write site.toml");
    });
    let rules = rules.expect("the edited rules load");
    assert_eq!(
        decided(&rules, FOLLOW_UP),
        (
            Decision::Rejected,
            vec!["US01".to_string()],
            Some(vec!["US04".to_string()])
        ),
        "US04 in shadow changes no answer: US01 still rejects, US04 is recorded"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn yielding_to_an_unknown_rule_stops_the_load() {
    let (rules, dir) = edited("unknown", |rules| {
        let file = rules.join("us/US01-soft-tissue-lump-benign.toml");
        let text = std::fs::read_to_string(&file).expect("US01");
        std::fs::write(
            &file,
            text.replace("yields_to = [\"US04\"]", "yields_to = [\"US99\"]"),
        )
        .expect("write US01");
    });
    let Err(errors) = rules else {
        panic!("the load fails")
    };
    assert!(
        errors.contains("US01-soft-tissue-lump-benign.toml")
            && errors.contains("yields_to: there is no other rule 'US99'"),
        "{errors}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
