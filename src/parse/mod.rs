//! Stage 1 of the pipeline: bytes → FHIR JSON resources, with every structure error found.
//!
//! Input is a `ServiceRequest`, a `Bundle` (`batch`, `transaction`, `collection`) or a
//! `Parameters` with a `resource` part, in JSON or XML. XML is read by fhirbolt and carried on
//! as FHIR JSON, so every later stage sees one form.

pub mod bundle;
pub mod definitions;
pub mod position;
pub mod shape;
pub mod structure;
pub mod xml;

use crate::fhirpath::FhirPath;
use crate::finding::{Finding, FindingId, IssueType, Severity};
use serde_json::Value;

/// The wire format of a FHIR resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// From a file name: `.xml` is XML, anything else JSON.
    pub fn from_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".xml") {
            Some(Format::Xml)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    /// From the first non-blank byte: `<` is XML, `{` or `[` JSON.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match bytes.iter().find(|b| !b.is_ascii_whitespace())? {
            b'<' => Some(Format::Xml),
            b'{' | b'[' => Some(Format::Json),
            _ => None,
        }
    }
}

/// Limits on what one request may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bundle_entries: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bundle_entries: 1000,
            max_depth: 64,
        }
    }
}

/// Why a whole input could not be used.
#[derive(Debug, Clone)]
pub enum Unusable {
    /// Not JSON or XML, not FHIR, or the wrong resource type: HTTP 400, exit status 2.
    Malformed(Vec<Finding>),
    /// Over a configured limit: HTTP 413.
    TooCostly(Vec<Finding>),
}

impl Unusable {
    pub fn findings(&self) -> &[Finding] {
        match self {
            Unusable::Malformed(f) | Unusable::TooCostly(f) => f,
        }
    }
}

/// What kind of resource was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    ServiceRequest,
    Bundle(BundleType),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleType {
    Batch,
    Transaction,
    Collection,
}

impl BundleType {
    /// The type of the Bundle that answers it. A `collection` is answered as a batch
    /// (contract §1): a `collection` Bundle may not carry `entry.response` (bdl-4), so its
    /// answer is a `batch-response`.
    pub fn response_type(self) -> &'static str {
        match self {
            BundleType::Batch | BundleType::Collection => "batch-response",
            BundleType::Transaction => "transaction-response",
        }
    }
}

/// One resource of the input: a ServiceRequest to decide on, or context for them.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where the resource is, from the input's root (`Bundle.entry[2].resource`).
    pub path: FhirPath,
    /// Index in `Bundle.entry`, when the input is a Bundle.
    pub index: Option<usize>,
    pub full_url: Option<String>,
    pub resource_type: String,
    /// `request.method` of a batch or transaction entry (what the sender asks the server to
    /// do with it); `None` for a collection, a lone resource, or an entry without one.
    pub method: Option<String>,
    /// Structure errors in this resource (the entry is unusable when any is an error).
    pub findings: Vec<Finding>,
}

impl Entry {
    pub fn is_service_request(&self) -> bool {
        self.resource_type == "ServiceRequest"
    }

    pub fn is_valid(&self) -> bool {
        !self.findings.iter().any(Finding::is_error)
    }
}

/// A parsed input: the FHIR JSON of the resource that was sent (for `Parameters`, the resource
/// it carries), and its entries.
#[derive(Debug, Clone)]
pub struct Input {
    pub kind: InputKind,
    /// The resource the entries' paths start from (a ServiceRequest or a Bundle).
    pub root: Value,
    /// The path of `root` in what was sent (`Parameters.parameter[0].resource` or the type).
    pub root_path: FhirPath,
    pub entries: Vec<Entry>,
    /// Errors of the Bundle itself (not of one entry).
    pub findings: Vec<Finding>,
    pub format: Format,
}

impl Input {
    /// The resource of an entry.
    pub fn resource(&self, entry: &Entry) -> Option<&Value> {
        match entry.index {
            Some(i) => self.root.get("entry")?.get(i)?.get("resource"),
            None => Some(&self.root),
        }
    }
}

/// Reads `bytes` of the given format into an [`Input`].
pub fn parse(bytes: &[u8], format: Format, limits: &Limits) -> Result<Input, Unusable> {
    parse_and_check(bytes, format, limits, &|_| {})
}

/// [`parse`], with `more_checks` run on the parsed input before its findings are located in the
/// text (line and column), so that the findings of later checks get positions too.
pub fn parse_and_check(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    more_checks: &dyn Fn(&mut Input),
) -> Result<Input, Unusable> {
    parse_inner(bytes, format, limits, more_checks, Intake::Referrals)
}

/// [`parse_and_check`] of any FHIR R4 resource, not only what the gateway decides on: a Bundle
/// of any type, a Parameters as it is, any other resource as one entry. For measuring the
/// gateway's FHIR validation against other validators (tests/reference_cases.rs).
pub fn parse_any_resource(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    more_checks: &dyn Fn(&mut Input),
) -> Result<Input, Unusable> {
    parse_inner(bytes, format, limits, more_checks, Intake::AnyResource)
}

/// Which resources an input may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intake {
    /// ServiceRequest, Bundle (batch, transaction, collection) or Parameters carrying one.
    Referrals,
    AnyResource,
}

fn parse_inner(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    more_checks: &dyn Fn(&mut Input),
    intake: Intake,
) -> Result<Input, Unusable> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, col) = position::line_col(
            &String::from_utf8_lossy(&bytes[..e.valid_up_to()]),
            e.valid_up_to(),
        );
        Unusable::Malformed(vec![Finding::new(
            FindingId::NotUtf8,
            Severity::Error,
            IssueType::Structure,
            "The body is not valid UTF-8 text: FHIR JSON and XML are UTF-8.",
        )
        .with_position(Some((line, col)))])
    })?;
    let (value, original) = match format {
        Format::Json => (parse_json_text(text, limits)?, Original::Json(text)),
        Format::Xml => (parse_xml_text(text, limits)?, Original::Xml(text)),
    };
    let mut input = build(value, format, limits, intake)?;
    more_checks(&mut input);
    locate(&mut input, original);
    Ok(input)
}

enum Original<'a> {
    Json(&'a str),
    Xml(&'a str),
}

type PositionFinder<'a> = dyn Fn(&[crate::fhirpath::Step]) -> Option<(usize, usize)> + 'a;

/// Fills in line and column for every finding that has a FHIRPath.
fn locate(input: &mut Input, original: Original<'_>) {
    let any = !input.findings.is_empty() || input.entries.iter().any(|e| !e.findings.is_empty());
    if !any {
        return;
    }
    let find: Box<PositionFinder<'_>> = match original {
        Original::Json(t) => {
            let p = position::JsonPositions::new(t);
            Box::new(move |s| p.find(s))
        }
        Original::Xml(t) => {
            let p = position::XmlPositions::new(t);
            Box::new(move |s| p.find(s))
        }
    };
    let all = input
        .findings
        .iter_mut()
        .chain(input.entries.iter_mut().flat_map(|e| e.findings.iter_mut()));
    for f in all {
        if f.position.is_none() {
            if let Some(path) = f.source_path.as_ref().or(f.expression.first()) {
                f.position = find(path.steps());
            }
        }
    }
}

/// A JSON value whose objects repeat no key. serde_json keeps the last of repeated keys without
/// a word, so `{"subject": A, "subject": B}` would be decided on B alone while the sender's
/// system may have meant A: FHIR JSON objects must not repeat a property, and such a body is
/// refused instead.
struct UniqueKeys(Value);

const REPEATED_KEY: &str = "the key '";

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "{REPEATED_KEY}{key}' appears twice in one object"
                )));
            }
            let UniqueKeys(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn parse_json_text(text: &str, limits: &Limits) -> Result<Value, Unusable> {
    let mut de = serde_json::Deserializer::from_str(text);
    let read = <UniqueKeys as serde::Deserialize>::deserialize(&mut de)
        .and_then(|UniqueKeys(v)| de.end().map(|()| v));
    read.map_err(|e| {
        let message = e.to_string();
        let detail = message.split(" at line").next().unwrap_or(&message);
        // serde_json stops at 128 levels of arrays and objects (its recursion limit): that is
        // nesting over the gateway's limits, as the depth check after parsing would say.
        if detail == "recursion limit exceeded" {
            return Unusable::TooCostly(vec![Finding::new(FindingId::JsonTooDeep,
                Severity::Error,
                IssueType::TooCostly,
                format!(
                    "The JSON nests more than 128 levels deep (line {}, column {}); this gateway accepts at most {}.",
                    e.line(),
                    e.column(),
                    limits.max_depth.min(128)
                ),
            )
            .with_position(Some((e.line(), e.column())))]);
        }
        let what = match e.classify() {
            serde_json::error::Category::Eof => "The JSON ends too early",
            serde_json::error::Category::Syntax => "The body is not valid JSON",
            _ if detail.starts_with(REPEATED_KEY) => "The JSON repeats a property",
            _ => "The JSON could not be read",
        };
        Unusable::Malformed(vec![Finding::new(FindingId::JsonSyntax,
            Severity::Error,
            IssueType::Structure,
            format!(
                "{what}: {detail} (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )
        .with_position(Some((e.line(), e.column())))])
    })
}

fn parse_xml_text(text: &str, limits: &Limits) -> Result<Value, Unusable> {
    // roxmltree first: it says where a document is not well-formed.
    let doc = match roxmltree::Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let pos = e.pos();
            // roxmltree refuses any DTD: entities (billion laughs, external files) are never
            // declared, so never expanded or fetched. FHIR XML has no DTD either.
            let text = if matches!(e, roxmltree::Error::DtdDetected) {
                "The XML has a document type declaration (<!DOCTYPE>): FHIR XML must not have one, and entity declarations are refused.".to_string()
            } else {
                format!("The body is not well-formed XML: {e}.")
            };
            return Err(Unusable::Malformed(vec![Finding::new(
                FindingId::XmlNotWellFormed,
                Severity::Error,
                IssueType::Structure,
                text,
            )
            .with_position(Some((pos.row as usize, pos.col as usize)))]));
        }
    };
    // fhirbolt's XML reader recurses once per element level: a deep document would overflow
    // the stack, so the depth is measured (without recursion) before it gets there.
    // Document order puts every parent before its children: one pass, no recursion.
    let mut depths: Vec<usize> = Vec::new();
    let mut deepest = 0usize;
    for n in doc.descendants() {
        let d = n
            .parent()
            .and_then(|p| depths.get(p.id().get() as usize))
            .map_or(0, |d| d + 1);
        let i = n.id().get() as usize;
        if depths.len() <= i {
            depths.resize(i + 1, 0);
        }
        depths[i] = d;
        if n.is_element() {
            deepest = deepest.max(d);
        }
    }
    // An XML element level is about one JSON level (primitives are one element each).
    if deepest > limits.max_depth {
        return Err(Unusable::TooCostly(vec![Finding::new(
            FindingId::XmlTooDeep,
            Severity::Error,
            IssueType::TooCostly,
            format!(
                "The XML nests {deepest} elements deep; this gateway accepts at most {}.",
                limits.max_depth
            ),
        )]));
    }
    let canonical = xml::canonicalise(text, &doc).map_err(Unusable::Malformed)?;
    drop(doc);
    let mut value = fhir_codec::xml_to_json(&canonical.xml).map_err(|e| {
        let short = e.brief();
        let mut f = Finding::new(
            FindingId::XmlNotR4,
            Severity::Error,
            IssueType::Structure,
            format!("The XML is not a valid FHIR R4 resource: {short}."),
        );
        // fhirbolt names an unknown element but not where it is: find it in the document.
        if let fhir_codec::ErrorKind::UnknownField { name } = &e.kind {
            if let Some((path, pos)) = position::XmlPositions::new(text).find_named(name) {
                f = f.at(path.parent().unwrap_or(path)).with_position(Some(pos));
            }
        }
        Unusable::Malformed(vec![f])
    })?;
    canonical.restore_narratives(&mut value);
    Ok(value)
}

fn malformed(
    id: FindingId,
    text: impl Into<String>,
    code: IssueType,
    at: Option<FhirPath>,
) -> Unusable {
    let mut f = Finding::new(id, Severity::Error, code, text);
    if let Some(p) = at {
        f = f.at(p);
    }
    Unusable::Malformed(vec![f])
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn resource_type(v: &Value) -> Option<&str> {
    v.get("resourceType").and_then(Value::as_str)
}

fn build(value: Value, format: Format, limits: &Limits, intake: Intake) -> Result<Input, Unusable> {
    if !value.is_object() {
        return Err(malformed(
            FindingId::NotOneResource,
            "The body must be one FHIR resource (a JSON object).",
            IssueType::Structure,
            None,
        ));
    }
    let d = depth(&value);
    if d > limits.max_depth {
        return Err(Unusable::TooCostly(vec![Finding::new(
            FindingId::ResourceTooDeep,
            Severity::Error,
            IssueType::TooCostly,
            format!(
                "The resource nests {d} levels deep; this gateway accepts at most {}.",
                limits.max_depth
            ),
        )]));
    }
    let Some(rt) = resource_type(&value).map(str::to_string) else {
        return Err(malformed(
            FindingId::InputWithoutResourceType, "The resource has no 'resourceType': send a ServiceRequest, a Bundle or a Parameters resource.",
            IssueType::Required,
            None,
        ));
    };
    match rt.as_str() {
        _ if intake == Intake::AnyResource && rt != "Bundle" => {
            Ok(single_resource(value, FhirPath::root(&rt), &rt, format))
        }
        "Parameters" => unwrap_parameters(value, format, limits),
        "ServiceRequest" => Ok(single_resource(value, FhirPath::root(&rt), &rt, format)),
        "Bundle" => from_resource(value, FhirPath::root(&rt), format, limits, intake),
        other => Err(malformed(
            FindingId::ResourceTypeNotChecked, format!("A {other} cannot be checked: send a ServiceRequest, a Bundle of ServiceRequests (batch, transaction or collection) or a Parameters with a 'resource' part."),
            IssueType::NotSupported,
            Some(FhirPath::root(other)),
        )),
    }
}

fn unwrap_parameters(value: Value, format: Format, limits: &Limits) -> Result<Input, Unusable> {
    let root = FhirPath::root("Parameters");
    let shell = structure::check_resource(&value, &root);
    if shell.iter().any(Finding::is_error) {
        return Err(Unusable::Malformed(shell));
    }
    let params = value.get("parameter").and_then(Value::as_array);
    let found = params.and_then(|ps| {
        ps.iter().enumerate().find(|(_, p)| {
            p.get("name").and_then(Value::as_str) == Some("resource") && p.get("resource").is_some()
        })
    });
    let Some((i, p)) = found else {
        return Err(malformed(
            FindingId::ParametersWithoutResource,
            "The Parameters has no part named 'resource' holding the resource to check.",
            IssueType::Required,
            Some(root.field("parameter")),
        ));
    };
    let inner = p.get("resource").cloned().unwrap_or(Value::Null);
    let at = root.field("parameter").index(i).field("resource");
    match resource_type(&inner) {
        Some("ServiceRequest") | Some("Bundle") => {
            let root = FhirPath::root(resource_type_of(&p["resource"]));
            let mut input = if resource_type(&inner) == Some("Bundle") {
                from_resource(inner, root, format, limits, Intake::Referrals)?
            } else {
                single_resource(inner, root, "ServiceRequest", format)
            };
            input.root_path = at;
            Ok(input)
        }
        other => Err(malformed(
            FindingId::ParametersResourceNotChecked,
            format!(
                "The 'resource' part holds a {}: send a ServiceRequest or a Bundle.",
                other.unwrap_or("resource without a type")
            ),
            IssueType::NotSupported,
            Some(at),
        )),
    }
}

fn resource_type_of(v: &Value) -> &str {
    resource_type(v).unwrap_or("Resource")
}

/// An input of one resource (a ServiceRequest; any resource when the intake allows it).
fn single_resource(value: Value, root: FhirPath, resource_type: &str, format: Format) -> Input {
    let findings = structure::check_resource(&value, &root);
    let entry = Entry {
        path: root.clone(),
        index: None,
        full_url: None,
        resource_type: resource_type.into(),
        method: None,
        findings,
    };
    Input {
        kind: InputKind::ServiceRequest,
        root: value,
        root_path: root,
        entries: vec![entry],
        findings: Vec::new(),
        format,
    }
}

fn from_resource(
    value: Value,
    root: FhirPath,
    format: Format,
    limits: &Limits,
    intake: Intake,
) -> Result<Input, Unusable> {
    let bundle_type = match value.get("type").and_then(Value::as_str) {
        Some("batch") => BundleType::Batch,
        Some("transaction") => BundleType::Transaction,
        Some("collection") => BundleType::Collection,
        // Read as a collection: no entry is decided on.
        _ if intake == Intake::AnyResource => BundleType::Collection,
        other => {
            return Err(malformed(
                FindingId::BundleTypeNotChecked,
                format!(
                "A Bundle of type '{}' cannot be checked: use batch, transaction or collection.",
                other.unwrap_or("(none)")
            ),
                IssueType::NotSupported,
                Some(root.field("type")),
            ))
        }
    };
    let items = value
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if items.len() > limits.max_bundle_entries {
        return Err(Unusable::TooCostly(vec![Finding::new(
            FindingId::BundleTooManyEntries,
            Severity::Error,
            IssueType::TooCostly,
            format!(
                "The Bundle has {} entries; this gateway accepts at most {} per Bundle. Split it.",
                items.len(),
                limits.max_bundle_entries
            ),
        )
        .at(root.field("entry"))]));
    }
    // The Bundle without its entries' resources: each resource is checked on its own so that
    // one bad entry of a batch fails only itself.
    let mut findings = structure::check_shell(&value, &root);
    findings.extend(bundle::check_entries(&value, &root));
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = root.field("entry").index(i).field("resource");
        let full_url = item
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_string);
        let method = (bundle_type != BundleType::Collection)
            .then(|| item.pointer("/request/method").and_then(Value::as_str))
            .flatten()
            .map(str::to_string);
        // Every entry gets a result, in order, so that every entry gets its response entry:
        // one without a resource is an error of its own, never silently left out — unless its
        // method carries none (GET, DELETE, ...): the engine answers for the method.
        let Some(resource) = item.get("resource") else {
            let at = root.field("entry").index(i);
            let carries_resource = matches!(method.as_deref(), None | Some("POST" | "PUT"));
            entries.push(Entry {
                path: at.clone(),
                index: Some(i),
                full_url,
                resource_type: String::new(),
                method,
                findings: if !carries_resource {
                    Vec::new()
                } else {
                    vec![Finding::new(FindingId::EntryWithoutResource,
                    Severity::Error,
                    IssueType::Required,
                    "This Bundle entry has no resource: each entry sent to the gateway carries the ServiceRequest to check, or a resource it refers to.",
                )
                .at(at)]
                },
            });
            continue;
        };
        let rt = resource_type(resource).unwrap_or("").to_string();
        let f = structure::check_resource(resource, &path);
        entries.push(Entry {
            path,
            index: Some(i),
            full_url,
            resource_type: rt,
            method,
            findings: f,
        });
    }
    Ok(Input {
        kind: InputKind::Bundle(bundle_type),
        root: value,
        root_path: root,
        entries,
        findings,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_format() {
        assert_eq!(Format::sniff(b"  \n{\"a\":1}"), Some(Format::Json));
        assert_eq!(Format::sniff(b"\xEF\xBB\xBF<x/>"), Some(Format::Xml));
        assert_eq!(Format::sniff(b"hello"), None);
        assert_eq!(Format::from_path("a/B.XML"), Some(Format::Xml));
    }

    #[test]
    fn invalid_json_has_line_and_column() {
        let err = parse(
            b"{\n  \"resourceType\": \"ServiceRequest\",\n  \"status\": }",
            Format::Json,
            &Limits::default(),
        )
        .unwrap_err();
        let f = &err.findings()[0];
        assert_eq!(f.code, IssueType::Structure);
        assert_eq!(f.position, Some((3, 13)));
    }
}
