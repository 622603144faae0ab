//! One guidance rule as written in its data file, and compiled.

use super::conditions::Cx;
pub use super::conditions::{When, WhenDef};
use crate::finding::IssueType;
use crate::load::{line_of_quoted, LoadError};
use crate::terminology::Terminology;
use serde::Deserialize;

/// What a fired rule does to the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Reject,
    Redirect,
    Warn,
    Inform,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::Redirect => "redirect",
            Action::Warn => "warn",
            Action::Inform => "inform",
        }
    }
}

/// Which element of the request a finding points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Focus {
    #[default]
    Reason,
    Procedure,
    Requester,
    SupportingInfo,
    Subject,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleDef {
    pub file: String,
    pub expect: crate::finding::Decision,
    pub fires: Option<bool>,
}

/// A rule file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub id: String,
    pub title: String,
    pub section: String,
    pub guidance: String,
    pub action: Action,
    pub pathway: Option<String>,
    #[serde(default = "default_issue_code")]
    pub issue_code: String,
    #[serde(default)]
    pub focus: Focus,
    pub why: String,
    pub advice: String,
    /// The guidance says the examination is not justified for this presentation (as opposed
    /// to information missing from the request): the CDS Hooks card of a rejection by this
    /// rule is `critical`, not `warning`. Read for reject rules only, so that a site can turn
    /// a rule into a warning by its action alone.
    #[serde(default)]
    pub not_justified: bool,
    /// Rules that speak for this one when both fire: the more specific tip for the same
    /// request (US01, a benign lump, yields to US04, a benign lesion under follow-up). A rule
    /// yields only to a rule that is not in shadow mode, so a shadow rule changes no answer.
    #[serde(default)]
    pub yields_to: Vec<String>,
    /// The `[when]` table as written: compiled by [`super::conditions`].
    #[serde(default)]
    pub when: WhenDef,
    #[serde(default)]
    pub examples: Vec<ExampleDef>,
}

fn default_issue_code() -> String {
    "business-rule".into()
}

/// FHIR issue types a rule may use.
pub const ISSUE_TYPES: &[IssueType] = &[
    IssueType::Invalid,
    IssueType::Structure,
    IssueType::Required,
    IssueType::Value,
    IssueType::Invariant,
    IssueType::Security,
    IssueType::Processing,
    IssueType::NotSupported,
    IssueType::Duplicate,
    IssueType::MultipleMatches,
    IssueType::NotFound,
    IssueType::TooLong,
    IssueType::CodeInvalid,
    IssueType::Extension,
    IssueType::TooCostly,
    IssueType::BusinessRule,
    IssueType::Conflict,
    IssueType::Transient,
    IssueType::Informational,
    IssueType::Incomplete,
];

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub def: RuleDef,
    pub issue_code: IssueType,
    pub when: When,
    /// The file it was read from, relative to the rules folder.
    pub file: String,
}

/// Compiles a rule (read from `text` of `file`) against the terminology and site data; every
/// problem is reported, at its line.
pub fn compile(
    def: RuleDef,
    file: String,
    text: &str,
    terms: &Terminology,
    site: &crate::site::Site,
) -> Result<Rule, Vec<LoadError>> {
    let mut cx = Cx::new(terms, site, &file, text);
    let when = When::compile(&def.when, &mut cx);
    let mut errors = cx.errors;
    let mut error = |message: String| {
        let line = line_of_quoted(text, &message);
        errors.push(LoadError::new(file.clone(), message).at_line(line));
    };
    match (def.action, &def.pathway) {
        (Action::Redirect, None) => error("a redirect rule needs a pathway".into()),
        (Action::Redirect, Some(p)) if site.pathway(p).is_none() => {
            error(format!("unknown pathway '{p}' (site.toml [[pathways]])"))
        }
        (a, Some(_)) if a != Action::Redirect => error("only redirect rules name a pathway".into()),
        _ => {}
    }
    let issue_code = IssueType::from_code(&def.issue_code).filter(|t| ISSUE_TYPES.contains(t));
    if issue_code.is_none() {
        error(format!(
            "issue_code '{}' is not a FHIR issue-type code",
            def.issue_code
        ));
    }
    if def.id.trim().is_empty() {
        error("the rule id is empty".into());
    }
    match (errors.is_empty(), issue_code) {
        (true, Some(issue_code)) => Ok(Rule {
            def,
            issue_code,
            when,
            file,
        }),
        _ => Err(errors),
    }
}
