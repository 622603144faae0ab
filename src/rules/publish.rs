//! The gateway's CodeSystems (contract §2), generated from the rule set so that they always
//! list exactly the decisions, rules and pathways the gateway uses. `referral-gateway rules
//! codesystems --out profiles` writes them; a test keeps `profiles/` in step with `rules/`.

use super::RuleSet;
use crate::outcome::finding::Decision;
use serde_json::{json, Value};

fn code_system(
    rules: &RuleSet,
    id: &str,
    name: &str,
    title: &str,
    description: &str,
    concepts: Vec<Value>,
) -> Value {
    json!({
        "resourceType": "CodeSystem",
        "id": id,
        "url": rules.site.code_system(id),
        "version": env!("CARGO_PKG_VERSION"),
        "name": name,
        "title": title,
        "status": "active",
        "experimental": false,
        "publisher": "referral-gateway",
        "description": description,
        "caseSensitive": true,
        "content": "complete",
        "count": concepts.len(),
        "concept": concepts,
    })
}

/// `(file name, CodeSystem)` for each of the gateway's CodeSystems.
pub fn code_systems(rules: &RuleSet) -> Vec<(String, Value)> {
    let decisions = [
        (Decision::Accepted, "The request may go ahead as requested (warnings and information may be attached)."),
        (Decision::Rejected, "The request should not go ahead: it is invalid FHIR, or the guidance says the examination is not justified."),
        (Decision::Redirected, "The guidance sends the request to another pathway; the answer is a new ServiceRequest addressed to it."),
    ]
    .iter()
    .map(|(d, def)| json!({"code": d.code(), "display": d.display(), "definition": def}))
    .collect();
    let rule_concepts = rules
        .rules
        .iter()
        .map(|r| json!({"code": r.def.id, "display": r.def.title, "definition": format!("{} (guidance: {})", r.def.guidance.trim(), r.def.section)}))
        .collect();
    let pathways = rules
        .site
        .pathways
        .iter()
        .map(|p| json!({"code": p.id, "display": p.name, "definition": format!("{} ({})", p.booking, p.contact)}))
        .collect();
    vec![
        (
            "CodeSystem-referral-decision.json".into(),
            code_system(rules, "referral-decision", "ReferralDecision", "Referral decision", "The decision referral-gateway makes on a ServiceRequest.", decisions),
        ),
        (
            "CodeSystem-guidance-rule.json".into(),
            code_system(rules, "guidance-rule", "GuidanceRule", "Guidance rule", "The referral guidance rules referral-gateway applies, one per tip of the guidance.", rule_concepts),
        ),
        (
            "CodeSystem-referral-pathway.json".into(),
            code_system(rules, "referral-pathway", "ReferralPathway", "Referral pathway", "The pathways the referral guidance redirects requests to.", pathways),
        ),
    ]
}
