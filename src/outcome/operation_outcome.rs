//! Findings → FHIR `OperationOutcome`.

use crate::finding::{Decision, Finding, IssueType};
use crate::site::Site;
use serde_json::{json, Map, Value};

pub const LINE_EXTENSION: &str =
    "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line";
pub const COL_EXTENSION: &str =
    "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col";

/// One `OperationOutcome.issue`.
pub fn issue(f: &Finding, site: &Site) -> Value {
    let mut issue = Map::new();
    if let Some((line, col)) = f.position {
        issue.insert(
            "extension".into(),
            json!([
                {"url": LINE_EXTENSION, "valueInteger": line},
                {"url": COL_EXTENSION, "valueInteger": col},
            ]),
        );
    }
    issue.insert("severity".into(), json!(f.severity.as_str()));
    issue.insert("code".into(), json!(f.code));
    let mut details = Map::new();
    if let Some(rule) = &f.rule {
        details.insert(
            "coding".into(),
            json!([{ "system": site.code_system("guidance-rule"), "code": rule.id, "display": rule.title }]),
        );
    }
    details.insert("text".into(), json!(f.text));
    issue.insert("details".into(), Value::Object(details));
    if let Some(d) = &f.diagnostics {
        issue.insert("diagnostics".into(), json!(d));
    }
    if !f.expression.is_empty() {
        issue.insert(
            "expression".into(),
            Value::Array(f.expression.iter().map(|p| json!(p.to_string())).collect()),
        );
    }
    Value::Object(issue)
}

/// The issue that carries a decision (contract §3): `details.coding` is the decision coding.
pub fn decision_issue(decision: Decision, code: IssueType, text: &str, site: &Site) -> Value {
    json!({
        "severity": decision.severity().as_str(),
        "code": code,
        "details": { "coding": [site.decision_coding(decision)], "text": text },
    })
}

/// An OperationOutcome with the decision issue first, then every finding.
pub fn operation_outcome(
    decision: Decision,
    decision_code: IssueType,
    summary: &str,
    findings: &[Finding],
    site: &Site,
) -> Value {
    let mut issues = vec![decision_issue(decision, decision_code, summary, site)];
    issues.extend(findings.iter().map(|f| issue(f, site)));
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

/// An OperationOutcome of findings alone (no decision), e.g. for context entries.
pub fn plain_outcome(findings: &[Finding], site: &Site) -> Value {
    json!({ "resourceType": "OperationOutcome", "issue": findings.iter().map(|f| issue(f, site)).collect::<Vec<_>>() })
}
