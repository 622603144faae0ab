//! Stage 4: the guidance rules. Each rule is a data file under `rules/` (see its README); this
//! module reads them, compiles them once against the terminology and site data into an
//! immutable [`RuleSet`], and evaluates them.

pub mod conditions;
pub mod coverage;
pub mod eval;
pub mod publish;
pub mod rule;

pub use crate::load::LoadError;
use crate::load::{line_of_quoted, RuleSource, SourceFiles};
use crate::profile::Conformance;
use crate::site::Site;
use crate::terminology::Terminology;
use rule::{Rule, RuleDef};
use std::path::{Path, PathBuf};

/// Everything the engine decides with, compiled once and shared read-only.
#[derive(Debug)]
pub struct RuleSet {
    pub site: Site,
    pub terms: Terminology,
    pub rules: Vec<Rule>,
    /// The profiles folder, compiled: the profiles every request is checked against.
    pub conformance: Conformance,
    /// The folder the rules came from (examples are found beside it).
    pub dir: PathBuf,
    /// When this rule set was loaded: the `Last-Modified` of the conformance resources.
    pub loaded: std::time::SystemTime,
    /// The rule-set version (contract §6): a content hash (SHA-256, first 16 hex digits) of
    /// every rule, terminology and site file and every profile. Shown in `/metadata` and
    /// `/health`, recorded with every consult.
    pub version: String,
    /// Those files as JSON (`{"rules": {path: text}, "profiles": {path: text}}`), kept once per
    /// version in the consult store so that an old consult can be explained under its rules.
    pub files_json: String,
}

/// The rule-set version of these files, and the files as JSON.
fn version_of(files: &RuleFiles, profile_files: &SourceFiles) -> (String, String) {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (tag, list) in [("rules", files), ("profiles", profile_files)] {
        for (name, text) in list {
            // Lengths first: no two different folders hash alike.
            hash.update(format!("{tag}\0{}\0{name}\0{}\0", name.len(), text.len()));
            hash.update(text.as_bytes());
        }
    }
    let version: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let as_map = |list: &SourceFiles| {
        serde_json::Value::Object(
            list.iter()
                .map(|(n, t)| (n.clone(), serde_json::Value::String(t.clone())))
                .collect(),
        )
    };
    let files_json =
        serde_json::json!({ "rules": as_map(files), "profiles": as_map(profile_files) })
            .to_string();
    (version, files_json)
}

/// The files of a rules folder as `(path relative to the folder, text)`, sorted.
pub type RuleFiles = SourceFiles;

fn files_text(files: &RuleFiles, name: &str) -> String {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.clone())
        .unwrap_or_default()
}

impl RuleSet {
    /// Loads and compiles the rules folder `dir` (site.toml, terminology/, and one rule per
    /// file in the other sub-folders) with the profiles folder `profiles` (default: the
    /// `profiles/` folder beside `dir` when there is one, else the profiles built into the
    /// binary). Every problem of every file is returned.
    pub fn load(dir: &Path) -> Result<Self, Vec<LoadError>> {
        Self::load_with_profiles(dir, None)
    }

    pub fn load_with_profiles(dir: &Path, profiles: Option<&Path>) -> Result<Self, Vec<LoadError>> {
        Self::from_source(&RuleSource {
            rules: Some(dir.to_path_buf()),
            profiles: profiles.map(Path::to_path_buf),
        })
    }

    /// Reads and compiles the rules and profiles of `source`.
    pub fn from_source(source: &RuleSource) -> Result<Self, Vec<LoadError>> {
        let set = source.read()?;
        Self::compile(&set.rule_files, &set.profile_files, &set.dir)
    }

    /// The rules and profiles built into the binary.
    pub fn embedded() -> Result<Self, Vec<LoadError>> {
        Self::compile(
            &crate::load::embedded_rule_files(),
            &crate::load::embedded_profile_files(),
            &crate::load::embedded_rules_dir(),
        )
    }

    /// Compiles a rules folder and a profiles folder given as their files. `dir` is where the
    /// rules came from: examples are looked up beside it, when it is on disk.
    pub fn compile(
        files: &RuleFiles,
        profile_files: &SourceFiles,
        dir: &Path,
    ) -> Result<Self, Vec<LoadError>> {
        let mut errors = Vec::new();
        let conformance = Conformance::compile(profile_files)
            .map_err(|es| errors.extend(es))
            .ok();
        let site = match files.iter().find(|(name, _)| name == "site.toml") {
            Some((_, text)) => toml::from_str::<Site>(text)
                .map_err(|e| errors.push(LoadError::toml("site.toml", text, &e)))
                .ok(),
            None => {
                errors.push(LoadError::new("site.toml", "missing"));
                None
            }
        };
        let terminology = files
            .iter()
            .filter(|(name, _)| name.starts_with("terminology/"))
            .map(|(n, t)| (n.as_str(), t.as_str()));
        let terms = Terminology::from_files(terminology)
            .map_err(|es| errors.extend(es))
            .ok();
        let examples = dir.join("..").join("examples");
        let check_examples = examples.is_dir();
        let mut rules: Vec<Rule> = Vec::new();
        for (file, text) in files
            .iter()
            .filter(|(name, _)| name.contains('/') && !name.starts_with("terminology/"))
        {
            let def: RuleDef = match toml::from_str(text) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(LoadError::toml(file, text, &e));
                    continue;
                }
            };
            let (Some(site), Some(terms)) = (&site, &terms) else {
                continue;
            };
            if let Some(other) = rules.iter().find(|r| r.def.id == def.id) {
                errors.push(LoadError::new(
                    file.clone(),
                    format!("rule id {} is also used by {}", def.id, other.file),
                ));
                continue;
            }
            for ex in def.examples.iter().filter(|_| check_examples) {
                if !examples.join(&ex.file).is_file() {
                    errors.push(
                        LoadError::new(
                            file.clone(),
                            format!("example '{}' not found in examples/", ex.file),
                        )
                        .at_line(line_of_quoted(text, &format!("'{}'", ex.file))),
                    );
                }
            }
            match rule::compile(def, file.clone(), text, terms, site) {
                Ok(r) => rules.push(r),
                Err(es) => errors.extend(es),
            }
        }
        for rule in &rules {
            for id in &rule.def.yields_to {
                if id == &rule.def.id || !rules.iter().any(|r| &r.def.id == id) {
                    let text = files_text(files, &rule.file);
                    errors.push(
                        LoadError::new(
                            rule.file.clone(),
                            format!("yields_to: there is no other rule '{id}'"),
                        )
                        .at_line(line_of_quoted(&text, &format!("\"{id}\""))),
                    );
                }
            }
        }
        if let Some(site) = &site {
            for id in site.rule_modes.keys() {
                if !rules.iter().any(|r| &r.def.id == id) {
                    errors.push(
                        LoadError::new("site.toml", format!("rule_modes: there is no rule '{id}'"))
                            .at_line(line_of_quoted(
                                &files_text(files, "site.toml"),
                                &format!("'{id}'"),
                            )),
                    );
                }
            }
        }
        if let (Some(site), Some(conformance)) = (&site, &conformance) {
            for url in &site.enforce_profiles {
                match conformance.profile(url) {
                    Some(p) if p.resource_type == "ServiceRequest" => {}
                    Some(p) => errors.push(
                        LoadError::new("site.toml", format!("enforce_profiles: {url} constrains {}, not ServiceRequest", p.resource_type))
                            .at_line(line_of_quoted(&files_text(files, "site.toml"), &format!("'{url}'"))),
                    ),
                    None => errors.push(
                        LoadError::new("site.toml", format!("enforce_profiles: no StructureDefinition with url {url} in the profiles folder"))
                            .at_line(line_of_quoted(&files_text(files, "site.toml"), &format!("'{url}'"))),
                    ),
                }
            }
        }
        match (site, terms, conformance, errors.is_empty()) {
            (Some(site), Some(terms), Some(conformance), true) => {
                let (version, files_json) = version_of(files, profile_files);
                Ok(RuleSet {
                    site,
                    terms,
                    rules,
                    conformance,
                    dir: dir.to_path_buf(),
                    loaded: std::time::SystemTime::now(),
                    version,
                    files_json,
                })
            }
            _ => Err(errors),
        }
    }

    /// The folder holding the examples named by the rules.
    pub fn examples_dir(&self) -> PathBuf {
        self.dir.join("..").join("examples")
    }
}
