//! Runs a compiled [`Profile`] on a resource: each violation becomes a finding with the FHIRPath
//! of the element concerned and the issue code FHIR validators use (`required`, `value`,
//! `code-invalid`, `invariant`).

use super::definition::{ElementRule, Profile, Strength, ValueConstraint};
use super::invariant::Holds;
use super::Conformance;
use crate::fhirpath::FhirPath;
use crate::finding::{Finding, FindingId, IssueType, Severity};
use serde_json::Value;

/// The values of the element `steps` below `node`, with their locations. Repeating elements
/// are expanded; a choice step (`value[x]`) matches any key `value` + a type name.
fn select<'v>(node: &'v Value, at: &FhirPath, steps: &[String]) -> Vec<(FhirPath, &'v Value)> {
    let mut current = vec![(at.clone(), node)];
    for step in steps {
        let mut next = Vec::new();
        for (path, value) in current {
            let Value::Object(map) = value else { continue };
            let found: Vec<(&String, &Value)> = match step.strip_suffix("[x]") {
                Some(base) => map
                    .iter()
                    .filter(|(k, _)| {
                        k.strip_prefix(base)
                            .is_some_and(|rest| rest.chars().next().is_some_and(char::is_uppercase))
                    })
                    .collect(),
                None => map.get_key_value(step.as_str()).into_iter().collect(),
            };
            for (key, v) in found {
                let p = path.field(key);
                match v {
                    Value::Array(items) => {
                        next.extend(items.iter().enumerate().map(|(i, item)| (p.index(i), item)))
                    }
                    other => next.push((p, other)),
                }
            }
        }
        current = next;
    }
    current
}

/// Whether `value` has everything `pattern` has (FHIR pattern[x] semantics): objects key by
/// key, each item of a pattern array matched by some item of the value, primitives equal.
fn matches_pattern(value: &Value, pattern: &Value) -> bool {
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| matches_pattern(vv, pv))),
        (Value::Array(v), Value::Array(p)) => p
            .iter()
            .all(|pi| v.iter().any(|vi| matches_pattern(vi, pi))),
        (Value::Array(v), p) => v.iter().any(|vi| matches_pattern(vi, p)),
        (v, p) => v == p,
    }
}

/// A short description of a CodeableConcept or Coding pattern for messages.
fn describe(value: &Value) -> String {
    let codings: Vec<&Value> = match value.get("coding").and_then(Value::as_array) {
        Some(c) => c.iter().collect(),
        None => vec![value],
    };
    let parts: Vec<String> = codings
        .iter()
        .map(|c| {
            let s = |k| c.get(k).and_then(Value::as_str);
            match (s("system"), s("code")) {
                (Some(sys), Some(code)) => {
                    format!("{} {code}", crate::terminology::system_name(sys))
                }
                _ => c.to_string(),
            }
        })
        .collect();
    parts.join(", ")
}

/// The `(system, code)` pairs of a code, Coding or CodeableConcept.
fn codings(value: &Value) -> Vec<(Option<&str>, &str)> {
    match value {
        Value::String(code) => vec![(None, code.as_str())],
        Value::Object(o) => match o.get("coding").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(|c| {
                    Some((
                        c.get("system").and_then(Value::as_str),
                        c.get("code").and_then(Value::as_str)?,
                    ))
                })
                .collect(),
            None => o
                .get("code")
                .and_then(Value::as_str)
                .map(|code| vec![(o.get("system").and_then(Value::as_str), code)])
                .unwrap_or_default(),
        },
        _ => Vec::new(),
    }
}

/// The resource type a Reference points at, when it can be told: its `type`, the type of the
/// resource it resolves to (`resolve` is given the reference), or the `Type/id` form.
fn reference_type(reference: &Value, resolve: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(t) = reference.get("type").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    let r = reference.get("reference").and_then(Value::as_str)?;
    if let Some(t) = resolve(r) {
        return Some(t);
    }
    let r = r.split("/_history/").next().unwrap_or(r);
    let mut parts = r.rsplit('/');
    let _id = parts.next()?;
    let ty = parts.next()?;
    ty.chars()
        .next()
        .is_some_and(char::is_uppercase)
        .then(|| ty.to_string())
}

fn element_name(rule: &ElementRule, root: &str) -> String {
    if rule.steps.is_empty() {
        root.to_string()
    } else {
        format!("{root}.{}", rule.steps.join("."))
    }
}

impl Conformance {
    /// Checks `resource` (found at `at`) against `profile`. `resolve` gives the resource type a
    /// reference resolves to in the submitted input, where it does.
    pub fn validate(
        &self,
        profile: &Profile,
        resource: &Value,
        at: &FhirPath,
        resolve: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        let source = format!("profile \"{}\"", profile.title);
        for rule in &profile.elements {
            self.check_element(rule, profile, resource, at, resolve, &source, &mut findings);
        }
        if !profile.invariants.is_empty() {
            // The engine's evaluation context is built only for an invariant that needs it.
            let mut session = None;
            for inv in &profile.invariants {
                let targets = if inv.steps.is_empty() {
                    vec![(at.clone(), None)]
                } else {
                    select(resource, at, &inv.steps)
                        .into_iter()
                        .map(|(p, v)| (p, Some(v)))
                        .collect()
                };
                for (path, element) in targets {
                    let holds = match inv.compiled.holds_simply(element.unwrap_or(resource)) {
                        Some(h) => h,
                        None => session
                            .get_or_insert_with(|| self.fhirpath.session(resource))
                            .holds(&inv.compiled, element),
                    };
                    match holds {
                        Holds::Yes => {}
                        Holds::No => findings.push(
                            Finding::new(FindingId::ProfileInvariant,
                                if inv.error { Severity::Error } else { Severity::Warning },
                                IssueType::Invariant,
                                format!("{} (invariant {} of the {source}).", inv.human, inv.key),
                            )
                            .at(path)
                            .with_diagnostics(format!("{}: {}", inv.key, inv.expression)),
                        ),
                        Holds::Unknown(e) => findings.push(
                            Finding::new(FindingId::ProfileInvariantNotEvaluated,
                                Severity::Warning,
                                IssueType::Processing,
                                format!(
                                    "Invariant {} of the {source} could not be evaluated, so it was not checked: {e}",
                                    inv.key
                                ),
                            )
                            .at(path)
                            .with_diagnostics(format!("{}: {}", inv.key, inv.expression)),
                        ),
                    }
                }
            }
        }
        findings
    }

    #[allow(clippy::too_many_arguments)]
    fn check_element(
        &self,
        rule: &ElementRule,
        profile: &Profile,
        resource: &Value,
        at: &FhirPath,
        resolve: &dyn Fn(&str) -> Option<String>,
        source: &str,
        findings: &mut Vec<Finding>,
    ) {
        let root = &profile.resource_type;
        let name = element_name(rule, root);
        // Cardinality is counted under each parent that is present.
        if let Some((last, parents)) = rule.steps.split_last() {
            if rule.min > 0 || rule.max.is_some() {
                for (parent_path, parent) in select(resource, at, parents) {
                    let values = select(parent, &parent_path, std::slice::from_ref(last));
                    let counted: Vec<_> = match &rule.slice {
                        Some((_, pattern)) => values
                            .iter()
                            .filter(|(_, v)| matches_pattern(v, pattern))
                            .collect(),
                        None => values.iter().collect(),
                    };
                    let n = counted.len() as u64;
                    let here = parent_path.field(last.trim_end_matches("[x]"));
                    let what = match &rule.slice {
                        Some((_, pattern)) => format!("{name} with {}", describe(pattern)),
                        None => name.clone(),
                    };
                    // With no value at all, a slice's own error would repeat the element's.
                    let element_reported = rule.slice.is_some()
                        && values.is_empty()
                        && profile.elements.iter().any(|e| {
                            e.slice.is_none() && e.steps == rule.steps && e.min >= rule.min
                        });
                    if n < rule.min && !element_reported {
                        let text = if n == 0 {
                            format!("{what} is required by the {source} and is missing.")
                        } else {
                            format!(
                                "{what} must occur at least {} times (the {source}); it occurs {n} times.",
                                rule.min
                            )
                        };
                        findings.push(
                            Finding::new(
                                FindingId::ProfileMin,
                                Severity::Error,
                                IssueType::Required,
                                text,
                            )
                            .at(here.clone())
                            .with_diagnostics(format!("{}: min {}", rule.element_id, rule.min)),
                        );
                    }
                    if let Some(max) = rule.max.filter(|&m| n > m) {
                        findings.push(
                            Finding::new(FindingId::ProfileMax,
                                Severity::Error,
                                IssueType::Value,
                                format!("{what} may occur at most {max} times (the {source}); it occurs {n} times."),
                            )
                            .at(here)
                            .with_diagnostics(format!("{}: max {max}", rule.element_id)),
                        );
                    }
                }
            }
        }
        if rule.slice.is_some() {
            return;
        }
        let values = select(resource, at, &rule.steps);
        for (path, value) in &values {
            if let Some(ValueConstraint {
                key,
                value: wanted,
                exact,
            }) = &rule.value
            {
                let ok = if *exact {
                    *value == wanted
                } else {
                    matches_pattern(value, wanted)
                };
                if !ok {
                    findings.push(
                        Finding::new(
                            FindingId::ProfileFixedValue,
                            Severity::Error,
                            IssueType::Value,
                            format!(
                                "{name} must {} {wanted} (the {source}).",
                                if *exact { "be exactly" } else { "match" }
                            ),
                        )
                        .at(path.clone())
                        .with_diagnostics(format!("{}: {key}", rule.element_id)),
                    );
                }
            }
            if let Some(binding) = &rule.binding {
                self.check_binding(binding, &name, path, value, source, findings);
            }
            if !rule.target_types.is_empty() {
                if let Some(ty) = reference_type(value, resolve) {
                    if !rule.target_types.contains(&ty) {
                        findings.push(
                            Finding::new(FindingId::ProfileTargetType,
                                Severity::Error,
                                IssueType::Value,
                                format!(
                                    "{name} must refer to a {} (the {source}); it refers to a {ty}.",
                                    rule.target_types.join(" or ")
                                ),
                            )
                            .at(path.clone())
                            .with_diagnostics(format!("{}: targetProfile", rule.element_id)),
                        );
                    }
                }
            }
        }
    }

    fn check_binding(
        &self,
        binding: &super::definition::Binding,
        name: &str,
        path: &FhirPath,
        value: &Value,
        source: &str,
        findings: &mut Vec<Finding>,
    ) {
        let Some(vs) = self.value_sets.get(&binding.value_set) else {
            return;
        };
        let codes = codings(value);
        if codes.iter().any(|(s, c)| vs.contains(*s, c)) {
            return;
        }
        let listed: Vec<String> = codes
            .iter()
            .map(|(s, c)| match s {
                Some(s) => format!("{} {c}", crate::terminology::system_name(s)),
                None => c.to_string(),
            })
            .collect();
        match binding.strength {
            Strength::Required => findings.push(
                Finding::new(FindingId::ProfileRequiredBinding,
                    Severity::Error,
                    IssueType::CodeInvalid,
                    format!(
                        "{name} must be coded from the ValueSet \"{}\" (required binding of the {source}){}.",
                        vs.name,
                        if listed.is_empty() { String::new() } else { format!("; {} is not in it", listed.join(", ")) }
                    ),
                )
                .at(path.clone())
                .with_diagnostics(format!("required binding: {}", vs.url)),
            ),
            // Extensible: text alone is allowed, and so is a code from elsewhere when none of
            // the ValueSet fits; say that it was not recognised, never reject.
            Strength::Extensible if !listed.is_empty() => findings.push(
                Finding::new(FindingId::ProfileExtensibleBinding,
                    Severity::Warning,
                    IssueType::CodeInvalid,
                    format!(
                        "{} is not in the ValueSet \"{}\" that the {source} binds {name} to (extensible).",
                        listed.join(", "),
                        vs.name
                    ),
                )
                .at(path.clone())
                .with_diagnostics(format!("extensible binding: {}", vs.url)),
            ),
            Strength::Extensible => {}
        }
    }
}
