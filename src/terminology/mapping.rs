//! Maps one ServiceRequest (with its resolved context) to concepts.

use super::filler;
use super::spelling::Correction;
use super::text::{self, Mention};
use super::{system_name, ReasonKind, Table, Terminology};
use crate::context::{repeated as array, Context};
use crate::fhirpath::FhirPath;
use serde_json::Value;

/// The longest reason text searched for examination names (bytes).
const PROCEDURES_IN_REASON_MAX: usize = 4096;

/// The group of reasons.toml whose concepts state something normal or absent ("weight stable",
/// "abdo soft"): in a clinician's note they dispute a patient's message as a negation does.
const STATED_NORMAL: &str = "stated-normal";

/// A concept found in the request, and where.
#[derive(Debug, Clone)]
pub struct ConceptMatch {
    pub concept: usize,
    pub path: FhirPath,
    /// What matched, for `diagnostics`: a code with its display, or the words of a pattern.
    pub evidence: String,
    /// Not present: negated, or past, hypothetical or about a relative (see `context`).
    pub negated: bool,
    pub questioned: bool,
    /// Why a mention does not count ("negated", "past", "hypothetical", "family history").
    pub context: Option<&'static str>,
    /// The words lie within an examination's name ("US soft tissue", "DVT scan"): they say
    /// what is asked for, not what the patient has, so they are no clinical information.
    pub examination_words: bool,
}

/// One clinical reason item: a `reasonCode`, `reasonReference` or `note`.
#[derive(Debug, Clone)]
pub struct ReasonItem {
    pub path: FhirPath,
    /// Whether every clinical word of it was understood: its codes are known, and each word
    /// of its text is part of a concept, a context trigger or words that carry no finding
    /// (rules/terminology/not-findings.toml).
    pub recognised: bool,
    /// The words of it that the gateway could not read (they may carry a finding).
    pub unexplained: Vec<String>,
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
    /// Whether the request says anything clinical: a finding, symptom or question, a coded
    /// condition, or clinical text the gateway could not read. Courtesies, administrative
    /// remarks and negated findings alone are not clinical information.
    pub has_clinical_information: bool,
    /// Whether the request has a reasonCode, reasonReference or note at all.
    pub has_reason_elements: bool,
    pub two_week_wait: Option<(FhirPath, String)>,
    pub unknown_procedure_codes: Vec<UnknownCode>,
    pub unknown_reason_codes: Vec<UnknownCode>,
    /// Every clinical text, normalised, with its path (for text conditions).
    pub texts: Vec<(FhirPath, String)>,
    /// What the request says its procedure is (codes and words), for messages.
    pub procedure_seen: Vec<String>,
    /// The date the request was made, which dates what its texts quote.
    pub as_of: Option<time::Date>,
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
        let mut m = Mapped {
            as_of: Some(ctx.authored),
            ..Mapped::default()
        };
        self.map_procedure(sr, at, &mut m);
        self.map_reasons(sr, at, ctx, &mut m);
        self.refine_procedures(sr, &mut m);
        self.site_by_examination(&mut m);
        self.find_two_week_wait(sr, at, &mut m);
        m
    }

    /// Adds what a reason means on the examination asked for (`Concept::on_examination`): a
    /// fracture asked with no bone named ("?# fell against table") is a rib fracture asked when
    /// rib films are requested. The mention keeps its context (asked, negated, past). A finding
    /// so read is clinical information, as it would be written out ("at 21 weeks" on an anatomy
    /// scan is a later pregnancy's, not an administrative remark: blind set 398).
    fn site_by_examination(&self, m: &mut Mapped) {
        let mut added = Vec::new();
        for r in &m.reasons {
            for &(procedure, reason) in &self.reasons[r.concept].on_examination {
                if m.procedures.iter().any(|p| p.concept == procedure) {
                    added.push(ConceptMatch {
                        concept: reason,
                        evidence: format!(
                            "{} on a request for {}",
                            r.evidence, self.procedures[procedure].title
                        ),
                        ..r.clone()
                    });
                }
            }
        }
        m.has_clinical_information |= added.iter().any(|r| !r.negated && self.informs(r));
        m.reasons.extend(added);
    }

    /// Adds the specific examination a generic one is (`Refinement`): by the words of
    /// `code.text`, which a code otherwise wins over, or by a present reason of its kind.
    fn refine_procedures(&self, sr: &Value, m: &mut Mapped) {
        // Most requests name no generic examination: nothing is read for them.
        let candidates: Vec<(usize, ConceptMatch)> = self
            .procedures
            .iter()
            .enumerate()
            .filter(|&(i, _)| !m.procedures.iter().any(|p| p.concept == i))
            .filter_map(|(i, concept)| {
                let refinement = concept.refines.as_ref()?;
                let generic = m
                    .procedures
                    .iter()
                    .find(|p| p.concept == refinement.procedure)?;
                // An examination already named as one of the specific kinds ("early pregnancy
                // scan") is not read as another kind by a reason beside it ("large for dates").
                let named_specific = m.procedures.iter().any(|p| {
                    self.procedures[p.concept]
                        .refines
                        .as_ref()
                        .is_some_and(|r| r.procedure == refinement.procedure)
                });
                let others_named = refinement.alone
                    && m.procedures
                        .iter()
                        .any(|p| p.concept != refinement.procedure);
                (!named_specific && !others_named).then(|| (i, generic.clone()))
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let text = sr
            .get("code")
            .and_then(|c| str_at(c, "text"))
            .map(|raw| self.speller.correct(&text::normalise(raw, &self.forms)));
        for (i, generic) in candidates {
            let concept = &self.procedures[i];
            let Some(refinement) = &concept.refines else {
                continue;
            };
            let named = match (&text, &concept.pattern) {
                (Some((t, corrections)), Some(re)) => self
                    .reader
                    .mentions(re, t, m.as_of)
                    .into_iter()
                    .find(|x| !x.negated)
                    .map(|found| format!("words {}", evidence(t, &found, corrections))),
                _ => None,
            };
            let because = named.or_else(|| {
                m.present_reasons()
                    .find(|r| refinement.reasons.contains(&r.concept))
                    .map(|r| format!("reason {}", r.evidence))
            });
            if let Some(because) = because {
                m.procedures.push(ConceptMatch {
                    concept: i,
                    evidence: format!("{} made specific by {because}", generic.evidence),
                    ..generic
                });
            }
        }
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
                    context: None,
                    examination_words: true,
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
        let (t, corrections) = self.speller.correct(&text::normalise(raw, &self.forms));
        for i in self.procedure_filter.candidates(&t, self.procedures.len()) {
            let concept = &self.procedures[i];
            let Some(re) = &concept.pattern else { continue };
            if let Some(found) = self
                .reader
                .mentions(re, &t, m.as_of)
                .into_iter()
                .find(|x| !x.negated)
            {
                m.procedures.push(ConceptMatch {
                    concept: i,
                    path: path.clone(),
                    evidence: evidence(&t, &found, &corrections),
                    negated: false,
                    questioned: false,
                    context: None,
                    examination_words: true,
                });
            }
        }
    }

    /// Finds reason concepts in `raw`: whether any was found, and the words left unexplained.
    fn text_reasons(&self, raw: &str, path: &FhirPath, m: &mut Mapped) -> (bool, Vec<String>) {
        let (t, corrections) = self.speller.correct(&text::normalise(raw, &self.forms));
        let mut any = false;
        let prepared = self.reader.prepare(&t, m.as_of);
        let mut covered: Vec<(usize, usize)> = prepared.trigger_spans();
        // What a negation reaches is said to be absent: no finding, read or not.
        covered.extend(prepared.negated_spans());
        // An examination named in a reason ("USS abdo please") is no finding. Only short texts
        // are searched: it is a whole-text scan per procedure, and a long text that names an
        // examination is read as clinical (the safe side) without it.
        let mut examinations: Vec<(usize, usize)> = Vec::new();
        if t.len() <= PROCEDURES_IN_REASON_MAX {
            for i in self.procedure_filter.candidates(&t, self.procedures.len()) {
                if let Some(re) = &self.procedures[i].pattern {
                    examinations.extend(re.find_iter(&t).map(|x| (x.start(), x.end())));
                }
            }
        }
        covered.extend(examinations.iter().copied());
        let mut found_here: Vec<(usize, Mention)> = Vec::new();
        for i in self.reason_filter.candidates(&t, self.reasons.len()) {
            let Some(re) = &self.reasons[i].pattern else {
                continue;
            };
            for x in prepared.mentions(re) {
                covered.push((x.start, x.end));
                found_here.push((i, x));
            }
        }
        // A mention inside a longer mention of a concept that hides it is not read on its
        // own ("loin to groin pain" is renal colic, not groin pain).
        // Sorted by start; searched near each mention (a linear scan per mention was
        // quadratic on long texts).
        let mut hiders: Vec<(usize, usize, usize)> = found_here
            .iter()
            .filter(|(j, _)| !self.reasons[*j].hides.is_empty())
            .map(|(j, y)| (y.start, y.end, *j))
            .collect();
        hiders.sort_unstable();
        let hidden_by = |hiders: &[(usize, usize, usize)], i: usize, start: usize, end: usize| {
            let upto = hiders.partition_point(|h| h.0 <= start);
            hiders[..upto]
                .iter()
                .rev()
                .take_while(|h| h.0 + 512 >= start)
                .any(|&(_, e, j)| end <= e && j != i && self.reasons[j].hides.contains(&i))
        };
        // A hider hidden by another hides nothing: "husband reports wife is 10 wks pregnant" is
        // the patient's pregnancy told by her husband, not someone else's (blind set 111).
        let hiders: Vec<(usize, usize, usize)> = hiders
            .iter()
            .filter(|&&(start, end, j)| !hidden_by(&hiders, j, start, end))
            .copied()
            .collect();
        let hidden = |i: usize, x: &Mention| hidden_by(&hiders, i, x.start, x.end);
        // The clinician's note that answers a patient's (or a care navigator's) message is the
        // deciding voice when it disputes the message and finds something of its own: what only
        // the message tells, and the note does not take up, is then the patient's report ("Nav:
        // blood in her wee ... Dr: not urinary - PV bleeding, urine dip clear", blind sets 353
        // and 356). A note that disputes nothing has taken the history as told ("Pt: I think
        // I've cracked a rib. GP: single tender point R 6th rib"), and a note that finds
        // nothing ("Agree, US KUB please") leaves the message as the clinical content. Features
        // that only qualify a finding ("tender", "3cm") and context are no finding of the note's.
        // (a mention that reaches out of the message into the note is the note's too)
        let in_message = |x: &Mention| {
            prepared.in_answered_message(x.start) && prepared.in_answered_message(x.end - 1)
        };
        let own_finding = |i: usize| {
            !matches!(
                self.reasons[i].kind,
                ReasonKind::Qualifier | ReasonKind::Context
            )
        };
        let note_finds = prepared.has_answered_message()
            && found_here.iter().any(|(i, x)| {
                own_finding(*i) && x.is_current() && !in_message(x) && !hidden(*i, x)
            });
        // (a finding stated normal disputes as a negation does: "Weight stable on our scales")
        let note_disputes = || {
            prepared.negation_outside_answered_messages()
                || found_here.iter().any(|(i, x)| {
                    !in_message(x)
                        && x.is_current()
                        && self.reasons[*i].groups.iter().any(|g| g == STATED_NORMAL)
                })
        };
        if note_finds && note_disputes() {
            // (one flag per concept: a long text holds many mentions)
            let mut confirmed = vec![false; self.reasons.len()];
            for (i, x) in &found_here {
                if !in_message(x) && (x.is_current() || x.questioned) {
                    confirmed[*i] = true;
                    for &k in &self.reasons[*i].takes_up {
                        confirmed[k] = true;
                    }
                }
            }
            for (i, x) in found_here.iter_mut() {
                if in_message(x) && !confirmed[*i] {
                    x.unconfirmed = true;
                }
            }
        }
        for (i, concept) in self.reasons.iter().enumerate() {
            // found_here is in concept order: this concept's mentions are one run of it.
            let from = found_here.partition_point(|(j, _)| *j < i);
            let to = found_here.partition_point(|(j, _)| *j <= i);
            let mine: Vec<&Mention> = found_here[from..to]
                .iter()
                .filter(|(_, x)| !hidden(i, x))
                .map(|(_, x)| x)
                .collect();
            let counts = |x: &Mention| {
                if concept.counts_negated {
                    // The sign's absence is the finding: "Hard? N" is a lump that is not hard.
                    return x.negated && x.is_of_the_present();
                }
                x.is_current()
                    || (concept.past_counts
                        && x.historical
                        && !x.negated
                        && !x.hypothetical
                        && !x.family
                        && !x.elsewhere
                        && !x.unconfirmed)
            };
            // A question the examination answers no is closed: "?effusion ... O/E no
            // effusion", "no palpable neck mass ... ?goitre". Only an examination answers it
            // ("?DVT, no risk factors for DVT" still asks).
            let answered = mine.iter().all(|x| !counts(x) || x.questioned)
                && mine.iter().any(|x| x.questioned && counts(x))
                && mine
                    .iter()
                    .any(|x| x.negated && !x.questioned && prepared.examined(x));
            // One match per concept and text: a present mention wins over one that does not
            // count.
            let best = if answered {
                mine.iter().find(|x| x.negated && !x.questioned)
            } else {
                mine.iter().find(|x| counts(x)).or(mine.first())
            };
            if let Some(x) = best {
                any = true;
                let present = counts(x);
                let context = if present { None } else { x.context() };
                m.reasons.push(ConceptMatch {
                    concept: i,
                    path: path.clone(),
                    evidence: format!(
                        "{}{}",
                        evidence(&t, x, &corrections),
                        context.map(|c| format!(" ({c})")).unwrap_or_default()
                    ),
                    negated: !present,
                    questioned: x.questioned || matches!(concept.kind, ReasonKind::Question),
                    context,
                    examination_words: examinations.iter().any(|e| e.0 <= x.start && x.end <= e.1),
                });
            }
        }
        // So is what is said of the past, of what may happen, of someone else or as background:
        // its words are no present finding, read or not. (A past finding the reader knows, such
        // as obstetric history, is a concept and counts on its own terms.)
        covered.extend(prepared.context_spans());
        // A message the note answers is the patient's report only when the note finds something
        // of its own; a note that finds nothing ("Duty GP: CT colonography") leaves the message's
        // words as the clinical content, read or not (blind set 401: "Pt: 'a bit of blood on the
        // paper and looser stools for 2 months' --- Duty GP: CT colonography").
        if note_finds {
            covered.extend(prepared.answered_message_spans());
        }
        let mut unexplained = self.not_findings.unexplained(&t, covered);
        // Names are looked for only when a word is left to explain (most texts have none).
        if !unexplained.is_empty() {
            let names = filler::names(raw);
            unexplained.retain(|w| !names.contains(w));
        }
        if m.question.is_none() && prepared.has_question_cue() {
            m.question = Some((path.clone(), "a question in the clinical text".into()));
        }
        m.texts.push((path.clone(), t));
        (any, unexplained)
    }

    /// Reads a CodeableConcept of reasons: whether any concept was found, and what was left
    /// unexplained (unknown codes without a display count as unexplained).
    fn coded_reasons(&self, cc: &Value, path: &FhirPath, m: &mut Mapped) -> (bool, Vec<String>) {
        let mut any = false;
        let mut unexplained = Vec::new();
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
                    context: None,
                    examination_words: false,
                });
            }
            if !known && !self.knows_code(system, c) {
                m.unknown_reason_codes.push(UnknownCode {
                    path: cpath.clone(),
                    system: system.into(),
                    code: c.into(),
                    display: display.map(str::to_string),
                });
                match display {
                    Some(d) => {
                        let (found, words) = self.text_reasons(d, &cpath.field("display"), m);
                        any |= found;
                        unexplained.extend(words);
                    }
                    None => unexplained.push(format!("{} {c}", system_name(system))),
                }
            }
        }
        if let Some(t) = str_at(cc, "text") {
            let (found, words) = self.text_reasons(t, &path.field("text"), m);
            // A known code explains its own text ("Neck pain" beside SNOMED 81680005).
            if !any || found {
                unexplained.extend(words);
            }
            any |= found;
        }
        (any, unexplained)
    }

    fn map_reasons(&self, sr: &Value, at: &FhirPath, ctx: &Context<'_>, m: &mut Mapped) {
        let mut coded_condition = false;
        for (i, rc) in array(sr, "reasonCode") {
            let path = at.field("reasonCode").index(i);
            m.has_reason_elements = true;
            let (_, unexplained) = self.coded_reasons(rc, &path, m);
            m.reason_items.push(ReasonItem {
                path,
                recognised: unexplained.is_empty(),
                unexplained,
            });
        }
        for (i, rr) in array(sr, "reasonReference") {
            let path = at.field("reasonReference").index(i);
            m.has_reason_elements = true;
            let resolved = ctx.reason_resources.get(i).and_then(Option::as_ref);
            let mut found = false;
            let mut unexplained = Vec::new();
            if let Some((res, res_path)) = resolved {
                if str_at(res, "resourceType") == Some("Condition") {
                    coded_condition = true;
                    if m.question.is_none() {
                        m.question = Some((
                            path.clone(),
                            "a coded condition (reasonReference → Condition)".into(),
                        ));
                    }
                }
                if let Some(code) = res.get("code") {
                    let (f, words) = self.coded_reasons(code, &res_path.field("code"), m);
                    found |= f;
                    unexplained.extend(words);
                }
            } else {
                // What an unresolved reference points at is not known: clinical, unread.
                unexplained.push("reference".to_string());
            }
            if let Some(d) = str_at(rr, "display") {
                let (f, words) = self.text_reasons(d, &path.field("display"), m);
                if !found || f {
                    unexplained.extend(words);
                }
                found |= f;
            }
            if found {
                unexplained.retain(|w| w != "reference");
            }
            m.reason_items.push(ReasonItem {
                path,
                recognised: unexplained.is_empty(),
                unexplained,
            });
        }
        for (i, note) in array(sr, "note") {
            let Some(t) = str_at(note, "text") else {
                continue;
            };
            let path = at.field("note").index(i);
            m.has_reason_elements = true;
            let (_, unexplained) = self.text_reasons(t, &path.field("text"), m);
            m.reason_items.push(ReasonItem {
                path,
                recognised: unexplained.is_empty(),
                unexplained,
            });
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
        // Context ("follow-up") and qualifiers ("painful", "growing") say nothing on their own,
        // and an examination's own name ("US soft tissue") is what is asked for, not a finding.
        m.has_clinical_information = coded_condition
            || m.question.is_some()
            || m.present_reasons().any(|r| self.informs(r))
            || m.reason_items.iter().any(|i| !i.unexplained.is_empty());
    }

    /// Whether a reason found is clinical information of its own: context and qualifiers
    /// ("follow-up", "painful") say nothing alone, and an examination's own name ("US soft
    /// tissue") is what is asked for, not a finding.
    fn informs(&self, r: &ConceptMatch) -> bool {
        !r.examination_words
            && !matches!(
                self.reasons[r.concept].kind,
                ReasonKind::Context | ReasonKind::Qualifier
            )
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
        // A referral asked about is not one made: "Locum query 'should we fast track?' -
        // discussed, not for 2WW" (blind set 264), "?2WW". Only a question mark on the pathway's
        // own words asks about it: "Referred 2WW ?pancreatic ca" and "epigastric mass? 2WW upper
        // GI referral done today" made it.
        // Nor is one a patient asks for in their own message ("Please can you fast track me",
        // blind set 344): the clinician makes the referral.
        let made =
            |t: &str, x: &Mention| x.is_current() && !pathway_asked(t, x) && !x.patients_message;
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
                    let read = self.speller.correct(&text::normalise(t, &self.forms)).0;
                    if self
                        .reader
                        .mentions(re, &read, m.as_of)
                        .iter()
                        .any(|x| made(&read, x))
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
                if let Some(x) = self
                    .reader
                    .mentions(re, t, m.as_of)
                    .into_iter()
                    .find(|x| made(t, x))
                {
                    m.two_week_wait = Some((path.clone(), format!("'{}'", &t[x.start..x.end])));
                    return;
                }
            }
        }
    }
}

/// Whether a question mark is written on a pathway's own words: right after them, ending the
/// question ("fast track?", "2WW ??", "'should we fast track?'"), or joined to their start
/// ("?2WW"). A mark joined to the next word asks about that word ("2WW ?pancreatic ca").
fn pathway_asked(t: &str, x: &Mention) -> bool {
    let after = t[x.end..].trim_start_matches([' ', '\'', '"', '’', '”']);
    let closes = after.strip_prefix('?').is_some_and(|rest| {
        rest.trim_start_matches('?')
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric())
    });
    closes || t[..x.start].ends_with('?')
}

/// What matched, for diagnostics: the words, and the words as written when they were read
/// with a spelling correction.
fn evidence(t: &str, x: &Mention, corrections: &[Correction]) -> String {
    let fixed: Vec<&Correction> = corrections
        .iter()
        .filter(|c| c.start < x.end && x.start < c.end)
        .collect();
    if fixed.is_empty() {
        format!("'{}'", &t[x.start..x.end])
    } else {
        format!(
            "'{}' (written {}; spelling corrected)",
            &t[x.start..x.end],
            fixed
                .iter()
                .map(|c| format!("'{}'", c.written))
                .collect::<Vec<_>>()
                .join(", ")
        )
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
