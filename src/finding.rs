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

/// The one catalogue of what the gateway's own findings say: each has a stable id (its code
/// below), whatever its wording. A guidance rule's finding is identified by the rule id
/// instead ([`Finding::stable_id`]). Code compares ids, never the text of a finding.
macro_rules! catalogue {
    ($($variant:ident = $code:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FindingId {
            $($variant,)*
        }

        impl FindingId {
            /// Every id, in catalogue order.
            pub const ALL: &'static [FindingId] = &[$(FindingId::$variant,)*];

            /// The stable code.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $code,)*
                }
            }
        }
    };
}

catalogue! {
    // the input: bytes, JSON, XML, what is sent (parse)
    NotUtf8 = "not-utf8",
    JsonSyntax = "json-syntax",
    JsonTooDeep = "json-too-deep",
    XmlNotWellFormed = "xml-not-well-formed",
    XmlTooDeep = "xml-too-deep",
    XmlNotR4 = "xml-not-r4",
    XmlEncoding = "xml-encoding",
    XmlProcessingInstruction = "xml-processing-instruction",
    XmlAttributeNotAllowed = "xml-attribute-not-allowed",
    XmlNarrativeNamespace = "xml-narrative-namespace",
    XmlWrongNamespace = "xml-wrong-namespace",
    XmlTextNotAllowed = "xml-text-not-allowed",
    XmlRootNamespace = "xml-root-namespace",
    NotOneResource = "not-one-resource",
    InputWithoutResourceType = "input-without-resource-type",
    ResourceTypeNotChecked = "resource-type-not-checked",
    ParametersWithoutResource = "parameters-without-resource",
    ParametersResourceNotChecked = "parameters-resource-not-checked",
    BundleTypeNotChecked = "bundle-type-not-checked",
    ResourceTooDeep = "resource-too-deep",
    BundleTooManyEntries = "bundle-too-many-entries",
    EntryWithoutResource = "entry-without-resource",
    // the R4 structure of a resource (parse::structure, through fhir-codec and the gateway's own checks)
    UnknownElement = "unknown-element",
    ModelElementMissing = "model-element-missing",
    WrongJsonType = "wrong-json-type",
    NotR4 = "not-r4",
    NotAnArray = "not-an-array",
    NumberAsString = "number-as-string",
    BooleanAsString = "boolean-as-string",
    NotAnObject = "not-an-object",
    NoResourceType = "no-resource-type",
    RequiredElementMissing = "required-element-missing",
    InvalidId = "invalid-id",
    EmptyObject = "empty-object",
    ContainedContainsResources = "contained-contains-resources",
    NullValue = "null-value",
    EmptyString = "empty-string",
    EmptyArray = "empty-array",
    // Bundles (parse::bundle, outcome)
    FullUrlDuplicate = "full-url-duplicate",
    FullUrlVersioned = "full-url-versioned",
    FullUrlRelative = "full-url-relative",
    FullUrlNotTypeAndId = "full-url-not-type-and-id",
    LinkRelationRepeated = "link-relation-repeated",
    SearchEntryMode = "search-entry-mode",
    DocumentReferenceNotInBundle = "document-reference-not-in-bundle",
    BundleMethodNotPerformed = "bundle-method-not-performed",
    BundleContextRead = "bundle-context-read",
    NoServiceRequest = "no-service-request",
    // the base R4 checks on every element (profile::base, profile::narrative)
    SystemNotAbsolute = "system-not-absolute",
    CodeNotInRequiredValueSet = "code-not-in-required-value-set",
    NoCodeInRequiredValueSet = "no-code-in-required-value-set",
    ReferenceResolvesToOtherType = "reference-resolves-to-other-type",
    ReferenceTypeContradicted = "reference-type-contradicted",
    ReferenceMatchesSeveralEntries = "reference-matches-several-entries",
    ReferenceTargetNotAllowed = "reference-target-not-allowed",
    InvalidFormat = "invalid-format",
    NarrativeNotWellFormed = "narrative-not-well-formed",
    NarrativeNotOneDiv = "narrative-not-one-div",
    NarrativeNotBasicHtml = "narrative-not-basic-html",
    NarrativeEmpty = "narrative-empty",
    NarrativeDeadLink = "narrative-dead-link",
    // the profiles of profiles/ (profile::validate, engine)
    ProfileMin = "profile-min",
    ProfileMax = "profile-max",
    ProfileFixedValue = "profile-fixed-value",
    ProfileTargetType = "profile-target-type",
    ProfileRequiredBinding = "profile-required-binding",
    ProfileExtensibleBinding = "profile-extensible-binding",
    ProfileInvariant = "profile-invariant",
    ProfileInvariantNotEvaluated = "profile-invariant-not-evaluated",
    ProfileDeclaredOfOtherType = "profile-declared-of-other-type",
    ProfileDeclaredUnknown = "profile-declared-unknown",
    // the guidance (engine, rules::coverage)
    Rule = "rule",
    RuleNeedsContext = "rule-needs-context",
    GuidanceNotApplied = "guidance-not-applied",
    ReasonCodeUnknown = "reason-code-unknown",
    ContextUnresolved = "context-unresolved",
    WhatWasRead = "what-was-read",
    NoTip = "no-tip",
    ReasonNotRead = "reason-not-read",
    // HTTP answers that are not a decision (http)
    HttpAuthFailed = "http-auth-failed",
    HttpAuthKeysUnavailable = "http-auth-keys-unavailable",
    HttpBadSearch = "http-bad-search",
    HttpBodyTimeout = "http-body-timeout",
    HttpBodyUnreadable = "http-body-unreadable",
    HttpIdMismatch = "http-id-mismatch",
    HttpInternal = "http-internal",
    HttpInvalidParameter = "http-invalid-parameter",
    HttpMethodNotAllowed = "http-method-not-allowed",
    HttpModeNotSupported = "http-mode-not-supported",
    HttpNoStore = "http-no-store",
    HttpNotAcceptable = "http-not-acceptable",
    HttpNotFound = "http-not-found",
    HttpNotRecorded = "http-not-recorded",
    HttpNotStored = "http-not-stored",
    HttpPayloadTooLarge = "http-payload-too-large",
    HttpRateLimited = "http-rate-limited",
    HttpScopeMissing = "http-scope-missing",
    HttpShuttingDown = "http-shutting-down",
    HttpStatus = "http-status",
    HttpStoreUnavailable = "http-store-unavailable",
    HttpTimeout = "http-timeout",
    HttpUnknownProfile = "http-unknown-profile",
    HttpUnknownResource = "http-unknown-resource",
    HttpUnsupportedCharset = "http-unsupported-charset",
    HttpUnsupportedFhirVersion = "http-unsupported-fhir-version",
    HttpUnsupportedMediaType = "http-unsupported-media-type",
    HttpWrongResourceType = "http-wrong-resource-type",
    // the command line (cli)
    CliCannotRead = "cli-cannot-read",
    CliTooLarge = "cli-too-large",
    CliFailed = "cli-failed",
}

impl FindingId {
    /// A finding about a coded value that is not in the value set bound to its element.
    pub fn is_binding(self) -> bool {
        matches!(
            self,
            FindingId::CodeNotInRequiredValueSet
                | FindingId::NoCodeInRequiredValueSet
                | FindingId::ProfileRequiredBinding
                | FindingId::ProfileExtensibleBinding
        )
    }
}

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What it says, from the catalogue ([`FindingId::Rule`] for a guidance rule's finding,
    /// whose id is the rule's).
    pub id: FindingId,
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
    pub fn new(
        id: FindingId,
        severity: Severity,
        code: IssueType,
        text: impl Into<String>,
    ) -> Self {
        Self {
            id,
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

    /// The stable id: the rule id for a guidance rule's finding, else the catalogue code.
    pub fn stable_id(&self) -> &str {
        match (&self.rule, self.id) {
            (Some(r), FindingId::Rule) => &r.id,
            _ => self.id.as_str(),
        }
    }

    /// The same finding: the same id, kind and severity on the same elements (the text is
    /// not compared: it says the same thing in the same words).
    pub fn same_as(&self, other: &Finding) -> bool {
        self.stable_id() == other.stable_id()
            && self.code == other.code
            && self.severity == other.severity
            && self.expression == other.expression
    }

    pub fn is_error(&self) -> bool {
        self.severity >= Severity::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_codes_are_unique_and_kebab_case() {
        for (i, id) in FindingId::ALL.iter().enumerate() {
            let code = id.as_str();
            assert!(
                FindingId::ALL[..i].iter().all(|o| o.as_str() != code),
                "{code} twice"
            );
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{code}"
            );
        }
    }

    #[test]
    fn a_rule_finding_is_identified_by_its_rule() {
        let mut f = Finding::new(
            FindingId::Rule,
            Severity::Error,
            IssueType::BusinessRule,
            "t",
        );
        f.rule = Some(RuleRef {
            id: "US05".into(),
            title: "t".into(),
        });
        assert_eq!(f.stable_id(), "US05");
        let g = Finding::new(
            FindingId::NoTip,
            Severity::Warning,
            IssueType::Informational,
            "t",
        );
        assert_eq!(g.stable_id(), "no-tip");
        // The same finding in other words is the same finding.
        let mut h = g.clone();
        h.text = "other words".into();
        assert!(g.same_as(&h));
        assert!(!g.same_as(&f));
    }
}
