//! Evaluates a compiled rule against the facts of one request. The conditions themselves are in [`super::conditions`], one file each.

pub use super::conditions::Facts;
use super::conditions::{Check, Compiled};
use super::rule::Rule;
use crate::context::Missing;
use crate::fhirpath::FhirPath;

/// The result of one rule on one request.
#[derive(Debug, Clone)]
pub enum Verdict {
    NotFired,
    /// Every condition holds: why (for `diagnostics`) and where (for `expression`).
    Fired {
        why: Vec<String>,
        paths: Vec<FhirPath>,
    },
    /// Every condition that could be checked holds, but one needs context the request lacks.
    NeedsContext {
        why: Vec<String>,
        missing: Vec<Missing>,
    },
}

/// One condition of a rule as `$explain` shows it: its name as written in the rule file's
/// `[when]`, whether it held, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionStep {
    pub name: &'static str,
    /// `None`: it could not be checked for want of context.
    pub held: Option<bool>,
    pub why: String,
}

/// Evaluates `rule`. The conditions on the request itself come first; the conditions on
/// context are checked last so that a request is never rejected for missing context that no
/// rule would have used.
pub fn evaluate(rule: &Rule, f: &Facts<'_>) -> Verdict {
    evaluate_with(rule, f, None)
}

/// [`evaluate`], recording every condition (all are checked, not only up to the first that
/// fails) for `$explain`. The verdict is the same.
pub fn evaluate_traced(rule: &Rule, f: &Facts<'_>, steps: &mut Vec<ConditionStep>) -> Verdict {
    evaluate_with(rule, f, Some(steps))
}

fn evaluate_with(
    rule: &Rule,
    f: &Facts<'_>,
    mut steps: Option<&mut Vec<ConditionStep>>,
) -> Verdict {
    let mut why = Vec::new();
    let mut paths = Vec::new();
    let mut missing = Vec::new();
    let mut failed = false;
    // The conditions are in registry order: those on context come last.
    for c in &rule.when.conditions {
        let result = c.condition.check(f);
        if let Some(steps) = steps.as_deref_mut() {
            steps.push(step(c, &result));
        }
        match result {
            Check::Holds(reason, path) => {
                why.extend(reason);
                paths.extend(path);
            }
            Check::Fails if steps.is_none() => return Verdict::NotFired,
            Check::Fails => failed = true,
            Check::Unknown(m) => missing.push(m),
        }
    }
    if failed {
        return Verdict::NotFired;
    }
    if !missing.is_empty() {
        return Verdict::NeedsContext { why, missing };
    }
    Verdict::Fired { why, paths }
}

fn step(c: &Compiled, result: &Check) -> ConditionStep {
    let name = c.kind.key;
    let wanted = format!("{name} = {}", c.asked);
    match result {
        Check::Holds(reason, _) => ConditionStep {
            name,
            held: Some(true),
            why: reason.clone().unwrap_or_else(|| format!("holds: {wanted}")),
        },
        Check::Fails => ConditionStep {
            name,
            held: Some(false),
            why: format!("not met: the rule wants {wanted}"),
        },
        Check::Unknown(m) => ConditionStep {
            name,
            held: None,
            why: format!(
                "not known: the {} is missing ({}, at {})",
                m.what, m.looked, m.at
            ),
        },
    }
}
