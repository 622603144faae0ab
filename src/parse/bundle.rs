//! The integrity of a Bundle's entries (FHIR R4 bundle.html): unique `fullUrl`s (bdl-7), no
//! version-specific `fullUrl` (bdl-8), absolute `fullUrl`s, and a `fullUrl` that agrees with the
//! type and id of its resource.
//!
//! References inside the Bundle are resolved through the `fullUrl`s, so a Bundle that breaks
//! these rules would be decided on whichever entry happened to come first: each break is an
//! error of the Bundle itself, and the Bundle is refused.

use crate::fhirpath::FhirPath;
use crate::finding::{Finding, IssueType, Severity};
use serde_json::Value;
use std::collections::HashMap;

fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The `Type/id` a RESTful URL ends with (`https://x/fhir/Patient/1` → `("Patient", "1")`).
fn rest_tail(url: &str) -> Option<(&str, &str)> {
    let mut parts = url.rsplit('/');
    let id = parts.next()?;
    let ty = parts.next()?;
    (ty.starts_with(|c: char| c.is_ascii_uppercase())
        && ty.chars().all(|c| c.is_ascii_alphanumeric())
        && !id.is_empty())
    .then_some((ty, id))
}

/// Checks the entries of a Bundle found at `root` and returns the errors, each at the FHIRPath
/// of the `fullUrl` concerned.
pub fn check_entries(bundle: &Value, root: &FhirPath) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
        return out;
    };
    let history = bundle.get("type").and_then(Value::as_str) == Some("history");
    let mut seen: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(url) = entry.get("fullUrl").and_then(Value::as_str) else {
            continue;
        };
        let at = root.field("entry").index(i).field("fullUrl");
        let resource = entry.get("resource");
        let s = |k: &str| resource.and_then(|r| r.get(k)).and_then(Value::as_str);
        let version = resource
            .and_then(|r| r.pointer("/meta/versionId"))
            .and_then(Value::as_str);
        if !history {
            if let Some(first) = seen.insert((url, version), i) {
                seen.insert((url, version), first);
                out.push(
                    Finding::new(
                        Severity::Error,
                        IssueType::Invariant,
                        format!(
                            "Entries {first} and {i} have the same fullUrl '{url}': a fullUrl must be unique in a Bundle unless the entries are different versions (meta.versionId) of one resource (FHIR invariant bdl-7). References to it would be ambiguous."
                        ),
                    )
                    .at(at.clone())
                    .with_diagnostics("Bundle bdl-7: (type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()"),
                );
            }
        }
        if url.contains("/_history/") {
            out.push(
                Finding::new(
                    Severity::Error,
                    IssueType::Invariant,
                    format!("The fullUrl '{url}' names a version (/_history/): a fullUrl is the version-independent URL of the resource (FHIR invariant bdl-8)."),
                )
                .at(at.clone())
                .with_diagnostics("Bundle.entry bdl-8: fullUrl.contains('/_history/').not()"),
            );
            continue;
        }
        // urn:uuid and urn:oid forms are checked as any uri is (profile::base).
        if url.starts_with("urn:") {
            continue;
        }
        if !has_scheme(url) {
            out.push(
                Finding::new(
                    Severity::Error,
                    IssueType::Invalid,
                    format!("The fullUrl '{url}' is relative: a fullUrl is an absolute URL (https://server/fhir/Patient/1) or a urn:uuid."),
                )
                .at(at.clone()),
            );
            continue;
        }
        // A RESTful URL: it must agree with the resource's type and id.
        let (Some(rt), Some((ty, id))) = (s("resourceType"), rest_tail(url)) else {
            continue;
        };
        let wrong = if ty != rt {
            Some(format!(
                "ends with the type {ty} but the entry holds a resource of type {rt}"
            ))
        } else {
            match s("id") {
                Some(rid) if rid != id => Some(format!(
                    "ends with the id '{id}' but the resource's id is '{rid}'"
                )),
                Some(_) => None,
                None => Some(format!(
                    "ends with the id '{id}' but the resource has no id"
                )),
            }
        };
        if let Some(why) = wrong {
            out.push(
                Finding::new(
                    Severity::Error,
                    IssueType::Invalid,
                    format!("The fullUrl '{url}' {why}: a RESTful fullUrl must end with the resource's type and id."),
                )
                .at(at.clone()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(entries: Value) -> Vec<(String, String)> {
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
        check_entries(&b, &FhirPath::root("Bundle"))
            .into_iter()
            .map(|f| (f.expression[0].to_string(), f.text))
            .collect()
    }

    const U1: &str = "urn:uuid:0b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11";
    const U2: &str = "urn:uuid:1b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11";

    #[test]
    fn consistent_bundles_pass() {
        let f = check(json!([
            {"fullUrl": U1, "resource": {"resourceType": "Patient", "id": "anything"}},
            {"fullUrl": U2, "resource": {"resourceType": "Patient"}},
            {"fullUrl": "https://example.org/fhir/Patient/7", "resource": {"resourceType": "Patient", "id": "7"}},
            {"fullUrl": "https://example.org/fhir/Observation/8", "resource": {"resourceType": "Observation", "id": "8"}},
            {"fullUrl": "urn:oid:1.2.3.4", "resource": {"resourceType": "Patient"}},
            {"resource": {"resourceType": "Patient"}},
            // bdl-7's exception: the same resource in two versions.
            {"fullUrl": "https://example.org/fhir/Patient/9", "resource": {"resourceType": "Patient", "id": "9", "meta": {"versionId": "1"}}},
            {"fullUrl": "https://example.org/fhir/Patient/9", "resource": {"resourceType": "Patient", "id": "9", "meta": {"versionId": "2"}}},
        ]));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn duplicate_full_urls_break_bdl_7() {
        let f = check(json!([
            {"fullUrl": U1, "resource": {"resourceType": "Patient", "birthDate": "1950-01-01"}},
            {"fullUrl": U2, "resource": {"resourceType": "Patient"}},
            {"fullUrl": U1, "resource": {"resourceType": "Patient", "birthDate": "2010-01-01"}},
        ]));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "Bundle.entry[2].fullUrl");
        assert!(
            f[0].1.contains("bdl-7") && f[0].1.contains("Entries 0 and 2"),
            "{f:?}"
        );
        // Same versionId is no exception.
        let v = json!({"resourceType": "Patient", "id": "9", "meta": {"versionId": "1"}});
        let f = check(
            json!([{"fullUrl": "https://x.org/Patient/9", "resource": v}, {"fullUrl": "https://x.org/Patient/9", "resource": v}]),
        );
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn full_url_forms() {
        let f = check(json!([
            {"fullUrl": "https://x.org/fhir/Patient/1/_history/2", "resource": {"resourceType": "Patient", "id": "1"}},
            {"fullUrl": "Patient/3", "resource": {"resourceType": "Patient", "id": "3"}},
            {"fullUrl": "https://x.org/fhir/Patient/4", "resource": {"resourceType": "Patient", "id": "5"}},
            {"fullUrl": "https://x.org/fhir/Patient/6", "resource": {"resourceType": "Observation", "id": "6"}},
            {"fullUrl": "https://x.org/fhir/Patient/7", "resource": {"resourceType": "Patient"}},
        ]));
        let got: Vec<(&str, &str)> = f
            .iter()
            .map(|(p, t)| (p.as_str(), t.split(':').next().unwrap_or("")))
            .collect();
        assert_eq!(f.len(), 5, "{f:?}");
        assert!(f[0].1.contains("bdl-8"), "{f:?}");
        assert!(f[1].1.contains("relative"), "{f:?}");
        assert!(
            f[2].1.contains("id '4' but the resource's id is '5'"),
            "{f:?}"
        );
        assert!(
            f[3].1
                .contains("type Patient but the entry holds a resource of type Observation"),
            "{f:?}"
        );
        for (i, (p, _)) in got.iter().enumerate() {
            assert_eq!(*p, format!("Bundle.entry[{i}].fullUrl"));
        }
    }
}
