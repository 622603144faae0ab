//! The clinical corpus (tests/corpus/*.toml): GP-style referrals written from the guidance,
//! each with the decision, pathway and rules the guidance expects. Prints the per-rule
//! precision / recall table (`cargo test --test corpus -- --nocapture`; the same table as
//! `referral-gateway rules report`) and fails on any disagreement.

mod common;

use common::*;
use referral_gateway::engine::corpus as report;

#[test]
fn corpus_is_decided_as_the_guidance_says() {
    let cases = report::read_corpus(&repo().join("tests/corpus")).expect("corpus reads");
    assert!(cases.len() >= 150, "the corpus has {} cases", cases.len());
    let outcomes = report::run(rules(), &cases);
    let table = report::markdown(rules(), &outcomes);
    println!("{table}");
    // A known miss (a case's `known_miss`) is kept and counted in the score, but does not fail
    // the test; one that starts agreeing does, so that its note is removed.
    let wrong: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.agrees() && o.known_miss.is_none())
        .collect();
    let rules_wrong: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.rules_agree() && o.known_miss.is_none())
        .collect();
    assert!(
        wrong.is_empty() && rules_wrong.is_empty(),
        "{} decisions and {} rule sets disagree with the guidance:\n{table}",
        wrong.len(),
        rules_wrong.len()
    );
    let fixed: Vec<_> = outcomes
        .iter()
        .filter(|o| o.known_miss.is_some() && o.agrees() && o.rules_agree())
        .map(|o| o.id.as_str())
        .collect();
    assert!(
        fixed.is_empty(),
        "these cases are marked known_miss but now agree; remove the note: {fixed:?}"
    );
}

/// Every rule of the corpus is exercised both ways: at least one case where it fires and one
/// near miss where it must not (a case naming the same examination and the rule's subject).
#[test]
fn every_rule_has_firing_cases_and_near_misses() {
    let cases = report::read_corpus(&repo().join("tests/corpus")).expect("corpus reads");
    for rule in &rules().rules {
        let id = &rule.def.id;
        let firing = cases.iter().filter(|c| c.rules.contains(id)).count();
        let near = cases
            .iter()
            .filter(|c| !c.rules.contains(id) && c.why.contains(id.as_str()))
            .count();
        assert!(firing >= 1, "{id}: no corpus case fires it");
        assert!(
            near >= 1,
            "{id}: no near miss (a case whose reason names {id} but that must not fire it)"
        );
    }
}
