//! The integrity of a Bundle's entries (FHIR R4 bundle.html): unique `fullUrl`s (bdl-7), no
//! version-specific `fullUrl` (bdl-8), absolute `fullUrl`s, and a `fullUrl` that agrees with the
//! type and id of its resource.
//!
//! References inside the Bundle are resolved through the `fullUrl`s, so a Bundle that breaks
//! these rules would be decided on whichever entry happened to come first: each break is an
//! error of the Bundle itself, and the Bundle is refused.

use crate::fhirpath::FhirPath;
use crate::finding::{Finding, FindingId, IssueType, Severity};
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
/// of the `fullUrl` concerned: bdl-7, bdl-8, absolute `fullUrl`s and RESTful `fullUrl`s that
/// agree with their resource.
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
                    Finding::new(FindingId::FullUrlDuplicate,
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
                Finding::new(FindingId::FullUrlVersioned,
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
                Finding::new(FindingId::FullUrlRelative,
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
                Finding::new(FindingId::FullUrlNotTypeAndId,
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

/// The rules of a Bundle's links and of its type: link relations that may occur once, the
/// entries of a search result, and the references of a document's Composition. Each break is an
/// error of the Bundle at the FHIRPath concerned. `is_resource_type` tells a resource type from
/// any other path segment of a search URL.
pub fn check_type_rules(
    bundle: &Value,
    root: &FhirPath,
    is_resource_type: &dyn Fn(&str) -> bool,
) -> Vec<Finding> {
    let mut out = links(bundle, root);
    match bundle.get("type").and_then(Value::as_str) {
        Some("searchset") => out.extend(search_results(bundle, root, is_resource_type)),
        Some("document") => out.extend(document_references(bundle, root)),
        _ => {}
    }
    out
}

/// The relations a Bundle has at most one link of: the page itself and the paging links of a
/// search (FHIR R4 http.html#paging). Two `self` links name two different searches, and two
/// `next` links two different next pages: a client cannot tell which to follow.
const ONCE: &[&str] = &["self", "first", "previous", "next", "last"];

fn links(bundle: &Value, root: &FhirPath) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(links) = bundle.get("link").and_then(Value::as_array) else {
        return out;
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, link) in links.iter().enumerate() {
        let Some(rel) = link.get("relation").and_then(Value::as_str) else {
            continue;
        };
        if !ONCE.contains(&rel) {
            continue;
        }
        match seen.get(rel) {
            Some(first) => out.push(
                Finding::new(
                    FindingId::LinkRelationRepeated,
                    Severity::Error,
                    IssueType::Invalid,
                    format!("The link relation '{rel}' occurs more than once (first at Bundle.link[{first}]): a Bundle has at most one link of each of the relations {}.", ONCE.join(", ")),
                )
                .at(root.field("link").index(i).field("relation")),
            ),
            None => {
                seen.insert(rel, i);
            }
        }
    }
    out
}

/// The resource types a search URL asks for: the last path segment before the query when it is
/// a resource type (`[base]/Patient?name=x`, `[base]/Patient/1/Observation`), otherwise the
/// `_type` parameter of a system search (`[base]?_type=Observation,DocumentReference`). Empty
/// when the URL does not say.
fn searched_types<'u>(url: &'u str, is_resource_type: &dyn Fn(&str) -> bool) -> Vec<&'u str> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if let Some(last) = path.rsplit('/').next().filter(|s| is_resource_type(s)) {
        return vec![last];
    }
    query
        .split('&')
        .filter_map(|p| p.strip_prefix("_type="))
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .collect()
}

/// The entries of a search result (FHIR R4 search.html, Bundle.entry.search.mode): a `match` is
/// a resource of a searched type, a `match` or `include` is a resource the server holds and so
/// has an id, and an `outcome` is an OperationOutcome. Entries without a mode are not judged.
fn search_results(
    bundle: &Value,
    root: &FhirPath,
    is_resource_type: &dyn Fn(&str) -> bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
        return out;
    };
    let self_url = bundle
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("self"))
        .and_then(|l| l.get("url"))
        .and_then(Value::as_str);
    let types = self_url
        .map(|u| searched_types(u, is_resource_type))
        .unwrap_or_default();
    for (i, entry) in entries.iter().enumerate() {
        let (Some(mode), Some(resource)) = (
            entry.pointer("/search/mode").and_then(Value::as_str),
            entry.get("resource"),
        ) else {
            continue;
        };
        let at = root.field("entry").index(i).field("resource");
        let rt = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let error = |text: String, at: FhirPath| {
            Finding::new(
                FindingId::SearchEntryMode,
                Severity::Error,
                IssueType::Invalid,
                text,
            )
            .at(at)
        };
        match mode {
            "match" | "include" => {
                if resource.get("id").and_then(Value::as_str).is_none() {
                    out.push(error(
                        format!("This {rt} is a search result (search.mode '{mode}') without an id: the resources a search returns are held by the server and carry their id."),
                        at.clone(),
                    ));
                }
                if mode == "match" && !types.is_empty() && !types.contains(&rt) {
                    out.push(error(
                        format!("This {rt} is a match of a search for {} (the self link): a match is a resource of a searched type; other resources are included (search.mode 'include').", types.join(", ")),
                        at,
                    ));
                }
            }
            "outcome" if rt != "OperationOutcome" => out.push(error(
                format!("This {rt} has search.mode 'outcome', which is for an OperationOutcome about the search."),
                at,
            )),
            _ => {}
        }
    }
    out
}

/// The entries a reference made in the entry identified by `from` (its `fullUrl`) resolves to,
/// by FHIR R4's rules for references in Bundles (bundle.html#references): an absolute reference
/// (`https://...`, `urn:uuid:...`) is the `fullUrl` of its target; a relative `Type/id` is read
/// against the base of a RESTful `fullUrl` of the referring entry. A relative reference from an
/// entry identified by a `urn:uuid:` is read as `urn:uuid:id`, as the HL7 validator reads it;
/// from anywhere else it names a resource on the server, not in the Bundle. A version-specific
/// reference (`/_history/v`) matches only the entry whose `meta.versionId` is that version.
/// `None` when the reference cannot be read against the Bundle (local `#id`, conditional, a
/// relative reference without a base).
pub fn resolve_in_bundle(
    bundle: &Value,
    reference: &str,
    from: Option<&str>,
) -> Option<Vec<usize>> {
    resolve_with(bundle, None, reference, from)
}

/// The entries of a Bundle by `fullUrl`, built once per input so that reading a reference
/// against the Bundle is one lookup, not a pass over every entry (with a reference or two per
/// entry, that pass made a 10,000-entry Bundle quadratic).
pub struct FullUrls<'a> {
    by_url: HashMap<&'a str, Vec<usize>>,
}

impl<'a> FullUrls<'a> {
    pub fn new(bundle: &'a Value) -> Self {
        let mut by_url: HashMap<&'a str, Vec<usize>> = HashMap::new();
        let entries = bundle.get("entry").and_then(Value::as_array);
        for (i, e) in entries.into_iter().flatten().enumerate() {
            if let Some(url) = e.get("fullUrl").and_then(Value::as_str) {
                by_url.entry(url).or_default().push(i);
            }
        }
        Self { by_url }
    }
}

/// [`resolve_in_bundle`] with the Bundle's [`FullUrls`] (the same answer).
pub fn resolve_indexed(
    bundle: &Value,
    full_urls: &FullUrls<'_>,
    reference: &str,
    from: Option<&str>,
) -> Option<Vec<usize>> {
    resolve_with(bundle, Some(full_urls), reference, from)
}

fn resolve_with(
    bundle: &Value,
    full_urls: Option<&FullUrls<'_>>,
    reference: &str,
    from: Option<&str>,
) -> Option<Vec<usize>> {
    if reference.starts_with('#') || reference.contains('?') {
        return None;
    }
    let (unversioned, version) = match reference.split_once("/_history/") {
        Some((r, v)) => (r, Some(v)),
        None => (reference, None),
    };
    let target = if has_scheme(unversioned) {
        unversioned.to_string()
    } else {
        let (ty, id) = unversioned.split_once('/')?;
        if ty.is_empty() || id.is_empty() || id.contains('/') {
            return None;
        }
        let from = from?;
        if from.starts_with("urn:uuid:") {
            format!("urn:uuid:{id}")
        } else if has_scheme(from) && rest_tail(from).is_some() {
            let (fty, fid) = rest_tail(from)?;
            let base = &from[..from.len() - fty.len() - fid.len() - 1];
            format!("{base}{unversioned}")
        } else {
            return None;
        }
    };
    let entries = bundle.get("entry")?.as_array()?;
    let version_matches = |i: &usize| {
        version.is_none_or(|v| {
            entries
                .get(*i)
                .and_then(|e| e.pointer("/resource/meta/versionId"))
                .and_then(Value::as_str)
                == Some(v)
        })
    };
    Some(match full_urls {
        Some(index) => index
            .by_url
            .get(target.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(version_matches)
            .collect(),
        None => entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.get("fullUrl").and_then(Value::as_str) == Some(target.as_str()))
            .map(|(i, _)| i)
            .filter(version_matches)
            .collect(),
    })
}

/// The references of a document's Composition to check: the Composition's own and those of
/// its sections, with their paths.
fn composition_references<'v>(
    composition: &'v Value,
    at: &FhirPath,
    out: &mut Vec<(&'v str, FhirPath)>,
    fields: &[&str],
) {
    for field in fields {
        let Some(value) = composition.get(*field) else {
            continue;
        };
        let items: Vec<(&Value, FhirPath)> = match value {
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (v, at.field(field).index(i)))
                .collect(),
            v => vec![(v, at.field(field))],
        };
        for (v, p) in items {
            if let Some(r) = v.get("reference").and_then(Value::as_str) {
                out.push((r, p.field("reference")));
            }
        }
    }
}

/// A document's Composition and the resources it references travel together: "any other
/// resources referenced from Composition must be included as subsequent entries in the Bundle"
/// (FHIR R4 Composition). Each reference of the Composition (subject, encounter, author,
/// custodian, attester.party, event.detail, and each section's author, focus and entries) must
/// resolve to an entry of the Bundle by the rules of [`resolve_in_bundle`].
fn document_references(bundle: &Value, root: &FhirPath) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(first) = bundle.pointer("/entry/0") else {
        return out;
    };
    let Some(composition) = first.get("resource") else {
        return out;
    };
    if composition.get("resourceType").and_then(Value::as_str) != Some("Composition") {
        return out;
    }
    let from = first.get("fullUrl").and_then(Value::as_str);
    let at = root.field("entry").index(0).field("resource");
    let mut refs = Vec::new();
    composition_references(
        composition,
        &at,
        &mut refs,
        &["subject", "encounter", "author", "custodian"],
    );
    for (field, sub) in [("attester", "party"), ("event", "detail")] {
        for (i, item) in composition
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            composition_references(item, &at.field(field).index(i), &mut refs, &[sub]);
        }
    }
    fn sections<'v>(parent: &'v Value, at: &FhirPath, refs: &mut Vec<(&'v str, FhirPath)>) {
        for (i, section) in parent
            .get("section")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let p = at.field("section").index(i);
            composition_references(section, &p, refs, &["author", "focus", "entry"]);
            sections(section, &p, refs);
        }
    }
    sections(composition, &at, &mut refs);
    for (reference, path) in refs {
        if reference.starts_with('#') {
            continue;
        }
        // More than one match is ambiguous in any Bundle: profile::base reports it on the
        // reference, with the entries it matches.
        if !resolve_in_bundle(bundle, reference, from)
            .unwrap_or_default()
            .is_empty()
        {
            continue;
        }
        out.push(
            Finding::new(
                FindingId::DocumentReferenceNotInBundle,
                Severity::Error,
                IssueType::NotFound,
                format!("The document's Composition references '{reference}', which is not an entry of this Bundle: a document carries every resource its Composition references (a relative reference is read against the fullUrl of the Composition's entry, and a version-specific one needs the entry with that meta.versionId)."),
            )
            .at(path),
        );
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

    fn rules(bundle: Value) -> Vec<(String, String)> {
        let is_type = |t: &str| matches!(t, "Patient" | "Observation" | "DocumentReference");
        check_type_rules(&bundle, &FhirPath::root("Bundle"), &is_type)
            .into_iter()
            .map(|f| (f.expression[0].to_string(), f.text))
            .collect()
    }

    #[test]
    fn link_relations_occur_once() {
        let link = |rel: &str| json!({"relation": rel, "url": "https://x.org/fhir/Patient?name=a"});
        let b = |links: Vec<Value>| json!({"resourceType": "Bundle", "type": "searchset", "link": links});
        let f = rules(b(vec![
            link("self"),
            link("next"),
            link("alternate"),
            link("alternate"),
        ]));
        assert!(f.is_empty(), "{f:?}");
        let f = rules(b(vec![
            link("self"),
            link("self"),
            link("first"),
            link("first"),
            link("next"),
        ]));
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].0, "Bundle.link[1].relation");
        assert!(
            f[0].1
                .contains("'self' occurs more than once (first at Bundle.link[0])"),
            "{f:?}"
        );
        assert_eq!(f[1].0, "Bundle.link[3].relation");
        // Any type of Bundle: a batch with two self links.
        let f = rules(
            json!({"resourceType": "Bundle", "type": "batch", "link": [link("self"), link("self")]}),
        );
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn searched_types_come_from_the_path_or_type() {
        let is_type = |t: &str| matches!(t, "Patient" | "Observation" | "DocumentReference");
        assert_eq!(
            searched_types("base/Patient?name=test", &is_type),
            vec!["Patient"]
        );
        assert_eq!(
            searched_types("https://x.org/fhir/Patient/1/Observation", &is_type),
            vec!["Observation"]
        );
        assert_eq!(
            searched_types(
                "base?name=test&_type=Observation,DocumentReference",
                &is_type
            ),
            vec!["Observation", "DocumentReference"]
        );
        // A server base is no resource type, whatever its case.
        assert!(searched_types("https://x.org/FHIR?name=a", &is_type).is_empty());
        assert!(searched_types("https://x.org/fhir/Patient/1", &is_type).is_empty());
    }

    #[test]
    fn search_results() {
        let b = |self_url: &str, entries: Value| {
            json!({"resourceType": "Bundle", "type": "searchset",
                "link": [{"relation": "self", "url": self_url}], "entry": entries})
        };
        let oo = json!({"resourceType": "OperationOutcome", "issue": []});
        let pat = json!({"resourceType": "Patient", "id": "1"});
        let obs = json!({"resourceType": "Observation", "id": "2", "status": "final", "code": {"text": "x"}});
        // Valid: matches of the searched type with ids, includes of any type, an outcome, and
        // entries without a mode (not judged).
        let f = rules(b(
            "https://x.org/fhir/Patient?name=a",
            json!([
                {"fullUrl": "https://x.org/fhir/Patient/1", "resource": pat, "search": {"mode": "match"}},
                {"fullUrl": "https://x.org/fhir/Observation/2", "resource": obs, "search": {"mode": "include"}},
                {"resource": oo, "search": {"mode": "outcome"}},
                {"resource": {"resourceType": "Observation"}},
            ]),
        ));
        assert!(f.is_empty(), "{f:?}");
        let f = rules(b(
            "https://x.org/fhir/Patient?name=a",
            json!([
                {"resource": {"resourceType": "Patient"}, "search": {"mode": "match"}},
                {"resource": obs, "search": {"mode": "match"}},
                {"resource": {"resourceType": "Observation"}, "search": {"mode": "include"}},
                {"resource": pat, "search": {"mode": "outcome"}},
            ]),
        ));
        let got: Vec<&str> = f.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            got,
            vec![
                "Bundle.entry[0].resource",
                "Bundle.entry[1].resource",
                "Bundle.entry[2].resource",
                "Bundle.entry[3].resource"
            ],
            "{f:?}"
        );
        assert!(f[0].1.contains("without an id"), "{f:?}");
        assert!(f[1].1.contains("a match of a search for Patient"), "{f:?}");
        assert!(f[2].1.contains("without an id"), "{f:?}");
        assert!(f[3].1.contains("search.mode 'outcome'"), "{f:?}");
        // A system search names its types in _type; a self link that names none checks no type.
        let f = rules(b(
            "https://x.org/fhir?_type=Observation,DocumentReference",
            json!([
                {"resource": obs, "search": {"mode": "match"}},
                {"resource": pat, "search": {"mode": "match"}},
            ]),
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].1.contains("Observation, DocumentReference"), "{f:?}");
        let f = rules(b(
            "https://x.org/fhir/Patient/1/$everything",
            json!([
                {"resource": obs, "search": {"mode": "match"}},
            ]),
        ));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn references_resolve_by_the_bundle_rules() {
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "https://x.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "meta": {"versionId": "1"}}},
            {"fullUrl": "https://x.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "meta": {"versionId": "2"}}},
            {"fullUrl": "urn:uuid:0b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11", "resource": {"resourceType": "Organization", "id": "7"}},
        ]});
        let r = |reference: &str, from: Option<&str>| resolve_in_bundle(&b, reference, from);
        let rest = Some("https://x.org/fhir/Composition/9");
        let urn = Some("urn:uuid:1b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11");
        assert_eq!(r("Patient/1", rest), Some(vec![0, 1]));
        assert_eq!(r("Patient/1/_history/2", rest), Some(vec![1]));
        assert_eq!(r("Patient/1/_history/3", rest), Some(vec![]));
        assert_eq!(
            r("https://x.org/fhir/Patient/1/_history/1", None),
            Some(vec![0])
        );
        assert_eq!(r("https://y.org/fhir/Patient/1", rest), Some(vec![]));
        assert_eq!(
            r("urn:uuid:0b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11", None),
            Some(vec![2])
        );
        // From a urn:uuid entry, Type/id reads as urn:uuid:id; the resource's own id plays no part.
        assert_eq!(
            r("Organization/0b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11", urn),
            Some(vec![2])
        );
        assert_eq!(r("Organization/7", urn), Some(vec![]));
        assert_eq!(r("Patient/1", None), None);
        assert_eq!(r("#x", rest), None);
        assert_eq!(r("Patient?identifier=1", rest), None);
    }

    #[test]
    fn a_document_carries_what_its_composition_references() {
        let doc = |refs: Value| {
            let mut c = json!({"resourceType": "Composition", "id": "c", "status": "final", "type": {"text": "x"}, "date": "2024-01-01", "title": "t"});
            for (k, v) in refs.as_object().expect("refs") {
                c[k] = v.clone();
            }
            json!({"resourceType": "Bundle", "type": "document", "entry": [
                {"fullUrl": "https://x.org/fhir/Composition/c", "resource": c},
                {"fullUrl": "https://x.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1"}},
                {"fullUrl": "https://x.org/fhir/Observation/o", "resource": {"resourceType": "Observation", "id": "o", "meta": {"versionId": "1"}}},
                {"fullUrl": "https://x.org/fhir/Observation/o", "resource": {"resourceType": "Observation", "id": "o", "meta": {"versionId": "2"}}},
            ]})
        };
        let f = rules(doc(json!({
            "subject": {"reference": "Patient/1"},
            "author": [{"reference": "https://x.org/fhir/Patient/1"}, {"display": "Dr Who"}],
            "section": [{"entry": [{"reference": "Observation/o/_history/1"}, {"reference": "#local"}],
                "section": [{"entry": [{"reference": "Observation/o/_history/2"}]}]}],
        })));
        assert!(f.is_empty(), "{f:?}");
        let f = rules(doc(json!({
            "subject": {"reference": "Patient/2"},
            "attester": [{"mode": "legal", "party": {"reference": "https://elsewhere.org/Practitioner/1"}}],
            "section": [{"section": [{"entry": [{"reference": "Observation/o"}, {"reference": "Observation/o/_history/3"}]}]}],
        })));
        let got: Vec<&str> = f.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            got,
            vec![
                "Bundle.entry[0].resource.subject.reference",
                "Bundle.entry[0].resource.attester[0].party.reference",
                "Bundle.entry[0].resource.section[0].section[0].entry[1].reference",
            ],
            "{f:?}"
        );
        assert!(
            f[0].1.contains("'Patient/2', which is not an entry"),
            "{f:?}"
        );
        assert!(
            f[2].1
                .contains("'Observation/o/_history/3', which is not an entry"),
            "{f:?}"
        );
        // Several matches are ambiguous in any Bundle: profile::base reports them.
        assert!(
            !f.iter().any(|(p, _)| p.ends_with("entry[0].reference")),
            "{f:?}"
        );
        // Not a document: the same references are the server's business.
        let mut b = doc(json!({"subject": {"reference": "Patient/2"}}));
        b["type"] = json!("collection");
        assert!(rules(b).is_empty());
    }
}
