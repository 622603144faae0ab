//! ValueSets expanded once at load, from the CodeSystems and ValueSets of the profiles folder,
//! so that a binding check is a set lookup.

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// The codes of one ValueSet, as `(system, code)`.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    pub url: String,
    pub name: String,
    codes: HashSet<(String, String)>,
    /// The systems it draws on, for a bare `code` (which carries no system).
    systems: Vec<String>,
}

impl Expansion {
    pub fn contains(&self, system: Option<&str>, code: &str) -> bool {
        match system {
            Some(s) => self.codes.contains(&(s.to_string(), code.to_string())),
            None => self
                .systems
                .iter()
                .any(|s| self.codes.contains(&(s.clone(), code.to_string()))),
        }
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// The concepts of a CodeSystem, nested ones included.
fn code_system_codes(cs: &Value) -> Vec<String> {
    fn walk(concepts: Option<&Value>, out: &mut Vec<String>) {
        for c in concepts.and_then(Value::as_array).into_iter().flatten() {
            if let Some(code) = c.get("code").and_then(Value::as_str) {
                out.push(code.to_string());
            }
            walk(c.get("concept"), out);
        }
    }
    let mut out = Vec::new();
    walk(cs.get("concept"), &mut out);
    out
}

/// Expands every ValueSet. `code_systems` and `value_sets` are by canonical URL. A ValueSet
/// that cannot be expanded from what is loaded (a whole external system such as SNOMED CT, a
/// filter) is an error: a binding to it could not be checked.
pub fn expand_all(
    code_systems: &BTreeMap<String, &Value>,
    value_sets: &BTreeMap<String, &Value>,
) -> (BTreeMap<String, Expansion>, Vec<(String, String)>) {
    let mut done = BTreeMap::new();
    let mut errors = Vec::new();
    for url in value_sets.keys() {
        match expand(url, code_systems, value_sets, 0) {
            Ok(e) => {
                done.insert(url.clone(), e);
            }
            Err(e) => errors.push((url.clone(), e)),
        }
    }
    (done, errors)
}

fn expand(
    url: &str,
    code_systems: &BTreeMap<String, &Value>,
    value_sets: &BTreeMap<String, &Value>,
    depth: usize,
) -> Result<Expansion, String> {
    if depth > 8 {
        return Err(format!(
            "ValueSet {url} includes itself (or nests too deep)"
        ));
    }
    let vs = value_sets
        .get(url)
        .ok_or_else(|| format!("ValueSet {url} is not in the profiles folder"))?;
    let mut expansion = Expansion {
        url: url.to_string(),
        name: vs
            .get("title")
            .or_else(|| vs.get("name"))
            .and_then(Value::as_str)
            .unwrap_or(url)
            .to_string(),
        ..Default::default()
    };
    let compose = vs.get("compose");
    let part = |key: &str| {
        compose
            .and_then(|c| c.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut sets = Vec::new();
    for (include, set) in part("include")
        .iter()
        .map(|i| (true, i))
        .chain(part("exclude").iter().map(|i| (false, i)))
    {
        if set.get("filter").is_some() {
            return Err(format!(
                "ValueSet {url}: compose filters are not supported; list the concepts"
            ));
        }
        let mut codes: Vec<(String, String)> = Vec::new();
        let system = set.get("system").and_then(Value::as_str);
        if let Some(system) = system {
            match set.get("concept").and_then(Value::as_array) {
                Some(concepts) => codes.extend(
                    concepts
                        .iter()
                        .filter_map(|c| c.get("code").and_then(Value::as_str))
                        .map(|c| (system.to_string(), c.to_string())),
                ),
                None => {
                    let cs = code_systems.get(system).ok_or_else(|| {
                        format!(
                            "ValueSet {url} includes all of {system}, which is not a CodeSystem of the profiles folder: list the concepts"
                        )
                    })?;
                    codes.extend(
                        code_system_codes(cs)
                            .into_iter()
                            .map(|c| (system.to_string(), c)),
                    );
                }
            }
        }
        for nested in set
            .get("valueSet")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let inner = expand(nested, code_systems, value_sets, depth + 1)?;
            // A set with both a system and ValueSets is their intersection.
            if system.is_some() {
                codes.retain(|c| inner.codes.contains(c));
            } else {
                codes.extend(inner.codes);
            }
        }
        sets.push((include, codes));
    }
    for (include, codes) in sets {
        for c in codes {
            if include {
                if !expansion.systems.contains(&c.0) {
                    expansion.systems.push(c.0.clone());
                }
                expansion.codes.insert(c);
            } else {
                expansion.codes.remove(&c);
            }
        }
    }
    Ok(expansion)
}
