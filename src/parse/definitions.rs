//! The FHIR R4 element definitions every structure check reads: each resource's and data
//! type's elements (type, cardinality, required binding, reference targets) and the codes of the
//! required value sets, generated into `profile/r4/definitions.json`. Here, below both the
//! parse stage (`shape`, the single-pass structure check) and the profile stage (`profile::base`,
//! the R4 walker), so that neither imports the other for them.

use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
pub(crate) struct ElementDef {
    /// The type code (`code`, `Coding`, `BackboneElement`) or `#Path` for a content reference.
    pub(crate) t: String,
    /// Present when the element repeats.
    pub(crate) m: Option<u8>,
    /// The value set of a required binding.
    pub(crate) b: Option<String>,
    /// The resource types a Reference may point at.
    #[serde(default)]
    pub(crate) r: Vec<String>,
    /// The elements of a backbone element.
    pub(crate) e: Option<HashMap<String, ElementDef>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TypeDef {
    kind: Option<String>,
    pub(crate) e: HashMap<String, ElementDef>,
}

/// The R4 definitions the checks are driven by.
#[derive(Debug, Deserialize)]
pub struct Definitions {
    pub(crate) types: HashMap<String, TypeDef>,
    #[serde(rename = "valueSets")]
    value_sets: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl Definitions {
    pub fn r4() -> &'static Definitions {
        static DEFS: OnceLock<Definitions> = OnceLock::new();
        DEFS.get_or_init(|| {
            serde_json::from_str(include_str!("../profile/r4/definitions.json"))
                .expect("the generated R4 definitions parse")
        })
    }

    /// Every resource and data type, by name.
    pub(crate) fn types(&self) -> &HashMap<String, TypeDef> {
        &self.types
    }

    pub fn is_resource_type(&self, name: &str) -> bool {
        !matches!(name, "Resource" | "DomainResource")
            && self
                .types
                .get(name)
                .is_some_and(|t| t.kind.as_deref() == Some("resource"))
    }

    /// The elements of a backbone element named by a content reference (`#Bundle.link`).
    pub(crate) fn content_reference(
        &self,
        reference: &str,
    ) -> Option<&HashMap<String, ElementDef>> {
        let mut parts = reference.trim_start_matches('#').split('.');
        let mut elements = &self.types.get(parts.next()?)?.e;
        for p in parts {
            elements = elements.get(p)?.e.as_ref()?;
        }
        Some(elements)
    }

    /// Whether `system|code` is in the value set; `None` when the value set is not held.
    pub(crate) fn contains(&self, vs: &str, system: Option<&str>, code: &str) -> Option<bool> {
        let systems = self.value_sets.get(vs)?;
        Some(match system {
            Some(s) => systems.get(s).is_some_and(|codes| codes.contains(code)),
            None => systems.values().any(|codes| codes.contains(code)),
        })
    }

    pub(crate) fn codes_of(&self, vs: &str) -> Vec<&str> {
        let mut codes: Vec<&str> = self
            .value_sets
            .get(vs)
            .into_iter()
            .flat_map(|s| s.values().flatten().map(String::as_str))
            .collect();
        codes.sort_unstable();
        codes
    }
}
