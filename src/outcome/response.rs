//! The answer to a whole input, as the contract's HTTP table and the `check` command give it.

use super::operation_outcome::{operation_outcome, plain_outcome};
use crate::engine::{Checked, EntryResult, RequestResult};
use crate::finding::{Decision, Finding, FindingId, IssueType, Severity};
use crate::parse::{BundleType, InputKind, Unusable};
use crate::site::Site;
use serde_json::{json, Value};

/// A FHIR resource with the HTTP status it goes out with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn status_line(status: u16) -> &'static str {
    match status {
        200 => "200 OK",
        400 => "400 Bad Request",
        405 => "405 Method Not Allowed",
        422 => "422 Unprocessable Entity",
        _ => "500 Internal Server Error",
    }
}

/// The finding of a Bundle entry whose method the gateway does not perform.
fn not_performed(path: &crate::fhirpath::FhirPath, method: &str) -> Finding {
    Finding::new(FindingId::BundleMethodNotPerformed,
        Severity::Error,
        IssueType::NotSupported,
        format!("This gateway does not perform {method} in a Bundle: it decides on ServiceRequests sent with POST (context resources may be sent with POST or PUT) and stores nothing, so there is nothing to read, update, patch or delete."),
    )
    .at(path.clone())
}

/// HTTP status of one decision.
pub fn status_of(r: &RequestResult) -> u16 {
    match (r.invalid, r.decision) {
        (true, _) => 400,
        (false, Decision::Rejected) => 422,
        _ => 200,
    }
}

/// The OperationOutcome of one request: the decision issue, then every finding.
pub fn request_outcome(r: &RequestResult, site: &Site) -> Value {
    let mut oo = operation_outcome(r.decision, r.decision_code, &r.summary, &r.findings, site);
    // The decision issue points at the request it is about.
    if let Some(first) = oo.get_mut("issue").and_then(|i| i.get_mut(0)) {
        first["expression"] = json!([r.path.to_string()]);
    }
    oo
}

/// The answer to a `POST` (contract §4): a ServiceRequest gets its OperationOutcome or its
/// redirected request; a batch gets a `batch-response`; a transaction is all or nothing.
pub fn answer(checked: &Checked, site: &Site) -> Answer {
    match checked.input.kind {
        InputKind::ServiceRequest => match checked.requests().next() {
            Some(r) => match (&r.redirected, r.decision) {
                (Some(sr), Decision::Redirected) => Answer {
                    status: 200,
                    body: sr.clone(),
                },
                _ => Answer {
                    status: status_of(r),
                    body: request_outcome(r, site),
                },
            },
            None => unusable_answer(
                &Unusable::Malformed(vec![Finding::new(
                    FindingId::NoServiceRequest,
                    Severity::Error,
                    IssueType::Required,
                    "No ServiceRequest was found.",
                )]),
                site,
            ),
        },
        InputKind::Bundle(BundleType::Transaction) => transaction_answer(checked, site),
        InputKind::Bundle(t) => Answer {
            status: 200,
            body: response_bundle(checked, site, t.response_type()),
        },
    }
}

/// The answer under `Prefer: return=OperationOutcome` (contract §4, R4 http.html §ops): a
/// ServiceRequest's answer is its decision OperationOutcome, a redirect's too; the entries of a
/// batch- or transaction-response carry their outcome (`response.outcome`) and not the
/// redirected ServiceRequest. Errors are answered as without the preference.
pub fn outcome_answer(checked: &Checked, site: &Site) -> Answer {
    let mut answer = answer(checked, site);
    match checked.input.kind {
        InputKind::ServiceRequest => {
            if let Some(r) = checked.requests().next() {
                answer.body = request_outcome(r, site);
            }
        }
        InputKind::Bundle(_) => {
            if answer.body["resourceType"] == "Bundle" {
                for entry in answer.body["entry"].as_array_mut().into_iter().flatten() {
                    if let Value::Object(e) = entry {
                        e.remove("resource");
                        e.remove("fullUrl");
                    }
                }
            }
        }
    }
    answer
}

fn response_entry(e: &EntryResult, site: &Site) -> Value {
    match e {
        EntryResult::Request(r) => {
            let mut entry = json!({
                "response": { "status": status_line(status_of(r)), "outcome": request_outcome(r, site) }
            });
            if let Some(sr) = &r.redirected {
                let id = sr.get("id").and_then(Value::as_str).unwrap_or_default();
                entry["fullUrl"] = json!(format!("urn:uuid:{id}"));
                entry["resource"] = sr.clone();
            }
            order_entry(entry)
        }
        EntryResult::Context { path, findings } => {
            let invalid = findings.iter().any(Finding::is_error);
            let mut all = findings.clone();
            if !invalid {
                all.push(
                    Finding::new(
                        FindingId::BundleContextRead,
                        Severity::Information,
                        IssueType::Informational,
                        "Context for the ServiceRequests of this Bundle: read, not stored.",
                    )
                    .at(path.clone()),
                );
            }
            json!({ "response": { "status": status_line(if invalid { 400 } else { 200 }), "outcome": plain_outcome(&all, site) } })
        }
        EntryResult::NotPerformed { path, method } => json!({
            "response": {
                "status": status_line(405),
                "outcome": plain_outcome(&[not_performed(path, method)], site),
            }
        }),
    }
}

/// `fullUrl`, `resource`, `response`: the order R4 defines for Bundle.entry.
fn order_entry(entry: Value) -> Value {
    let mut out = serde_json::Map::new();
    for k in ["fullUrl", "resource", "response"] {
        if let Some(v) = entry.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Value::Object(out)
}

fn response_bundle(checked: &Checked, site: &Site, bundle_type: &str) -> Value {
    let entries: Vec<Value> = checked
        .entries
        .iter()
        .map(|e| response_entry(e, site))
        .collect();
    let mut b = json!({ "resourceType": "Bundle", "id": uuid::Uuid::new_v4().to_string(), "type": bundle_type });
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    b
}

fn transaction_answer(checked: &Checked, site: &Site) -> Answer {
    let mut failed = 0;
    let mut any_invalid = false;
    for e in &checked.entries {
        match e {
            EntryResult::Request(r) if r.decision == Decision::Rejected => {
                any_invalid |= r.invalid;
                failed += 1;
            }
            EntryResult::Context { findings, .. } if findings.iter().any(Finding::is_error) => {
                any_invalid = true;
                failed += 1;
            }
            EntryResult::NotPerformed { .. } => {
                any_invalid = true;
                failed += 1;
            }
            _ => {}
        }
    }
    if failed == 0 {
        return Answer {
            status: 200,
            body: response_bundle(checked, site, "transaction-response"),
        };
    }
    // One OperationOutcome naming every failing entry; nothing of the transaction goes ahead.
    let mut issues = vec![json!({
        "severity": "error",
        "code": "processing",
        "details": {
            "coding": [site.decision_coding(Decision::Rejected)],
            "text": format!("Transaction rejected: {} of its entries cannot go ahead, so none of them does.", failed)
        },
    })];
    for e in &checked.entries {
        match e {
            EntryResult::Request(r) if r.decision == Decision::Rejected => {
                let oo = request_outcome(r, site);
                issues.extend(oo["issue"].as_array().cloned().unwrap_or_default());
            }
            EntryResult::Context { findings, .. } => {
                let bad: Vec<Finding> = findings.iter().filter(|f| f.is_error()).cloned().collect();
                issues.extend(
                    plain_outcome(&bad, site)["issue"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            EntryResult::NotPerformed { path, method } => {
                issues.extend(
                    plain_outcome(&[not_performed(path, method)], site)["issue"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            _ => {}
        }
    }
    Answer {
        status: if any_invalid { 400 } else { 422 },
        body: json!({ "resourceType": "OperationOutcome", "issue": issues }),
    }
}

/// `$validate`: always 200, one OperationOutcome with every decision and finding.
pub fn validate_answer(checked: &Checked, site: &Site) -> Answer {
    let mut issues = Vec::new();
    for e in &checked.entries {
        let oo = match e {
            EntryResult::Request(r) => request_outcome(r, site),
            EntryResult::Context { findings, .. } => plain_outcome(findings, site),
            EntryResult::NotPerformed { path, method } => {
                plain_outcome(&[not_performed(path, method)], site)
            }
        };
        issues.extend(oo["issue"].as_array().cloned().unwrap_or_default());
    }
    if issues.is_empty() {
        issues.push(json!({ "severity": "information", "code": "informational", "details": { "text": "The Bundle holds no ServiceRequest." } }));
    }
    Answer {
        status: 200,
        body: json!({ "resourceType": "OperationOutcome", "issue": issues }),
    }
}

/// The answer to an input that could not be used at all.
pub fn unusable_answer(u: &Unusable, site: &Site) -> Answer {
    let (status, code, summary) = match u {
        Unusable::Malformed(_) => (400, IssueType::Invalid, "Rejected: the body is not a usable FHIR R4 resource. Correct the errors listed and send it again."),
        Unusable::TooCostly(_) => (413, IssueType::TooCostly, "Rejected: the body is over this gateway's limits."),
    };
    Answer {
        status,
        body: operation_outcome(Decision::Rejected, code, summary, u.findings(), site),
    }
}
