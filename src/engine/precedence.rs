//! Contract §2: one decision per ServiceRequest from what the stages found, and the one line
//! that says it. Pure: no rule set, no request, only what precedence needs to know.
//!
//! Precedence: invalid FHIR or profile errors → `rejected` (all errors listed). Otherwise a
//! fired redirect rule → `redirected` (other fired rules still listed as issues). Otherwise a
//! fired reject rule → `rejected`. Otherwise `accepted`. A rule that applies but lacks the
//! context it needs (e.g. the age) cannot clear the request: when nothing redirects it, it is
//! `rejected` until the context is sent.

use crate::finding::{Decision, IssueType};
use crate::rules::rule::Action;

/// A rule that fired, as precedence sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub action: Action,
    /// The rule applied but lacked context: it neither redirects nor rejects by its action.
    pub needs_context: bool,
}

/// What the stages found, in the terms of contract §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageResults<'a> {
    /// The request is not valid FHIR R4.
    pub invalid: bool,
    /// The issue types of the profile errors, in the order found.
    pub profile_errors: &'a [IssueType],
    /// The rules that fired, in rule order.
    pub fired: &'a [Fired<'a>],
}

/// The decision and why, before it is put in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling<'a> {
    /// Not valid FHIR R4.
    Invalid,
    /// Profile errors: `count` of them, the first of type `first`.
    ProfileErrors {
        count: usize,
        first: IssueType,
    },
    /// The first redirect rule that fired, in rule order.
    Redirected {
        by: Fired<'a>,
    },
    /// Reject rules fired (`rejecting`), or rules applied that lack context (`lacking_context`).
    Rejected {
        rejecting: Vec<&'a str>,
        lacking_context: Vec<&'a str>,
    },
    Accepted,
}

/// Contract §2.
pub fn precedence<'a>(found: &StageResults<'a>) -> Ruling<'a> {
    if found.invalid {
        return Ruling::Invalid;
    }
    if let Some(first) = found.profile_errors.first() {
        return Ruling::ProfileErrors {
            count: found.profile_errors.len(),
            first: *first,
        };
    }
    let decided = |action: Action| {
        found
            .fired
            .iter()
            .filter(move |f| !f.needs_context && f.action == action)
    };
    if let Some(by) = decided(Action::Redirect).next() {
        return Ruling::Redirected { by: *by };
    }
    let rejecting: Vec<&str> = decided(Action::Reject).map(|f| f.id).collect();
    let lacking_context: Vec<&str> = found
        .fired
        .iter()
        .filter(|f| f.needs_context)
        .map(|f| f.id)
        .collect();
    if rejecting.is_empty() && lacking_context.is_empty() {
        Ruling::Accepted
    } else {
        Ruling::Rejected {
            rejecting,
            lacking_context,
        }
    }
}

impl Ruling<'_> {
    pub fn decision(&self) -> Decision {
        match self {
            Ruling::Redirected { .. } => Decision::Redirected,
            Ruling::Accepted => Decision::Accepted,
            _ => Decision::Rejected,
        }
    }

    /// The issue type of the issue that carries the decision.
    pub fn issue_type(&self) -> IssueType {
        match self {
            Ruling::Invalid => IssueType::Invalid,
            Ruling::ProfileErrors { first, .. } => *first,
            Ruling::Redirected { .. } => IssueType::BusinessRule,
            Ruling::Rejected { rejecting, .. } if !rejecting.is_empty() => IssueType::BusinessRule,
            Ruling::Rejected { .. } => IssueType::Required,
            Ruling::Accepted => IssueType::Informational,
        }
    }

    /// The one line for people. `advice` ends every rejection that a person can discuss (the
    /// duty radiologist); `pathway` names where a redirect goes (`name (contact)`);
    /// `description` says what the gateway understood of the request.
    pub fn summary(&self, advice: &str, pathway: &str, description: &str) -> String {
        match self {
            Ruling::Invalid => "Rejected: the request is not valid FHIR R4. Correct the errors listed and send it again.".into(),
            Ruling::ProfileErrors { count, .. } => format!(
                "Rejected: the request does not meet the imaging referral profile ({count} error{}). Correct the errors listed and send it again. {advice}",
                if *count == 1 { "" } else { "s" },
            ),
            Ruling::Redirected { by } => format!(
                "Redirected to {pathway} by guidance rule {}: {}",
                by.id, by.title
            ),
            Ruling::Rejected {
                rejecting,
                lacking_context,
            } => {
                let mut s = if rejecting.is_empty() {
                    "Rejected: guidance rule(s)".to_string()
                } else {
                    format!(
                        "Rejected by guidance rule(s) {}.{}",
                        rejecting.join(", "),
                        if lacking_context.is_empty() { "" } else { " Guidance rule(s)" }
                    )
                };
                if !lacking_context.is_empty() {
                    s.push_str(&format!(
                        " {} {} but need information the request does not give (listed below).",
                        lacking_context.join(", "),
                        if rejecting.is_empty() { "apply" } else { "also apply" },
                    ));
                }
                s.push(' ');
                s.push_str(advice);
                s
            }
            Ruling::Accepted => format!("Accepted. {description}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADVICE: &str = "Call the duty radiologist.";
    const PATHWAY: &str = "Breast unit (ext 1)";
    const DESCRIPTION: &str = "Procedure: US breast.";

    fn rule(id: &'static str, action: Action) -> Fired<'static> {
        Fired {
            id,
            title: "Title",
            action,
            needs_context: false,
        }
    }

    fn lacking(id: &'static str, action: Action) -> Fired<'static> {
        Fired {
            needs_context: true,
            ..rule(id, action)
        }
    }

    /// A row: what it shows, invalid, profile errors, fired rules, then the decision, the issue
    /// type and the summary expected.
    type Row = (
        &'static str,
        bool,
        Vec<IssueType>,
        Vec<Fired<'static>>,
        Decision,
        IssueType,
        String,
    );

    /// Every row of contract §2, with the decision, the issue type of the decision issue and
    /// the summary.
    #[test]
    fn precedence_table() {
        use Action::*;
        use IssueType as T;
        let reject = rule("R1", Reject);
        let reject2 = rule("R2", Reject);
        let redirect = rule("D1", Redirect);
        let redirect2 = rule("D2", Redirect);
        let warn = rule("W1", Warn);
        let inform = rule("I1", Inform);
        let table: Vec<Row> = vec![
            ("invalid FHIR, whatever fired", true, vec![], vec![redirect, reject], Decision::Rejected, T::Invalid,
             "Rejected: the request is not valid FHIR R4. Correct the errors listed and send it again.".into()),
            ("profile errors before a redirect", false, vec![T::Required, T::CodeInvalid], vec![redirect], Decision::Rejected, T::Required,
             format!("Rejected: the request does not meet the imaging referral profile (2 errors). Correct the errors listed and send it again. {ADVICE}")),
            ("one profile error before a reject", false, vec![T::Invariant], vec![reject], Decision::Rejected, T::Invariant,
             format!("Rejected: the request does not meet the imaging referral profile (1 error). Correct the errors listed and send it again. {ADVICE}")),
            ("a redirect before a reject", false, vec![], vec![reject, redirect], Decision::Redirected, T::BusinessRule,
             format!("Redirected to {PATHWAY} by guidance rule D1: Title")),
            ("the first redirect in rule order", false, vec![], vec![redirect2, redirect], Decision::Redirected, T::BusinessRule,
             format!("Redirected to {PATHWAY} by guidance rule D2: Title")),
            ("a redirect before missing context", false, vec![], vec![lacking("R3", Reject), redirect], Decision::Redirected, T::BusinessRule,
             format!("Redirected to {PATHWAY} by guidance rule D1: Title")),
            ("a redirect rule lacking context does not redirect", false, vec![], vec![lacking("D3", Redirect)], Decision::Rejected, T::Required,
             format!("Rejected: guidance rule(s) D3 apply but need information the request does not give (listed below). {ADVICE}")),
            ("reject rules", false, vec![], vec![reject, reject2], Decision::Rejected, T::BusinessRule,
             format!("Rejected by guidance rule(s) R1, R2. {ADVICE}")),
            ("only rejecting rules are named as rejecting", false, vec![], vec![warn, reject, inform], Decision::Rejected, T::BusinessRule,
             format!("Rejected by guidance rule(s) R1. {ADVICE}")),
            ("rejecting rules and rules lacking context", false, vec![], vec![lacking("W2", Warn), reject, inform], Decision::Rejected, T::BusinessRule,
             format!("Rejected by guidance rule(s) R1. Guidance rule(s) W2 also apply but need information the request does not give (listed below). {ADVICE}")),
            ("only missing context", false, vec![], vec![lacking("R3", Reject), warn], Decision::Rejected, T::Required,
             format!("Rejected: guidance rule(s) R3 apply but need information the request does not give (listed below). {ADVICE}")),
            ("warn and inform rules accept", false, vec![], vec![warn, inform], Decision::Accepted, T::Informational,
             format!("Accepted. {DESCRIPTION}")),
            ("nothing fired", false, vec![], vec![], Decision::Accepted, T::Informational,
             format!("Accepted. {DESCRIPTION}")),
        ];
        for (row, invalid, profile_errors, fired, decision, issue_type, summary) in table {
            let ruling = precedence(&StageResults {
                invalid,
                profile_errors: &profile_errors,
                fired: &fired,
            });
            assert_eq!(ruling.decision(), decision, "{row}");
            assert_eq!(ruling.issue_type(), issue_type, "{row}");
            assert_eq!(
                ruling.summary(ADVICE, PATHWAY, DESCRIPTION),
                summary,
                "{row}"
            );
        }
    }
}
