//! Stage 3: from codes and words to concepts.
//!
//! A request is mapped to procedure concepts (modality + region) and reason concepts from its
//! SNOMED CT, LOINC and NICIP codings and from the free text GPs write. The maps are data
//! (`rules/terminology/*.toml`), compiled once at load: one code index, and one regular
//! expression per concept.

pub mod mapping;
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminologyFile {
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
}

impl Terminology {
    /// Compiles terminology files, given as `(name, text)`.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<LoadError>> {
        let mut t = Terminology::default();
        let mut errors = Vec::new();
        for (file, text) in files {
            let parsed = match toml::from_str::<TerminologyFile>(text) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(LoadError::toml(file, text, &e));
                    continue;
                }
            };
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
