//! Maps one ServiceRequest (with its resolved context) to concepts.

use super::text::{self, Mention};
use super::{system_name, ReasonKind, Table, Terminology};
use crate::context::{repeated as array, Context};
use crate::fhirpath::FhirPath;
use serde_json::Value;

/// A concept found in the request, and where.
#[derive(Debug, Clone)]
pub struct ConceptMatch {
    pub concept: usize,
    pub path: FhirPath,
    /// What matched, for `diagnostics`: a code with its display, or the words of a pattern.
    pub evidence: String,
    pub negated: bool,
    pub questioned: bool,
}

/// One clinical reason item: a `reasonCode`, `reasonReference` or `note`.
#[derive(Debug, Clone)]
pub struct ReasonItem {
    pub path: FhirPath,
    /// Whether any reason concept was recognised in it (negated mentions count: the item
    /// was understood).
    pub recognised: bool,
}

/// A code of the request that no terminology map knows.
#[derive(Debug, Clone)]
pub struct UnknownCode {
    pub path: FhirPath,
    pub system: String,
    pub code: String,
    pub display: Option<String>,
}

/// The request in concepts.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub procedures: Vec<ConceptMatch>,
    pub reasons: Vec<ConceptMatch>,
    pub reason_items: Vec<ReasonItem>,
    pub question: Option<(FhirPath, String)>,
    pub has_clinical_information: bool,
    pub two_week_wait: Option<(FhirPath, String)>,
    pub unknown_procedure_codes: Vec<UnknownCode>,
    pub unknown_reason_codes: Vec<UnknownCode>,
    /// Every clinical text, normalised, with its path (for text conditions).
    pub texts: Vec<(FhirPath, String)>,
    /// What the request says its procedure is (codes and words), for messages.
    pub procedure_seen: Vec<String>,
}

impl Mapped {
    /// Reason concepts present: mentioned and not negated.
    pub fn present_reasons(&self) -> impl Iterator<Item = &ConceptMatch> {
        self.reasons.iter().filter(|r| !r.negated)
    }
}

fn codings(cc: &Value) -> impl Iterator<Item = (usize, &str, &str, Option<&str>)> {
    cc.get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(j, c)| {
            Some((
                j,
                c.get("system").and_then(Value::as_str)?,
                c.get("code").and_then(Value::as_str)?,
                c.get("display").and_then(Value::as_str),
            ))
        })
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl Terminology {
    /// Maps the ServiceRequest `sr` found at `at`.
    pub fn map(&self, sr: &Value, at: &FhirPath, ctx: &Context<'_>) -> Mapped {
        let mut m = Mapped::default();
        self.map_procedure(sr, at, &mut m);
        self.map_reasons(sr, at, ctx, &mut m);
        self.find_two_week_wait(sr, at, &mut m);
        m
    }

    fn map_procedure(&self, sr: &Value, at: &FhirPath, m: &mut Mapped) {
        let Some(code) = sr.get("code") else { return };
        let code_path = at.field("code");
        for (j, system, c, display) in codings(code) {
            let path = code_path.field("coding").index(j);
            m.procedure_seen.push(match display {
                Some(d) => format!("{} {c} '{d}'", system_name(system)),
                None => format!("{} {c}", system_name(system)),
            });
            let before = m.procedures.len();
            for concept in self.by_code(Table::Procedure, system, c) {
                m.procedures.push(ConceptMatch {
                    concept,
                    path: path.clone(),
                    evidence: format!("{} {c}", system_name(system)),
                    negated: false,
                    questioned: false,
                });
            }
            if m.procedures.len() == before {
                m.unknown_procedure_codes.push(UnknownCode {
                    path: path.clone(),
                    system: system.into(),
                    code: c.into(),
                    display: display.map(str::to_string),
                });
                if let Some(d) = display {
                    self.text_procedures(d, &path.field("display"), m);
                }
            }
        }
        if let Some(t) = str_at(code, "text") {
            m.procedure_seen.push(format!("text '{t}'"));
            if m.procedures.is_empty() {
                self.text_procedures(t, &code_path.field("text"), m);
            }
        }
    }

    fn text_procedures(&self, raw: &str, path: &FhirPath, m: &mut Mapped) {
        let t = text::normalise(raw);
        for (i, concept) in self.procedures.iter().enumerate() {
            let Some(re) = &concept.pattern else { continue };
            if let Some(found) = text::mentions(re, &t).into_iter().find(|x| !x.negated) {
                m.procedures.push(ConceptMatch {
                    concept: i,
                    path: path.clone(),
                    evidence: format!("'{}'", &t[found.start..found.end]),
                    negated: false,
                    questioned: false,
                });
            }
        }
    }

    /// Finds reason concepts in `raw`; returns whether any was found.
    fn text_reasons(&self, raw: &str, path: &FhirPath, m: &mut Mapped) -> bool {
        let t = text::normalise(raw);
        let mut any = false;
        for (i, concept) in self.reasons.iter().enumerate() {
            let Some(re) = &concept.pattern else { continue };
            let found: Vec<Mention> = text::mentions(re, &t);
            // One match per concept and text: a present mention wins over a negated one.
            let best = found.iter().find(|x| !x.negated).or(found.first());
            if let Some(x) = best {
                any = true;
                m.reasons.push(ConceptMatch {
                    concept: i,
                    path: path.clone(),
                    evidence: format!(
                        "'{}'{}",
                        &t[x.start..x.end],
                        if x.negated { " (negated)" } else { "" }
                    ),
                    negated: x.negated,
                    questioned: x.questioned || matches!(concept.kind, ReasonKind::Question),
                });
            }
        }
        if m.question.is_none() && text::has_question_cue(&t) {
            m.question = Some((path.clone(), "a question in the clinical text".into()));
        }
        m.texts.push((path.clone(), t));
        any
    }

    fn coded_reasons(&self, cc: &Value, path: &FhirPath, m: &mut Mapped) -> bool {
        let mut any = false;
        for (j, system, c, display) in codings(cc) {
            let cpath = path.field("coding").index(j);
            let mut known = false;
            for concept in self.by_code(Table::Reason, system, c) {
                known = true;
                any = true;
                m.reasons.push(ConceptMatch {
                    concept,
                    path: cpath.clone(),
                    evidence: format!("{} {c}", system_name(system)),
                    negated: false,
                    questioned: matches!(
                        self.reasons[concept].kind,
                        ReasonKind::Question | ReasonKind::Condition
                    ),
                });
            }
            if !known && !self.knows_code(system, c) {
                m.unknown_reason_codes.push(UnknownCode {
                    path: cpath.clone(),
                    system: system.into(),
                    code: c.into(),
                    display: display.map(str::to_string),
                });
                if let Some(d) = display {
                    any |= self.text_reasons(d, &cpath.field("display"), m);
                }
            }
        }
        if let Some(t) = str_at(cc, "text") {
            any |= self.text_reasons(t, &path.field("text"), m);
        }
        any
    }

    fn map_reasons(&self, sr: &Value, at: &FhirPath, ctx: &Context<'_>, m: &mut Mapped) {
        for (i, rc) in array(sr, "reasonCode") {
            let path = at.field("reasonCode").index(i);
            m.has_clinical_information = true;
            let recognised = self.coded_reasons(rc, &path, m);
            m.reason_items.push(ReasonItem { path, recognised });
        }
        for (i, rr) in array(sr, "reasonReference") {
            let path = at.field("reasonReference").index(i);
            m.has_clinical_information = true;
            let resolved = ctx.reason_resources.get(i).and_then(Option::as_ref);
            let mut recognised = false;
            if let Some((res, res_path)) = resolved {
                if str_at(res, "resourceType") == Some("Condition") && m.question.is_none() {
                    m.question = Some((
                        path.clone(),
                        "a coded condition (reasonReference → Condition)".into(),
                    ));
                }
                if let Some(code) = res.get("code") {
                    recognised |= self.coded_reasons(code, &res_path.field("code"), m);
                }
            }
            if let Some(d) = str_at(rr, "display") {
                recognised |= self.text_reasons(d, &path.field("display"), m);
            }
            m.reason_items.push(ReasonItem { path, recognised });
        }
        for (i, note) in array(sr, "note") {
            let Some(t) = str_at(note, "text") else {
                continue;
            };
            let path = at.field("note").index(i);
            m.has_clinical_information = true;
            let recognised = self.text_reasons(t, &path.field("text"), m);
            m.reason_items.push(ReasonItem { path, recognised });
        }
        // GPs often put the question in the procedure text ("USS doppler leg ?DVT").
        if let Some(t) = sr.get("code").and_then(|c| str_at(c, "text")) {
            self.text_reasons(t, &at.field("code").field("text"), m);
        }
        if m.question.is_none() {
            let found = m
                .present_reasons()
                .find(|r| {
                    r.questioned
                        || matches!(
                            self.reasons[r.concept].kind,
                            ReasonKind::Condition | ReasonKind::Question
                        )
                })
                .map(|r| {
                    (
                        r.path.clone(),
                        format!("{} ({})", self.reasons[r.concept].title, r.evidence),
                    )
                });
            m.question = found;
        }
    }

    fn find_two_week_wait(&self, sr: &Value, at: &FhirPath, m: &mut Mapped) {
        let Some(marker) = self.find(Table::Marker, "two-week-wait") else {
            return;
        };
        let concept = &self.markers[marker];
        fn coded<'v>(
            concept: &super::Concept,
            cc: &'v Value,
        ) -> Option<(usize, &'v str, &'v str, Option<&'v str>)> {
            codings(cc)
                .find(|(_, s, c, _)| concept.codes.iter().any(|d| d.system == *s && d.code == *c))
        }
        for key in ["category", "orderDetail", "reasonCode"] {
            for (i, cc) in array(sr, key) {
                let path = at.field(key).index(i);
                if let Some((j, s, c, _)) = coded(concept, cc) {
                    m.two_week_wait = Some((
                        path.field("coding").index(j),
                        format!("{} {c}", system_name(s)),
                    ));
                    return;
                }
                if let (Some(t), Some(re)) = (str_at(cc, "text"), &concept.pattern) {
                    if text::mentions(re, &text::normalise(t))
                        .iter()
                        .any(|x| !x.negated)
                    {
                        m.two_week_wait = Some((path.field("text"), format!("'{t}'")));
                        return;
                    }
                }
            }
        }
        if let Some(code) = sr.get("code") {
            if let Some((j, s, c, _)) = coded(concept, code) {
                m.two_week_wait = Some((
                    at.field("code").field("coding").index(j),
                    format!("{} {c}", system_name(s)),
                ));
                return;
            }
        }
        if let Some((path, found)) = find_in_extensions(
            sr,
            at,
            &|cc: &Value| coded(concept, cc).map(|(_, s, c, _)| format!("{} {c}", system_name(s))),
            &|s, c| concept.codes.iter().any(|d| d.system == s && d.code == c),
        ) {
            m.two_week_wait = Some((path, found));
            return;
        }
        if let Some(re) = &concept.pattern {
            for (path, t) in &m.texts {
                if let Some(x) = text::mentions(re, t).into_iter().find(|x| !x.negated) {
                    m.two_week_wait = Some((path.clone(), format!("'{}'", &t[x.start..x.end])));
                    return;
                }
            }
        }
    }
}

type CcMatch<'f> = &'f dyn Fn(&Value) -> Option<String>;
type CodingMatch<'f> = &'f dyn Fn(&str, &str) -> bool;

/// Looks through every extension (and nested extension) of `v` for a matching code.
fn find_in_extensions(
    v: &Value,
    at: &FhirPath,
    cc_match: CcMatch<'_>,
    coding_match: CodingMatch<'_>,
) -> Option<(FhirPath, String)> {
    let Value::Object(map) = v else { return None };
    for (key, child) in map {
        if key == "contained" {
            continue;
        }
        let here = at.field(key);
        if key == "extension" || key == "modifierExtension" {
            for (i, ext) in child.as_array().into_iter().flatten().enumerate() {
                let ep = here.index(i);
                if let Some(cc) = ext.get("valueCodeableConcept") {
                    if let Some(found) = cc_match(cc) {
                        return Some((ep.field("value"), found));
                    }
                }
                if let Some(c) = ext.get("valueCoding") {
                    if let (Some(s), Some(code)) = (str_at(c, "system"), str_at(c, "code")) {
                        if coding_match(s, code) {
                            return Some((ep.field("value"), format!("{} {code}", system_name(s))));
                        }
                    }
                }
                if let Some(found) = find_in_extensions(ext, &ep, cc_match, coding_match) {
                    return Some(found);
                }
            }
        } else if child.is_object() {
            if let Some(found) = find_in_extensions(child, &here, cc_match, coding_match) {
                return Some(found);
            }
        } else if let Value::Array(items) = child {
            for (i, item) in items.iter().enumerate() {
                if let Some(found) =
                    find_in_extensions(item, &here.index(i), cc_match, coding_match)
                {
                    return Some(found);
                }
            }
        }
    }
    None
}
