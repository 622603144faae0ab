//! Evaluates a compiled rule against the facts of one request.

use super::rule::{ProcedureSel, ReasonSel, Rule, When};
use crate::context::{Context, Missing};
use crate::fhirpath::FhirPath;
use crate::site::Site;
use crate::terminology::mapping::{ConceptMatch, Mapped};
use crate::terminology::{text, ReasonKind, Table, Terminology};
use serde_json::Value;

/// Everything known about one request.
pub struct Facts<'a> {
    pub sr: &'a Value,
    pub at: &'a FhirPath,
    pub ctx: &'a Context<'a>,
    pub mapped: &'a Mapped,
    pub terms: &'a Terminology,
    pub site: &'a Site,
}

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

enum Check {
    Holds(Option<String>, Option<FhirPath>),
    Fails,
    Unknown(Missing),
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

impl Facts<'_> {
    fn reason_matches(&self, sel: &ReasonSel, m: &ConceptMatch) -> bool {
        match sel {
            ReasonSel::Concept(i) => m.concept == *i,
            ReasonSel::Group(g) => self.terms.reasons[m.concept].groups.iter().any(|x| x == g),
        }
    }

    fn procedure_matches(&self, sel: &ProcedureSel, m: &ConceptMatch) -> bool {
        match sel {
            ProcedureSel::Concept(i) => m.concept == *i,
            ProcedureSel::Modality(x) => {
                self.terms.procedures[m.concept].modality.as_deref() == Some(x.as_str())
            }
            ProcedureSel::AnyImaging => true,
        }
    }

    fn reason_title(&self, m: &ConceptMatch) -> String {
        format!(
            "{} ({} at {})",
            self.terms.reasons[m.concept].title, m.evidence, m.path
        )
    }

    fn present_of_kind(&self, kind: ReasonKind) -> Option<&ConceptMatch> {
        self.mapped
            .present_reasons()
            .find(|r| self.terms.reasons[r.concept].kind == kind)
    }
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
    let w = &rule.when;
    let mut why = Vec::new();
    let mut paths = Vec::new();
    let mut missing = Vec::new();
    let mut failed = false;
    let checks = request_checks(w, f)
        .0
        .into_iter()
        .chain(context_checks(w, f).0);
    for (name, check) in checks {
        let result = check();
        if let Some(steps) = steps.as_deref_mut() {
            steps.push(step(&rule.def.when, name, &result));
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

/// What a condition asked for, as the rule file says it.
fn asked(w: &super::rule::WhenDef, name: &str) -> String {
    let list = |l: &[String]| l.join(", ");
    let opt = |o: Option<&dyn std::fmt::Display>| o.map(|v| v.to_string()).unwrap_or_default();
    match name {
        "procedure" => list(&w.procedure),
        "reason_any" => list(&w.reason_any),
        "reason_all" => list(&w.reason_all),
        "reason_none" => list(&w.reason_none),
        "reason_only" => list(&w.reason_only),
        "clinical_question" => opt(w.clinical_question.as_ref().map(|v| v as _)),
        "no_clinical_information" => opt(w.no_clinical_information.as_ref().map(|v| v as _)),
        "red_flags" => opt(w.red_flags.as_ref().map(|v| v as _)),
        "clinical_change" => opt(w.clinical_change.as_ref().map(|v| v as _)),
        "text_any" => list(&w.text_any),
        "text_none" => list(&w.text_none),
        "two_week_wait" => opt(w.two_week_wait.as_ref().map(|v| v as _)),
        "priority" => list(&w.priority),
        "jsonpath_any" => list(&w.jsonpath_any),
        "jsonpath_none" => list(&w.jsonpath_none),
        "age_at_least" => opt(w.age_at_least.as_ref().map(|v| v as _)),
        "age_below" => opt(w.age_below.as_ref().map(|v| v as _)),
        "requester_org_in" => opt(w.requester_org_in.as_ref().map(|v| v as _)),
        "requester_org_not_in" => opt(w.requester_org_not_in.as_ref().map(|v| v as _)),
        "observation_absent" => w
            .observation_absent
            .as_ref()
            .map(|o| match o.within_days {
                Some(d) => format!("{} within {d} days", o.kind),
                None => o.kind.clone(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn step(w: &super::rule::WhenDef, name: &'static str, result: &Check) -> ConditionStep {
    let wanted = format!("{name} = {}", asked(w, name));
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

type CheckFn<'r> = Box<dyn Fn() -> Check + 'r>;

/// A rule's checks in order, each with the name of its `[when]` key: `name` is called before
/// each `push`.
#[derive(Default)]
struct Checks<'r>(Vec<(&'static str, CheckFn<'r>)>, &'static str);

impl<'r> Checks<'r> {
    fn name(&mut self, name: &'static str) {
        self.1 = name;
    }

    fn push(&mut self, check: CheckFn<'r>) {
        self.0.push((self.1, check));
    }
}

fn holds(why: impl Into<String>, path: Option<FhirPath>) -> Check {
    Check::Holds(Some(why.into()), path)
}

fn request_checks<'r>(w: &'r When, f: &'r Facts<'r>) -> Checks<'r> {
    let mut checks = Checks::default();
    if !w.procedure.is_empty() {
        checks.name("procedure");
        checks.push(Box::new(|| {
            match f
                .mapped
                .procedures
                .iter()
                .find(|m| w.procedure.iter().any(|s| f.procedure_matches(s, m)))
            {
                Some(m) => holds(
                    format!(
                        "procedure {} ({} at {})",
                        f.terms.procedures[m.concept].title, m.evidence, m.path
                    ),
                    Some(m.path.clone()),
                ),
                None => Check::Fails,
            }
        }));
    }
    if !w.reason_any.is_empty() {
        checks.name("reason_any");
        checks.push(Box::new(|| {
            match f
                .mapped
                .present_reasons()
                .find(|m| w.reason_any.iter().any(|s| f.reason_matches(s, m)))
            {
                Some(m) => holds(
                    format!("reason {}", f.reason_title(m)),
                    Some(m.path.clone()),
                ),
                None => Check::Fails,
            }
        }));
    }
    if !w.reason_all.is_empty() {
        checks.name("reason_all");
        checks.push(Box::new(|| {
            let mut found = Vec::new();
            for sel in &w.reason_all {
                match f
                    .mapped
                    .present_reasons()
                    .find(|m| f.reason_matches(sel, m))
                {
                    Some(m) => found.push(m),
                    None => return Check::Fails,
                }
            }
            let text = found
                .iter()
                .map(|m| f.reason_title(m))
                .collect::<Vec<_>>()
                .join("; ");
            holds(
                format!("reasons {text}"),
                found.first().map(|m| m.path.clone()),
            )
        }));
    }
    if !w.reason_none.is_empty() {
        checks.name("reason_none");
        checks.push(Box::new(|| {
            if f.mapped
                .present_reasons()
                .any(|m| w.reason_none.iter().any(|s| f.reason_matches(s, m)))
            {
                return Check::Fails;
            }
            let negated: Vec<String> = f
                .mapped
                .reasons
                .iter()
                .filter(|m| m.negated && w.reason_none.iter().any(|s| f.reason_matches(s, m)))
                .map(|m| f.reason_title(m))
                .collect();
            if negated.is_empty() {
                Check::Holds(None, None)
            } else {
                holds(
                    format!("negated, so not counted: {}", negated.join("; ")),
                    None,
                )
            }
        }));
    }
    if !w.reason_only.is_empty() {
        checks.name("reason_only");
        checks.push(Box::new(|| {
            let present: Vec<&ConceptMatch> = f
                .mapped
                .present_reasons()
                .filter(|m| f.terms.reasons[m.concept].kind != ReasonKind::Context)
                .collect();
            let all_in = !present.is_empty()
                && present
                    .iter()
                    .all(|m| w.reason_only.iter().any(|s| f.reason_matches(s, m)));
            let all_understood = f.mapped.reason_items.iter().all(|i| i.recognised);
            if all_in && all_understood {
                let list = present
                    .iter()
                    .map(|m| f.reason_title(m))
                    .collect::<Vec<_>>()
                    .join("; ");
                holds(
                    format!("the only reasons given: {list}"),
                    present.first().map(|m| m.path.clone()),
                )
            } else {
                Check::Fails
            }
        }));
    }
    if let Some(want) = w.clinical_question {
        checks.name("clinical_question");
        checks.push(Box::new(move || match (&f.mapped.question, want) {
            (Some((p, what)), true) => holds(format!("clinical question: {what}"), Some(p.clone())),
            (None, false) => holds(
                "no clinical question or differential diagnosis is given",
                None,
            ),
            _ => Check::Fails,
        }));
    }
    if let Some(want) = w.no_clinical_information {
        checks.name("no_clinical_information");
        checks.push(Box::new(move || {
            let none = !f.mapped.has_clinical_information;
            if none == want {
                holds(
                    if !none {
                        "clinical information is given"
                    } else if f.mapped.has_reason_elements {
                        "the reason and notes hold no finding, symptom or clinical question (only courtesies, administrative remarks or negated findings)"
                    } else {
                        "no reasonCode, reasonReference or note is given"
                    },
                    None,
                )
            } else {
                Check::Fails
            }
        }));
    }
    for (flag, kind, name) in [
        (w.red_flags, ReasonKind::RedFlag, "red flag"),
        (
            w.clinical_change,
            ReasonKind::ClinicalChange,
            "clinical change",
        ),
    ] {
        if let Some(want) = flag {
            checks.name(if kind == ReasonKind::RedFlag {
                "red_flags"
            } else {
                "clinical_change"
            });
            checks.push(Box::new(move || match (f.present_of_kind(kind), want) {
                (Some(m), true) => holds(
                    format!("{name}: {}", f.reason_title(m)),
                    Some(m.path.clone()),
                ),
                (None, false) => holds(format!("no {name} is mentioned"), None),
                _ => Check::Fails,
            }));
        }
    }
    if let Some(re) = &w.text_any {
        checks.name("text_any");
        checks.push(Box::new(move || {
            for (path, t) in &f.mapped.texts {
                if let Some(x) = f
                    .terms
                    .reader
                    .mentions(re, t)
                    .into_iter()
                    .find(|x| x.is_current())
                {
                    return holds(
                        format!("text '{}' at {path}", &t[x.start..x.end]),
                        Some(path.clone()),
                    );
                }
            }
            Check::Fails
        }));
    }
    if let Some(re) = &w.text_none {
        checks.name("text_none");
        checks.push(Box::new(move || {
            if f.mapped.texts.iter().any(|(_, t)| {
                f.terms
                    .reader
                    .mentions(re, t)
                    .iter()
                    .any(|x| x.is_current())
            }) {
                Check::Fails
            } else {
                Check::Holds(None, None)
            }
        }));
    }
    if let Some(want) = w.two_week_wait {
        checks.name("two_week_wait");
        checks.push(Box::new(move || match (&f.mapped.two_week_wait, want) {
            (Some((p, what)), true) => holds(format!("2WW marker {what} at {p}"), Some(p.clone())),
            (None, false) => Check::Holds(None, None),
            _ => Check::Fails,
        }));
    }
    if !w.priority.is_empty() {
        checks.name("priority");
        checks.push(Box::new(|| {
            match f.sr.get("priority").and_then(Value::as_str) {
                Some(p) if w.priority.iter().any(|x| x == p) => {
                    holds(format!("priority {p}"), Some(f.at.field("priority")))
                }
                _ => Check::Fails,
            }
        }));
    }
    for jp in &w.jsonpath_any {
        checks.name("jsonpath_any");
        checks.push(Box::new(move || {
            let found = jsonpath_rust::query::js_path_process(&jp.query, f.sr)
                .map(|v| !v.is_empty())
                .unwrap_or(false);
            if found {
                holds(format!("JSONPath {} matches", jp.source), None)
            } else {
                Check::Fails
            }
        }));
    }
    for jp in &w.jsonpath_none {
        checks.name("jsonpath_none");
        checks.push(Box::new(move || {
            let found = jsonpath_rust::query::js_path_process(&jp.query, f.sr)
                .map(|v| !v.is_empty())
                .unwrap_or(false);
            if found {
                Check::Fails
            } else {
                Check::Holds(None, None)
            }
        }));
    }
    checks
}

fn context_checks<'r>(w: &'r When, f: &'r Facts<'r>) -> Checks<'r> {
    let mut checks = Checks::default();
    let age_check = move |limit: i64, at_least: bool| -> Check {
        match &f.ctx.age {
            Ok(age) => {
                let (sure_yes, sure_no) = if at_least {
                    (age.min >= limit, age.max < limit)
                } else {
                    (age.max < limit, age.min >= limit)
                };
                let shown = if age.min == age.max {
                    format!("{}", age.min)
                } else {
                    format!("{} to {}", age.min, age.max)
                };
                let path = f.ctx.patient.as_ref().map(|(_, p)| p.field("birthDate"));
                if sure_yes {
                    holds(format!("patient aged {shown} at {}", f.ctx.authored), path)
                } else if sure_no {
                    Check::Fails
                } else {
                    Check::Unknown(Missing {
                        what: "exact patient age",
                        looked: format!("the birth date is partial: the age could be {shown}, either side of {limit}"),
                        at: path.unwrap_or_else(|| f.at.field("subject")),
                    })
                }
            }
            Err(m) => Check::Unknown(m.clone()),
        }
    };
    if let Some(n) = w.age_at_least {
        checks.name("age_at_least");
        checks.push(Box::new(move || age_check(n, true)));
    }
    if let Some(n) = w.age_below {
        checks.name("age_below");
        checks.push(Box::new(move || age_check(n, false)));
    }
    for (list, want_in) in [
        (&w.requester_org_in, true),
        (&w.requester_org_not_in, false),
    ] {
        let Some(list) = list else { continue };
        checks.name(if want_in {
            "requester_org_in"
        } else {
            "requester_org_not_in"
        });
        checks.push(Box::new(move || {
            let codes = f
                .site
                .site_lists
                .get(list)
                .map(|l| l.ods_codes.as_slice())
                .unwrap_or(&[]);
            match &f.ctx.organisation_ods {
                Ok(ods) => {
                    let is_in = ods
                        .iter()
                        .any(|o| codes.iter().any(|c| c.eq_ignore_ascii_case(o)));
                    if is_in == want_in {
                        holds(
                            format!(
                                "requesting organisation {} is {}in the site list '{list}'",
                                ods.join(", "),
                                if is_in { "" } else { "not " }
                            ),
                            Some(f.at.field("requester")),
                        )
                    } else {
                        Check::Fails
                    }
                }
                Err(m) => match general_practice(f).filter(|_| !want_in) {
                    // A general practice is not an authorised centre: the rule's answer, not
                    // a request for the ODS code (which only makes the gateway surer).
                    Some(said) => holds(
                        format!(
                            "the requester is a general practice ('{said}'), which is not in the site list '{list}'; its ODS code was not given ({}), so the list itself could not be checked",
                            m.looked
                        ),
                        Some(f.at.field("requester")),
                    ),
                    None => Check::Unknown(m.clone()),
                },
            }
        }));
    }
    if let Some((kind, days)) = w.observation_absent {
        checks.name("observation_absent");
        checks.push(Box::new(move || observation_absent(f, kind, days)));
    }
    checks
}

/// The words that say the requester is a general practice (markers `general-practice` and
/// `not-general-practice` of the terminology), if they do.
fn general_practice(f: &Facts<'_>) -> Option<String> {
    let marker = |id: &str| {
        f.terms
            .find(Table::Marker, id)
            .and_then(|i| f.terms.markers[i].pattern.as_ref())
    };
    let gp = marker("general-practice")?;
    let not_gp = marker("not-general-practice");
    let texts: Vec<String> = f
        .ctx
        .requester_descriptions
        .iter()
        .map(|t| text::normalise(t))
        .collect();
    if texts
        .iter()
        .any(|t| not_gp.is_some_and(|re| re.is_match(t)))
    {
        return None;
    }
    texts.into_iter().find(|t| gp.is_match(t))
}

fn observation_absent(f: &Facts<'_>, kind: usize, days: i64) -> Check {
    let concept = &f.terms.observations[kind];
    let of_kind = f.ctx.observations.iter().filter(|o| {
        let Some(code) = o.resource.get("code") else {
            return false;
        };
        let coded = code
            .get("coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                concept.codes.iter().any(|d| {
                    c.get("system").and_then(Value::as_str) == Some(d.system.as_str())
                        && c.get("code").and_then(Value::as_str) == Some(d.code.as_str())
                })
            });
        let texts = code.get("text").and_then(Value::as_str).into_iter().chain(
            code.get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("display").and_then(Value::as_str)),
        );
        coded
            || concept.pattern.as_ref().is_some_and(|re| {
                texts
                    .map(text::normalise)
                    .any(|t| f.terms.reader.mentions(re, &t).iter().any(|x| !x.negated))
            })
    });
    let mut undated = None;
    let mut newest: Option<i64> = None;
    for o in of_kind {
        match o.effective {
            Some(d) => {
                let age = (f.ctx.authored - d.latest).whole_days();
                if (0..=days).contains(&age) || (age < 0 && age > -2) {
                    return Check::Fails;
                }
                newest = Some(newest.map_or(age, |n: i64| n.min(age)));
            }
            None => undated = Some(o.path.clone()),
        }
    }
    if let Some(path) = undated {
        return Check::Unknown(Missing {
            what: "date of the supporting result",
            looked: format!(
                "the {} Observation has no effective date or issued time",
                concept.title
            ),
            at: path,
        });
    }
    let why = match newest {
        Some(n) => format!(
            "the newest {} result is {n} days old (limit {days} days)",
            concept.title
        ),
        None => format!("no {} result is given in supportingInfo", concept.title),
    };
    holds(
        why,
        Some(if f.sr.get("supportingInfo").is_some() {
            f.at.field("supportingInfo")
        } else {
            f.at.clone()
        }),
    )
}
