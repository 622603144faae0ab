//! What every stage of the pipeline reports: findings, and the decision they lead to.

use crate::fhirpath::FhirPath;
use serde::{Deserialize, Serialize};

/// FHIR `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Information,
    Warning,
    Error,
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Information => "information",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }
}

/// The decision on one ServiceRequest (contract §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accepted,
    Rejected,
    Redirected,
}

impl Decision {
    pub fn code(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
            Decision::Redirected => "redirected",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Decision::Accepted => "Accepted",
            Decision::Rejected => "Rejected",
            Decision::Redirected => "Redirected",
        }
    }

    /// The severity of the issue that carries this decision.
    pub fn severity(self) -> Severity {
        match self {
            Decision::Accepted => Severity::Information,
            Decision::Redirected => Severity::Warning,
            Decision::Rejected => Severity::Error,
        }
    }
}

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    /// FHIR issue-type code (`structure`, `required`, `business-rule`, ...).
    pub code: &'static str,
    /// The guidance rule that produced it, if any.
    pub rule: Option<RuleRef>,
    /// For people: the guidance in plain words with the advice.
    pub text: String,
    /// Why it fired: which codes or words matched. Never patient identifiers.
    pub diagnostics: Option<String>,
    /// FHIRPath of the element concerned.
    pub expression: Vec<FhirPath>,
    /// 1-based line and column in the submitted text, for parse errors.
    pub position: Option<(usize, usize)>,
    /// Where to take the line and column from when it is not the expression (an unknown
    /// element has no FHIRPath of its own: the expression names its parent).
    pub source_path: Option<FhirPath>,
}

/// The rule id and title carried in `issue.details.coding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    pub id: String,
    pub title: String,
}

impl Finding {
    pub fn new(severity: Severity, code: &'static str, text: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            rule: None,
            text: text.into(),
            diagnostics: None,
            expression: Vec::new(),
            position: None,
            source_path: None,
        }
    }

    pub fn at(mut self, path: FhirPath) -> Self {
        self.expression.push(path);
        self
    }

    pub fn with_diagnostics(mut self, diagnostics: impl Into<String>) -> Self {
        self.diagnostics = Some(diagnostics.into());
        self
    }

    pub fn with_position(mut self, position: Option<(usize, usize)>) -> Self {
        self.position = position;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity >= Severity::Error
    }
}
