//! The checks of the base FHIR R4 specification that every resource of an input gets, on every
//! element, driven by the R4 definitions (`r4/definitions.json`, generated from the
//! specification) rather than a list of elements written by hand:
//!
//! - required bindings on `code`, `Coding` and `CodeableConcept` elements;
//! - the formats of the primitive types (base64Binary, code, id, oid, uuid, uri, date,
//!   dateTime, instant, time, integer ranges, ...);
//! - reference target types: a Reference must point at a resource of a type the element allows,
//!   checked on the resource it resolves to in the input (contained, Bundle entry) or on the type
//!   its `Type/id` form names;
//! - the narrative (txt-1, txt-2, see [`super::narrative`]).
//!
//! Elements the R4 model does not define are fhirbolt's to report (`parse::structure`).

use super::narrative;
use crate::context::Resolver;
use crate::fhirpath::{FhirPath, Loc};
use crate::finding::{Finding, FindingId, IssueType, Severity};
use crate::parse::bundle::{resolve_in_bundle, resolve_indexed, FullUrls};
use crate::parse::definitions::{Definitions, ElementDef};
use crate::parse::Input;
use serde_json::Value;
use std::collections::HashMap;

/// The short name of a value set for messages (`request-status`).
fn vs_name(vs: &str) -> &str {
    vs.rsplit('/').next().unwrap_or(vs)
}

/// Checks every resource of `input` and adds the findings to its entries (or, for the Bundle
/// itself, to the input's own findings).
pub fn check_input(input: &mut Input) {
    let defs = Definitions::r4();
    let resolver = Resolver::new(input);
    let is_bundle = input.root.get("resourceType").and_then(Value::as_str) == Some("Bundle");
    // References are read against the Bundle by FHIR's rules too (ambiguous matches, relative
    // references from urn:uuid entries); a history Bundle holds versions by design.
    let bundle = (is_bundle && input.root.get("type").and_then(Value::as_str) != Some("history"))
        .then_some(&input.root);
    let full_urls = bundle.map(FullUrls::new);
    let mut per_entry: Vec<Vec<Finding>> = Vec::with_capacity(input.entries.len());
    for entry in &input.entries {
        let mut out = Vec::new();
        if let Some(resource) = input.resource(entry) {
            let mut walker = Walker {
                defs,
                resolver: Some(&resolver),
                bundle,
                full_urls: full_urls.as_ref(),
                full_url: entry.full_url.as_deref(),
                top: resource,
                top_path: &entry.path,
                out: &mut out,
            };
            walker.resource(resource, &Loc::At(&entry.path));
        }
        per_entry.push(out);
    }
    let mut bundle_findings = Vec::new();
    if is_bundle {
        let root = FhirPath::root("Bundle");
        let mut walker = Walker {
            defs,
            resolver: None,
            bundle: None,
            full_urls: None,
            full_url: None,
            top: &input.root,
            top_path: &root,
            out: &mut bundle_findings,
        };
        walker.resource(&input.root, &Loc::At(&root));
        bundle_findings.extend(crate::parse::bundle::check_type_rules(
            &input.root,
            &root,
            &|t| defs.is_resource_type(t),
        ));
    }
    drop(resolver);
    drop(full_urls);
    for (entry, found) in input.entries.iter_mut().zip(per_entry) {
        add_new(&mut entry.findings, found);
    }
    add_new(&mut input.findings, bundle_findings);
}

/// Adds findings that are not already there (the parse stage may have said the same).
fn add_new(to: &mut Vec<Finding>, found: Vec<Finding>) {
    for f in found {
        let said = to.iter().any(|g| g.same_as(&f));
        if !said {
            to.push(f);
        }
    }
}

/// Checks one resource on its own (no Bundle to resolve references in).
pub fn check_resource(resource: &Value, at: &FhirPath) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut walker = Walker {
        defs: Definitions::r4(),
        resolver: None,
        bundle: None,
        full_urls: None,
        full_url: None,
        top: resource,
        top_path: at,
        out: &mut out,
    };
    walker.resource(resource, &Loc::At(at));
    out
}

struct Walker<'a, 'o> {
    defs: &'static Definitions,
    resolver: Option<&'a Resolver<'a>>,
    /// The Bundle the resource is an entry of, for reading references by FHIR's Bundle rules.
    bundle: Option<&'a Value>,
    /// That Bundle's entries by fullUrl.
    full_urls: Option<&'a FullUrls<'a>>,
    /// The `fullUrl` of that entry.
    full_url: Option<&'a str>,
    /// The resource being checked (contained resources are resolved in it).
    top: &'a Value,
    top_path: &'a FhirPath,
    out: &'o mut Vec<Finding>,
}

impl<'a> Walker<'a, '_> {
    fn resource(&mut self, resource: &'a Value, at: &Loc<'_>) {
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            return;
        };
        let Some(def) = self.defs.types.get(rt) else {
            return;
        };
        if let Value::Object(map) = resource {
            self.object(map, &def.e, at);
        }
    }

    fn object(
        &mut self,
        map: &'a serde_json::Map<String, Value>,
        elements: &'static HashMap<String, ElementDef>,
        at: &Loc<'_>,
    ) {
        for (key, value) in map {
            if key == "resourceType" {
                continue;
            }
            // `_name` carries a primitive's id and extensions.
            if let Some(name) = key.strip_prefix('_') {
                if let Some(element) = self.defs.types.get("Element") {
                    let here = Loc::Field(at, name);
                    each(value, &here, &mut |v, p| {
                        if let Value::Object(m) = v {
                            self.object(m, &element.e, p);
                        }
                    });
                }
                continue;
            }
            let Some(def) = elements.get(key) else {
                continue;
            };
            let here = Loc::Field(at, key);
            each(value, &here, &mut |v, p| self.element(def, v, p));
        }
    }

    fn element(&mut self, def: &'static ElementDef, value: &'a Value, at: &Loc<'_>) {
        let t = def.t.as_str();
        if let Some(reference) = t.strip_prefix('#') {
            if let (Some(elements), Value::Object(m)) =
                (self.defs.content_reference(reference), value)
            {
                self.object(m, elements, at);
            }
            return;
        }
        if let Some(elements) = &def.e {
            if let Value::Object(m) = value {
                self.object(m, elements, at);
            }
            return;
        }
        match t {
            // A nested resource: contained resources are part of this one; Bundle entries and
            // Parameters resources are checked as entries of their own.
            "Resource" => {
                if at.has_field("contained") {
                    self.resource(value, at);
                }
            }
            "xhtml" => {
                if let Value::String(div) = value {
                    narrative::check(div, &at.path(), self.out);
                }
            }
            "code" => {
                if let Value::String(code) = value {
                    primitive(t, value, at, self.out);
                    if let Some(vs) = &def.b {
                        self.binding(vs, None, code, at);
                    }
                }
            }
            _ if t.starts_with(|c: char| c.is_ascii_lowercase()) => {
                primitive(t, value, at, self.out)
            }
            _ => {
                if let Some(vs) = &def.b {
                    self.complex_binding(t, vs, value, at);
                }
                // A code system or identifier system is named by an absolute URI.
                if let ("Coding" | "Identifier", Some(system)) =
                    (t, value.get("system").and_then(Value::as_str))
                {
                    if !has_scheme(system) {
                        self.out.push(
                            Finding::new(FindingId::SystemNotAbsolute,
                                Severity::Error,
                                IssueType::Invalid,
                                format!("{t}.system '{system}' is not an absolute URI: a system is named by an absolute URI (http://..., urn:oid:..., urn:uuid:...)."),
                            )
                            .at(at.field("system")),
                        );
                    }
                }
                if t == "Reference" && !def.r.is_empty() {
                    self.reference_target(&def.r, value, at);
                }
                if let (Some(td), Value::Object(m)) = (self.defs.types.get(t), value) {
                    self.object(m, &td.e, at);
                }
            }
        }
    }

    fn binding(&mut self, vs: &str, system: Option<&str>, code: &str, at: &Loc<'_>) {
        if self.defs.contains(vs, system, code) == Some(false) {
            let allowed = self.defs.codes_of(vs);
            let list = if allowed.len() <= 12 {
                format!(": it allows {}", allowed.join(", "))
            } else {
                String::new()
            };
            let shown = match system {
                Some(s) => format!("{s}|{code}"),
                None => code.to_string(),
            };
            self.out.push(
                Finding::new(
                    FindingId::CodeNotInRequiredValueSet,
                    Severity::Error,
                    IssueType::CodeInvalid,
                    format!(
                        "'{shown}' is not in the value set {} that FHIR R4 requires here{list}.",
                        vs_name(vs)
                    ),
                )
                .at(at.path())
                .with_diagnostics(format!("required binding to {vs}")),
            );
        }
    }

    fn complex_binding(&mut self, t: &str, vs: &str, value: &'a Value, at: &Loc<'_>) {
        let coding = |c: &'a Value| {
            Some((
                c.get("system").and_then(Value::as_str),
                c.get("code").and_then(Value::as_str)?,
            ))
        };
        match t {
            "Coding" => {
                if let Some((system, code)) = coding(value) {
                    self.binding(vs, system, code, &Loc::Field(at, "code"));
                }
            }
            "CodeableConcept" => {
                let codings: Vec<(Option<&str>, &str)> = value
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(coding)
                    .collect();
                let known = codings
                    .iter()
                    .map(|(s, c)| self.defs.contains(vs, *s, c))
                    .collect::<Option<Vec<bool>>>();
                if let Some(known) = known {
                    if !known.iter().any(|k| *k) {
                        self.out.push(
                            Finding::new(FindingId::NoCodeInRequiredValueSet,
                                Severity::Error,
                                IssueType::CodeInvalid,
                                format!(
                                    "None of the codes here is in the value set {} that FHIR R4 requires (a code from it is needed, not only text).",
                                    vs_name(vs)
                                ),
                            )
                            .at(at.path())
                            .with_diagnostics(format!("required binding to {vs}")),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// The type of the resource a reference resolves to in the input (contained, Bundle entry).
    fn resolved_type(&self, reference: &str) -> Option<String> {
        let type_of = |v: &Value| v.get("resourceType")?.as_str().map(str::to_string);
        if reference == "#" {
            return type_of(self.top);
        }
        if let Some(local) = reference.strip_prefix('#') {
            let contained = self.top.get("contained")?.as_array()?;
            return contained
                .iter()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(local))
                .and_then(type_of);
        }
        let (r, _) = self.resolver?.resolve(reference, self.top, self.top_path)?;
        type_of(r)
    }

    /// The type a reference names in its `Type/id` form (relative or absolute).
    fn literal_type<'r>(&self, reference: &'r str) -> Option<&'r str> {
        if reference.starts_with("urn:") || reference.starts_with('#') {
            return None;
        }
        let trimmed = reference.split("/_history/").next().unwrap_or(reference);
        let trimmed = trimmed.split(['?', '#']).next().unwrap_or(trimmed);
        let mut parts = trimmed.rsplit('/');
        let _id = parts.next()?;
        let ty = parts.next()?;
        self.defs.is_resource_type(ty).then_some(ty)
    }

    /// The type of the resource a reference points at, when it can be told.
    fn referenced_type(&mut self, reference: &str, at: &Loc<'_>) -> Option<String> {
        let literal = self.literal_type(reference);
        // FHIR's own reading of the reference against the Bundle's fullUrls.
        let in_bundle = self.bundle.and_then(|b| {
            let found = match self.full_urls {
                Some(index) => resolve_indexed(b, index, reference, self.full_url),
                None => resolve_in_bundle(b, reference, self.full_url),
            };
            Some((b, found?))
        });
        if let Some((_, matches)) = &in_bundle {
            if matches.len() > 1 {
                let list: Vec<String> = matches.iter().map(usize::to_string).collect();
                self.out.push(
                    Finding::new(FindingId::ReferenceMatchesSeveralEntries,
                        Severity::Error,
                        IssueType::MultipleMatches,
                        format!("The reference '{reference}' matches {} entries of the Bundle (entries {}): entries that share a fullUrl are versions of one resource, and a reference to one of them names its version (/_history/).", matches.len(), list.join(", ")),
                    )
                    .at(at.field("reference")),
                );
            }
        }
        let resolved = self.resolved_type(reference);
        // A relative Type/id written in an entry identified by a urn:uuid is read as
        // urn:uuid:id (the HL7 validator's reading): when that entry holds another type, the
        // reference contradicts the Bundle whichever way it is read.
        let by_urn = match (&resolved, &in_bundle, self.full_url) {
            (None, Some((b, m)), Some(from)) if m.len() == 1 && from.starts_with("urn:uuid:") => b
                .pointer(&format!("/entry/{}/resource/resourceType", m[0]))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        match (resolved.or(by_urn.clone()), literal) {
            (Some(found), Some(named)) if found != named => {
                let text = if by_urn.is_some() {
                    let id = reference.rsplit('/').next().unwrap_or(reference);
                    format!("The reference '{reference}' names a {named}, but in an entry identified by a urn:uuid it reads as 'urn:uuid:{id}', and that entry of the Bundle holds a resource of type {found}.")
                } else {
                    format!("The reference '{reference}' names a {named} but resolves to a {found} in this input.")
                };
                self.out.push(
                    Finding::new(
                        FindingId::ReferenceResolvesToOtherType,
                        Severity::Error,
                        IssueType::Structure,
                        text,
                    )
                    .at(at.field("reference")),
                );
                Some(found)
            }
            (Some(found), _) => Some(found),
            (None, named) => named.map(str::to_string),
        }
    }

    fn reference_target(&mut self, targets: &[String], value: &Value, at: &Loc<'_>) {
        if targets.iter().any(|t| t == "Resource") {
            return;
        }
        let declared = value.get("type").and_then(Value::as_str);
        let found = value
            .get("reference")
            .and_then(Value::as_str)
            .and_then(|r| self.referenced_type(r, at));
        let allowed = targets.join(", ");
        if let (Some(d), Some(f)) = (declared, &found) {
            if d != f {
                self.out.push(
                    Finding::new(FindingId::ReferenceTypeContradicted,
                        Severity::Error,
                        IssueType::Structure,
                        format!("The reference says its target is a {d} (Reference.type) but it points at a {f}."),
                    )
                    .at(at.field("type")),
                );
                return;
            }
        }
        if let Some(ty) = found.as_deref().or(declared) {
            if !targets.iter().any(|t| t == ty) {
                let at = if found.is_some() {
                    at.field("reference")
                } else {
                    at.field("type")
                };
                self.out.push(
                    Finding::new(FindingId::ReferenceTargetNotAllowed,
                        Severity::Error,
                        IssueType::Structure,
                        format!("This reference points at a {ty}, but FHIR R4 allows only {allowed} here."),
                    )
                    .at(at),
                );
            }
        }
    }
}

/// Whether a URI is absolute: it starts with a scheme (`http:`, `urn:`).
fn has_scheme(uri: &str) -> bool {
    uri.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Calls `f` on the items of an element with their locations: each item of an array, or the
/// one value.
fn each<'v>(value: &'v Value, at: &Loc<'_>, f: &mut dyn FnMut(&'v Value, &Loc<'_>)) {
    match value {
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                f(v, &Loc::Index(at, i));
            }
        }
        v => f(v, at),
    }
}

fn format_error(at: &Loc<'_>, t: &str, why: String) -> Finding {
    Finding::new(
        FindingId::InvalidFormat,
        Severity::Error,
        IssueType::Invalid,
        format!("This value is not a valid FHIR {t}: {why}."),
    )
    .at(at.path())
}

fn is_base64(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !compact.len().is_multiple_of(4) {
        return false;
    }
    let body_end = compact
        .iter()
        .rposition(|b| *b != b'=')
        .map_or(0, |i| i + 1);
    let padding = compact.len() - body_end;
    padding <= 2
        && compact[..body_end]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
        && !s.contains("  ")
        && !s.chars().any(|c| c.is_whitespace() && c != ' ')
}

fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let arcs: Vec<&str> = rest.split('.').collect();
    arcs.len() >= 2
        && matches!(arcs[0], "0" | "1" | "2")
        && arcs.iter().all(|a| {
            !a.is_empty()
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a.len() == 1 || !a.starts_with('0'))
        })
}

/// `urn:uuid:` and a UUID in lower case (R4 uuid regex).
pub fn is_urn_uuid(s: &str) -> bool {
    let Some(u) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    u.len() == 36
        && u.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

fn is_time(s: &str) -> bool {
    let (clock, fraction) = match s.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (s, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .zip([24u32, 60, 61])
            .all(|(p, max)| p.len() == 2 && p.parse::<u32>().is_ok_and(|n| n < max))
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a primitive value of type `t`. JSON types (string, number, boolean) are fhirbolt's.
fn primitive(t: &str, value: &Value, at: &Loc<'_>, out: &mut Vec<Finding>) {
    let err = |why: &str| format_error(at, t, why.to_string());
    match (t, value) {
        ("base64Binary", Value::String(s)) if !is_base64(s) => out.push(err(
            "base64 is groups of four characters from A-Z, a-z, 0-9, '+' and '/', with '=' padding at the end",
        )),
        ("code", Value::String(s)) if !is_code(s) => out.push(err(
            "a code has no leading or trailing whitespace and single spaces only",
        )),
        ("id", Value::String(s))
            if !(1..=64).contains(&s.len())
                || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            out.push(err("an id is 1 to 64 letters, digits, '-' or '.'"))
        }
        ("uri" | "url" | "canonical", Value::String(s)) if s.chars().any(char::is_whitespace) => {
            out.push(err("a URI has no whitespace"))
        }
        // A URI in the OID or UUID form must be a valid one.
        ("uri" | "url" | "canonical", Value::String(s))
            if s.starts_with("urn:oid:") && !is_oid(s) =>
        {
            out.push(err("an urn:oid: URI is followed by numbers separated by dots"))
        }
        ("uri" | "url" | "canonical", Value::String(s))
            if s.starts_with("urn:uuid:") && !is_urn_uuid(&s.to_ascii_lowercase()) =>
        {
            out.push(err("an urn:uuid: URI is followed by a UUID (8-4-4-4-12 hexadecimal digits)"))
        }
        ("oid", Value::String(s)) if !is_oid(s) => {
            out.push(err("an oid is urn:oid: followed by numbers separated by dots"))
        }
        ("uuid", Value::String(s)) if !is_urn_uuid(s) => {
            out.push(err("a uuid is urn:uuid: followed by a UUID in lower case"))
        }
        ("date", Value::String(s)) => {
            let r = if s.contains('T') {
                Err("a date has no time".to_string())
            } else {
                crate::dates::parse_fhir_datetime(s).map(|_| ())
            };
            if let Err(why) = r {
                out.push(format_error(at, t, why));
            }
        }
        ("dateTime", Value::String(s)) => {
            if let Err(why) = crate::dates::parse_fhir_datetime(s) {
                out.push(format_error(at, t, why));
            }
        }
        ("instant", Value::String(s)) => {
            let r = if s.contains('T') {
                crate::dates::parse_fhir_datetime(s).map(|_| ())
            } else {
                Err("an instant is a full date and time with seconds and a time zone".to_string())
            };
            if let Err(why) = r {
                out.push(format_error(at, t, why));
            }
        }
        ("time", Value::String(s)) if !is_time(s) => out.push(err("a time is hh:mm:ss")),
        ("integer", Value::Number(n))
            if n.as_i64().is_none_or(|i| i32::try_from(i).is_err()) =>
        {
            out.push(err("an integer is a whole number from -2147483648 to 2147483647"))
        }
        ("positiveInt", Value::Number(n))
            if n.as_i64().is_none_or(|i| !(1..=i64::from(i32::MAX)).contains(&i)) =>
        {
            out.push(err("a positiveInt is a whole number from 1 to 2147483647"))
        }
        ("unsignedInt", Value::Number(n))
            if n.as_i64().is_none_or(|i| !(0..=i64::from(i32::MAX)).contains(&i)) =>
        {
            out.push(err("an unsignedInt is a whole number from 0 to 2147483647"))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(v: &Value) -> Vec<String> {
        let rt = v["resourceType"].as_str().expect("type");
        let mut p: Vec<String> = check_resource(v, &FhirPath::root(rt))
            .iter()
            .flat_map(|f| f.expression.iter().map(|p| p.to_string()))
            .collect();
        p.sort();
        p
    }

    #[test]
    fn the_definitions_cover_every_r4_resource() {
        let d = Definitions::r4();
        for rt in [
            "ServiceRequest",
            "Patient",
            "Immunization",
            "Observation",
            "Bundle",
            "Parameters",
            "Condition",
            "Practitioner",
        ] {
            assert!(d.is_resource_type(rt), "{rt}");
        }
        assert!(d.types.len() > 180);
        assert!(
            d.contains(
                "http://hl7.org/fhir/ValueSet/request-status",
                None,
                "active"
            ) == Some(true)
        );
    }

    #[test]
    fn required_bindings_on_any_resource() {
        let imm = json!({"resourceType": "Immunization", "status": "given", "vaccineCode": {"text": "flu"}, "patient": {"reference": "Patient/1"}, "occurrenceDateTime": "2020-01-01"});
        assert_eq!(paths(&imm), vec!["Immunization.status"]);
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1, "comparator": "=="}});
        assert_eq!(paths(&obs), vec!["Observation.valueQuantity.comparator"]);
        let pat = json!({"resourceType": "Patient", "gender": "M", "telecom": [{"system": "phone", "value": "1"}, {"system": "beeper", "value": "2"}], "name": [{"use": "official", "family": "X"}]});
        assert_eq!(
            paths(&pat),
            vec!["Patient.gender", "Patient.telecom[1].system"]
        );
    }

    #[test]
    fn primitive_formats() {
        let v = json!({"resourceType": "Patient", "photo": [{"data": "aGVsbG8="}, {"data": "not base64!"}, {"data": "aGVs\nbG8="}],
            "birthDate": "2020-02-30", "deceasedDateTime": "2020-01-01T10:00", "meta": {"lastUpdated": "2020-01-01"},
            "identifier": [{"system": "urn:oid:1.2.3"}, {"system": "urn:x has space"}],
            "multipleBirthInteger": 3000000000i64, "language": " en"});
        assert_eq!(
            paths(&v),
            vec![
                "Patient.birthDate",
                "Patient.deceasedDateTime",
                "Patient.identifier[1].system",
                "Patient.language",
                "Patient.meta.lastUpdated",
                "Patient.multipleBirthInteger",
                "Patient.photo[1].data",
            ]
        );
        assert!(is_oid("urn:oid:2.16.840.1.113883"));
        assert!(!is_oid("urn:oid:3.1"));
        assert!(is_urn_uuid("urn:uuid:0b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11"));
        assert!(!is_urn_uuid(
            "urn:uuid:0B8F7C9E-8f5a-4c39-9d1e-3f1f3c2d9a11"
        ));
        assert!(is_time("10:00:00.5") && !is_time("24:00:00") && !is_time("10:00"));
    }

    #[test]
    fn contained_resources_and_content_references_are_walked() {
        let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "#p"},
            "contained": [{"resourceType": "Patient", "id": "p", "gender": "x"}]});
        assert_eq!(paths(&v), vec!["ServiceRequest.contained[0].gender"]);
        let b = json!({"resourceType": "Bundle", "type": "collection", "link": [{"relation": "self", "url": "a b"}]});
        assert_eq!(paths(&b), vec!["Bundle.link[0].url"]);
    }

    #[test]
    fn reference_target_types() {
        let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "#o"},
            "requester": {"reference": "Observation/1"}, "performer": [{"reference": "https://x.org/fhir/Practitioner/1/_history/2"}],
            "contained": [{"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}]});
        assert_eq!(
            paths(&v),
            vec![
                "ServiceRequest.requester.reference",
                "ServiceRequest.subject.reference"
            ]
        );
        let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "#o", "type": "Patient"},
            "contained": [{"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}]});
        assert_eq!(paths(&v), vec!["ServiceRequest.subject.type"]);
        let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"type": "Practitioner", "identifier": {"value": "1"}}});
        assert_eq!(paths(&v), vec!["ServiceRequest.subject.type"]);
        // A Type/id reference that resolves to a resource of another type.
        let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}});
        assert!(paths(&v).is_empty());
        let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Device/1"},
            "code": {"coding": [{"system": "snomed", "code": "1"}]}, "identifier": [{"system": "http://x.org", "value": "1"}, {"system": "local-ids", "value": "2"}]});
        assert_eq!(
            paths(&v),
            vec![
                "ServiceRequest.code.coding[0].system",
                "ServiceRequest.identifier[1].system"
            ]
        );
    }

    #[test]
    fn narratives_are_checked_wherever_they_are() {
        let v = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script>y</div>"}});
        assert_eq!(paths(&v), vec!["Patient.text.div"]);
        let v = json!({"resourceType": "Patient", "text": {"status": "made-up", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">ok</div>"}});
        assert_eq!(paths(&v), vec!["Patient.text.status"]);
    }
}
