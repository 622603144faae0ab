//! The CodeSystems published in profiles/ list exactly the decisions, rules and pathways the
//! shipped rules use. After editing rules/, regenerate them with
//! `cargo run -- rules publish --out profiles`.

mod common;

use common::*;
use referral_gateway::rules::publish::generated_resources;

#[test]
fn published_code_systems_match_the_rules() {
    for (name, generated) in generated_resources(rules()) {
        let path = repo().join("profiles").join(&name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let on_disk: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            on_disk, generated,
            "{name} is stale: run `cargo run -- rules publish --out profiles`"
        );
    }
}

#[test]
fn every_rule_and_pathway_is_a_concept() {
    let all = generated_resources(rules());
    let codes = |id: &str| -> Vec<String> {
        let cs = &all
            .iter()
            .find(|(_, cs)| cs["id"] == id)
            .expect("code system")
            .1;
        cs["concept"]
            .as_array()
            .expect("concepts")
            .iter()
            .map(|c| c["code"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        codes("referral-decision"),
        vec!["accepted", "rejected", "redirected"]
    );
    assert_eq!(codes("guidance-rule").len(), rules().rules.len());
    for p in [
        "breast-unit",
        "early-pregnancy-unit",
        "mb1-ward",
        "dvt-clinic",
        "haematuria-clinic",
        "urology",
        "gynaecology-or-urology",
        "ent-maxillofacial",
        "oral-surgery",
        "pain-clinic-or-orthopaedics",
        "head-injury-neuro-or-ae",
        "two-week-wait-clinician",
    ] {
        assert!(
            codes("referral-pathway").contains(&p.to_string()),
            "pathway {p} of the contract"
        );
    }
}

#[test]
fn the_embedded_rules_are_the_shipped_rules() {
    let embedded = referral_gateway::rules::RuleSet::embedded().expect("embedded rules compile");
    let ids = |r: &referral_gateway::rules::RuleSet| {
        r.rules.iter().map(|x| x.def.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&embedded), ids(rules()));
    assert_eq!(
        referral_gateway::load::embedded_rule_files(),
        referral_gateway::load::read_rule_files(&repo().join("rules")).expect("reads"),
        "the binary embeds the rules/ folder as it is"
    );
}
