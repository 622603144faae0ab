//! Stage 4: the guidance rules. Each rule is a data file under `rules/` (see its README); this
//! module reads them, compiles them once against the terminology and site data into an
//! immutable [`RuleSet`], and evaluates them.

pub mod coverage;
pub mod eval;
pub mod publish;
pub mod report;
pub mod rule;
pub mod site;

use crate::profile::{Conformance, ProfileFiles};
use crate::terminology::Terminology;
use rule::{Rule, RuleDef};
use site::Site;
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a rule, terminology or site file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

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
}

fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> LoadError {
    let line = e
        .span()
        .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
    LoadError {
        file: file.to_string(),
        line,
        message: e.message().to_string(),
    }
}

/// The files of a rules folder as `(path relative to the folder, text)`, sorted.
pub type RuleFiles = Vec<(String, String)>;

/// Reads every `*.toml` below `dir`.
pub fn read_dir_files(dir: &Path) -> Result<RuleFiles, LoadError> {
    fn walk(root: &Path, dir: &Path, out: &mut RuleFiles) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path.extension().is_some_and(|x| x == "toml") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path)?));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files).map_err(|e| LoadError {
        file: dir.display().to_string(),
        line: None,
        message: e.to_string(),
    })?;
    files.sort();
    Ok(files)
}

/// The rules shipped in the repository, built into the binary: the default when the
/// repository's `rules/` folder is not on this machine.
static EMBEDDED: include_dir::Dir<'_> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/rules");

/// The embedded rules folder as `(path, text)`.
pub fn embedded_files() -> RuleFiles {
    fn walk(d: &include_dir::Dir<'_>, out: &mut RuleFiles) {
        for f in d.files() {
            if f.path().extension().is_some_and(|x| x == "toml") {
                if let Some(text) = f.contents_utf8() {
                    out.push((
                        f.path().to_string_lossy().replace('\\', "/"),
                        text.to_string(),
                    ));
                }
            }
        }
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    let mut files = Vec::new();
    walk(&EMBEDDED, &mut files);
    files.sort();
    files
}

fn files_text(files: &RuleFiles, name: &str) -> String {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.clone())
        .unwrap_or_default()
}

/// The line of a rule file where the name quoted in `message` ('name') is written.
fn line_of_quoted(text: &str, message: &str) -> Option<usize> {
    let quoted = message.split('\'').nth(1)?;
    let name = quoted.strip_prefix("group:").unwrap_or(quoted);
    text.lines().position(|l| l.contains(name)).map(|i| i + 1)
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
        let files = read_dir_files(dir).map_err(|e| vec![e])?;
        let beside = dir.join("..").join("profiles");
        let profile_files = match profiles {
            Some(p) => crate::profile::read_dir_files(p).map_err(|e| vec![e])?,
            None if beside.is_dir() => {
                crate::profile::read_dir_files(&beside).map_err(|e| vec![e])?
            }
            None => crate::profile::embedded_files(),
        };
        Self::compile(&files, &profile_files, dir)
    }

    /// The rules and profiles built into the binary.
    pub fn embedded() -> Result<Self, Vec<LoadError>> {
        Self::embedded_with_profiles(None)
    }

    /// The rules built into the binary, with the profiles of `profiles` (default: built in).
    pub fn embedded_with_profiles(profiles: Option<&Path>) -> Result<Self, Vec<LoadError>> {
        let profile_files = match profiles {
            Some(p) => crate::profile::read_dir_files(p).map_err(|e| vec![e])?,
            None => crate::profile::embedded_files(),
        };
        Self::compile(
            &embedded_files(),
            &profile_files,
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")),
        )
    }

    /// Compiles a rules folder and a profiles folder given as their files. `dir` is where the
    /// rules came from: examples are looked up beside it, when it is on disk.
    pub fn compile(
        files: &RuleFiles,
        profile_files: &ProfileFiles,
        dir: &Path,
    ) -> Result<Self, Vec<LoadError>> {
        let mut errors = Vec::new();
        let conformance = Conformance::compile(profile_files)
            .map_err(|es| errors.extend(es))
            .ok();
        let site = match files.iter().find(|(name, _)| name == "site.toml") {
            Some((_, text)) => toml::from_str::<Site>(text)
                .map_err(|e| errors.push(toml_error("site.toml", text, &e)))
                .ok(),
            None => {
                errors.push(LoadError {
                    file: "site.toml".into(),
                    line: None,
                    message: "missing".into(),
                });
                None
            }
        };
        let terminology = files
            .iter()
            .filter(|(name, _)| name.starts_with("terminology/"))
            .map(|(n, t)| (n.as_str(), t.as_str()));
        let terms = Terminology::from_files(terminology)
            .map_err(|es| {
                errors.extend(es.into_iter().map(|e| LoadError {
                    file: e.file,
                    line: e.line,
                    message: e.message,
                }))
            })
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
                    errors.push(toml_error(file, text, &e));
                    continue;
                }
            };
            let (Some(site), Some(terms)) = (&site, &terms) else {
                continue;
            };
            if let Some(other) = rules.iter().find(|r| r.def.id == def.id) {
                errors.push(LoadError {
                    file: file.clone(),
                    line: None,
                    message: format!("rule id {} is also used by {}", def.id, other.file),
                });
                continue;
            }
            for ex in def.examples.iter().filter(|_| check_examples) {
                if !examples.join(&ex.file).is_file() {
                    errors.push(LoadError {
                        file: file.clone(),
                        line: line_of_quoted(text, &format!("'{}'", ex.file)),
                        message: format!("example '{}' not found in examples/", ex.file),
                    });
                }
            }
            match rule::compile(def, file.clone(), terms, site) {
                Ok(r) => rules.push(r),
                Err(es) => errors.extend(es.into_iter().map(|message| LoadError {
                    file: file.clone(),
                    line: line_of_quoted(text, &message),
                    message,
                })),
            }
        }
        if let (Some(site), Some(conformance)) = (&site, &conformance) {
            for url in &site.enforce_profiles {
                match conformance.profile(url) {
                    Some(p) if p.resource_type == "ServiceRequest" => {}
                    Some(p) => errors.push(LoadError {
                        file: "site.toml".into(),
                        line: line_of_quoted(&files_text(files, "site.toml"), &format!("'{url}'")),
                        message: format!("enforce_profiles: {url} constrains {}, not ServiceRequest", p.resource_type),
                    }),
                    None => errors.push(LoadError {
                        file: "site.toml".into(),
                        line: line_of_quoted(&files_text(files, "site.toml"), &format!("'{url}'")),
                        message: format!("enforce_profiles: no StructureDefinition with url {url} in the profiles folder"),
                    }),
                }
            }
        }
        match (site, terms, conformance, errors.is_empty()) {
            (Some(site), Some(terms), Some(conformance), true) => Ok(RuleSet {
                site,
                terms,
                rules,
                conformance,
                dir: dir.to_path_buf(),
            }),
            _ => Err(errors),
        }
    }

    /// The folder holding the examples named by the rules.
    pub fn examples_dir(&self) -> PathBuf {
        self.dir.join("..").join("examples")
    }
}
