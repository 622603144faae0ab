//! A StructureDefinition's differential, read from JSON and compiled once into the checks the
//! gateway enforces ([`ElementRule`], [`Invariant`]). What the compiler does not enforce is
//! listed in [`Profile::not_enforced`], never skipped in silence.

use super::invariant::{CompiledInvariant, FhirPathEngine};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The part of an R4 StructureDefinition the gateway reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureDefinitionDoc {
    pub id: Option<String>,
    pub url: String,
    pub name: String,
    pub title: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub kind: String,
    pub derivation: Option<String>,
    pub base_definition: Option<String>,
    pub differential: Option<Differential>,
    pub snapshot: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Differential {
    pub element: Vec<ElementDoc>,
}

/// One ElementDefinition. `fixed[x]` and `pattern[x]` are collected from the other keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementDoc {
    pub id: Option<String>,
    pub path: String,
    pub slice_name: Option<String>,
    pub min: Option<u64>,
    pub max: Option<String>,
    pub slicing: Option<Slicing>,
    #[serde(rename = "type", default)]
    pub types: Vec<TypeRef>,
    pub binding: Option<BindingDoc>,
    #[serde(default)]
    pub constraint: Vec<ConstraintDoc>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct Slicing {
    #[serde(default)]
    pub discriminator: Vec<Discriminator>,
    pub rules: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Discriminator {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeRef {
    pub code: String,
    #[serde(default)]
    pub target_profile: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingDoc {
    pub strength: String,
    pub value_set: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ConstraintDoc {
    pub key: String,
    pub severity: String,
    pub human: String,
    pub expression: Option<String>,
}

/// Binding strengths the gateway enforces (`preferred` and `example` are advice only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Required,
    Extensible,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub strength: Strength,
    pub value_set: String,
}

/// A value an element must have: `fixed[x]` (exactly) or `pattern[x]` (at least).
#[derive(Debug, Clone)]
pub struct ValueConstraint {
    /// The JSON key as written, e.g. `patternCodeableConcept`.
    pub key: String,
    pub value: Value,
    pub exact: bool,
}

/// The checks compiled from one element of the differential.
#[derive(Debug, Clone)]
pub struct ElementRule {
    /// The ElementDefinition id (`ServiceRequest.category:imaging`), for messages.
    pub element_id: String,
    /// Steps below the resource root; a step ending in `[x]` is a choice element.
    pub steps: Vec<String>,
    /// For a slice: the pattern that selects its members from the element's values.
    pub slice: Option<(String, Value)>,
    pub min: u64,
    pub max: Option<u64>,
    pub value: Option<ValueConstraint>,
    pub binding: Option<Binding>,
    /// Resource types a Reference may point to (from `type.targetProfile`).
    pub target_types: Vec<String>,
}

/// A FHIRPath invariant (`constraint.expression`) and the element it is evaluated on.
pub struct Invariant {
    pub key: String,
    pub error: bool,
    pub human: String,
    pub expression: String,
    pub steps: Vec<String>,
    pub compiled: CompiledInvariant,
}

impl std::fmt::Debug for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invariant")
            .field("key", &self.key)
            .field("expression", &self.expression)
            .finish()
    }
}

/// A compiled profile.
#[derive(Debug)]
pub struct Profile {
    pub url: String,
    pub id: String,
    pub name: String,
    pub title: String,
    pub resource_type: String,
    pub elements: Vec<ElementRule>,
    pub invariants: Vec<Invariant>,
    /// What the profile says that the gateway does not enforce, one line each.
    pub not_enforced: Vec<String>,
}

/// The resource type a StructureDefinition URL of the base specification names
/// (`http://hl7.org/fhir/StructureDefinition/Patient` → `Patient`).
fn base_type_of(profile_url: &str) -> Option<&str> {
    profile_url
        .strip_prefix("http://hl7.org/fhir/StructureDefinition/")
        .filter(|t| t.chars().next().is_some_and(char::is_uppercase))
}

/// A name in `expression` that octofhir-fhirpath 0.4.57 misreads: an unquoted identifier that
/// starts with `not`, `true` or `false` (`note` is read as `not` + `e`, and fails).
fn misread_identifier(expression: &str) -> Option<String> {
    let mut quoted = false;
    let mut in_string = false;
    let mut word = String::new();
    let mut found = None;
    let flush = |word: &mut String, found: &mut Option<String>| {
        let w = std::mem::take(word);
        let risky = ["not", "true", "false"]
            .iter()
            .any(|k| w.len() > k.len() && w.starts_with(k));
        if risky && found.is_none() {
            *found = Some(w);
        }
    };
    for ch in expression.chars() {
        match ch {
            '\'' if !quoted => in_string = !in_string,
            '`' if !in_string => quoted = !quoted,
            c if (c.is_alphanumeric() || c == '_') && !quoted && !in_string => word.push(c),
            _ => flush(&mut word, &mut found),
        }
    }
    flush(&mut word, &mut found);
    found
}

/// Compiles a StructureDefinition. Errors are problems that make the profile unusable or
/// ambiguous (the file is rejected, and start-up or lint fails); things it cannot enforce
/// are listed in `not_enforced`. `known_value_set` says whether a ValueSet URL is loaded;
/// `element_exists` whether an element path exists in the base resource.
pub fn compile(
    doc: StructureDefinitionDoc,
    engine: &FhirPathEngine,
    known_value_set: &dyn Fn(&str) -> bool,
    element_exists: &dyn Fn(&str, &[String]) -> bool,
) -> Result<Profile, Vec<String>> {
    let mut errors = Vec::new();
    let mut not_enforced = Vec::new();
    if doc.kind != "resource" {
        errors.push(format!(
            "kind '{}': only resource profiles are supported",
            doc.kind
        ));
    }
    if doc.derivation.as_deref() != Some("constraint") {
        errors.push("derivation must be 'constraint' (a profile, not a new type)".into());
    }
    let base = format!(
        "http://hl7.org/fhir/StructureDefinition/{}",
        doc.resource_type
    );
    if doc.base_definition.as_deref() != Some(base.as_str()) {
        // A profile on a profile would need the parent's rules as well, which the gateway does
        // not resolve: say so instead of enforcing half of it.
        not_enforced.push(format!(
            "baseDefinition {}: only the constraints written in this differential are enforced",
            doc.base_definition.as_deref().unwrap_or("(none)")
        ));
    }
    if doc.snapshot.is_some() {
        not_enforced.push("snapshot: ignored, the differential is what is enforced".into());
    }
    let Some(differential) = doc.differential else {
        errors.push("no differential: nothing to enforce".into());
        return Err(errors);
    };
    let mut elements = Vec::new();
    let mut invariants = Vec::new();
    // Slicing declared on an element, by element path: slices must follow it.
    let mut sliced: Vec<(String, Option<String>)> = Vec::new();
    for el in differential.element {
        let id = el.id.clone().unwrap_or_else(|| el.path.clone());
        let mut steps: Vec<String> = el.path.split('.').map(str::to_string).collect();
        if steps.first().map(String::as_str) != Some(doc.resource_type.as_str()) {
            errors.push(format!(
                "element {id}: path {} is not in {}",
                el.path, doc.resource_type
            ));
            continue;
        }
        steps.remove(0);
        if !steps.is_empty() && !element_exists(&doc.resource_type, &steps) {
            errors.push(format!(
                "element {id}: {} has no element {}",
                doc.resource_type, el.path
            ));
            continue;
        }
        if id.contains(':') && el.slice_name.is_none() {
            not_enforced.push(format!(
                "element {id}: constraints inside a slice are not enforced"
            ));
            continue;
        }
        if let Some(slicing) = &el.slicing {
            let by_pattern = slicing.discriminator.len() == 1
                && matches!(slicing.discriminator[0].kind.as_str(), "pattern" | "value")
                && slicing.discriminator[0].path == "$this";
            if !by_pattern {
                not_enforced.push(format!(
                    "element {id}: slicing other than by pattern or value on $this; its slices are not enforced"
                ));
            }
            if slicing.rules.as_deref() == Some("closed") {
                not_enforced.push(format!(
                    "element {id}: closed slicing (values outside the slices are not rejected)"
                ));
            }
            sliced.push((
                el.path.clone(),
                by_pattern.then(|| slicing.discriminator[0].kind.clone()),
            ));
        }
        let min = el.min.unwrap_or(0);
        let max = match el.max.as_deref() {
            None | Some("*") => None,
            Some(m) => match m.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(format!("element {id}: max '{m}' is not a number or '*'"));
                    continue;
                }
            },
        };
        if max.is_some_and(|m| m < min) {
            errors.push(format!("element {id}: min {min} is above max"));
        }
        let mut value = None;
        for (key, v) in &el.other {
            let exact = key.starts_with("fixed");
            if exact || key.starts_with("pattern") {
                if value.is_some() {
                    errors.push(format!(
                        "element {id}: more than one fixed[x] or pattern[x]"
                    ));
                }
                value = Some(ValueConstraint {
                    key: key.clone(),
                    value: v.clone(),
                    exact,
                });
            } else if matches!(
                key.as_str(),
                "minValueInteger"
                    | "maxValueInteger"
                    | "minValueDate"
                    | "maxValueDate"
                    | "minValueDateTime"
                    | "maxValueDateTime"
                    | "minValueDecimal"
                    | "maxValueDecimal"
                    | "minValueQuantity"
                    | "maxValueQuantity"
                    | "maxLength"
            ) {
                not_enforced.push(format!("element {id}: {key}"));
            }
        }
        let slice = match &el.slice_name {
            None => None,
            Some(name) => {
                let Some((_, Some(_))) = sliced.iter().find(|(p, _)| *p == el.path) else {
                    not_enforced.push(format!(
                        "element {id}: slice '{name}' without a supported slicing (by pattern on $this) on {}",
                        el.path
                    ));
                    continue;
                };
                match value.take() {
                    Some(v) => Some((v.key, v.value)),
                    None => {
                        errors.push(format!(
                            "element {id}: slice '{name}' has no pattern[x] or fixed[x] to select its members"
                        ));
                        continue;
                    }
                }
            }
        };
        let binding = match &el.binding {
            None => None,
            Some(b) => match (b.strength.as_str(), &b.value_set) {
                ("required" | "extensible", None) => {
                    errors.push(format!(
                        "element {id}: {} binding without a valueSet",
                        b.strength
                    ));
                    None
                }
                ("required" | "extensible", Some(vs)) => {
                    if !known_value_set(vs) {
                        errors.push(format!(
                            "element {id}: binding to ValueSet {vs}, which is not in the profiles folder"
                        ));
                    }
                    Some(Binding {
                        strength: if b.strength == "required" {
                            Strength::Required
                        } else {
                            Strength::Extensible
                        },
                        value_set: vs.clone(),
                    })
                }
                ("preferred" | "example", _) => None,
                (other, _) => {
                    errors.push(format!("element {id}: binding strength '{other}'"));
                    None
                }
            },
        };
        let mut target_types = Vec::new();
        for t in &el.types {
            for target in &t.target_profile {
                match base_type_of(target) {
                    Some(ty) => target_types.push(ty.to_string()),
                    None => not_enforced.push(format!(
                        "element {id}: targetProfile {target} (only the resource type of base profiles is checked)"
                    )),
                }
            }
        }
        if el.types.len() > 1 || el.types.iter().any(|t| t.code != "Reference") {
            not_enforced.push(format!(
                "element {id}: type restriction to {}",
                el.types
                    .iter()
                    .map(|t| t.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for c in &el.constraint {
            let Some(expression) = &c.expression else {
                not_enforced.push(format!(
                    "invariant {} on {id}: no FHIRPath expression",
                    c.key
                ));
                continue;
            };
            if let Some(word) = misread_identifier(expression) {
                not_enforced.push(format!(
                    "invariant {} on {id}: the FHIRPath engine misreads the name '{word}' (it starts with a keyword); write it in backticks (`{word}`) or the invariant cannot be evaluated",
                    c.key
                ));
            }
            match engine.compile(expression) {
                Ok(compiled) => invariants.push(Invariant {
                    key: c.key.clone(),
                    error: c.severity == "error",
                    human: c.human.clone(),
                    expression: expression.clone(),
                    steps: steps.clone(),
                    compiled,
                }),
                Err(e) => errors.push(format!(
                    "invariant {} on {id}: the FHIRPath expression does not parse: {e}",
                    c.key
                )),
            }
        }
        elements.push(ElementRule {
            element_id: id,
            steps,
            slice,
            min,
            max,
            value,
            binding,
            target_types,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Profile {
        id: doc.id.unwrap_or_else(|| doc.name.clone()),
        title: doc.title.unwrap_or_else(|| doc.name.clone()),
        url: doc.url,
        name: doc.name,
        resource_type: doc.resource_type,
        elements,
        invariants,
        not_enforced,
    })
}
