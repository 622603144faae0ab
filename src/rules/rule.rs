//! One guidance rule as written in its data file, and compiled.

use crate::finding::IssueType;
use crate::terminology::{Table, Terminology};
use jsonpath_rust::parser::model::JpQuery;
use regex::Regex;
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
pub struct ObservationAbsentDef {
    pub kind: String,
    #[serde(default)]
    pub within_days: Option<i64>,
}

/// The `[when]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenDef {
    #[serde(default)]
    pub procedure: Vec<String>,
    #[serde(default)]
    pub reason_any: Vec<String>,
    #[serde(default)]
    pub reason_all: Vec<String>,
    #[serde(default)]
    pub reason_none: Vec<String>,
    #[serde(default)]
    pub reason_only: Vec<String>,
    pub clinical_question: Option<bool>,
    pub no_clinical_information: Option<bool>,
    pub red_flags: Option<bool>,
    pub clinical_change: Option<bool>,
    #[serde(default)]
    pub text_any: Vec<String>,
    #[serde(default)]
    pub text_none: Vec<String>,
    pub age_at_least: Option<i64>,
    pub age_below: Option<i64>,
    pub requester_org_in: Option<String>,
    pub requester_org_not_in: Option<String>,
    pub observation_absent: Option<ObservationAbsentDef>,
    pub two_week_wait: Option<bool>,
    #[serde(default)]
    pub priority: Vec<String>,
    #[serde(default)]
    pub jsonpath_any: Vec<String>,
    #[serde(default)]
    pub jsonpath_none: Vec<String>,
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

/// A selector of reason concepts: one concept or a group.
#[derive(Debug, Clone)]
pub enum ReasonSel {
    Concept(usize),
    Group(String),
}

/// A selector of procedure concepts: one concept or a modality.
#[derive(Debug, Clone)]
pub enum ProcedureSel {
    Concept(usize),
    Modality(String),
    /// `modality:*`: any recognised imaging procedure.
    AnyImaging,
}

/// A compiled JSONPath with its source text.
#[derive(Debug, Clone)]
pub struct JsonPathCond {
    pub source: String,
    pub query: JpQuery,
}

/// The compiled `[when]`.
#[derive(Debug, Clone, Default)]
pub struct When {
    pub procedure: Vec<ProcedureSel>,
    pub reason_any: Vec<ReasonSel>,
    pub reason_all: Vec<ReasonSel>,
    pub reason_none: Vec<ReasonSel>,
    pub reason_only: Vec<ReasonSel>,
    pub clinical_question: Option<bool>,
    pub no_clinical_information: Option<bool>,
    pub red_flags: Option<bool>,
    pub clinical_change: Option<bool>,
    pub text_any: Option<Regex>,
    pub text_none: Option<Regex>,
    pub age_at_least: Option<i64>,
    pub age_below: Option<i64>,
    pub requester_org_in: Option<String>,
    pub requester_org_not_in: Option<String>,
    pub observation_absent: Option<(usize, i64)>,
    pub two_week_wait: Option<bool>,
    pub priority: Vec<String>,
    pub jsonpath_any: Vec<JsonPathCond>,
    pub jsonpath_none: Vec<JsonPathCond>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub def: RuleDef,
    pub issue_code: IssueType,
    pub when: When,
    /// The file it was read from, relative to the rules folder.
    pub file: String,
}

/// Compiles a rule against the terminology and site data; every problem is reported.
pub fn compile(
    def: RuleDef,
    file: String,
    terms: &Terminology,
    site: &crate::site::Site,
) -> Result<Rule, Vec<String>> {
    let mut errors = Vec::new();
    let w = &def.when;
    let reason = |name: &str, errors: &mut Vec<String>| -> Option<ReasonSel> {
        if let Some(g) = name.strip_prefix("group:") {
            if terms
                .reasons
                .iter()
                .any(|c| c.groups.iter().any(|x| x == g))
            {
                Some(ReasonSel::Group(g.to_string()))
            } else {
                errors.push(format!("no reason concept is in group '{g}'"));
                None
            }
        } else if let Some(i) = terms.find(Table::Reason, name) {
            Some(ReasonSel::Concept(i))
        } else {
            errors.push(format!("unknown reason concept '{name}'"));
            None
        }
    };
    let reasons = |list: &[String], errors: &mut Vec<String>| -> Vec<ReasonSel> {
        list.iter().filter_map(|n| reason(n, errors)).collect()
    };
    let procedure: Vec<ProcedureSel> = w
        .procedure
        .iter()
        .filter_map(|name| {
            if name == "modality:*" {
                Some(ProcedureSel::AnyImaging)
            } else if let Some(m) = name.strip_prefix("modality:") {
                if terms
                    .procedures
                    .iter()
                    .any(|c| c.modality.as_deref() == Some(m))
                {
                    Some(ProcedureSel::Modality(m.to_string()))
                } else {
                    errors.push(format!("no procedure concept has modality '{m}'"));
                    None
                }
            } else if let Some(i) = terms.find(Table::Procedure, name) {
                Some(ProcedureSel::Concept(i))
            } else {
                errors.push(format!("unknown procedure concept '{name}'"));
                None
            }
        })
        .collect();
    let reason_any = reasons(&w.reason_any, &mut errors);
    let reason_all = reasons(&w.reason_all, &mut errors);
    let reason_none = reasons(&w.reason_none, &mut errors);
    let reason_only = reasons(&w.reason_only, &mut errors);
    let regex = |list: &[String], errors: &mut Vec<String>| -> Option<Regex> {
        if list.is_empty() {
            return None;
        }
        crate::terminology::text::compile_patterns(list)
            .map_err(|e| errors.push(format!("text pattern does not compile: {e}")))
            .ok()
    };
    let text_any = regex(&w.text_any, &mut errors);
    let text_none = regex(&w.text_none, &mut errors);
    let jsonpaths = |list: &[String], errors: &mut Vec<String>| -> Vec<JsonPathCond> {
        list.iter()
            .filter_map(|src| match jsonpath_rust::parser::parse_json_path(src) {
                Ok(query) => Some(JsonPathCond {
                    source: src.clone(),
                    query,
                }),
                Err(e) => {
                    errors.push(format!("JSONPath '{src}' does not compile: {e}"));
                    None
                }
            })
            .collect()
    };
    let jsonpath_any = jsonpaths(&w.jsonpath_any, &mut errors);
    let jsonpath_none = jsonpaths(&w.jsonpath_none, &mut errors);
    for list in [&w.requester_org_in, &w.requester_org_not_in]
        .into_iter()
        .flatten()
    {
        if !site.site_lists.contains_key(list) {
            errors.push(format!(
                "unknown site list '{list}' (site.toml [site_lists])"
            ));
        }
    }
    let observation_absent =
        w.observation_absent
            .as_ref()
            .and_then(|o| match terms.find(Table::Observation, &o.kind) {
                Some(i) => Some((i, o.within_days.unwrap_or(site.renal_function_max_age_days))),
                None => {
                    errors.push(format!("unknown observation kind '{}'", o.kind));
                    None
                }
            });
    for p in &w.priority {
        if !["routine", "urgent", "asap", "stat"].contains(&p.as_str()) {
            errors.push(format!(
                "priority '{p}' is not a FHIR request-priority code"
            ));
        }
    }
    match (def.action, &def.pathway) {
        (Action::Redirect, None) => errors.push("a redirect rule needs a pathway".into()),
        (Action::Redirect, Some(p)) if site.pathway(p).is_none() => {
            errors.push(format!("unknown pathway '{p}' (site.toml [[pathways]])"))
        }
        (a, Some(_)) if a != Action::Redirect => {
            errors.push("only redirect rules name a pathway".into())
        }
        _ => {}
    }
    let issue_code = IssueType::from_code(&def.issue_code).filter(|t| ISSUE_TYPES.contains(t));
    if issue_code.is_none() {
        errors.push(format!(
            "issue_code '{}' is not a FHIR issue-type code",
            def.issue_code
        ));
    }
    if def.id.trim().is_empty() {
        errors.push("the rule id is empty".into());
    }
    let when = When {
        procedure,
        reason_any,
        reason_all,
        reason_none,
        reason_only,
        clinical_question: w.clinical_question,
        no_clinical_information: w.no_clinical_information,
        red_flags: w.red_flags,
        clinical_change: w.clinical_change,
        text_any,
        text_none,
        age_at_least: w.age_at_least,
        age_below: w.age_below,
        requester_org_in: w.requester_org_in.clone(),
        requester_org_not_in: w.requester_org_not_in.clone(),
        observation_absent,
        two_week_wait: w.two_week_wait,
        priority: w.priority.clone(),
        jsonpath_any,
        jsonpath_none,
    };
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
