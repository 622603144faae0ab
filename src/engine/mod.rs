//! The decision engine: one call from bytes to a decision per ServiceRequest ([`check`]), and
//! the one engine service every front end calls ([`Engine`], in [`service`]).
//!
//! parse → context → terminology → rules → decision (contract §2 precedence).

pub mod corpus;
pub mod precedence;
pub mod redirect;
pub mod service;
pub mod trace;

pub use service::{
    Answered, Asker, Call, Caller, DecisionRecord, DecisionSink, Engine, EngineError, Kept,
    Purpose, SinkError, SinkFuture,
};

use crate::context::{self, Missing, Resolver};
use crate::fhirpath::FhirPath;
use crate::finding::{Decision, Finding, FindingId, IssueType, RuleRef, Severity};
use crate::parse::{self, Entry, Format, Input, Limits, Unusable};
use crate::rules::eval::{evaluate, evaluate_traced, ConditionStep, Facts, Verdict};
use crate::rules::rule::{Action, Focus, Rule};
use crate::rules::RuleSet;
use crate::site::RuleMode;
use crate::terminology::mapping::Mapped;
use crate::terminology::ReasonKind;
use precedence::{precedence, Fired, Ruling, StageResults};
use redirect::redirected_request;
use serde_json::Value;

/// The decision on one ServiceRequest.
#[derive(Debug, Clone)]
pub struct RequestResult {
    /// Where the request is in the input.
    pub path: FhirPath,
    pub decision: Decision,
    /// The request is not valid FHIR (HTTP 400, exit status 2).
    pub invalid: bool,
    /// One line for people: what was decided and why.
    pub summary: String,
    /// The FHIR issue type of the decision issue.
    pub decision_code: IssueType,
    pub findings: Vec<Finding>,
    /// The redirected ServiceRequest, when redirected.
    pub redirected: Option<Value>,
    /// Ids of the rules that fired, in rule order.
    pub fired: Vec<String>,
    /// Ids of the rules (also in `fired`) that applied but lacked context, e.g. the age.
    pub needs_context: Vec<String>,
    /// Every step of the decision, when an explanation was asked for ([`check_explained`]).
    pub trace: Option<Box<trace::Trace>>,
    /// Shadow rules (site `[rule_modes]`) that would have fired: recorded in the consult,
    /// never shown to the caller. Boxed: most requests have none.
    pub shadow: Option<Box<Shadow>>,
}

/// What the shadow rules would have said about a request.
#[derive(Debug, Clone, Default)]
pub struct Shadow {
    /// Ids of the shadow rules that fired, in rule order.
    pub fired: Vec<String>,
    /// Their findings, as they would have read.
    pub findings: Vec<Finding>,
}

/// What the engine says about one entry of the input.
#[derive(Debug, Clone)]
pub enum EntryResult {
    Request(RequestResult),
    /// A context resource (Patient, Observation, ...) of a Bundle: read, not decided on.
    Context {
        path: FhirPath,
        findings: Vec<Finding>,
    },
    /// A batch or transaction entry asking for something the gateway does not do (a GET,
    /// DELETE or PATCH, a PUT of a ServiceRequest): answered `405`, nothing decided.
    NotPerformed {
        /// `Bundle.entry[i].request.method`
        path: FhirPath,
        method: String,
    },
}

/// Whether the gateway performs what a Bundle entry's `request.method` asks: a POST (a
/// ServiceRequest is decided, context is read), or a PUT of context (read as context, as a
/// POST of it is). It stores nothing, so it performs no update of a ServiceRequest, no read,
/// no delete and no patch.
fn performs(entry: &Entry) -> bool {
    match entry.method.as_deref() {
        None | Some("POST") => true,
        Some("PUT") => !entry.is_service_request(),
        Some(_) => false,
    }
}

/// The engine's answer for one input.
#[derive(Debug, Clone)]
pub struct Checked {
    pub input: Input,
    /// One per entry of the input, in order.
    pub entries: Vec<EntryResult>,
}

impl Checked {
    pub fn requests(&self) -> impl Iterator<Item = &RequestResult> {
        self.entries.iter().filter_map(|e| match e {
            EntryResult::Request(r) => Some(r),
            EntryResult::Context { .. } | EntryResult::NotPerformed { .. } => None,
        })
    }
}

/// How far a long check has got, for a front end that shows it (`check` on a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The input is parsed and its structure checked: this many entries are decided next.
    Parsed { entries: usize },
    /// `done` of the `of` entries are decided.
    Decided { done: usize, of: usize },
}

/// Told of [`Progress`] as a check goes; called on the deciding thread.
pub type OnProgress = dyn Fn(Progress) + Send + Sync;

/// Parses and decides every ServiceRequest of `bytes`.
pub fn check(
    rules: &RuleSet,
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Checked, Unusable> {
    check_with_profiles(rules, bytes, format, limits, &[])
}

/// [`check`], with the profiles `asked` (canonical URLs, e.g. `$validate?profile=`) checked on
/// every ServiceRequest as well as the ones the site enforces and the request declares.
pub fn check_with_profiles(
    rules: &RuleSet,
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    asked: &[String],
) -> Result<Checked, Unusable> {
    // With the base R4 checks on every element (bindings, formats, reference targets, narrative).
    run(rules, bytes, format, limits, asked, false, &|_| {})
}

/// [`check_with_profiles`], telling `progress` as it goes.
pub fn check_with_progress(
    rules: &RuleSet,
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    asked: &[String],
    progress: &OnProgress,
) -> Result<Checked, Unusable> {
    run(rules, bytes, format, limits, asked, false, progress)
}

/// [`check`], with every ServiceRequest's [`trace::Trace`] recorded (`$explain`).
pub fn check_explained(
    rules: &RuleSet,
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Checked, Unusable> {
    run(rules, bytes, format, limits, &[], true, &|_| {})
}

fn run(
    rules: &RuleSet,
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    asked: &[String],
    explain: bool,
    progress: &OnProgress,
) -> Result<Checked, Unusable> {
    let input = parse::parse_and_check(bytes, format, limits, &crate::profile::base::check_input)?;
    if input.findings.iter().any(Finding::is_error) {
        return Err(Unusable::Malformed(input.findings));
    }
    let resolver = Resolver::new(&input);
    let of = input.entries.len();
    progress(Progress::Parsed { entries: of });
    let entries = input
        .entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let result = if !performs(entry) {
                // Only Bundle entries have a method.
                EntryResult::NotPerformed {
                    path: FhirPath::root("Bundle")
                        .field("entry")
                        .index(entry.index.unwrap_or(0))
                        .field("request")
                        .field("method"),
                    method: entry.method.clone().unwrap_or_default(),
                }
            } else if entry.is_service_request() {
                let mut trace = explain.then(Box::<trace::Trace>::default);
                let mut result =
                    decide_traced(rules, &input, &resolver, entry, asked, trace.as_deref_mut());
                result.trace = trace;
                EntryResult::Request(result)
            } else {
                EntryResult::Context {
                    path: entry.path.clone(),
                    findings: entry.findings.clone(),
                }
            };
            progress(Progress::Decided { done: i + 1, of });
            result
        })
        .collect();
    Ok(Checked { input, entries })
}

fn rule_finding(
    rule: &Rule,
    rules: &RuleSet,
    why: &[String],
    paths: &[FhirPath],
    at: &FhirPath,
    sr: &Value,
) -> Finding {
    let def = &rule.def;
    let severity = match def.action {
        Action::Reject => Severity::Error,
        Action::Redirect | Action::Warn => Severity::Warning,
        Action::Inform => Severity::Information,
    };
    let mut text = format!("{} {}", def.guidance.trim(), def.advice.trim());
    match def.action {
        Action::Reject => {
            text.push(' ');
            text.push_str(&rules.site.duty_radiologist_advice());
        }
        Action::Redirect => {
            if let Some(p) = def.pathway.as_deref().and_then(|id| rules.site.pathway(id)) {
                text.push_str(&format!(
                    " Refer to: {} — {}.",
                    p.name,
                    p.booking_with_contact()
                ));
            }
        }
        _ => {}
    }
    let focus = focus_path(def.focus, paths, at, sr);
    Finding {
        id: FindingId::Rule,
        severity,
        code: rule.issue_code,
        rule: Some(RuleRef {
            id: def.id.clone(),
            title: def.title.clone(),
        }),
        text,
        diagnostics: Some(format!(
            "{} fired: {}",
            def.id,
            if why.is_empty() {
                def.why.clone()
            } else {
                why.join("; ")
            }
        )),
        expression: vec![focus],
        position: None,
        source_path: None,
    }
}

/// The element a finding points at, as the rule's `focus` says.
fn focus_path(focus: Focus, paths: &[FhirPath], at: &FhirPath, sr: &Value) -> FhirPath {
    let under = |field: &str| {
        let prefix = at.field(field).to_string();
        paths
            .iter()
            .find(|p| p.to_string().starts_with(&prefix))
            .cloned()
    };
    let present = |field: &str| sr.get(field).map(|_| at.field(field));
    match focus {
        Focus::Procedure => under("code").or_else(|| present("code")),
        Focus::Reason => under("reasonCode")
            .or_else(|| under("note"))
            .or_else(|| under("reasonReference"))
            .or_else(|| {
                paths
                    .iter()
                    .find(|p| !p.to_string().starts_with(&at.field("code").to_string()))
                    .cloned()
            })
            .or_else(|| present("reasonCode")),
        Focus::Requester => present("requester"),
        Focus::SupportingInfo => present("supportingInfo"),
        Focus::Subject => present("subject"),
    }
    .unwrap_or_else(|| at.clone())
}

fn describe(rules: &RuleSet, mapped: &Mapped) -> String {
    let terms = &rules.terms;
    let mut procs: Vec<&str> = mapped
        .procedures
        .iter()
        .map(|m| terms.procedures[m.concept].title.as_str())
        .collect();
    procs.dedup();
    let mut reasons: Vec<String> = Vec::new();
    for m in mapped.present_reasons() {
        if terms.reasons[m.concept].kind == ReasonKind::Qualifier {
            continue;
        }
        let named = format!(
            "{}{}",
            terms.reasons[m.concept].title,
            if m.questioned { " (query)" } else { "" }
        );
        // A concept mentioned twice (code and text) is named once.
        if !reasons.contains(&named) {
            reasons.push(named);
        }
    }
    format!(
        "Procedure: {}. Reasons: {}. Clinical question: {}.",
        if procs.is_empty() {
            "not recognised".to_string()
        } else {
            procs.join(", ")
        },
        if reasons.is_empty() {
            "none recognised".to_string()
        } else {
            reasons.join(", ")
        },
        if mapped.question.is_some() {
            "yes"
        } else {
            "none given"
        },
    )
}

/// The profile stage: the entry's findings with the profile findings added, and the issue
/// types of the profile errors (which decide before any rule, contract §2).
struct ProfileReport {
    findings: Vec<Finding>,
    errors: Vec<IssueType>,
}

/// Checks `sr` against the profiles the site enforces, those asked for, and those it declares
/// in `meta.profile`.
fn check_profiles(
    rules: &RuleSet,
    resolver: &Resolver<'_>,
    entry: &Entry,
    sr: &Value,
    at: &FhirPath,
    asked: &[String],
) -> ProfileReport {
    let mut findings = entry.findings.clone();
    let conformance = &rules.conformance;
    let resolve = |reference: &str| {
        resolver
            .resolve(reference, sr, at)
            .and_then(|(r, _)| r.get("resourceType")?.as_str().map(str::to_string))
    };
    let mut checked: Vec<&str> = Vec::new();
    for url in rules.site.enforce_profiles.iter().chain(asked) {
        if let Some(p) = conformance
            .profile(url)
            .filter(|p| !checked.contains(&p.url.as_str()))
        {
            checked.push(&p.url);
            findings.extend(conformance.validate(p, sr, at, &resolve));
        }
    }
    let declared = sr
        .get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(Value::as_array);
    for (i, url) in declared
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, u)| Some((i, u.as_str()?)))
    {
        let path = at.field("meta").field("profile").index(i);
        match conformance.profile(url) {
            Some(p) if checked.contains(&p.url.as_str()) => {}
            Some(p) if p.resource_type != "ServiceRequest" => findings.push(
                Finding::new(FindingId::ProfileDeclaredOfOtherType,
                    Severity::Error,
                    IssueType::Invalid,
                    format!("meta.profile names {url}, a profile of {}, not of ServiceRequest.", p.resource_type),
                )
                .at(path),
            ),
            Some(p) => {
                checked.push(&p.url);
                findings.extend(conformance.validate(p, sr, at, &resolve));
            }
            None => findings.push(
                Finding::new(FindingId::ProfileDeclaredUnknown,
                    Severity::Warning,
                    IssueType::NotSupported,
                    format!(
                        "The request declares the profile {url}, which the gateway does not have, so the request was not checked against it (only against the profiles the gateway enforces)."
                    ),
                )
                .at(path),
            ),
        }
    }
    let errors = findings
        .iter()
        .skip(entry.findings.len())
        .filter(|f| f.is_error())
        .map(|f| f.code)
        .collect();
    ProfileReport { findings, errors }
}

/// A rule that fired on a request, with what it found.
enum RuleHit<'r> {
    /// Every condition holds.
    Fired {
        rule: &'r Rule,
        why: Vec<String>,
        paths: Vec<FhirPath>,
    },
    /// The rule applies as far as it can tell, but lacks context.
    NeedsContext {
        rule: &'r Rule,
        why: Vec<String>,
        missing: Vec<Missing>,
    },
}

impl<'r> RuleHit<'r> {
    fn rule(&self) -> &'r Rule {
        match self {
            RuleHit::Fired { rule, .. } | RuleHit::NeedsContext { rule, .. } => rule,
        }
    }

    /// What precedence needs to know of it.
    fn as_fired(&self) -> Fired<'r> {
        let def = &self.rule().def;
        Fired {
            id: &def.id,
            title: &def.title,
            action: def.action,
            needs_context: matches!(self, RuleHit::NeedsContext { .. }),
        }
    }
}

/// The rule stage: every rule on the facts, in rule order.
fn run_rules<'r>(
    rules: &'r RuleSet,
    facts: &Facts<'_>,
    mut trace: Option<&mut trace::Trace>,
) -> Vec<RuleHit<'r>> {
    let hits = rules
        .rules
        .iter()
        .filter_map(|rule| {
            let verdict = match trace.as_deref_mut() {
                Some(t) => {
                    let mut conditions = Vec::new();
                    let verdict = evaluate_traced(rule, facts, &mut conditions);
                    t.rules
                        .push(trace::RuleStep::new(rule, &verdict, conditions));
                    verdict
                }
                None => evaluate(rule, facts),
            };
            Some(verdict).map(|v| (rule, v))
        })
        .filter_map(|(rule, verdict)| match verdict {
            Verdict::NotFired => None,
            Verdict::Fired { why, paths } => Some(RuleHit::Fired { rule, why, paths }),
            Verdict::NeedsContext { why, missing } => {
                Some(RuleHit::NeedsContext { rule, why, missing })
            }
        })
        .collect();
    yield_to_specific_rules(rules, hits, trace)
}

/// Drops the hits of rules that yield to another hit (`yields_to`): the more specific tip
/// speaks for the request alone. Only a rule that is not in shadow mode is yielded to.
fn yield_to_specific_rules<'r>(
    rules: &RuleSet,
    hits: Vec<RuleHit<'r>>,
    trace: Option<&mut trace::Trace>,
) -> Vec<RuleHit<'r>> {
    // Almost every request fires no rule that yields: nothing to look up then.
    if hits.iter().all(|h| h.rule().def.yields_to.is_empty()) {
        return hits;
    }
    let speaking: Vec<&str> = hits
        .iter()
        .map(|h| h.rule().def.id.as_str())
        .filter(|id| rules.site.rule_mode(id) != RuleMode::Shadow)
        .collect();
    let yielded_to = |h: &RuleHit<'_>| -> Option<String> {
        h.rule()
            .def
            .yields_to
            .iter()
            .find(|id| speaking.contains(&id.as_str()))
            .cloned()
    };
    let (kept, yielded): (Vec<_>, Vec<_>) = hits.into_iter().partition(|h| yielded_to(h).is_none());
    if let Some(t) = trace {
        for h in &yielded {
            let by = yielded_to(h).unwrap_or_default();
            if let Some(step) = t.rules.iter_mut().find(|s| s.id == h.rule().def.id) {
                step.fired = false;
                step.needs_context = false;
                step.conditions.push(ConditionStep {
                    name: "yields_to",
                    held: Some(false),
                    why: format!("not met: {by} fired, and this rule yields to it"),
                });
            }
        }
    }
    kept
}

/// The findings of one rule hit: the rule's guidance, or what context it lacks.
fn hit_findings(hit: &RuleHit<'_>, rules: &RuleSet, at: &FhirPath, sr: &Value) -> Vec<Finding> {
    match hit {
        RuleHit::Fired { rule, why, paths } => vec![rule_finding(rule, rules, why, paths, at, sr)],
        RuleHit::NeedsContext { rule, why, missing } => missing
            .iter()
            .map(|m| {
                Finding {
                    rule: Some(RuleRef { id: rule.def.id.clone(), title: rule.def.title.clone() }),
                    ..Finding::new(FindingId::RuleNeedsContext,
                        Severity::Error,
                        IssueType::Required,
                        format!(
                            "Guidance rule {} ({}) applies to this request but needs the {}, which could not be found: {}. Send it with the request and resubmit. {}",
                            rule.def.id, rule.def.title, m.what, m.looked, rules.site.duty_radiologist_advice()
                        ),
                    )
                }
                .at(m.at.clone())
                .with_diagnostics(format!("{} matched so far: {}", rule.def.id, why.join("; ")))
            })
            .collect(),
    }
}

/// Said when the procedure maps to no concept of the terminology.
const GUIDANCE_NOT_APPLIED: &str = "The guidance could not be applied: the requested procedure is not an imaging examination the gateway recognises. Check the procedure code, or describe the examination (modality and body part) in ServiceRequest.code.text.";

/// The findings of the mapping and context stages: a procedure the guidance cannot apply to,
/// reason codes the terminology lacks, references that could not be resolved.
fn mapping_findings(
    findings: &mut Vec<Finding>,
    mapped: &Mapped,
    ctx: &context::Context<'_>,
    sr: &Value,
    at: &FhirPath,
) {
    if mapped.procedures.is_empty() {
        // An extensible-binding warning on the code already names the code: say there that
        // the guidance was not applied, rather than a second warning on the same element.
        let code_path = at.field("code").to_string();
        let binding_warning = findings
            .iter_mut()
            .find(|f| f.id.is_binding() && f.expression.iter().any(|e| e.to_string() == code_path));
        match binding_warning {
            Some(f) => {
                f.text.push(' ');
                f.text.push_str(GUIDANCE_NOT_APPLIED);
            }
            None => {
                let seen = if mapped.procedure_seen.is_empty() {
                    "no code and no text".to_string()
                } else {
                    mapped.procedure_seen.join(", ")
                };
                findings.push(
                    Finding::new(
                        FindingId::GuidanceNotApplied,
                        Severity::Warning,
                        IssueType::NotSupported,
                        GUIDANCE_NOT_APPLIED,
                    )
                    .at(if sr.get("code").is_some() {
                        at.field("code")
                    } else {
                        at.clone()
                    })
                    .with_diagnostics(format!("procedure seen: {seen}")),
                );
            }
        }
    }
    for u in &mapped.unknown_reason_codes {
        findings.push(
            Finding::new(FindingId::ReasonCodeUnknown,
                Severity::Warning,
                IssueType::CodeInvalid,
                format!(
                    "The reason code {} {} is not in the gateway's terminology, so the guidance could not use it{}.",
                    crate::terminology::system_name(&u.system),
                    u.code,
                    if u.display.is_some() { "; its display text was read instead" } else { "" }
                ),
            )
            .at(u.path.clone()),
        );
    }
    for m in &ctx.unresolved {
        findings.push(
            Finding::new(
                FindingId::ContextUnresolved,
                Severity::Information,
                IssueType::NotFound,
                format!("The {} could not be resolved: {}.", m.what, m.looked),
            )
            .at(m.at.clone()),
        );
    }
}

/// Decides one ServiceRequest entry: the stages in order (profiles, context, mapped terms,
/// rules), then [`precedence`] over what they found.
pub fn decide(
    rules: &RuleSet,
    input: &Input,
    resolver: &Resolver<'_>,
    entry: &Entry,
    asked: &[String],
) -> RequestResult {
    decide_traced(rules, input, resolver, entry, asked, None)
}

/// [`decide`], recording each step into `trace` when given.
pub fn decide_traced(
    rules: &RuleSet,
    input: &Input,
    resolver: &Resolver<'_>,
    entry: &Entry,
    asked: &[String],
    mut trace: Option<&mut trace::Trace>,
) -> RequestResult {
    let at = entry.path.clone();
    let advice = rules.site.duty_radiologist_advice();
    let Some(sr) = input.resource(entry).filter(|_| entry.is_valid()) else {
        let ruling = precedence(&StageResults {
            invalid: true,
            profile_errors: &[],
            fired: &[],
        });
        return RequestResult {
            path: at,
            decision: ruling.decision(),
            invalid: true,
            summary: ruling.summary(&advice, "", ""),
            decision_code: ruling.issue_type(),
            findings: entry.findings.clone(),
            redirected: None,
            fired: Vec::new(),
            needs_context: Vec::new(),
            trace: None,
            shadow: None,
        };
    };
    let profile = check_profiles(rules, resolver, entry, sr, &at, asked);
    let ctx = context::resolve(resolver, sr, &at);
    let mapped = rules.terms.map(sr, &at, &ctx);
    if let Some(t) = trace.as_deref_mut() {
        t.record_context(&ctx, sr, &at);
        t.record_matches(rules, input, &mapped);
    }
    let facts = Facts {
        sr,
        at: &at,
        ctx: &ctx,
        mapped: &mapped,
        terms: &rules.terms,
        site: &rules.site,
    };
    let hits = run_rules(rules, &facts, trace);
    // Rule modes (site `[rule_modes]`, contract §6): a shadow rule's hit is set aside, for the
    // record only; an advise rule's hit warns and never rejects or redirects.
    let mode = |h: &RuleHit<'_>| rules.site.rule_mode(&h.rule().def.id);
    let (hits, shadow_hits): (Vec<_>, Vec<_>) =
        hits.into_iter().partition(|h| mode(h) != RuleMode::Shadow);
    let shadow = (!shadow_hits.is_empty()).then(|| {
        Box::new(Shadow {
            fired: shadow_hits
                .iter()
                .map(|h| h.rule().def.id.clone())
                .collect(),
            findings: shadow_hits
                .iter()
                .flat_map(|h| hit_findings(h, rules, &at, sr))
                .collect(),
        })
    });

    let mut findings = profile.findings;
    for hit in &hits {
        let found = hit_findings(hit, rules, &at, sr);
        match mode(hit) {
            RuleMode::Advise => findings.extend(found.into_iter().map(advised)),
            _ => findings.extend(found),
        }
    }
    let fired: Vec<Fired<'_>> = hits
        .iter()
        .map(|h| {
            let mut f = h.as_fired();
            if mode(h) == RuleMode::Advise {
                // Advice: what would have rejected or redirected only warns.
                if matches!(f.action, Action::Reject | Action::Redirect) {
                    f.action = Action::Warn;
                }
                f.needs_context = false;
            }
            f
        })
        .collect();
    let fired_ids: Vec<String> = fired.iter().map(|f| f.id.to_string()).collect();
    // What the guidance could not be applied to: no tip for the examination, or a reason the
    // tips depend on that could not be read.
    findings.extend(crate::rules::coverage::findings(
        rules, &mapped, &fired_ids, &at,
    ));
    mapping_findings(&mut findings, &mapped, &ctx, sr, &at);
    let description = describe(rules, &mapped);
    findings.push(
        Finding::new(
            FindingId::WhatWasRead,
            Severity::Information,
            IssueType::Informational,
            description.clone(),
        )
        .at(at.clone()),
    );

    let ruling = precedence(&StageResults {
        invalid: false,
        profile_errors: &profile.errors,
        fired: &fired,
    });
    // The hit of the rule that redirects, with why it fired.
    let redirect = match &ruling {
        Ruling::Redirected { by } => hits.iter().find_map(|h| match h {
            RuleHit::Fired { rule, why, .. } if rule.def.id == by.id => {
                Some((*rule, why.join("; ")))
            }
            _ => None,
        }),
        _ => None,
    };
    let (redirected, pathway_name) = match redirect {
        Some((rule, why)) => {
            let pathway = rule
                .def
                .pathway
                .as_deref()
                .and_then(|p| rules.site.pathway(p));
            let original_ref = entry.full_url.clone().or_else(|| {
                sr.get("id")
                    .and_then(Value::as_str)
                    .map(|id| format!("ServiceRequest/{id}"))
            });
            (
                pathway.map(|p| {
                    redirected_request(sr, original_ref.as_deref(), rule, p, &why, &rules.site)
                }),
                pathway
                    .map(|p| format!("{} ({})", p.name, p.contact))
                    .unwrap_or_default(),
            )
        }
        None => (None, String::new()),
    };
    RequestResult {
        path: at,
        decision: ruling.decision(),
        invalid: false,
        summary: ruling.summary(&advice, &pathway_name, &description),
        decision_code: ruling.issue_type(),
        findings,
        redirected,
        fired: fired_ids,
        needs_context: fired
            .iter()
            .filter(|f| f.needs_context)
            .map(|f| f.id.to_string())
            .collect(),
        trace: None,
        shadow,
    }
}

/// A finding of a rule in `advise` mode: a reject or redirect (or missing context) becomes a
/// warning, and says that it is advice.
fn advised(mut f: Finding) -> Finding {
    if matches!(f.severity, Severity::Error | Severity::Warning) {
        f.severity = Severity::Warning;
    }
    let note =
        "advice only: this rule is in advise mode at this site, so it does not change the decision";
    f.diagnostics = Some(match f.diagnostics.take() {
        Some(d) => format!("{d} ({note})"),
        None => note.to_string(),
    });
    f
}
