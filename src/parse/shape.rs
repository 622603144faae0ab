//! A single pass over the serde_json tree against the FHIR R4 definitions that tells, without
//! running fhirbolt, that fhirbolt would read a resource and write it back unchanged: every
//! element defined there, of the right JSON type, repeating elements as arrays, required
//! elements present, at most one variant of a choice element.
//!
//! The answer is conservative: `true` only when the R4 model has nothing to say; anything
//! unusual (`_name` elements, nulls, empty arrays, a number that may not round-trip, an object
//! whose deserializer differs from the definitions) is `false`, and the caller then runs the
//! full check through fhirbolt (`structure::model_checks`), which finds and locates every
//! error. So a well-formed request, the common case, costs one walk with a hash lookup per
//! key instead of fhirbolt's two tree builds, and every answer stays as it was.
//!
//! The element names, types and repetitions come from `profile/r4/definitions.json`; what
//! fhirbolt requires and refuses beyond those (required elements, choice groups, the few names
//! whose type differs) from `profile/r4/model.json`, generated from fhirbolt-serde's R4
//! deserializers by `scripts/gen-r4-model.py`.

use super::definitions::{Definitions, ElementDef};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// What fhirbolt requires and refuses of one object (`model.json`).
#[derive(Debug, Default, Deserialize)]
struct ModelRules {
    #[serde(default)]
    req: Vec<Vec<String>>,
    #[serde(default)]
    choice: Vec<Vec<String>>,
    #[serde(default)]
    not: Vec<String>,
    #[serde(default)]
    unchecked: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Boolean,
    /// A FHIR integer: a whole JSON number in i32.
    Integer,
    /// positiveInt, unsignedInt: a whole JSON number in u32.
    Unsigned,
    Decimal,
    /// Every other primitive (string, code, uri, date, xhtml, ...): a JSON string.
    Text,
    /// A data type or backbone element: the node's index.
    Object(usize),
    /// A nested resource (contained, Bundle.entry.resource, Parameters.parameter.resource).
    Resource,
    /// Present: leave it to fhirbolt.
    Refuse,
}

#[derive(Debug, Clone, Copy)]
struct Elem {
    many: bool,
    kind: Kind,
    /// 1 + the index of its choice group in the node, 0 when it is no choice variant.
    group: u8,
}

#[derive(Debug, Default)]
struct Node {
    elements: HashMap<&'static str, Elem>,
    /// Each inner list: one of these names must be present.
    required: Vec<Vec<&'static str>>,
    unchecked: bool,
}

/// The compiled table: one node per data type, resource and backbone element.
pub struct Shapes {
    nodes: Vec<Node>,
    resources: HashMap<&'static str, usize>,
}

impl Shapes {
    pub fn r4() -> &'static Shapes {
        static SHAPES: OnceLock<Shapes> = OnceLock::new();
        SHAPES.get_or_init(|| {
            let rules: HashMap<String, ModelRules> =
                serde_json::from_str(include_str!("../profile/r4/model.json"))
                    .expect("the generated R4 model rules parse");
            build(Definitions::r4(), rules)
        })
    }

    /// Whether fhirbolt would read `resource` and write it back unchanged (see the module).
    pub fn accepts(&self, resource: &Value) -> bool {
        self.resource(resource, false)
    }

    /// [`Shapes::accepts`] for a Bundle without its entries' resources (each is checked on its
    /// own): `Bundle.entry.resource` is not looked at.
    pub fn accepts_shell(&self, bundle: &Value) -> bool {
        self.resource(bundle, true)
    }

    fn resource(&self, value: &Value, shell: bool) -> bool {
        let Value::Object(map) = value else {
            return false;
        };
        let Some(Value::String(rt)) = map.get("resourceType") else {
            return false;
        };
        let Some(&node) = self.resources.get(rt.as_str()) else {
            return false;
        };
        let skip = if shell && rt == "Bundle" {
            Skip::EntryResource
        } else {
            Skip::None
        };
        self.object(map, node, true, skip)
    }

    fn object(&self, map: &Map<String, Value>, node: usize, is_resource: bool, skip: Skip) -> bool {
        let node = &self.nodes[node];
        if node.unchecked {
            return false;
        }
        let mut groups = 0u64;
        for (key, value) in map {
            if is_resource && key == "resourceType" {
                continue;
            }
            if skip == Skip::Resource && key == "resource" {
                continue;
            }
            let Some(elem) = node.elements.get(key.as_str()) else {
                return false;
            };
            if elem.group > 0 {
                let bit = 1u64 << (elem.group - 1);
                if groups & bit != 0 {
                    return false;
                }
                groups |= bit;
            }
            // The Bundle's entries, in a shell, are checked without their resources.
            let inner = if skip == Skip::EntryResource && key == "entry" {
                Skip::Resource
            } else {
                Skip::None
            };
            let ok = match (elem.many, value) {
                (true, Value::Array(items)) => {
                    !items.is_empty() && items.iter().all(|v| self.value(elem.kind, v, inner))
                }
                (true, _) | (false, Value::Array(_)) => false,
                (false, v) => self.value(elem.kind, v, inner),
            };
            if !ok {
                return false;
            }
        }
        node.required
            .iter()
            .all(|names| names.iter().any(|n| map.contains_key(*n)))
    }

    fn value(&self, kind: Kind, value: &Value, skip: Skip) -> bool {
        match (kind, value) {
            (Kind::Boolean, Value::Bool(_)) | (Kind::Text, Value::String(_)) => true,
            (Kind::Integer, Value::Number(n)) => {
                n.as_i64().is_some_and(|i| i32::try_from(i).is_ok())
            }
            (Kind::Unsigned, Value::Number(n)) => {
                n.as_u64().is_some_and(|i| u32::try_from(i).is_ok())
            }
            (Kind::Decimal, Value::Number(n)) => is_plain_decimal(&n.to_string()),
            (Kind::Object(node), Value::Object(map)) => self.object(map, node, false, skip),
            (Kind::Resource, v) => self.resource(v, false),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// In a Bundle shell: the entries' resources.
    EntryResource,
    /// In an entry of a Bundle shell: its resource.
    Resource,
}

/// `-?digits(.digits)?`: a decimal fhirbolt keeps as written (no exponent, no sign `+`).
fn is_plain_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn build(defs: &'static Definitions, rules: HashMap<String, ModelRules>) -> Shapes {
    // First every object gets its index (types by name, backbone elements by path), then the
    // nodes are filled.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut pending: Vec<(String, &'static HashMap<String, ElementDef>)> = Vec::new();
    fn number(
        path: String,
        elements: &'static HashMap<String, ElementDef>,
        index: &mut HashMap<String, usize>,
        pending: &mut Vec<(String, &'static HashMap<String, ElementDef>)>,
    ) {
        for (name, e) in elements {
            if let Some(children) = &e.e {
                number(format!("{path}.{name}"), children, index, pending);
            }
        }
        index.insert(path.clone(), pending.len());
        pending.push((path, elements));
    }
    for (name, t) in defs.types() {
        if matches!(name.as_str(), "Resource" | "DomainResource") {
            continue;
        }
        number(name.clone(), &t.e, &mut index, &mut pending);
    }
    let kind_of = |path: &str, name: &str, e: &ElementDef| -> Kind {
        if e.e.is_some() {
            return Kind::Object(index[&format!("{path}.{name}")]);
        }
        let t = e.t.as_str();
        if let Some(reference) = t.strip_prefix('#') {
            return index
                .get(reference)
                .map_or(Kind::Refuse, |&i| Kind::Object(i));
        }
        match t {
            "boolean" => Kind::Boolean,
            "integer" => Kind::Integer,
            "positiveInt" | "unsignedInt" => Kind::Unsigned,
            "decimal" => Kind::Decimal,
            "Resource" => Kind::Resource,
            _ if t.starts_with(|c: char| c.is_ascii_lowercase()) => Kind::Text,
            _ => index.get(t).map_or(Kind::Refuse, |&i| Kind::Object(i)),
        }
    };
    let mut nodes = Vec::with_capacity(pending.len());
    for (path, elements) in &pending {
        let rule = rules.get(path.as_str());
        let mut node = Node {
            unchecked: rule.is_some_and(|r| r.unchecked),
            ..Node::default()
        };
        for (name, e) in *elements {
            let refused = rule.is_some_and(|r| r.not.iter().any(|n| n == name));
            let group = rule
                .and_then(|r| r.choice.iter().position(|g| g.iter().any(|n| n == name)))
                .map_or(0, |g| g + 1);
            let kind = if refused {
                Kind::Refuse
            } else {
                kind_of(path, name, e)
            };
            node.elements.insert(
                name.as_str(),
                Elem {
                    many: e.m.is_some(),
                    kind,
                    group: u8::try_from(group).unwrap_or(0),
                },
            );
            if group >= 64 {
                node.unchecked = true;
            }
        }
        for names in rule.map(|r| r.req.as_slice()).unwrap_or(&[]) {
            // Name the definitions' own strings ('static); a required name the definitions do
            // not know cannot be present, so the object is left to fhirbolt.
            let known: Vec<&'static str> = names
                .iter()
                .filter_map(|n| elements.get_key_value(n).map(|(k, _)| k.as_str()))
                .collect();
            if known.is_empty() {
                node.unchecked = true;
            }
            node.required.push(known);
        }
        nodes.push(node);
    }
    let resources = defs
        .types()
        .iter()
        .filter(|(name, _)| defs.is_resource_type(name))
        .filter_map(|(name, _)| Some((name.as_str(), *index.get(name.as_str())?)))
        .collect();
    Shapes { nodes, resources }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal valid ServiceRequest with `extra`'s elements added (also used by
    /// `parse::structure`'s tests).
    pub(crate) fn sr(extra: Value) -> Value {
        let mut base = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}});
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        base
    }

    #[test]
    fn accepts_what_fhirbolt_reads_unchanged() {
        let s = Shapes::r4();
        assert!(s.accepts(&sr(json!({}))));
        assert!(s.accepts(&sr(
            json!({"code": {"coding": [{"system": "http://loinc.org", "code": "1"}], "text": "x"},
            "quantityQuantity": {"value": 1.5}, "occurrenceDateTime": "2020-01-01",
            "contained": [{"resourceType": "Patient", "id": "p", "gender": "male"}],
            "extension": [{"url": "http://x", "valueInteger": 3}]})
        )));
    }

    #[test]
    fn leaves_anything_unusual_to_fhirbolt() {
        let s = Shapes::r4();
        for extra in [
            json!({"foo": 1}),
            json!({"category": {"text": "x"}}),
            json!({"category": []}),
            json!({"status": 5}),
            json!({"doNotPerform": "true"}),
            json!({"quantityQuantity": {"value": "12.5"}}),
            serde_json::from_str(r#"{"quantityQuantity": {"value": 1e3}}"#).expect("json"),
            json!({"occurrenceDateTime": "2020", "occurrencePeriod": {"start": "2020"}}),
            json!({"_status": {"id": "a"}}),
            json!({"note": [null]}),
            json!({"extension": [{"valueString": "no url"}]}),
            json!({"contained": [{"resourceType": "Nonsense"}]}),
            json!({"contained": [{"resourceType": "Patient", "multipleBirthInteger": 3_000_000_000i64}]}),
            json!({"text": {"status": "generated"}}),
        ] {
            assert!(!s.accepts(&sr(extra.clone())), "{extra}");
        }
        let mut missing = sr(json!({}));
        if let Some(m) = missing.as_object_mut() {
            m.shift_remove("subject");
        }
        assert!(!s.accepts(&missing));
    }

    #[test]
    fn a_bundle_shell_skips_the_entries_resources() {
        let s = Shapes::r4();
        let b = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "ServiceRequest"}, "request": {"method": "POST", "url": "ServiceRequest"}}]});
        assert!(s.accepts_shell(&b));
        assert!(!s.accepts(&b));
    }
}
