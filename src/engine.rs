//! The decision engine: one call from bytes to a decision per ServiceRequest, shared by every
//! front end (CLI, HTTP).
//!
//! parse → context → terminology → rules → decision (contract §2 precedence).

use crate::context::{self, Resolver};
use crate::fhirpath::FhirPath;
use crate::outcome::finding::{Decision, Finding, RuleRef, Severity};
use crate::outcome::redirect::redirected_request;
use crate::parse::{self, Entry, Format, Input, Limits, Unusable};
use crate::rules::eval::{evaluate, Facts, Verdict};
use crate::rules::rule::{Action, Focus, Rule};
use crate::rules::RuleSet;
use crate::terminology::mapping::Mapped;
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
    /// The FHIR issue-type of the decision issue.
    pub decision_code: &'static str,
    pub findings: Vec<Finding>,
    /// The redirected ServiceRequest, when redirected.
    pub redirected: Option<Value>,
    /// Ids of the rules that fired, in rule order.
    pub fired: Vec<String>,
    /// Ids of the rules (also in `fired`) that applied but lacked context, e.g. the age.
    pub needs_context: Vec<String>,
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
            EntryResult::Context { .. } => None,
        })
    }
}

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
    let input = parse::parse(bytes, format, limits)?;
    if input.findings.iter().any(Finding::is_error) {
        return Err(Unusable::Malformed(input.findings));
    }
    let resolver = Resolver::new(&input);
    let entries = input
        .entries
        .iter()
        .map(|entry| {
            if entry.is_service_request() {
                EntryResult::Request(decide(rules, &input, &resolver, entry, asked))
            } else {
                EntryResult::Context {
                    path: entry.path.clone(),
                    findings: entry.findings.clone(),
                }
            }
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
                    " Refer to: {} — {} ({}).",
                    p.name, p.booking, p.contact
                ));
            }
        }
        _ => {}
    }
    let focus = focus_path(def.focus, paths, at, sr);
    Finding {
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
    let mut reasons: Vec<String> = mapped
        .present_reasons()
        .map(|m| {
            format!(
                "{}{}",
                terms.reasons[m.concept].title,
                if m.questioned { " (query)" } else { "" }
            )
        })
        .collect();
    reasons.dedup();
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

/// Checks `sr` against the profiles the site enforces and those it declares in `meta.profile`.
/// Returns the entry's findings with the profile findings added, and how many are errors.
fn check_profiles(
    rules: &RuleSet,
    resolver: &Resolver<'_>,
    entry: &Entry,
    sr: &Value,
    at: &FhirPath,
    asked: &[String],
) -> (Vec<Finding>, Vec<&'static str>) {
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
                Finding::new(
                    Severity::Error,
                    "invalid",
                    format!("meta.profile names {url}, a profile of {}, not of ServiceRequest.", p.resource_type),
                )
                .at(path),
            ),
            Some(p) => {
                checked.push(&p.url);
                findings.extend(conformance.validate(p, sr, at, &resolve));
            }
            None => findings.push(
                Finding::new(
                    Severity::Warning,
                    "not-supported",
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
    (findings, errors)
}

/// Said when the procedure maps to no concept of the terminology.
const GUIDANCE_NOT_APPLIED: &str = "The guidance could not be applied: the requested procedure is not an imaging examination the gateway recognises. Check the procedure code, or describe the examination (modality and body part) in ServiceRequest.code.text.";

/// Decides one ServiceRequest entry.
pub fn decide(
    rules: &RuleSet,
    input: &Input,
    resolver: &Resolver<'_>,
    entry: &Entry,
    asked: &[String],
) -> RequestResult {
    let at = entry.path.clone();
    let Some(sr) = input.resource(entry).filter(|_| entry.is_valid()) else {
        return RequestResult {
            path: at,
            decision: Decision::Rejected,
            invalid: true,
            summary: "Rejected: the request is not valid FHIR R4. Correct the errors listed and send it again.".into(),
            decision_code: "invalid",
            findings: entry.findings.clone(),
            redirected: None,
            fired: Vec::new(),
            needs_context: Vec::new(),
        };
    };
    let (mut findings, profile_errors) = check_profiles(rules, resolver, entry, sr, &at, asked);
    let ctx = context::resolve(resolver, sr, &at);
    let mapped = rules.terms.map(sr, &at, &ctx);
    let facts = Facts {
        sr,
        at: &at,
        ctx: &ctx,
        mapped: &mapped,
        terms: &rules.terms,
        site: &rules.site,
    };

    let mut fired = Vec::new();
    let mut redirect: Option<(&Rule, String)> = None;
    let mut rejected = false;
    let mut needs_context = Vec::new();
    for rule in &rules.rules {
        match evaluate(rule, &facts) {
            Verdict::NotFired => {}
            Verdict::Fired { why, paths } => {
                fired.push(rule.def.id.clone());
                match rule.def.action {
                    Action::Redirect if redirect.is_none() => {
                        redirect = Some((rule, why.join("; ")))
                    }
                    Action::Reject => rejected = true,
                    _ => {}
                }
                findings.push(rule_finding(rule, rules, &why, &paths, &at, sr));
            }
            Verdict::NeedsContext { why, missing } => {
                needs_context.push(rule.def.id.clone());
                fired.push(rule.def.id.clone());
                for m in missing {
                    findings.push(
                        Finding {
                            rule: Some(RuleRef { id: rule.def.id.clone(), title: rule.def.title.clone() }),
                            ..Finding::new(
                                Severity::Error,
                                "required",
                                format!(
                                    "Guidance rule {} ({}) applies to this request but needs the {}, which could not be found: {}. Send it with the request and resubmit. {}",
                                    rule.def.id, rule.def.title, m.what, m.looked, rules.site.duty_radiologist_advice()
                                ),
                            )
                        }
                        .at(m.at)
                        .with_diagnostics(format!("{} matched so far: {}", rule.def.id, why.join("; "))),
                    );
                }
            }
        }
    }

    findings.extend(crate::rules::coverage::findings(
        rules, &mapped, &fired, &at,
    ));
    if mapped.procedures.is_empty() {
        // An extensible-binding warning on the code already names the code: say there that
        // the guidance was not applied, rather than a second warning on the same element.
        let code_path = at.field("code").to_string();
        let binding_warning = findings.iter_mut().find(|f| {
            f.code == "code-invalid"
                && f.rule.is_none()
                && f.expression.iter().any(|e| e.to_string() == code_path)
        });
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
                    Finding::new(Severity::Warning, "not-supported", GUIDANCE_NOT_APPLIED)
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
            Finding::new(
                Severity::Warning,
                "code-invalid",
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
                Severity::Information,
                "not-found",
                format!("The {} could not be resolved: {}.", m.what, m.looked),
            )
            .at(m.at.clone()),
        );
    }
    let description = describe(rules, &mapped);
    findings.push(
        Finding::new(Severity::Information, "informational", description.clone()).at(at.clone()),
    );

    let (decision, decision_code, summary, redirected) = if let Some(first) = profile_errors.first()
    {
        // Contract §2: profile errors come first, whatever the rules say.
        let n = profile_errors.len();
        (
            Decision::Rejected,
            *first,
            format!(
                "Rejected: the request does not meet the imaging referral profile ({n} error{}). Correct the errors listed and send it again. {}",
                if n == 1 { "" } else { "s" },
                rules.site.duty_radiologist_advice()
            ),
            None,
        )
    } else if let Some((rule, why)) = redirect {
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
        let new = pathway
            .map(|p| redirected_request(sr, original_ref.as_deref(), rule, p, &why, &rules.site));
        let name = pathway
            .map(|p| format!("{} ({})", p.name, p.contact))
            .unwrap_or_default();
        (
            Decision::Redirected,
            "business-rule",
            format!(
                "Redirected to {name} by guidance rule {}: {}",
                rule.def.id, rule.def.title
            ),
            new,
        )
    } else if rejected || !needs_context.is_empty() {
        let ids: Vec<&str> = fired.iter().map(String::as_str).collect();
        let code = if rejected {
            "business-rule"
        } else {
            "required"
        };
        (
            Decision::Rejected,
            code,
            format!(
                "Rejected by guidance rule(s) {}. {}",
                ids.join(", "),
                rules.site.duty_radiologist_advice()
            ),
            None,
        )
    } else {
        (
            Decision::Accepted,
            "informational",
            format!("Accepted. {description}"),
            None,
        )
    };
    RequestResult {
        path: at,
        decision,
        invalid: false,
        summary,
        decision_code,
        findings,
        redirected,
        fired,
        needs_context,
    }
}
