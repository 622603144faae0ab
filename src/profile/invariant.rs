//! FHIRPath invariants (`constraint.expression`), evaluated with the `octofhir-fhirpath` crate.
//!
//! Expressions are parsed once, when the profiles load; a request then costs one evaluation
//! context for its resource and a cheap child context per element an invariant sits on. The
//! crate's API is async but does no I/O here, so it is driven with a plain executor on the
//! engine's own (blocking) thread.

use octofhir_fhirpath::{
    create_function_registry, Collection, CompiledPlan, EmptyModelProvider, EvaluationContext,
    FhirPathValue, ModelProvider,
};
use serde_json::Value;
use std::sync::Arc;

/// An invariant's expression, parsed and ready to run.
pub struct CompiledInvariant {
    plan: Arc<CompiledPlan>,
    /// The same expression evaluated directly on the JSON, when it is simple enough.
    simple: Option<Simple>,
}

impl CompiledInvariant {
    /// Whether the invariant is evaluated without the FHIRPath engine (no evaluation context).
    pub fn is_simple(&self) -> bool {
        self.simple.is_some()
    }

    /// The outcome on `focus` (an element, or the resource), for a simple invariant.
    pub fn holds_simply(&self, focus: &Value) -> Option<Holds> {
        let holds = self.simple.as_ref()?.holds(focus)?;
        Some(if holds { Holds::Yes } else { Holds::No })
    }
}

/// The commonest invariants, compiled to a direct evaluation on the JSON tree: a chain of
/// `path.exists()` joined by `or` (or by `and`), each path a dotted list of element names
/// (`reasonCode.exists() or `note`.text.exists()`). The FHIRPath engine builds an evaluation
/// context and its own copy of the resource for every resource (most of a request's profile
/// time); these need neither. Anything else runs on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Simple {
    all: bool,
    paths: Vec<Vec<String>>,
}

impl Simple {
    fn parse(expression: &str) -> Option<Simple> {
        let mut joiner = None;
        let mut paths = Vec::new();
        let mut rest = expression.trim();
        loop {
            let (path, after) = Self::path(rest)?;
            let after = after.trim_start().strip_prefix(".exists()")?;
            paths.push(path);
            rest = after.trim_start();
            if rest.is_empty() {
                break;
            }
            let (word, after) = rest.split_once(char::is_whitespace)?;
            if !matches!(word, "or" | "and") || joiner.is_some_and(|j| j != word) {
                return None;
            }
            joiner = Some(word);
            rest = after.trim_start();
        }
        Some(Simple {
            all: joiner == Some("and"),
            paths,
        })
    }

    /// `name(.name)*` where a name is `[a-z][A-Za-z0-9_]*` (no type names, no keyword at its
    /// start, which the engine could misread) or a name in backticks.
    fn path(text: &str) -> Option<(Vec<String>, &str)> {
        const KEYWORDS: &[&str] = &[
            "and", "as", "contains", "div", "false", "implies", "in", "is", "mod", "not", "or",
            "true", "xor",
        ];
        let mut steps = Vec::new();
        let mut rest = text;
        loop {
            let (name, after) = if let Some(quoted) = rest.strip_prefix('`') {
                let (name, after) = quoted.split_once('`')?;
                (name, after)
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let name = &rest[..end];
                if !name.starts_with(|c: char| c.is_ascii_lowercase())
                    || KEYWORDS.iter().any(|k| name.starts_with(k))
                {
                    return None;
                }
                (name, &rest[end..])
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            steps.push(name.to_string());
            // `.exists()` ends the path; another `.name` continues it.
            if after.starts_with(".exists()") {
                return Some((steps, after));
            }
            rest = after.strip_prefix('.')?;
        }
    }

    /// `None` when the answer is the engine's to give (a JSON null on the way: the engine
    /// counts it as a value).
    fn holds(&self, focus: &Value) -> Option<bool> {
        let found = self
            .paths
            .iter()
            .map(|path| exists(focus, path))
            .collect::<Option<Vec<bool>>>()?;
        Some(if self.all {
            found.iter().all(|f| *f)
        } else {
            found.iter().any(|f| *f)
        })
    }
}

/// Whether the element `path` below `value` has any value (arrays expanded); `None` when a
/// JSON null is met.
fn exists(value: &Value, path: &[String]) -> Option<bool> {
    match (value, path.split_first()) {
        (Value::Null, _) => None,
        (Value::Array(items), _) => {
            let mut any = false;
            for v in items {
                any |= exists(v, path)?;
            }
            Some(any)
        }
        (_, None) => Some(true),
        (Value::Object(map), Some((first, rest))) => match map.get(first) {
            Some(v) => exists(v, rest),
            None => Some(false),
        },
        _ => Some(false),
    }
}

/// The FHIRPath engine shared by every profile of a rule set.
///
/// It runs without a FHIR model (`EmptyModelProvider`): paths are read from the JSON as written,
/// so a choice element is named with its type (`occurrenceDateTime`, not `occurrence`), and
/// type tests (`is`, `ofType`) on FHIR types do not work. `rules lint` says so for every
/// invariant that looks like it needs the model.
pub struct FhirPathEngine {
    engine: octofhir_fhirpath::FhirPathEngine,
    provider: Arc<dyn ModelProvider + Send + Sync>,
}

impl std::fmt::Debug for FhirPathEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FhirPathEngine")
    }
}

/// The outcome of one invariant on one element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    Yes,
    No,
    /// The expression failed at run time (the message says why).
    Unknown(String),
}

impl FhirPathEngine {
    pub fn new() -> Result<Self, String> {
        let provider: Arc<dyn ModelProvider + Send + Sync> = Arc::new(EmptyModelProvider);
        let engine = futures_executor::block_on(octofhir_fhirpath::FhirPathEngine::new(
            Arc::new(create_function_registry()),
            provider.clone(),
        ))
        .map_err(|e| e.to_string())?;
        Ok(Self { engine, provider })
    }

    pub fn compile(&self, expression: &str) -> Result<CompiledInvariant, String> {
        let plan = self
            .engine
            .compile_plan(expression)
            .map_err(|e| e.to_string())?;
        Ok(CompiledInvariant {
            plan,
            simple: Simple::parse(expression),
        })
    }

    /// An evaluation context on `resource`, shared by every invariant evaluated on it.
    pub fn session(&self, resource: &Value) -> Session<'_> {
        let root = FhirPathValue::resource(resource.clone());
        let context = EvaluationContext::new(
            Collection::single(root.clone()),
            self.provider.clone(),
            None,
            None,
            None,
        );
        context.set_variable("resource".into(), root.clone());
        context.set_variable("rootResource".into(), root);
        Session {
            engine: self,
            context,
        }
    }
}

/// One resource being checked.
pub struct Session<'a> {
    engine: &'a FhirPathEngine,
    context: EvaluationContext,
}

impl Session<'_> {
    /// Evaluates `invariant` with `element` as its focus (`None`: the resource itself). An
    /// empty result means the invariant does not apply, as FHIR validators read it.
    pub fn holds(&self, invariant: &CompiledInvariant, element: Option<&Value>) -> Holds {
        let child;
        let context = match element {
            None => &self.context,
            Some(v) => {
                let value = match v {
                    Value::Object(_) => FhirPathValue::resource(v.clone()),
                    other => {
                        octofhir_fhirpath::core::value::utils::json_to_fhirpath_value(other.clone())
                    }
                };
                child = self
                    .context
                    .create_child_context(Collection::single(value.clone()));
                child.set_this(value);
                &child
            }
        };
        match futures_executor::block_on(
            self.engine
                .engine
                .evaluate_plan(&invariant.plan, &context.nest()),
        ) {
            Ok(result) if result.is_constraint_satisfied() => Holds::Yes,
            Ok(_) => Holds::No,
            Err(e) => Holds::Unknown(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simple_invariants_are_read_as_the_engine_reads_them() {
        let engine = FhirPathEngine::new().expect("engine");
        let expressions = [
            "reasonCode.exists() or reasonReference.exists() or `note`.text.exists()",
            "coding.exists() or text.exists()",
            "coding.exists() and text.exists()",
            "code.coding.code.exists()",
        ];
        let focuses = [
            json!({}),
            json!({"reasonCode": [{"text": "x"}]}),
            json!({"reasonCode": []}),
            json!({"reasonCode": null}),
            json!({"note": [null, {"text": "x"}]}),
            json!({"note": [{"text": "a"}]}),
            json!({"note": [{"authorString": "a"}, {"text": "b"}]}),
            json!({"note": [{"_text": {"id": "x"}}]}),
            json!({"reasonReference": [{"reference": "Condition/1"}]}),
            json!({"coding": [{"system": "s", "code": "c"}]}),
            json!({"coding": [{"system": "s", "code": "c"}], "text": "t"}),
            json!({"text": "t"}),
            json!({"code": {"coding": [{"system": "s"}, {"code": "c"}]}}),
            json!({"code": {"coding": [{"system": "s"}]}}),
        ];
        for e in expressions {
            let compiled = engine.compile(e).expect("compiles");
            assert!(compiled.is_simple(), "{e}");
            for f in &focuses {
                let direct = compiled.holds_simply(f);
                if direct.is_none() {
                    // A null on the way: left to the engine.
                    continue;
                }
                let session = engine.session(f);
                assert_eq!(direct, Some(session.holds(&compiled, None)), "{e} on {f}");
                // The same on an element of a resource (the element is the focus).
                let outer = json!({"resourceType": "ServiceRequest", "code": f});
                let session = engine.session(&outer);
                let element = Some(&outer["code"]);
                assert_eq!(
                    direct,
                    Some(session.holds(&compiled, element)),
                    "{e} on {f}"
                );
            }
        }
        for e in [
            "note.text.exists()",
            "reasonCode.exists() or text.exists() and code.exists()",
            "Observation.code.exists()",
            "code.where(text = 'x').exists()",
            "%resource.code.exists()",
        ] {
            let compiled = engine.compile(e).expect("compiles");
            assert!(!compiled.is_simple(), "{e}");
        }
    }
}
