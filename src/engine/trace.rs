//! The explanation of a decision (contract §9, `$explain` and `check --explain`): every step the
//! engine took on one ServiceRequest, recorded while it decided — codes and words matched, the
//! context looked up, each rule tried with each condition. Recorded only when asked for
//! ([`super::check_explained`]); the HTTP Parameters, the terminal text and the console all
//! render this one record (`crate::explain`), so nothing is worked out twice.

use crate::context::Context;
use crate::fhirpath::{FhirPath, Step};
use crate::parse::Input;
use crate::rules::eval::{ConditionStep, Verdict};
use crate::rules::rule::Rule;
use crate::rules::RuleSet;
use crate::terminology::forms::Forms;
use crate::terminology::mapping::{ConceptMatch, Mapped};
use crate::terminology::text::normalise;
use crate::terminology::Concept;
use serde_json::Value;

/// Everything the engine did on one ServiceRequest, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub matches: Vec<MatchStep>,
    /// The words of each reason item the reader could not place (they may carry a finding, so
    /// they keep GEN01 and the "pain as the only symptom" rules from firing).
    pub unplaced: Vec<(FhirPath, Vec<String>)>,
    pub context: Vec<ContextStep>,
    pub rules: Vec<RuleStep>,
}

/// How a concept was found: by a code, or by words in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Code,
    Word,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Code => "code",
            MatchKind::Word => "word",
        }
    }
}

/// One concept found in the request.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchStep {
    pub kind: MatchKind,
    /// `procedure`, `reason` or `marker`.
    pub table: &'static str,
    /// The concept's id in the terminology, and its title.
    pub concept: String,
    pub concept_title: String,
    /// The CodeSystem the concept is published in (`{canonical}/CodeSystem/referral-reason`).
    pub concept_system: Option<String>,
    /// For a code: the coding's system and code.
    pub system: Option<String>,
    pub code: Option<String>,
    /// The text read: for words the clinical text as the reader saw it (lower case, spaces
    /// folded), for a code its display.
    pub text: Option<String>,
    /// Where in the input (FHIRPath).
    pub expression: FhirPath,
    /// Character positions of the words in `text` (start inclusive, end exclusive).
    pub start: Option<usize>,
    pub end: Option<usize>,
    pub negated: bool,
    pub questioned: bool,
    /// The negation or question cue that made it so, when the reader names it.
    pub trigger: Option<String>,
    /// Why a mention that is `negated` does not count, when it is not plain negation: "past",
    /// "hypothetical", "family history" (the reader's `Mention::context`).
    pub context: Option<&'static str>,
}

/// One piece of context looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextStep {
    pub what: String,
    /// Where it was looked for, and where it was found (or why not).
    pub place: String,
    pub found: bool,
}

/// One rule tried.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStep {
    pub id: String,
    pub title: String,
    pub action: &'static str,
    pub fired: bool,
    /// It applied but lacked context (a `required` rejection).
    pub needs_context: bool,
    pub conditions: Vec<ConditionStep>,
}

impl RuleStep {
    pub fn new(rule: &Rule, verdict: &Verdict, conditions: Vec<ConditionStep>) -> Self {
        Self {
            id: rule.def.id.clone(),
            title: rule.def.title.clone(),
            action: rule.def.action.as_str(),
            fired: !matches!(verdict, Verdict::NotFired),
            needs_context: matches!(verdict, Verdict::NeedsContext { .. }),
            conditions,
        }
    }
}

/// The JSON element at `path` of the input, if there is one.
fn value_at<'a>(input: &'a Input, path: &FhirPath) -> Option<&'a Value> {
    let skip = input.root_path.steps().len();
    path.steps()
        .iter()
        .skip(skip)
        .try_fold(&input.root, |v, step| match step {
            Step::Field(name) => v.get(name),
            Step::Index(i) => v.get(*i),
        })
}

/// Byte offsets to character positions.
fn char_pos(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |t| t.chars().count())
}

impl Trace {
    /// The concepts the terminology found, in the order it found them.
    pub fn record_matches(&mut self, rules: &RuleSet, input: &Input, mapped: &Mapped) {
        let terms = &rules.terms;
        let site = &rules.site;
        let procedures = mapped.procedures.iter().map(|m| {
            let c = &terms.procedures[m.concept];
            (
                m,
                "procedure",
                c,
                Some(site.code_system("imaging-procedure")),
            )
        });
        let reasons = mapped.reasons.iter().map(|m| {
            let c = &terms.reasons[m.concept];
            (m, "reason", c, Some(site.code_system("referral-reason")))
        });
        for (m, table, concept, concept_system) in procedures.chain(reasons) {
            self.matches.push(match_step(
                input,
                mapped,
                m,
                table,
                concept,
                concept_system,
                &terms.forms,
            ));
        }
        self.unplaced = mapped
            .reason_items
            .iter()
            .filter(|i| !i.unexplained.is_empty())
            .map(|i| (i.path.clone(), i.unexplained.clone()))
            .collect();
        if let Some((path, what)) = &mapped.two_week_wait {
            let coding = value_at(input, path).filter(|v| v.get("code").is_some());
            let is_code = coding.is_some();
            self.matches.push(MatchStep {
                kind: if is_code {
                    MatchKind::Code
                } else {
                    MatchKind::Word
                },
                table: "marker",
                concept: "two-week-wait".into(),
                concept_title: "Two-week-wait (urgent suspected cancer) referral".into(),
                concept_system: None,
                system: coding
                    .and_then(|c| c.get("system"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                code: coding
                    .and_then(|c| c.get("code"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                text: Some(what.trim_matches('\'').to_string()),
                expression: path.clone(),
                start: None,
                end: None,
                negated: false,
                questioned: false,
                trigger: None,
                context: None,
            });
        }
    }

    /// The context the engine resolved for the request at `at`.
    pub fn record_context(&mut self, ctx: &Context<'_>, sr: &Value, at: &FhirPath) {
        let subject = at.field("subject");
        match &ctx.patient {
            Some((_, path)) => self.context.push(ContextStep {
                what: "patient".into(),
                place: format!("{subject} → {path}"),
                found: true,
            }),
            None if sr.get("subject").is_none() => self.context.push(ContextStep {
                what: "patient".into(),
                place: format!("{subject}: absent"),
                found: false,
            }),
            None => {}
        }
        match &ctx.age {
            Ok(age) => self.context.push(ContextStep {
                what: "patient age".into(),
                place: format!(
                    "{}: {} at {}",
                    ctx.patient
                        .as_ref()
                        .map_or_else(|| subject.clone(), |(_, p)| p.field("birthDate")),
                    if age.min == age.max {
                        format!("{}", age.min)
                    } else {
                        format!("{} to {}", age.min, age.max)
                    },
                    if ctx.authored_given {
                        "authoredOn"
                    } else {
                        "today (no authoredOn)"
                    }
                ),
                found: true,
            }),
            Err(m) => self.context.push(ContextStep {
                what: m.what.into(),
                place: format!("{}: {}", m.at, m.looked),
                found: false,
            }),
        }
        match &ctx.organisation_ods {
            Ok(ods) => self.context.push(ContextStep {
                what: "requesting organisation (ODS code)".into(),
                place: format!("{}: {}", at.field("requester"), ods.join(", ")),
                found: true,
            }),
            Err(m) => self.context.push(ContextStep {
                what: m.what.into(),
                place: format!("{}: {}", m.at, m.looked),
                found: false,
            }),
        }
        for o in &ctx.observations {
            self.context.push(ContextStep {
                what: "supporting Observation".into(),
                place: format!(
                    "{} → {}{}",
                    at.field("supportingInfo"),
                    o.path,
                    if o.effective.is_some() {
                        ""
                    } else {
                        " (no date)"
                    }
                ),
                found: true,
            });
        }
        for (i, r) in ctx.reason_resources.iter().enumerate() {
            if let Some((_, path)) = r {
                self.context.push(ContextStep {
                    what: "reason resource".into(),
                    place: format!("{} → {path}", at.field("reasonReference").index(i)),
                    found: true,
                });
            }
        }
        for m in &ctx.unresolved {
            if self.context.iter().any(|c| c.place.contains(&m.looked)) {
                continue;
            }
            self.context.push(ContextStep {
                what: m.what.into(),
                place: format!("{}: {}", m.at, m.looked),
                found: false,
            });
        }
    }
}

fn match_step(
    input: &Input,
    mapped: &Mapped,
    m: &ConceptMatch,
    table: &'static str,
    concept: &Concept,
    concept_system: Option<String>,
    forms: &Forms,
) -> MatchStep {
    let element = value_at(input, &m.path);
    let coding = element.filter(|v| v.is_object() && v.get("code").is_some());
    let base = MatchStep {
        kind: MatchKind::Code,
        table,
        concept: concept.id.clone(),
        concept_title: concept.title.clone(),
        concept_system,
        system: None,
        code: None,
        text: None,
        expression: m.path.clone(),
        start: None,
        end: None,
        negated: m.negated,
        questioned: m.questioned,
        trigger: None,
        context: m.context,
    };
    if let Some(c) = coding {
        let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        return MatchStep {
            system: s("system"),
            code: s("code"),
            text: s("display"),
            ..base
        };
    }
    // Words: the text as the reader saw it, and where the words are in it. The evidence is
    // the matched words in quotes.
    let text = mapped
        .texts
        .iter()
        .find(|(p, _)| *p == m.path)
        .map(|(_, t)| t.clone())
        .or_else(|| element.and_then(Value::as_str).map(|t| normalise(t, forms)));
    let words = m
        .evidence
        .split('\'')
        .nth(1)
        .filter(|w| !w.is_empty())
        .map(str::to_string);
    let span = match (&text, &words) {
        (Some(t), Some(w)) => t
            .find(w.as_str())
            .map(|b| (char_pos(t, b), char_pos(t, b + w.len()))),
        _ => None,
    };
    MatchStep {
        kind: MatchKind::Word,
        text: text.or(words),
        start: span.map(|s| s.0),
        end: span.map(|s| s.1),
        ..base
    }
}
