//! Stage 3: from codes and words to concepts.
//!
//! A request is mapped to procedure concepts (modality + region) and reason concepts from its
//! SNOMED CT, LOINC and NICIP codings and from the free text GPs write. The maps are data
//! (`rules/terminology/*.toml`), compiled once at load: one code index, and one regular
//! expression per concept.

pub mod filler;
pub mod forms;
pub mod mapping;
pub mod spelling;
pub mod text;

use crate::load::LoadError;
use regex::Regex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// A code as written in the terminology files, with the source it was checked against.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeDef {
    pub system: String,
    pub code: String,
    pub display: String,
    pub source: String,
}

/// What a reason concept is, which decides how rules treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonKind {
    Symptom,
    Finding,
    /// A coded diagnosis: counts as a clinical question.
    Condition,
    /// A question in itself ("suspected DVT"): counts as a clinical question.
    Question,
    RedFlag,
    ClinicalChange,
    /// Context such as "follow-up": never the only reason on its own.
    Context,
    /// A feature that only qualifies another finding ("hard", "growing" of a lump): its words
    /// also stand alone in unrelated text ("painful hand", "bleeding"), so rules read it beside
    /// the finding it qualifies and the answer's summary never names it as a reason.
    Qualifier,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConceptDef {
    id: String,
    title: String,
    #[serde(default)]
    modality: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    kind: Option<ReasonKind>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    codes: Vec<CodeDef>,
    #[serde(default)]
    text: Vec<String>,
    /// Reasons: a past mention still counts ("history of cancer", "known lipoma").
    #[serde(default)]
    past_counts: bool,
    /// Reasons: only a negated mention counts: the concept is a sign's absence, read from a
    /// form's question answered no ("Hard? N" is a lump that is not hard).
    #[serde(default)]
    counts_negated: bool,
    /// Procedures: `false` when the guidance has no tip for this examination (the catch-alls
    /// of a modality whose tips all name their examination).
    #[serde(default)]
    tips: Option<bool>,
    /// Reasons: concepts whose mentions inside a mention of this one are not read on their
    /// own ("loin to groin pain" is renal colic, not groin pain).
    #[serde(default)]
    hides: Vec<String>,
    /// Reasons: concepts a clinician's note takes up from the patient's message it answers
    /// when it names this one: a note that measures and examines a lump ("2cm, soft, mobile")
    /// speaks of the lump the message names (see `mapping.rs`, the clinician's note).
    #[serde(default)]
    takes_up: Vec<String>,
    /// Procedures: the generic examination this one makes specific, and the reasons that make
    /// it so (see `Refinement`).
    #[serde(default)]
    refines: Option<RefinesDef>,
    /// Reasons: what a mention of this one means on a request for a named examination
    /// (procedure id → reason id): a fracture asked with no bone named ("?#") is a rib fracture
    /// asked on rib films.
    #[serde(default)]
    on_examination: BTreeMap<String, String>,
}

/// `refines = { procedure = "us-obstetric", reasons = ["group:later-pregnancy"] }` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefinesDef {
    procedure: String,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    alone: bool,
}

/// A specific examination that a request for a generic one is, by the request's own words or
/// reasons: an obstetric US "at 32 weeks" is a later-pregnancy scan; the text "Growth scan"
/// beside the generic obstetric code names it although the code alone would not.
#[derive(Debug, Clone)]
pub struct Refinement {
    /// The generic procedure (index into `procedures`).
    pub procedure: usize,
    /// Reason concepts (indexes into `reasons`) whose present mention makes the request this one.
    pub reasons: Vec<usize>,
    /// Only when the generic examination is the only one named: a bare "USS" for abdominal pain
    /// is an abdominal US, but "US hip" (also the catch-all "US") is not made one by it.
    pub alone: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminologyFile {
    #[serde(default)]
    context: Option<text::ContextDef>,
    #[serde(default)]
    forms: Option<forms::FormsDef>,
    #[serde(default)]
    spelling: Option<spelling::SpellingDef>,
    #[serde(default)]
    not_findings: Option<filler::NotFindingsDef>,
    #[serde(default)]
    procedure: Vec<ConceptDef>,
    #[serde(default)]
    reason: Vec<ConceptDef>,
    #[serde(default)]
    observation: Vec<ConceptDef>,
    #[serde(default)]
    marker: Vec<ConceptDef>,
}

/// A compiled concept.
#[derive(Debug, Clone)]
pub struct Concept {
    pub id: String,
    pub title: String,
    pub modality: Option<String>,
    pub region: Option<String>,
    pub kind: ReasonKind,
    pub groups: Vec<String>,
    pub codes: Vec<CodeDef>,
    pub pattern: Option<Regex>,
    pub past_counts: bool,
    /// Whether only a negated mention counts (a sign's absence answered on a form).
    pub counts_negated: bool,
    /// Whether the guidance has a tip for this examination (procedures).
    pub has_tips: bool,
    /// Reason concepts whose mentions inside this one's are hidden (indexes into `reasons`).
    pub hides: Vec<usize>,
    hides_ids: Vec<String>,
    /// Reason concepts a note's mention of this one takes up from a message (indexes into
    /// `reasons`).
    pub takes_up: Vec<usize>,
    takes_up_ids: Vec<String>,
    /// Procedures: the generic examination this one makes specific.
    pub refines: Option<Refinement>,
    refines_def: Option<RefinesDef>,
    /// Reasons: (procedure, reason) pairs, indexes into `procedures` and `reasons`: on a
    /// request for the procedure, a mention of this concept is also a mention of the reason.
    pub on_examination: Vec<(usize, usize)>,
    on_examination_def: BTreeMap<String, String>,
}

/// Which table a concept is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Procedure,
    Reason,
    Observation,
    Marker,
}

/// All terminology, compiled.
#[derive(Debug, Default)]
pub struct Terminology {
    pub procedures: Vec<Concept>,
    pub reasons: Vec<Concept>,
    pub observations: Vec<Concept>,
    /// Request markers such as the 2WW fast-track codes.
    pub markers: Vec<Concept>,
    codes: HashMap<(String, String), Vec<(Table, usize)>>,
    /// How mentions are read in context (negation, history, ...): `[context]`.
    pub reader: text::Reader,
    /// How a pasted questionnaire is written as fields answered: `[forms]`.
    pub forms: forms::Forms,
    /// Spelling tolerance: `[spelling]`.
    pub speller: spelling::Speller,
    /// What does not count as a finding: `[not_findings]`.
    pub not_findings: filler::NotFindings,
    /// Which procedures and reasons a text mentions at all (one pass each).
    pub procedure_filter: Prefilter,
    pub reason_filter: Prefilter,
}

/// One pass per concept over a text, with the concept's own pattern compiled for ASCII only,
/// that says which concepts of a table the text can mention, so that only those are read
/// mention by mention (with the reader's context, which costs far more than a match). A text
/// names a handful of the ~120 reason concepts.
///
/// On an ASCII text, word boundaries, classes and case folding mean the same in the ASCII and
/// the Unicode patterns, and the ASCII ones are a fraction of their size. A text that is not
/// ASCII is read concept by concept, as is a concept whose pattern needs Unicode. A concept left
/// out therefore has no match in the text, and the answers are those of reading every concept.
///
/// Each concept is its own regex rather than one `RegexSet` of them all: a set's lazy DFA must
/// build states of every pattern at once, and on short texts that are each new to it the
/// building was most of the time of a decision (perf, session 34: two thirds of `candidates`
/// was `determinize`). A concept's own DFA has few states and keeps them from text to text, and
/// its literal prefilter skips most texts outright (BENCHMARKS.md, "Text reading after session
/// 34").
#[derive(Debug, Default)]
pub struct Prefilter {
    /// The concept index and ASCII pattern of each concept read through the prefilter.
    ascii: Vec<(usize, regex::bytes::Regex)>,
    /// Concepts read on every text (a pattern that needs Unicode).
    always: Vec<usize>,
}

impl Prefilter {
    fn build(concepts: &[Concept]) -> Self {
        let mut ascii = Vec::new();
        let mut always = Vec::new();
        for (i, c) in concepts.iter().enumerate() {
            let Some(re) = &c.pattern else { continue };
            match text::ascii_only(re.as_str(), None) {
                Some(re) => ascii.push((i, re)),
                // A pattern that needs Unicode (`\p{L}`) is read on every text instead.
                None => always.push(i),
            }
        }
        Prefilter { ascii, always }
    }

    /// The indexes, in table order, of the concepts that may match in `text`: those whose
    /// pattern matches somewhere, or every one of the `all` when the text is not ASCII.
    pub fn candidates(&self, text: &str, all: usize) -> Vec<usize> {
        if !text.is_ascii() {
            return (0..all).collect();
        }
        let bytes = text.as_bytes();
        let mut found: Vec<usize> = self
            .ascii
            .iter()
            .filter(|(_, re)| re.is_match(bytes))
            .map(|(i, _)| *i)
            .collect();
        if !self.always.is_empty() {
            found.extend(self.always.iter().copied());
            found.sort_unstable();
        }
        found
    }
}

impl Terminology {
    /// Compiles terminology files, given as `(name, text)`.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<LoadError>> {
        let mut t = Terminology::default();
        let mut errors = Vec::new();
        let mut seen_context = false;
        // `[not_findings]` may be split over files (the curated lists, the common words): the
        // parts are compiled together, once.
        let mut not_findings = filler::NotFindingsDef::default();
        let mut not_findings_files: Vec<&str> = Vec::new();
        for (file, text) in files {
            let parsed = match toml::from_str::<TerminologyFile>(text) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(LoadError::toml(file, text, &e));
                    continue;
                }
            };
            let mut section = |name: &str, r: Result<(), String>| {
                if let Err(message) = r {
                    let line = text
                        .lines()
                        .position(|l| l.trim() == format!("[{name}]"))
                        .map(|i| i + 1);
                    errors.push(LoadError::new(file, message).at_line(line));
                }
            };
            if let Some(def) = &parsed.context {
                section(
                    "context",
                    text::Reader::compile(def).map(|r| {
                        t.reader = r;
                        seen_context = true;
                    }),
                );
            }
            if let Some(def) = &parsed.forms {
                section("forms", forms::Forms::compile(def).map(|f| t.forms = f));
            }
            if let Some(def) = &parsed.spelling {
                section(
                    "spelling",
                    spelling::Speller::compile(def).map(|s| t.speller = s),
                );
            }
            if let Some(def) = &parsed.not_findings {
                not_findings.extend(def);
                not_findings_files.push(file);
            }
            for (table, defs) in [
                (Table::Procedure, parsed.procedure),
                (Table::Reason, parsed.reason),
                (Table::Observation, parsed.observation),
                (Table::Marker, parsed.marker),
            ] {
                for def in defs {
                    let id = def.id.clone();
                    if let Err(message) = t.add(table, def) {
                        let line = text
                            .lines()
                            .position(|l| l.contains(&format!("\"{id}\"")))
                            .map(|i| i + 1);
                        errors.push(LoadError::new(file, message).at_line(line));
                    }
                }
            }
        }
        match filler::NotFindings::compile(&not_findings) {
            Ok(n) => t.not_findings = n,
            Err(message) => errors.push(LoadError::new(not_findings_files.join(", "), message)),
        }
        if !seen_context && errors.is_empty() {
            errors.push(LoadError::new(
                "terminology/",
                "no [context] table (the trigger lists of terminology/context.toml): negation and history would not be read",
            ));
        }
        for i in 0..t.reasons.len() {
            let mut resolve = |field: &str, ids: Vec<String>| {
                let mut found = Vec::new();
                for id in ids {
                    match t.find(Table::Reason, &id) {
                        Some(j) => found.push(j),
                        None => errors.push(LoadError::new(
                            "terminology/reasons.toml",
                            format!(
                                "reason '{}' {field} '{id}', which is not a reason",
                                t.reasons[i].id
                            ),
                        )),
                    }
                }
                found
            };
            let hides = resolve("hides", t.reasons[i].hides_ids.clone());
            let takes_up = resolve("takes up", t.reasons[i].takes_up_ids.clone());
            t.reasons[i].hides = hides;
            t.reasons[i].takes_up = takes_up;
        }
        for i in 0..t.reasons.len() {
            let mut pairs = Vec::new();
            for (procedure, reason) in t.reasons[i].on_examination_def.clone() {
                let here = |m: String| {
                    LoadError::new(
                        "terminology/reasons.toml",
                        format!("reason '{}' on_examination: {m}", t.reasons[i].id),
                    )
                };
                match (
                    t.find(Table::Procedure, &procedure),
                    t.find(Table::Reason, &reason),
                ) {
                    (Some(p), Some(r)) => pairs.push((p, r)),
                    (None, _) => errors.push(here(format!("'{procedure}' is not a procedure"))),
                    (_, None) => errors.push(here(format!("'{reason}' is not a reason"))),
                }
            }
            t.reasons[i].on_examination = pairs;
        }
        for i in 0..t.procedures.len() {
            let Some(def) = t.procedures[i].refines_def.clone() else {
                continue;
            };
            let here = |m: String| {
                LoadError::new(
                    "terminology/procedures.toml",
                    format!("procedure '{}' refines: {m}", t.procedures[i].id),
                )
            };
            let Some(procedure) = t.find(Table::Procedure, &def.procedure) else {
                errors.push(here(format!("'{}' is not a procedure", def.procedure)));
                continue;
            };
            let mut reasons = Vec::new();
            for id in &def.reasons {
                let found: Vec<usize> = match id.strip_prefix("group:") {
                    Some(g) => (0..t.reasons.len())
                        .filter(|&j| t.reasons[j].groups.iter().any(|x| x == g))
                        .collect(),
                    None => t.find(Table::Reason, id).into_iter().collect(),
                };
                if found.is_empty() {
                    errors.push(here(format!("'{id}' names no reason")));
                }
                reasons.extend(found);
            }
            t.procedures[i].refines = Some(Refinement {
                procedure,
                reasons,
                alone: def.alone,
            });
        }
        if errors.is_empty() {
            t.procedure_filter = Prefilter::build(&t.procedures);
            t.reason_filter = Prefilter::build(&t.reasons);
        }
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    fn add(&mut self, table: Table, def: ConceptDef) -> Result<(), String> {
        let list = self.table(table);
        if list.iter().any(|c| c.id == def.id) {
            return Err(format!("concept '{}' is defined twice", def.id));
        }
        let pattern = if def.text.is_empty() {
            None
        } else {
            Some(
                text::compile_patterns(&def.text)
                    .map_err(|e| format!("concept '{}': {e}", def.id))?,
            )
        };
        if table == Table::Procedure && def.modality.is_none() {
            return Err(format!("procedure '{}' has no modality", def.id));
        }
        let kind = match (table, def.kind) {
            (Table::Reason, None) => return Err(format!("reason '{}' has no kind", def.id)),
            (_, Some(k)) => k,
            (_, None) => ReasonKind::Finding,
        };
        let index = list.len();
        for code in &def.codes {
            self.codes
                .entry((code.system.clone(), code.code.clone()))
                .or_default()
                .push((table, index));
        }
        let concept = Concept {
            id: def.id,
            title: def.title,
            modality: def.modality,
            region: def.region,
            kind,
            groups: def.groups,
            codes: def.codes,
            pattern,
            past_counts: def.past_counts,
            counts_negated: def.counts_negated,
            has_tips: def.tips.unwrap_or(true),
            hides: Vec::new(),
            hides_ids: def.hides,
            takes_up: Vec::new(),
            takes_up_ids: def.takes_up,
            refines: None,
            refines_def: def.refines,
            on_examination: Vec::new(),
            on_examination_def: def.on_examination,
        };
        self.table_mut(table).push(concept);
        Ok(())
    }

    fn table(&self, table: Table) -> &Vec<Concept> {
        match table {
            Table::Procedure => &self.procedures,
            Table::Reason => &self.reasons,
            Table::Observation => &self.observations,
            Table::Marker => &self.markers,
        }
    }

    fn table_mut(&mut self, table: Table) -> &mut Vec<Concept> {
        match table {
            Table::Procedure => &mut self.procedures,
            Table::Reason => &mut self.reasons,
            Table::Observation => &mut self.observations,
            Table::Marker => &mut self.markers,
        }
    }

    /// Concepts of `table` with this code.
    pub fn by_code(
        &self,
        table: Table,
        system: &str,
        code: &str,
    ) -> impl Iterator<Item = usize> + '_ {
        self.codes
            .get(&(system.to_string(), code.to_string()))
            .into_iter()
            .flatten()
            .filter(move |(t, _)| *t == table)
            .map(|(_, i)| *i)
    }

    /// Whether any table knows this code.
    pub fn knows_code(&self, system: &str, code: &str) -> bool {
        self.codes
            .contains_key(&(system.to_string(), code.to_string()))
    }

    pub fn find(&self, table: Table, id: &str) -> Option<usize> {
        self.table(table).iter().position(|c| c.id == id)
    }

    pub fn concepts(&self, table: Table) -> &[Concept] {
        self.table(table)
    }

    /// The words concept patterns name that the table of corrections rewrites before any pattern
    /// is read ("tailbone" is read as "coccyx"), so that the alternatives naming them never
    /// match: each word, what it is read as, and the concepts naming it, for `rules lint`.
    pub fn words_corrected_away(&self) -> Vec<(String, String, Vec<String>)> {
        let mut found: std::collections::BTreeMap<(String, String), Vec<String>> =
            std::collections::BTreeMap::new();
        for table in [
            Table::Procedure,
            Table::Reason,
            Table::Marker,
            Table::Observation,
        ] {
            for concept in self.table(table) {
                let Some(re) = &concept.pattern else { continue };
                for word in literal_words(re.as_str()) {
                    if let Some(right) = self.speller.corrected(word) {
                        let ids = found
                            .entry((word.to_string(), right.to_string()))
                            .or_default();
                        if !ids.contains(&concept.id) {
                            ids.push(concept.id.clone());
                        }
                    }
                }
            }
        }
        found.into_iter().map(|((w, r), ids)| (w, r, ids)).collect()
    }
}

/// The literal words of a pattern: runs of three or more lower-case letters, with escapes
/// (`\b`, `\x27`, `\p{L}`) left out and nothing joined to a letter before or after.
fn literal_words(pattern: &str) -> Vec<&str> {
    let bytes = pattern.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += match bytes.get(i + 1) {
                    Some(b'x') => 4,
                    Some(b'p' | b'P') if bytes.get(i + 2) == Some(&b'{') => bytes[i..]
                        .iter()
                        .position(|&b| b == b'}')
                        .map_or(bytes.len() - i, |end| end + 1),
                    _ => 2,
                };
            }
            b'a'..=b'z' => {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_lowercase() {
                    i += 1;
                }
                let joined = bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphabetic() || *b >= 0x80)
                    || (start > 0 && bytes[start - 1] >= 0x80);
                if i - start >= 3 && !joined {
                    words.push(&pattern[start..i]);
                }
            }
            _ => i += 1,
        }
    }
    words
}

/// Short names of code systems, for messages.
pub fn system_name(system: &str) -> &str {
    match system {
        "http://snomed.info/sct" => "SNOMED CT",
        "http://loinc.org" => "LOINC",
        "https://nicip.nhs.uk" => "NICIP",
        "http://dicom.nema.org/resources/ontology/DCM" => "DICOM",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{text::normalise, Concept, Prefilter, Terminology};
    use std::path::Path;

    fn shipped() -> Terminology {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/terminology");
        let files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("rules/terminology")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("read");
                (p.display().to_string(), text)
            })
            .collect();
        Terminology::from_files(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .expect("the shipped terminology compiles")
    }

    /// Every text of the clinical corpus, as written and with letters that are not ASCII.
    fn corpus_texts(terms: &Terminology) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("tests/corpus") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let file: toml::Value =
                toml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("TOML");
            for case in file["case"].as_array().into_iter().flatten() {
                for key in ["code", "reason", "note"] {
                    if let Some(t) = case.get(key).and_then(toml::Value::as_str) {
                        let t = normalise(t, &terms.forms);
                        texts.push(format!("{t} – naïve café, ſtable, \u{212a}nee"));
                        texts.push(t);
                    }
                }
            }
        }
        texts
    }

    fn check(filter: &Prefilter, concepts: &[Concept], texts: &[String]) -> usize {
        let mut read = 0;
        for t in texts {
            let candidates = filter.candidates(t, concepts.len());
            read += candidates.len();
            for (i, c) in concepts.iter().enumerate() {
                if c.pattern.as_ref().is_some_and(|re| re.is_match(t)) {
                    assert!(
                        candidates.binary_search(&i).is_ok(),
                        "'{}' matches {t:?} but was left out",
                        c.id
                    );
                }
            }
        }
        read
    }

    #[test]
    fn a_pattern_word_the_corrections_rewrite_is_found() {
        use super::literal_words;
        assert_eq!(
            literal_words(
                r"(?i)(?-u:\b)(?:(?:tailbone|coccyx)\b[^.;]{0,40}\bpain|gl[uùú]in|\x27dard)"
            ),
            ["tailbone", "coccyx", "pain", "dard"]
        );
        let terms = shipped();
        let away = terms.words_corrected_away();
        // Each word found is one the corrections rewrite, and the shipped patterns hold some
        // (session 49: 'tailbone', read as 'coccyx', in 78 alternatives).
        assert!(!away.is_empty());
        for (word, right, ids) in &away {
            assert_eq!(terms.speller.corrected(word), Some(right.as_str()));
            assert!(!ids.is_empty());
        }
    }

    #[test]
    fn the_prefilter_leaves_out_only_concepts_with_no_match() {
        let terms = shipped();
        let texts = corpus_texts(&terms);
        assert!(texts.len() > 1000, "{} texts", texts.len());
        let reasons = check(&terms.reason_filter, &terms.reasons, &texts);
        check(&terms.procedure_filter, &terms.procedures, &texts);
        // And it does leave concepts out: on average a text is read for a few of them, not all
        // (the texts that are not ASCII are read for every concept).
        let ascii = texts.iter().filter(|t| t.is_ascii()).count();
        let all = terms.reasons.len() * (texts.len() - ascii);
        assert!(
            reasons - all < terms.reasons.len() * ascii / 4,
            "{reasons} concept reads over {} texts",
            texts.len()
        );
    }
}
