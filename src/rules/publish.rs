//! The gateway's CodeSystems (contract §2), generated from the rule set so that they always
//! list exactly the decisions, rules and pathways the gateway uses. `referral-gateway rules
//! publish --out profiles` writes them; a test keeps `profiles/` in step with `rules/`.

use super::RuleSet;
use crate::finding::Decision;
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

/// The reasons a clinician may give for overriding a CDS Hooks card (`card.overrideReasons`,
/// reported back in feedback): code, display, definition.
pub const CDS_OVERRIDE_REASONS: [(&str, &str, &str); 4] = [
    (
        "clinically-indicated",
        "Clinically indicated for this patient",
        "The clinician judges the examination indicated for this patient despite the guidance, and says why in the request.",
    ),
    (
        "discussed-with-radiologist",
        "Discussed with the Duty Radiologist",
        "The request was discussed with the Duty Radiologist, who agreed to it.",
    ),
    (
        "information-not-in-order",
        "The guidance's criteria are met; the order does not show it yet",
        "The clinical information the guidance asks for applies to this patient but is not (yet) recorded in the order.",
    ),
    (
        "pathway-not-available",
        "The suggested pathway is not available for this patient",
        "The pathway the guidance redirects to cannot take this patient (already seen there, declined, out of area).",
    ),
];

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
        .map(|p| json!({"code": p.id, "display": p.name, "definition": format!("{}.", p.booking_with_contact())}))
        .collect();
    let override_reasons = CDS_OVERRIDE_REASONS
        .iter()
        .map(|(code, display, def)| json!({"code": code, "display": display, "definition": def}))
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
        (
            "CodeSystem-cds-override-reason.json".into(),
            code_system(rules, "cds-override-reason", "CdsOverrideReason", "CDS Hooks override reason", "Why a clinician overrode a referral-guidance card of the gateway's CDS Hooks service.", override_reasons),
        ),
    ]
}

/// A ValueSet, ConceptMap or CodeSystem of the terminology: which codes of which systems the
/// gateway maps to which of its procedure and reason concepts (`rules/terminology/*.toml`).
fn terminology_resources(
    rules: &RuleSet,
    concepts: &[crate::terminology::Concept],
    kind: TerminologyKind,
) -> Vec<(String, Value)> {
    let (cs_id, cs_name, cs_title, vs_id, vs_name, vs_title, what) = match kind {
        TerminologyKind::Procedures => (
            "imaging-procedure",
            "ImagingProcedure",
            "Imaging procedure (guidance concept)",
            "imaging-procedures",
            "ImagingProcedures",
            "Imaging procedures the referral guidance names",
            "imaging procedure",
        ),
        TerminologyKind::Reasons => (
            "referral-reason",
            "ReferralReason",
            "Referral reason (guidance concept)",
            "referral-reasons",
            "ReferralReasons",
            "Reasons for referral the referral guidance names",
            "reason for referral",
        ),
    };
    let cs_url = rules.site.code_system(cs_id);
    let canonical = rules.site.canonical.trim_end_matches('/');
    let vs_url = format!("{canonical}/ValueSet/{vs_id}");
    let cm_url = format!("{canonical}/ConceptMap/{vs_id}");
    let cs_concepts: Vec<Value> = concepts
        .iter()
        .map(|c| json!({"code": c.id, "display": c.title}))
        .collect();
    let code_system = code_system(
        rules,
        cs_id,
        cs_name,
        cs_title,
        &format!(
            "The {what} concepts the guidance rules are written against. Codes of SNOMED CT and LOINC map to them (ConceptMap {vs_id}); free text is matched to them by the patterns in rules/terminology."
        ),
        cs_concepts,
    );
    // Systems in order of first appearance, each with its codes in terminology order.
    let mut systems: Vec<(
        &str,
        Vec<(&crate::terminology::CodeDef, &crate::terminology::Concept)>,
    )> = Vec::new();
    for concept in concepts {
        for code in &concept.codes {
            match systems.iter_mut().find(|(s, _)| *s == code.system) {
                Some((_, codes)) => codes.push((code, concept)),
                None => systems.push((&code.system, vec![(code, concept)])),
            }
        }
    }
    let include: Vec<Value> = systems
        .iter()
        .map(|(system, codes)| {
            json!({
                "system": system,
                "concept": codes.iter().map(|(c, _)| json!({"code": c.code, "display": c.display})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value_set = json!({
        "resourceType": "ValueSet",
        "id": vs_id,
        "url": vs_url,
        "version": env!("CARGO_PKG_VERSION"),
        "name": vs_name,
        "title": vs_title,
        "status": "active",
        "experimental": false,
        "publisher": "referral-gateway",
        "description": format!("Every code the gateway maps to a {what} of the referral guidance (generated from rules/terminology; each code's source is recorded there)."),
        "compose": {"include": include},
    });
    let groups: Vec<Value> = systems
        .iter()
        .map(|(system, codes)| {
            let elements: Vec<Value> = codes
                .iter()
                .map(|(c, concept)| {
                    // A concept holding several codes of one system groups them: it is wider.
                    let same_system = concept
                        .codes
                        .iter()
                        .filter(|d| d.system == c.system)
                        .count();
                    json!({
                        "code": c.code,
                        "display": c.display,
                        "target": [{
                            "code": concept.id,
                            "display": concept.title,
                            "equivalence": if same_system > 1 { "wider" } else { "equivalent" },
                        }],
                    })
                })
                .collect();
            json!({"source": system, "target": cs_url, "element": elements})
        })
        .collect();
    let concept_map = json!({
        "resourceType": "ConceptMap",
        "id": vs_id,
        "url": cm_url,
        "version": env!("CARGO_PKG_VERSION"),
        "name": format!("{vs_name}ToGuidanceConcepts"),
        "title": format!("{vs_title}: codes to guidance concepts"),
        "status": "active",
        "experimental": false,
        "publisher": "referral-gateway",
        "description": format!("How the gateway maps SNOMED CT and LOINC codes to the {what} concepts its guidance rules use. 'wider': the concept groups several codes of the system."),
        "sourceCanonical": vs_url,
        "targetCanonical": cs_url,
        "group": groups,
    });
    vec![
        (format!("CodeSystem-{cs_id}.json"), code_system),
        (format!("ValueSet-{vs_id}.json"), value_set),
        (format!("ConceptMap-{vs_id}.json"), concept_map),
    ]
}

#[derive(Clone, Copy)]
enum TerminologyKind {
    Procedures,
    Reasons,
}

/// `(file name, resource)` for every conformance resource generated from the rule set: the
/// CodeSystems of contract §2, and the CodeSystems, ValueSets and ConceptMaps of the
/// terminology. (The StructureDefinition in profiles/ is written by hand.)
pub fn generated_resources(rules: &RuleSet) -> Vec<(String, Value)> {
    let mut all = code_systems(rules);
    all.extend(terminology_resources(
        rules,
        &rules.terms.procedures,
        TerminologyKind::Procedures,
    ));
    all.extend(terminology_resources(
        rules,
        &rules.terms.reasons,
        TerminologyKind::Reasons,
    ));
    all
}
