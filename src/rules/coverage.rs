//! What the guidance could not be applied to, said as warnings on an otherwise accepted
//! request:
//! - the guidance has no tip for this examination (an X-ray, CT or MRI that no tip names):
//!   it was checked against the general tips and the FHIR profile only;
//! - the examination has tips that depend on the clinical reason, and the reason could not be
//!   read at all: those tips could not be applied.

use super::rule::Rule;
use super::RuleSet;
use crate::fhirpath::FhirPath;
use crate::finding::{Finding, FindingId, IssueType, Severity};
use crate::terminology::mapping::Mapped;

/// Rules under `general/` apply to every examination; the others are the examination tips.
fn is_general(rule: &Rule) -> bool {
    rule.file.starts_with("general/")
}

/// Said when the guidance has no tip for the examination.
pub const NO_TIP: &str = "The guidance has no tip for this examination, so it was checked against the general tips (a clinical question; 2WW referrals) and the FHIR profile only.";

/// The coverage warnings for one request, given the rules that fired.
pub fn findings(rules: &RuleSet, mapped: &Mapped, fired: &[String], at: &FhirPath) -> Vec<Finding> {
    let mut out = Vec::new();
    if mapped.procedures.is_empty() {
        return out;
    }
    let terms = &rules.terms;
    let tip_fired = rules
        .rules
        .iter()
        .any(|r| !is_general(r) && fired.contains(&r.def.id));
    if tip_fired {
        return out;
    }
    let first = &mapped.procedures[0];
    let mut titles: Vec<&str> = mapped
        .procedures
        .iter()
        .map(|m| terms.procedures[m.concept].title.as_str())
        .collect();
    titles.dedup();
    if mapped
        .procedures
        .iter()
        .all(|m| !terms.procedures[m.concept].has_tips)
    {
        out.push(
            Finding::new(
                FindingId::NoTip,
                Severity::Warning,
                IssueType::Informational,
                NO_TIP,
            )
            .at(first.path.clone())
            .with_diagnostics(format!(
                "procedure {} ({}): no guidance tip names this examination",
                titles.join(", "),
                mapped.procedure_seen.join(", ")
            )),
        );
        return out;
    }
    // Tips of this examination that depend on the reason, when no reason could be read.
    let unread: Vec<&str> = mapped
        .reason_items
        .iter()
        .flat_map(|i| i.unexplained.iter().map(String::as_str))
        .collect();
    if !mapped.reasons.is_empty() || unread.is_empty() {
        return out;
    }
    let tips: Vec<String> = rules
        .rules
        .iter()
        .filter(|r| {
            !is_general(r)
                && r.when.reads_reason()
                && mapped
                    .procedures
                    .iter()
                    .any(|m| r.when.selects_procedure(terms, m))
        })
        .map(|r| format!("{} ({})", r.def.id, r.def.title))
        .collect();
    if tips.is_empty() {
        return out;
    }
    let item = mapped
        .reason_items
        .iter()
        .find(|i| !i.unexplained.is_empty())
        .map_or_else(|| at.clone(), |i| i.path.clone());
    out.push(
        Finding::new(FindingId::ReasonNotRead,
            Severity::Warning,
            IssueType::Incomplete,
            format!(
                "The clinical reason could not be read, so the guidance tips for this examination that depend on it could not be applied: {}. State the symptom, finding or clinical question in recognised terms, or discuss with the {}.",
                tips.join("; "),
                rules.site.duty_radiologist.name
            ),
        )
        .at(item)
        .with_diagnostics(format!(
            "procedure {}; no reason concept recognised; words not read: {}",
            titles.join(", "),
            unread.join(" ")
        )),
    );
    out
}
