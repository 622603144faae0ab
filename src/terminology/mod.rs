//! Stage 3: from codes and words to concepts.
//!
//! A request is mapped to procedure concepts (modality + region) and reason concepts from its
//! SNOMED CT, LOINC and NICIP codings and from the free text GPs write. The maps are data
//! (`rules/terminology/*.toml`), compiled once at load: one code index, and one regular
//! expression per concept.

pub mod filler;
pub mod mapping;
pub mod spelling;
pub mod text;

use crate::load::LoadError;
use regex::Regex;
use serde::Deserialize;
use std::collections::HashMap;

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
    /// Procedures: `false` when the guidance has no tip for this examination (the catch-alls
    /// of a modality whose tips all name their examination).
    #[serde(default)]
    tips: Option<bool>,
    /// Reasons: concepts whose mentions inside a mention of this one are not read on their
    /// own ("loin to groin pain" is renal colic, not groin pain).
    #[serde(default)]
    hides: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminologyFile {
    #[serde(default)]
    context: Option<text::ContextDef>,
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
    /// Whether the guidance has a tip for this examination (procedures).
    pub has_tips: bool,
    /// Reason concepts whose mentions inside this one's are hidden (indexes into `reasons`).
    pub hides: Vec<usize>,
    hides_ids: Vec<String>,
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
    /// Spelling tolerance: `[spelling]`.
    pub speller: spelling::Speller,
    /// What does not count as a finding: `[not_findings]`.
    pub not_findings: filler::NotFindings,
}

impl Terminology {
    /// Compiles terminology files, given as `(name, text)`.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<LoadError>> {
        let mut t = Terminology::default();
        let mut errors = Vec::new();
        let mut seen_context = false;
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
            if let Some(def) = &parsed.spelling {
                section(
                    "spelling",
                    spelling::Speller::compile(def).map(|s| t.speller = s),
                );
            }
            if let Some(def) = &parsed.not_findings {
                section(
                    "not_findings",
                    filler::NotFindings::compile(def).map(|n| t.not_findings = n),
                );
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
        if !seen_context && errors.is_empty() {
            errors.push(LoadError::new(
                "terminology/",
                "no [context] table (the trigger lists of terminology/context.toml): negation and history would not be read",
            ));
        }
        for i in 0..t.reasons.len() {
            let mut hides = Vec::new();
            for id in t.reasons[i].hides_ids.clone() {
                match t.find(Table::Reason, &id) {
                    Some(j) => hides.push(j),
                    None => errors.push(LoadError::new(
                        "terminology/reasons.toml",
                        format!(
                            "reason '{}' hides '{id}', which is not a reason",
                            t.reasons[i].id
                        ),
                    )),
                }
            }
            t.reasons[i].hides = hides;
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
            has_tips: def.tips.unwrap_or(true),
            hides: Vec::new(),
            hides_ids: def.hides,
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
