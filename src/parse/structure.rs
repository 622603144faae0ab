//! Is a resource well-formed FHIR R4? fhirbolt (through `fhir-codec`) knows the R4 model but
//! stops at the first error and says neither where nor why in FHIR terms; this module finds
//! every error, locates each one as FHIRPath, and adds the checks fhirbolt 0.4.0 does not make
//! (required elements, empty values, single-for-array; bindings and formats: `profile::base`).

use super::shape::Shapes;
use crate::fhirpath::{FhirPath, Step};
use crate::finding::{Finding, FindingId, IssueType, Severity};
use fhir_codec::{CodecError, ErrorKind};
use serde_json::{Map, Value};

/// At most this many model errors are collected per resource: each costs a few re-parses.
const MAX_MODEL_ERRORS: usize = 20;

/// Checks one resource found at `at` and returns every structure error.
///
/// A resource the single-pass check ([`Shapes::accepts`]) finds clean, and the gateway's own
/// checks too, has nothing for the R4 model to say: fhirbolt is not run. Anything else takes
/// the full check, so every finding is the one fhirbolt's reading gives.
pub fn check_resource(resource: &Value, at: &FhirPath) -> Vec<Finding> {
    let mut findings = Vec::new();
    if Shapes::r4().accepts(resource) {
        own_checks(resource, at, &mut findings);
        if findings.is_empty() {
            return findings;
        }
        findings.clear();
    }
    model_checks(resource, at, &mut findings);
    own_checks(resource, at, &mut findings);
    findings
}

/// Checks a Bundle without its entries' resources (each is checked on its own): the R4 model
/// on the Bundle with its resources taken out, and the gateway's own checks on `bundle`, which
/// do not descend into nested resources.
pub fn check_shell(bundle: &Value, at: &FhirPath) -> Vec<Finding> {
    let mut findings = Vec::new();
    if Shapes::r4().accepts_shell(bundle) {
        own_checks(bundle, at, &mut findings);
        if findings.is_empty() {
            return findings;
        }
        findings.clear();
    }
    model_checks(&shell(bundle), at, &mut findings);
    own_checks(bundle, at, &mut findings);
    findings
}

/// The R4 model's findings on one resource, through fhirbolt alone (no single-pass check, no
/// own checks): for tests that compare the two.
#[doc(hidden)]
pub fn model_findings(resource: &Value, at: &FhirPath) -> Vec<Finding> {
    let mut findings = Vec::new();
    model_checks(resource, at, &mut findings);
    findings
}

/// The Bundle without its entries' resources.
fn shell(bundle: &Value) -> Value {
    let without_resource = |e: &Value| match e {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "resource")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    match bundle {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("entry", Value::Array(es)) => (
                        k.clone(),
                        Value::Array(es.iter().map(without_resource).collect()),
                    ),
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The R4 model checks, through fhirbolt.
fn model_checks(resource: &Value, at: &FhirPath, findings: &mut Vec<Finding>) {
    // The common case costs one parse: a clean round trip, compared with the input to find
    // what fhirbolt silently normalised.
    let mut error = match fhir_codec::round_trip_json(resource) {
        Ok(back) => {
            compare_shapes(resource, &back, at, findings);
            None
        }
        Err(e) => Some(e),
    };
    // fhirbolt stops at the first error: locate it, remove that element, try again.
    let mut working = resource.clone();
    let mut rounds = 0;
    while let Some(e) = error.take() {
        rounds += 1;
        let steps = localise(&working, &e);
        let path = steps_to_path(at, &steps);
        // An element FHIR does not define has no valid FHIRPath: point at its parent. A
        // missing element is named itself (`ServiceRequest.subject`), as the profile's
        // findings name it; its line and column are those of its parent (`source_path`).
        let expression = match &e.kind {
            ErrorKind::UnknownField { .. } => path.parent().unwrap_or_else(|| path.clone()),
            ErrorKind::MissingField { name } => path.field(name),
            _ => path.clone(),
        };
        findings.push(
            Finding {
                source_path: Some(path),
                ..Finding::new(
                    model_id(&e.kind),
                    Severity::Error,
                    code_for(&e.kind),
                    humanise(&e, &steps),
                )
            }
            .at(expression)
            .with_diagnostics(format!("FHIR R4 model: {}", e.brief())),
        );
        if steps.is_empty() || rounds >= MAX_MODEL_ERRORS || !remove(&mut working, &steps) {
            break;
        }
        error = match fhir_codec::round_trip_json(&working) {
            Ok(back) => {
                compare_shapes(&working, &back, at, findings);
                None
            }
            Err(e) => Some(e),
        };
        // A missing element just removed is our removal, not the sender's error.
        if let (Some(e), Some(Step::Field(removed))) = (&error, steps.last()) {
            if is_missing(e, removed) {
                break;
            }
        }
    }
}

/// The element whose removal makes this error go away: the error is inside it. Arrays are
/// bisected so that a Bundle of a thousand entries costs a dozen re-parses, not a thousand.
fn localise(resource: &Value, error: &CodecError) -> Vec<Step> {
    // Probes repeat the operation that failed (a round trip: some errors only show when
    // fhirbolt writes the value back).
    let outcome = |candidate: &Value| fhir_codec::round_trip_json(candidate).err();
    let missing = |e: &CodecError| matches!(e.kind, ErrorKind::MissingField { .. });
    let still_fails =
        |candidate: &Value| outcome(candidate).is_some_and(|e| e == *error || missing(&e));
    let mut steps: Vec<Step> = Vec::new();
    while let Some(node) = get(resource, &steps) {
        let found = match node {
            Value::Object(map) => {
                // Removing a required element raises "missing field" for it: either it was the
                // element at fault or the removal hides the fault. Such keys are suspects only
                // when no other key clears the error.
                let mut suspect = None;
                let mut culprit = None;
                for key in map.keys().filter(|k| k.as_str() != "resourceType") {
                    let mut probe = resource.clone();
                    let mut s = steps.clone();
                    s.push(Step::Field(key.clone()));
                    if !remove(&mut probe, &s) {
                        continue;
                    }
                    match outcome(&probe) {
                        None => {
                            culprit = Some(key);
                            break;
                        }
                        Some(e) if is_missing(&e, key) => {
                            suspect = suspect.or(Some(key));
                        }
                        Some(e) if e != *error && !missing(&e) => {
                            culprit = Some(key);
                            break;
                        }
                        Some(_) => {}
                    }
                }
                // A required element missing from this object is not inside a sibling whose
                // removal only raised "missing field" for that sibling itself: the error is here.
                if matches!(&error.kind, ErrorKind::MissingField { name } if !map.contains_key(name))
                {
                    suspect = None;
                }
                culprit.or(suspect).map(|k| Step::Field(k.clone()))
            }
            Value::Array(items) => {
                let (mut lo, mut hi) = (0usize, items.len());
                // Invariant: removing items[lo..hi] makes the error go away.
                let mut probe = resource.clone();
                if !retain_range(&mut probe, &steps, lo, hi) || still_fails(&probe) {
                    None
                } else {
                    while hi - lo > 1 {
                        let mid = (lo + hi) / 2;
                        let mut probe = resource.clone();
                        if retain_range(&mut probe, &steps, lo, mid) && !still_fails(&probe) {
                            hi = mid;
                        } else {
                            lo = mid;
                        }
                    }
                    Some(Step::Index(lo))
                }
            }
            _ => None,
        };
        match found {
            Some(step) => steps.push(step),
            None => break,
        }
    }
    steps
}

fn get<'a>(value: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |v, s| match s {
        Step::Field(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

fn get_mut<'a>(value: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps.iter().try_fold(value, |v, s| match s {
        Step::Field(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(i),
    })
}

/// Removes the element at `steps`. Removing the last item of an array removes the array.
fn remove(value: &mut Value, steps: &[Step]) -> bool {
    let Some((last, parent)) = steps.split_last() else {
        return false;
    };
    let Some(container) = get_mut(value, parent) else {
        return false;
    };
    match (last, container) {
        (Step::Field(k), Value::Object(map)) => map.shift_remove(k).is_some(),
        (Step::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

/// Removes the items `lo..hi` of the array at `steps`.
fn retain_range(value: &mut Value, steps: &[Step], lo: usize, hi: usize) -> bool {
    match get_mut(value, steps) {
        Some(Value::Array(items)) if hi <= items.len() => {
            items.drain(lo..hi);
            true
        }
        _ => false,
    }
}

fn steps_to_path(at: &FhirPath, steps: &[Step]) -> FhirPath {
    steps.iter().fold(at.clone(), |p, s| match s {
        Step::Field(k) => p.field(k),
        Step::Index(i) => p.index(*i),
    })
}

/// The error says the element `name` is missing.
fn is_missing(e: &CodecError, name: &str) -> bool {
    matches!(&e.kind, ErrorKind::MissingField { name: n } if n == name)
}

fn model_id(kind: &ErrorKind) -> FindingId {
    match kind {
        ErrorKind::UnknownField { .. } => FindingId::UnknownElement,
        ErrorKind::MissingField { .. } => FindingId::ModelElementMissing,
        ErrorKind::InvalidType => FindingId::WrongJsonType,
        ErrorKind::UnknownVariant | ErrorKind::Other => FindingId::NotR4,
    }
}

fn code_for(kind: &ErrorKind) -> IssueType {
    match kind {
        ErrorKind::UnknownField { .. } | ErrorKind::UnknownVariant => IssueType::Structure,
        ErrorKind::MissingField { .. } => IssueType::Required,
        ErrorKind::InvalidType | ErrorKind::Other => IssueType::Invalid,
    }
}

fn humanise(e: &CodecError, steps: &[Step]) -> String {
    let element = steps
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::Field(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
        .unwrap_or("resource");
    match &e.kind {
        ErrorKind::UnknownField { name } => format!("Unknown element '{name}': FHIR R4 does not define it here. Remove it or move it into an extension."),
        ErrorKind::InvalidType => {
            format!("Element '{element}' has the wrong JSON type: {}.", e.detail())
        }
        ErrorKind::MissingField { name } => {
            format!("Required element '{name}' is missing (cardinality 1..1).")
        }
        ErrorKind::UnknownVariant | ErrorKind::Other => {
            format!("Element '{element}' is not valid FHIR R4: {}.", e.brief())
        }
    }
}

/// Reports elements that the input gives as a single value where FHIR R4 wants an array
/// (fhirbolt reads `"category": {..}` as a one-item list without complaint).
fn compare_shapes(input: &Value, back: &Value, at: &FhirPath, out: &mut Vec<Finding>) {
    match (input, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let Some(vb) = b.get(k) else { continue };
                let here = at.field(k);
                if vb.is_array() && !va.is_array() {
                    out.push(
                        Finding::new(FindingId::NotAnArray,
                            Severity::Error,
                            IssueType::Structure,
                            format!("Element '{k}' repeats in FHIR R4 and must be a JSON array, even with one item."),
                        )
                        .at(here),
                    );
                } else {
                    compare_shapes(va, vb, &here, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                compare_shapes(va, vb, &at.index(i), out);
            }
        }
        // fhirbolt reads "12.5" as a decimal and "true" as a boolean; FHIR JSON does not.
        (Value::String(_), Value::Number(_)) => out.push(
            Finding::new(FindingId::NumberAsString, Severity::Error, IssueType::Invalid, "This element is a FHIR decimal or integer: send it as a JSON number, not a string.").at(at.clone()),
        ),
        (Value::String(_), Value::Bool(_)) => out.push(
            Finding::new(FindingId::BooleanAsString, Severity::Error, IssueType::Invalid, "This element is a FHIR boolean: send it as JSON true or false, not a string.").at(at.clone()),
        ),
        _ => {}
    }
}

/// Required elements the gateway relies on, per resource type (required bindings and primitive
/// formats are checked on every element from the R4 definitions: `profile::base`).
const REQUIRED: &[(&str, &[&str])] = &[
    ("ServiceRequest", &["status", "intent", "subject"]),
    ("Bundle", &["type"]),
    ("Observation", &["status", "code"]),
];

fn own_checks(resource: &Value, at: &FhirPath, out: &mut Vec<Finding>) {
    let Some(map) = resource.as_object() else {
        out.push(
            Finding::new(
                FindingId::NotAnObject,
                Severity::Error,
                IssueType::Structure,
                "A resource must be a JSON object.",
            )
            .at(at.clone()),
        );
        return;
    };
    let resource_type = match map.get("resourceType") {
        Some(Value::String(t)) => t.as_str(),
        _ => {
            out.push(
                Finding::new(
                    FindingId::NoResourceType,
                    Severity::Error,
                    IssueType::Required,
                    "The resource has no 'resourceType': every FHIR JSON resource names its type.",
                )
                .at(at.clone()),
            );
            ""
        }
    };
    if let Some((_, elements)) = REQUIRED.iter().find(|(r, _)| *r == resource_type) {
        for element in *elements {
            let missing = at.field(element);
            let reported = out.iter().any(|f| {
                matches!(
                    f.id,
                    FindingId::ModelElementMissing | FindingId::RequiredElementMissing
                ) && f.expression.first() == Some(&missing)
            });
            if !map.contains_key(*element) && !reported {
                out.push(Finding {
                    // Line and column of the resource: the element itself is not there.
                    source_path: Some(at.clone()),
                    ..Finding::new(FindingId::RequiredElementMissing,
                        Severity::Error,
                        IssueType::Required,
                        format!("Required element '{element}' of {resource_type} is missing (cardinality 1..1)."),
                    )
                    .at(missing)
                });
            }
        }
    }
    if let Some(Value::String(id)) = map.get("id") {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !ok {
            out.push(
                Finding::new(
                    FindingId::InvalidId,
                    Severity::Error,
                    IssueType::Invalid,
                    "A resource id is 1 to 64 letters, digits, '-' or '.'.",
                )
                .at(at.field("id")),
            );
        }
    }
    walk_values(map, at, true, out);
}

/// Checks every value: no empty strings, arrays or objects, no nulls, dates that exist.
fn walk_values(map: &Map<String, Value>, at: &FhirPath, is_resource: bool, out: &mut Vec<Finding>) {
    if map.is_empty() {
        out.push(Finding::new(FindingId::EmptyObject, Severity::Error, IssueType::Invalid, "An element must have a value or children: empty objects are not allowed in FHIR JSON.").at(at.clone()));
    }
    for (key, value) in map {
        let here = at.field(key);
        // Nested resources are checked on their own, from their own root.
        if is_resource && key == "contained" {
            if let Value::Array(items) = value {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(m) = item {
                        own_checks_nested(m, &here.index(i), out);
                    }
                }
                continue;
            }
        }
        check_value(key, value, &here, out);
    }
}

fn own_checks_nested(map: &Map<String, Value>, at: &FhirPath, out: &mut Vec<Finding>) {
    // fhirbolt's model allows it (contained is an element of every DomainResource), but chains
    // of contained resources are what FHIR rules out, and references between them could loop.
    if map.contains_key("contained") {
        out.push(
            Finding::new(FindingId::ContainedContainsResources,
                Severity::Error,
                IssueType::Invariant,
                "A contained resource must not contain resources of its own (FHIR invariant dom-2): put them all in the containing resource's 'contained'.",
            )
            .at(at.field("contained")),
        );
    }
    walk_values(map, at, true, out);
}

fn check_value(key: &str, value: &Value, here: &FhirPath, out: &mut Vec<Finding>) {
    match value {
        Value::Null if !key.starts_with('_') => out.push(
            Finding::new(FindingId::NullValue, Severity::Error, IssueType::Invalid, format!("Element '{key}' is null: leave an element out instead of sending null."))
                .at(here.clone()),
        ),
        Value::String(s) if s.trim().is_empty() => out.push(
            Finding::new(FindingId::EmptyString, Severity::Error, IssueType::Invalid, format!("Element '{key}' is an empty string: FHIR strings must have content; leave the element out instead."))
                .at(here.clone()),
        ),
        Value::Array(items) => {
            if items.is_empty() {
                out.push(
                    Finding::new(FindingId::EmptyArray, Severity::Error, IssueType::Invalid, format!("Element '{key}' is an empty array: leave it out instead."))
                        .at(here.clone()),
                );
            }
            for (i, item) in items.iter().enumerate() {
                check_value(key, item, &here.index(i), out);
            }
        }
        // A nested resource (Bundle.entry.resource, Parameters.parameter.resource) is checked
        // on its own, from its own root.
        Value::Object(m) if m.contains_key("resourceType") => {}
        Value::Object(m) => walk_values(m, here, false, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::shape::tests::sr;
    use serde_json::json;

    fn paths(f: &[Finding]) -> Vec<String> {
        f.iter()
            .flat_map(|f| f.expression.iter().map(|p| p.to_string()))
            .collect()
    }

    #[test]
    fn valid_request_has_no_findings() {
        assert!(check_resource(&sr(json!({})), &FhirPath::root("ServiceRequest")).is_empty());
    }

    #[test]
    fn every_unknown_element_is_located() {
        let v = sr(
            json!({"code": {"coding": [{"system": "s", "code": "c"}, {"code": "d", "foo": 1}]}, "reasonCode": [{"text": "x", "bar": true}]}),
        );
        let f = check_resource(&v, &FhirPath::root("ServiceRequest"));
        let mut p = paths(&f);
        p.sort();
        assert_eq!(
            p,
            vec![
                "ServiceRequest.code.coding[1]",
                "ServiceRequest.reasonCode[0]"
            ]
        );
        assert!(f.iter().all(|f| f.code == IssueType::Structure));
        assert!(f.iter().any(|f| f.text.contains("'foo'")));
    }

    #[test]
    fn wrong_type_is_invalid() {
        let f = check_resource(
            &sr(json!({"reasonCode": [{"text": 7}]})),
            &FhirPath::root("ServiceRequest"),
        );
        assert_eq!(paths(&f), vec!["ServiceRequest.reasonCode[0].text"]);
        assert_eq!(f[0].code, IssueType::Invalid);
    }

    #[test]
    fn single_object_for_array() {
        // Dates and bindings are checked from the R4 definitions (profile::base).
        let f = check_resource(
            &sr(json!({"category": {"text": "x"}})),
            &FhirPath::root("ServiceRequest"),
        );
        assert_eq!(paths(&f), vec!["ServiceRequest.category"]);
    }

    #[test]
    fn numbers_and_booleans_in_strings_are_invalid() {
        let f = check_resource(
            &sr(json!({"quantityQuantity": {"value": "x"}})),
            &FhirPath::root("ServiceRequest"),
        );
        assert_eq!(
            paths(&f),
            vec!["ServiceRequest.quantityQuantity.value"],
            "{f:#?}"
        );
        let f = check_resource(
            &sr(json!({"quantityQuantity": {"value": "12.5"}, "doNotPerform": "true"})),
            &FhirPath::root("ServiceRequest"),
        );
        let mut p = paths(&f);
        p.sort();
        assert_eq!(
            p,
            vec![
                "ServiceRequest.doNotPerform",
                "ServiceRequest.quantityQuantity.value"
            ],
            "{f:#?}"
        );
    }

    #[test]
    fn a_required_element_with_a_wrong_type_is_located() {
        let f = check_resource(&sr(json!({"status": 5})), &FhirPath::root("ServiceRequest"));
        assert_eq!(paths(&f), vec!["ServiceRequest.status"], "{f:#?}");
    }

    #[test]
    fn locates_errors_deep_in_large_arrays() {
        let mut entries: Vec<Value> = (0..300)
            .map(|i| json!({"fullUrl": format!("urn:uuid:00000000-0000-0000-0000-{i:012}"), "resource": sr(json!({}))}))
            .collect();
        entries[217]["resource"]["oops"] = json!(1);
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
        let f = check_resource(&b, &FhirPath::root("Bundle"));
        assert_eq!(paths(&f), vec!["Bundle.entry[217].resource"]);
        assert_eq!(
            f[0].source_path.as_ref().map(|p| p.to_string()).as_deref(),
            Some("Bundle.entry[217].resource.oops")
        );
    }
}
