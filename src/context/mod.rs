//! Stage 2: the context of a ServiceRequest, resolved the FHIR way (contract §1).
//!
//! `subject` → Patient, `requester` → Practitioner / PractitionerRole → Organization,
//! `supportingInfo` → Observation; through `#contained` ids, Bundle `fullUrl`s (`urn:uuid:` or
//! absolute) and `Type/id` references. What cannot be resolved is recorded as missing, with
//! where it was looked for, and never guessed.

use crate::dates::{self, Age, DateRange};
use crate::fhirpath::FhirPath;
use crate::parse::Input;
use serde_json::Value;
use std::collections::HashMap;

/// The identifier system of NHS ODS organisation codes.
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// A resource found in the input, with where it is.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    pub resource: &'a Value,
    pub path: &'a FhirPath,
}

/// Finds the resources of an input by reference. Built once per input.
pub struct Resolver<'a> {
    input: &'a Input,
    by_key: HashMap<String, usize>,
}

impl<'a> Resolver<'a> {
    pub fn new(input: &'a Input) -> Self {
        let mut by_key = HashMap::new();
        for (i, entry) in input.entries.iter().enumerate() {
            if let Some(url) = &entry.full_url {
                by_key.insert(url.clone(), i);
                if let Some(k) = type_id_key(url) {
                    by_key.entry(k).or_insert(i);
                }
            }
            if let Some(id) = input
                .resource(entry)
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str)
            {
                by_key
                    .entry(format!("{}/{}", entry.resource_type, id))
                    .or_insert(i);
            }
        }
        Self { input, by_key }
    }

    /// Resolves `reference` made from the resource `from` found at `from_path`.
    /// Returns the resource and its path, with the path of a contained resource built here.
    pub fn resolve(
        &self,
        reference: &str,
        from: &'a Value,
        from_path: &FhirPath,
    ) -> Option<(&'a Value, FhirPath)> {
        if let Some(local) = reference.strip_prefix('#') {
            let contained = from.get("contained")?.as_array()?;
            return contained.iter().enumerate().find_map(|(i, c)| {
                (c.get("id").and_then(Value::as_str) == Some(local))
                    .then(|| (c, from_path.field("contained").index(i)))
            });
        }
        let i = self
            .by_key
            .get(reference)
            .or_else(|| type_id_key(reference).and_then(|k| self.by_key.get(&k)))?;
        let entry = self.input.entries.get(*i)?;
        Some((self.input.resource(entry)?, entry.path.clone()))
    }

    pub fn is_bundle(&self) -> bool {
        !matches!(self.input.kind, crate::parse::InputKind::ServiceRequest)
    }
}

/// `Type/id` from a relative or absolute reference (`http://x/fhir/Patient/1/_history/2`).
fn type_id_key(reference: &str) -> Option<String> {
    if reference.starts_with("urn:") {
        return None;
    }
    let trimmed = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let mut parts = trimmed.rsplit('/');
    let id = parts.next()?;
    let ty = parts.next()?;
    (ty.chars().next()?.is_ascii_uppercase() && !id.is_empty()).then(|| format!("{ty}/{id}"))
}

/// Context that could not be resolved: what, and where it was looked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    pub what: &'static str,
    pub looked: String,
    pub at: FhirPath,
}

/// A supporting Observation with its date.
#[derive(Debug, Clone)]
pub struct SupportingObservation<'a> {
    pub resource: &'a Value,
    pub path: FhirPath,
    pub effective: Option<DateRange>,
}

/// Everything the rules may ask about a request's context.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The date the request was made (authoredOn, or today when absent).
    pub authored: time::Date,
    pub authored_given: bool,
    pub patient: Option<(&'a Value, FhirPath)>,
    pub age: Result<Age, Missing>,
    /// ODS codes of the requesting organisation(s).
    pub organisation_ods: Result<Vec<String>, Missing>,
    /// What the request says about who asks, in words: the requester's display, the
    /// Organization's name and type, the PractitionerRole's code and specialty (read to tell a
    /// general practice from an authorised centre when there is no ODS code).
    pub requester_descriptions: Vec<String>,
    pub observations: Vec<SupportingObservation<'a>>,
    /// Conditions and Observations named in `reasonReference`.
    /// One per `reasonReference`, in order: the resource it resolves to, if it does.
    pub reason_resources: Vec<Option<(&'a Value, FhirPath)>>,
    /// References that did not resolve (reported as information).
    pub unresolved: Vec<Missing>,
}

/// The items of a repeating element, with their indexes (none when it is absent).
pub fn repeated<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn reference_of(v: &Value) -> Option<&str> {
    v.get("reference").and_then(Value::as_str)
}

fn ods_of(identifiers: Option<&Value>) -> Vec<String> {
    identifiers
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|id| id.get("system").and_then(Value::as_str) == Some(ODS_SYSTEM))
        .filter_map(|id| id.get("value").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The ODS code of a single `Identifier`, if it is one.
fn ods_of_identifier(identifier: Option<&Value>) -> Vec<String> {
    identifier
        .filter(|i| i.get("system").and_then(Value::as_str) == Some(ODS_SYSTEM))
        .and_then(|i| i.get("value").and_then(Value::as_str))
        .map(|s| vec![s.to_string()])
        .unwrap_or_default()
}

/// Resolves the context of the ServiceRequest `sr` found at `at`.
pub fn resolve<'a>(resolver: &Resolver<'a>, sr: &'a Value, at: &FhirPath) -> Context<'a> {
    let authored_range = sr
        .get("authoredOn")
        .and_then(Value::as_str)
        .and_then(|s| dates::parse_fhir_datetime(s).ok());
    let authored = authored_range
        .map(|r| r.earliest)
        .unwrap_or_else(dates::today);
    let mut unresolved = Vec::new();
    let where_looked = if resolver.is_bundle() {
        "the request's contained resources and the Bundle's entries (by fullUrl and Type/id)"
    } else {
        "the request's contained resources (a single ServiceRequest carries no other resources)"
    };

    // subject → Patient → age
    let subject_path = at.field("subject");
    let patient = match sr.get("subject").and_then(reference_of) {
        Some(r) => match resolver.resolve(r, sr, at) {
            Some((p, path)) if p.get("resourceType").and_then(Value::as_str) == Some("Patient") => {
                Some((p, path))
            }
            _ => {
                unresolved.push(Missing {
                    what: "patient",
                    looked: format!("ServiceRequest.subject refers to '{r}', which was not found as a Patient in {where_looked}"),
                    at: subject_path.clone(),
                });
                None
            }
        },
        None => None,
    };
    let age = match &patient {
        Some((p, path)) => match p
            .get("birthDate")
            .and_then(Value::as_str)
            .map(dates::parse_fhir_datetime)
        {
            Some(Ok(birth)) => Ok(dates::age_at(birth, authored)),
            Some(Err(_)) | None => Err(Missing {
                what: "patient age",
                looked: "the Patient has no valid birthDate".into(),
                at: path.clone(),
            }),
        },
        None => Err(Missing {
            what: "patient age",
            looked: match sr.get("subject").and_then(reference_of) {
                Some(r) => {
                    format!("the subject '{r}' did not resolve to a Patient in {where_looked}")
                }
                None => "ServiceRequest.subject has no reference to a Patient".into(),
            },
            at: subject_path,
        }),
    };

    // requester → Practitioner / PractitionerRole / Organization → ODS code
    let organisation_ods = requester_organisation(resolver, sr, at, where_looked, &mut unresolved);
    let requester_descriptions = requester_descriptions(resolver, sr, at);

    // supportingInfo → Observation
    let mut observations = Vec::new();
    for (i, info) in repeated(sr, "supportingInfo") {
        let Some(r) = reference_of(info) else {
            continue;
        };
        match resolver.resolve(r, sr, at) {
            Some((o, path))
                if o.get("resourceType").and_then(Value::as_str) == Some("Observation") =>
            {
                let effective = ["effectiveDateTime", "effectiveInstant", "issued"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))
                    .or_else(|| o.pointer("/effectivePeriod/end").and_then(Value::as_str))
                    .or_else(|| o.pointer("/effectivePeriod/start").and_then(Value::as_str))
                    .and_then(|s| dates::parse_fhir_datetime(s).ok());
                observations.push(SupportingObservation {
                    resource: o,
                    path,
                    effective,
                });
            }
            Some(_) => {}
            None => unresolved.push(Missing {
                what: "supporting information",
                looked: format!("supportingInfo '{r}' was not found in {where_looked}"),
                at: at.field("supportingInfo").index(i),
            }),
        }
    }

    let mut reason_resources = Vec::new();
    for (i, rr) in repeated(sr, "reasonReference") {
        let Some(r) = reference_of(rr) else {
            reason_resources.push(None);
            continue;
        };
        let found = resolver.resolve(r, sr, at);
        let missing = found.is_none();
        reason_resources.push(found);
        if missing {
            unresolved.push(Missing {
                what: "reason",
                looked: format!("reasonReference '{r}' was not found in {where_looked}; its display text is used if given"),
                at: at.field("reasonReference").index(i),
            });
        }
    }

    Context {
        authored,
        authored_given: authored_range.is_some(),
        patient,
        age,
        organisation_ods,
        requester_descriptions,
        observations,
        reason_resources,
        unresolved,
    }
}

/// The words of `cc` (a CodeableConcept): its text and its codings' displays.
fn concept_words(cc: &Value, out: &mut Vec<String>) {
    if let Some(t) = cc.get("text").and_then(Value::as_str) {
        out.push(t.to_string());
    }
    for c in cc
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(d) = c.get("display").and_then(Value::as_str) {
            out.push(d.to_string());
        }
    }
}

fn requester_descriptions(resolver: &Resolver<'_>, sr: &Value, at: &FhirPath) -> Vec<String> {
    let mut out = Vec::new();
    let Some(requester) = sr.get("requester") else {
        return out;
    };
    if let Some(d) = requester.get("display").and_then(Value::as_str) {
        out.push(d.to_string());
    }
    let Some((res, res_path)) = reference_of(requester).and_then(|r| resolver.resolve(r, sr, at))
    else {
        return out;
    };
    let organisation = |o: &Value, out: &mut Vec<String>| {
        for key in ["name", "alias"] {
            match o.get(key) {
                Some(Value::String(n)) => out.push(n.clone()),
                Some(Value::Array(a)) => {
                    out.extend(a.iter().filter_map(Value::as_str).map(str::to_string))
                }
                _ => {}
            }
        }
        for (_, t) in repeated(o, "type") {
            concept_words(t, out);
        }
    };
    match res.get("resourceType").and_then(Value::as_str) {
        Some("Organization") => organisation(res, &mut out),
        Some("PractitionerRole") => {
            for key in ["code", "specialty"] {
                for (_, c) in repeated(res, key) {
                    concept_words(c, &mut out);
                }
            }
            if let Some(o) = res.get("organization") {
                if let Some(d) = o.get("display").and_then(Value::as_str) {
                    out.push(d.to_string());
                }
                if let Some((org, _)) = reference_of(o).and_then(|r| {
                    resolver
                        .resolve(r, res, &res_path)
                        .or_else(|| resolver.resolve(r, sr, at))
                }) {
                    organisation(org, &mut out);
                }
            }
        }
        Some("Practitioner") => {
            for (_, q) in repeated(res, "qualification") {
                if let Some(c) = q.get("code") {
                    concept_words(c, &mut out);
                }
            }
        }
        _ => {}
    }
    out
}

fn requester_organisation<'a>(
    resolver: &Resolver<'a>,
    sr: &'a Value,
    at: &FhirPath,
    where_looked: &str,
    unresolved: &mut Vec<Missing>,
) -> Result<Vec<String>, Missing> {
    let req_path = at.field("requester");
    let Some(requester) = sr.get("requester") else {
        return Err(Missing {
            what: "requesting organisation",
            looked: "ServiceRequest.requester is absent".into(),
            at: at.clone(),
        });
    };
    // A logical reference by identifier (Reference.identifier) needs no resolution.
    let logical = ods_of_identifier(requester.get("identifier"));
    if !logical.is_empty() {
        return Ok(logical);
    }
    let Some(r) = reference_of(requester) else {
        return Err(Missing {
            what: "requesting organisation",
            looked: "ServiceRequest.requester has neither a reference nor an ODS identifier".into(),
            at: req_path,
        });
    };
    let Some((res, res_path)) = resolver.resolve(r, sr, at) else {
        unresolved.push(Missing {
            what: "requester",
            looked: format!("requester '{r}' was not found in {where_looked}"),
            at: req_path.clone(),
        });
        return Err(Missing {
            what: "requesting organisation",
            looked: format!("requester '{r}' was not found in {where_looked}"),
            at: req_path,
        });
    };
    let org = match res.get("resourceType").and_then(Value::as_str) {
        Some("Organization") => Some((res, res_path.clone())),
        Some("PractitionerRole") => {
            let org_ref = res.get("organization");
            let logical = ods_of_identifier(org_ref.and_then(|o| o.get("identifier")));
            if !logical.is_empty() {
                return Ok(logical);
            }
            org_ref.and_then(reference_of).and_then(|o| {
                resolver
                    .resolve(o, res, &res_path)
                    .or_else(|| resolver.resolve(o, sr, at))
            })
        }
        _ => None,
    };
    match org {
        Some((o, path)) => {
            let ods = ods_of(o.get("identifier"));
            if ods.is_empty() {
                Err(Missing {
                    what: "requesting organisation",
                    looked: "the requesting Organization has no ODS code identifier".into(),
                    at: path,
                })
            } else {
                Ok(ods)
            }
        }
        None => Err(Missing {
            what: "requesting organisation",
            looked: format!("requester '{r}' is a Practitioner, or a PractitionerRole without a resolvable organization; send a PractitionerRole with organization or an Organization with an ODS code"),
            at: req_path,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse, Format, Limits};
    use serde_json::json;

    fn input(v: Value) -> Input {
        parse(v.to_string().as_bytes(), Format::Json, &Limits::default()).expect("parses")
    }

    fn sr_of(input: &Input) -> (&Value, &FhirPath) {
        let e = input
            .entries
            .iter()
            .find(|e| e.is_service_request())
            .expect("sr");
        (input.resource(e).expect("resource"), &e.path)
    }

    #[test]
    fn contained_patient_gives_age() {
        let i = input(
            json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "1981-06-15"}],
            "subject": {"reference": "#p"}, "authoredOn": "2026-06-15"}),
        );
        let r = Resolver::new(&i);
        let (sr, at) = sr_of(&i);
        let c = resolve(&r, sr, at);
        assert_eq!(c.age, Ok(Age { min: 45, max: 45 }));
        assert_eq!(
            c.patient.map(|p| p.1.to_string()).as_deref(),
            Some("ServiceRequest.contained[0]")
        );
    }

    #[test]
    fn bundle_references_by_urn_type_id_and_absolute_url() {
        let i = input(
            json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": "urn:uuid:6b6a1f1e-1111-4c1c-9c1c-000000000001", "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                    "subject": {"reference": "urn:uuid:6b6a1f1e-1111-4c1c-9c1c-000000000002"},
                    "requester": {"reference": "PractitionerRole/r1"},
                    "supportingInfo": [{"reference": "http://example.org/fhir/Observation/o1"}]}},
                {"fullUrl": "urn:uuid:6b6a1f1e-1111-4c1c-9c1c-000000000002", "resource": {"resourceType": "Patient", "birthDate": "1990-01-01"}},
                {"fullUrl": "http://example.org/fhir/PractitionerRole/r1", "resource": {"resourceType": "PractitionerRole", "id": "r1", "organization": {"reference": "Organization/o"}}},
                {"resource": {"resourceType": "Organization", "id": "o", "identifier": [{"system": ODS_SYSTEM, "value": "RXX01"}]}},
                {"fullUrl": "http://example.org/fhir/Observation/o1", "resource": {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "eGFR"}, "effectiveDateTime": "2026-05-01"}}
            ]}),
        );
        let r = Resolver::new(&i);
        let (sr, at) = sr_of(&i);
        let c = resolve(&r, sr, at);
        assert_eq!(
            c.patient.as_ref().map(|p| p.1.to_string()).as_deref(),
            Some("Bundle.entry[1].resource")
        );
        assert_eq!(c.organisation_ods, Ok(vec!["RXX01".to_string()]));
        assert_eq!(c.observations.len(), 1);
        assert_eq!(
            c.observations[0].path.to_string(),
            "Bundle.entry[4].resource"
        );
        assert!(c.unresolved.is_empty());
    }

    #[test]
    fn unresolved_subject_is_missing_not_guessed() {
        let i = input(
            json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/123"}}),
        );
        let r = Resolver::new(&i);
        let (sr, at) = sr_of(&i);
        let c = resolve(&r, sr, at);
        let m = c.age.expect_err("no age");
        assert_eq!(m.at.to_string(), "ServiceRequest.subject");
        assert!(m.looked.contains("Patient/123"));
        assert_eq!(c.unresolved.len(), 1);
    }
}
