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
pub struct CompiledInvariant(Arc<CompiledPlan>);

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
        self.engine
            .compile_plan(expression)
            .map(CompiledInvariant)
            .map_err(|e| e.to_string())
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
                .evaluate_plan(&invariant.0, &context.nest()),
        ) {
            Ok(result) if result.is_constraint_satisfied() => Holds::Yes,
            Ok(_) => Holds::No,
            Err(e) => Holds::Unknown(e.to_string()),
        }
    }
}
