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

/// FHIR R4 `OperationOutcome.issue.code` (the IssueType value set,
/// http://hl7.org/fhir/ValueSet/issue-type): what kind of problem an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Unknown,
    Expired,
    Forbidden,
    Suppressed,
    Processing,
    NotSupported,
    Duplicate,
    MultipleMatches,
    NotFound,
    Deleted,
    TooLong,
    CodeInvalid,
    Extension,
    TooCostly,
    BusinessRule,
    Conflict,
    Transient,
    LockError,
    NoStore,
    Exception,
    Timeout,
    Incomplete,
    Throttled,
    Informational,
}

impl IssueType {
    /// Every code, in the order of the FHIR value set.
    pub const ALL: [IssueType; 31] = [
        IssueType::Invalid,
        IssueType::Structure,
        IssueType::Required,
        IssueType::Value,
        IssueType::Invariant,
        IssueType::Security,
        IssueType::Login,
        IssueType::Unknown,
        IssueType::Expired,
        IssueType::Forbidden,
        IssueType::Suppressed,
        IssueType::Processing,
        IssueType::NotSupported,
        IssueType::Duplicate,
        IssueType::MultipleMatches,
        IssueType::NotFound,
        IssueType::Deleted,
        IssueType::TooLong,
        IssueType::CodeInvalid,
        IssueType::Extension,
        IssueType::TooCostly,
        IssueType::BusinessRule,
        IssueType::Conflict,
        IssueType::Transient,
        IssueType::LockError,
        IssueType::NoStore,
        IssueType::Exception,
        IssueType::Timeout,
        IssueType::Incomplete,
        IssueType::Throttled,
        IssueType::Informational,
    ];

    /// The FHIR code.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Unknown => "unknown",
            IssueType::Expired => "expired",
            IssueType::Forbidden => "forbidden",
            IssueType::Suppressed => "suppressed",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::MultipleMatches => "multiple-matches",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Extension => "extension",
            IssueType::TooCostly => "too-costly",
            IssueType::BusinessRule => "business-rule",
            IssueType::Conflict => "conflict",
            IssueType::Transient => "transient",
            IssueType::LockError => "lock-error",
            IssueType::NoStore => "no-store",
            IssueType::Exception => "exception",
            IssueType::Timeout => "timeout",
            IssueType::Incomplete => "incomplete",
            IssueType::Throttled => "throttled",
            IssueType::Informational => "informational",
        }
    }

    /// The type of a FHIR code (rule files name one as `issue_code`).
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == code)
    }
}

/// An issue type equals its FHIR code, as read from an OperationOutcome (e.g. in tests).
impl PartialEq<&str> for IssueType {
    fn eq(&self, code: &&str) -> bool {
        self.as_str() == *code
    }
}

impl std::fmt::Display for IssueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for IssueType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
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
    /// What kind of problem it is (FHIR `issue.code`).
    pub code: IssueType,
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
    pub fn new(severity: Severity, code: IssueType, text: impl Into<String>) -> Self {
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
