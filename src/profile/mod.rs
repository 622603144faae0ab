//! Stage 2: conformance to the FHIR profiles of the `profiles/` folder.
//!
//! The folder holds FHIR R4 conformance resources as JSON: the StructureDefinition of an imaging
//! referral, and the CodeSystems, ValueSets and ConceptMaps of the gateway. They are read once,
//! when the rules load, and the StructureDefinitions are compiled into checks
//! ([`definition`]) that [`validate`] runs on every ServiceRequest: cardinality, fixed and
//! pattern values, pattern slices, required and extensible bindings, reference target types and
//! FHIRPath invariants ([`invariant`]). The files are the source of truth: editing a `min` in
//! the JSON changes the gateway's answers, with no Rust.

pub mod base;
pub mod definition;
pub mod invariant;
pub mod narrative;
pub mod validate;
pub mod valueset;

use crate::load::{LoadError, SourceFiles};
use definition::{Profile, StructureDefinitionDoc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use valueset::Expansion;

/// One file of the profiles folder, as served over HTTP.
#[derive(Debug, Clone)]
pub struct ConformanceResource {
    pub file: String,
    pub resource_type: String,
    pub id: String,
    pub url: Option<String>,
    pub resource: Value,
}

/// The profiles folder, loaded and compiled.
#[derive(Debug)]
pub struct Conformance {
    pub resources: Vec<ConformanceResource>,
    pub profiles: Vec<Profile>,
    pub value_sets: BTreeMap<String, Expansion>,
    pub fhirpath: invariant::FhirPathEngine,
}

/// The files of a profiles folder as `(file name, text)`, sorted.
pub type ProfileFiles = SourceFiles;

fn error(file: &str, line: Option<usize>, message: impl Into<String>) -> LoadError {
    LoadError::new(format!("profiles/{file}"), message).at_line(line)
}

/// Whether `steps` name an element of `resource_type` in FHIR R4. fhirbolt knows the model: a
/// probe resource with the path filled in is parsed, and an "unknown field" error means the
/// path is wrong. Choice elements (`[x]`) are probed with each of their common types.
fn element_exists(resource_type: &str, steps: &[String]) -> bool {
    fn probe(resource_type: &str, steps: &[String]) -> Value {
        let mut value = Value::Object(Default::default());
        for step in steps.iter().rev() {
            let mut o = serde_json::Map::new();
            o.insert(step.clone(), value);
            value = Value::Object(o);
        }
        if let Value::Object(o) = &mut value {
            o.insert("resourceType".into(), Value::String(resource_type.into()));
        }
        value
    }
    let choices = [
        "String",
        "DateTime",
        "Period",
        "Timing",
        "Boolean",
        "CodeableConcept",
        "Reference",
        "Quantity",
        "Range",
        "Ratio",
    ];
    let mut candidates: Vec<Vec<String>> = vec![Vec::new()];
    for step in steps {
        let names: Vec<String> = match step.strip_suffix("[x]") {
            Some(base) => choices.iter().map(|t| format!("{base}{t}")).collect(),
            None => vec![step.clone()],
        };
        candidates = candidates
            .into_iter()
            .flat_map(|c| {
                names.iter().map(move |n| {
                    let mut c = c.clone();
                    c.push(n.clone());
                    c
                })
            })
            .collect();
    }
    candidates
        .iter()
        .any(|c| match fhir_codec::check_json(&probe(resource_type, c)) {
            Ok(()) => true,
            Err(e) => !matches!(e.kind, fhir_codec::ErrorKind::UnknownField { .. }),
        })
}

impl Conformance {
    /// Loads the profiles folder given as its files. Every problem of every file is returned:
    /// JSON that is not FHIR R4, duplicate URLs, a binding to a ValueSet that is not there, an
    /// element that does not exist, an invariant that does not parse.
    pub fn compile(files: &ProfileFiles) -> Result<Self, Vec<LoadError>> {
        let mut errors = Vec::new();
        let fhirpath = invariant::FhirPathEngine::new()
            .map_err(|e| vec![error("", None, format!("FHIRPath engine: {e}"))])?;
        let mut resources = Vec::new();
        for (file, text) in files {
            let value: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(error(file, Some(e.line()), e.to_string()));
                    continue;
                }
            };
            if let Err(e) = fhir_codec::check_json(&value) {
                errors.push(error(
                    file,
                    None,
                    format!("not a valid FHIR R4 resource: {e}"),
                ));
                continue;
            }
            let s = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(resource_type), Some(id)) = (s("resourceType"), s("id")) else {
                errors.push(error(file, None, "a conformance resource needs an id"));
                continue;
            };
            if !matches!(
                resource_type.as_str(),
                "StructureDefinition"
                    | "ValueSet"
                    | "CodeSystem"
                    | "ConceptMap"
                    | "SearchParameter"
                    | "OperationDefinition"
            ) {
                errors.push(error(
                    file,
                    None,
                    format!("{resource_type} is not a conformance resource the gateway reads"),
                ));
                continue;
            }
            if let Some(other) = resources.iter().find(|r: &&ConformanceResource| {
                (r.resource_type == resource_type && r.id == id)
                    || (r.url.is_some() && r.url == s("url"))
            }) {
                errors.push(error(
                    file,
                    None,
                    format!(
                        "{resource_type}/{id} has the same id or url as {}",
                        other.file
                    ),
                ));
                continue;
            }
            resources.push(ConformanceResource {
                file: file.clone(),
                url: s("url"),
                resource_type,
                id,
                resource: value,
            });
        }
        let by_url = |ty: &str| -> BTreeMap<String, &Value> {
            resources
                .iter()
                .filter(|r| r.resource_type == ty)
                .filter_map(|r| Some((r.url.clone()?, &r.resource)))
                .collect()
        };
        let (value_sets, vs_errors) =
            valueset::expand_all(&by_url("CodeSystem"), &by_url("ValueSet"));
        for (url, e) in vs_errors {
            let file = resources
                .iter()
                .find(|r| r.url.as_deref() == Some(url.as_str()))
                .map_or("", |r| r.file.as_str());
            errors.push(error(file, None, e));
        }
        let mut profiles = Vec::new();
        for r in resources
            .iter()
            .filter(|r| r.resource_type == "StructureDefinition")
            // Extension definitions describe what the gateway writes (the consult id): they
            // are published, not enforced on requests.
            .filter(|r| r.resource.get("type").and_then(Value::as_str) != Some("Extension"))
        {
            let doc: StructureDefinitionDoc = match serde_json::from_value(r.resource.clone()) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(error(&r.file, None, e.to_string()));
                    continue;
                }
            };
            match definition::compile(
                doc,
                &fhirpath,
                &|vs| value_sets.contains_key(vs),
                &element_exists,
            ) {
                Ok(p) => profiles.push(p),
                Err(es) => errors.extend(es.into_iter().map(|e| error(&r.file, None, e))),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            resources,
            profiles,
            value_sets,
            fhirpath,
        })
    }

    pub fn load(dir: &Path) -> Result<Self, Vec<LoadError>> {
        Self::compile(&crate::load::read_profile_files(dir).map_err(|e| vec![e])?)
    }

    pub fn embedded() -> Result<Self, Vec<LoadError>> {
        Self::compile(&crate::load::embedded_profile_files())
    }

    pub fn profile(&self, url: &str) -> Option<&Profile> {
        // A canonical may carry a version (`url|0.1.0`): the gateway holds one version of each.
        let url = url.split('|').next().unwrap_or(url);
        self.profiles.iter().find(|p| p.url == url)
    }

    /// A conformance resource by type and id, for `GET /{type}/{id}`.
    pub fn resource(&self, resource_type: &str, id: &str) -> Option<&ConformanceResource> {
        self.resources
            .iter()
            .find(|r| r.resource_type == resource_type && r.id == id)
    }
}
