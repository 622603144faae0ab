//! Every reject rule's advice, given back as the GP's answer (tests/data/advice-answers.toml):
//! the request is then accepted or redirected, never rejected by the same rule. An advice that
//! asks for something its own rule then rejects again misleads the GP.

mod common;

use common::*;
use referral_gateway::engine;
use referral_gateway::engine::corpus::{build, Case};
use referral_gateway::finding::Decision;
use referral_gateway::parse::{Format, Limits};
use referral_gateway::rules::rule::Action;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdviceCase {
    id: String,
    code: String,
    reason: String,
    #[serde(default)]
    requester: Option<String>,
    #[serde(default)]
    egfr_days: Option<i64>,
    #[serde(default)]
    answers: Vec<String>,
    #[serde(default)]
    answer_requester: Option<String>,
    #[serde(default)]
    answer_egfr_days: Option<i64>,
}

#[derive(Deserialize)]
struct File {
    rule: Vec<AdviceCase>,
}

fn case(a: &AdviceCase, reason: String) -> Case {
    Case {
        id: a.id.clone(),
        code: a.code.clone(),
        procedure_code: None,
        reason: Some(reason),
        reason_code: None,
        note: None,
        age: None,
        requester: a.requester.clone(),
        egfr_days: a.egfr_days,
        two_week_wait_code: false,
        bundle: false,
        decision: Decision::Accepted,
        pathway: None,
        rules: Vec::new(),
        why: String::new(),
        known_miss: None,
    }
}

fn decide(c: &Case) -> (Decision, Vec<String>) {
    let bytes = build(c).to_string();
    let checked =
        engine::check(rules(), bytes.as_bytes(), Format::Json, &Limits::default()).expect("usable");
    let r = only(&checked);
    (r.decision, r.fired.clone())
}

#[test]
fn each_rejection_advice_answered_is_not_rejected_again() {
    let text =
        std::fs::read_to_string(repo().join("tests/data/advice-answers.toml")).expect("file");
    let file: File = toml::from_str(&text).expect("TOML");
    let mut failures = Vec::new();
    for a in &file.rule {
        let base = case(a, a.reason.clone());
        let (d, fired) = decide(&base);
        assert!(
            d == Decision::Rejected && fired.contains(&a.id),
            "{}: the unanswered request must be rejected by it, got {d:?} {fired:?}",
            a.id
        );
        let mut answered: Vec<(String, Case)> = a
            .answers
            .iter()
            .map(|ans| (ans.clone(), case(a, format!("{}. {ans}", a.reason))))
            .collect();
        if let Some(r) = &a.answer_requester {
            let mut c = case(a, a.reason.clone());
            c.requester = Some(r.clone());
            answered.push((format!("requester {r}"), c));
        }
        if let Some(days) = a.answer_egfr_days {
            let mut c = case(a, a.reason.clone());
            c.egfr_days = Some(days);
            answered.push((format!("eGFR {days} days old"), c));
        }
        assert!(!answered.is_empty(), "{}: no answer given", a.id);
        for (answer, c) in answered {
            let (d, fired) = decide(&c);
            if d == Decision::Rejected && fired.contains(&a.id) {
                failures.push(format!(
                    "{} answered '{answer}': still rejected {fired:?}",
                    a.id
                ));
            }
        }
    }
    // Every rule that rejects has its advice answered here.
    for r in &rules().rules {
        if r.def.action == Action::Reject && !file.rule.iter().any(|a| a.id == r.def.id) {
            failures.push(format!(
                "{}: rejects, but its advice is not answered in the file",
                r.def.id
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
