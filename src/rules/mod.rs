//! Stage 4: the guidance rules. Each rule is a data file under `rules/` (see its README); this
//! module reads them, compiles them once against the terminology and site data into an
//! immutable [`RuleSet`], and evaluates them.

pub mod eval;
pub mod publish;
pub mod rule;
pub mod site;

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

/// Rule files: every `*.toml` in the sub-folders of `dir` except `terminology/`.
fn rule_files(dir: &Path, out: &mut Vec<PathBuf>, top: bool) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if !(top && path.file_name().is_some_and(|n| n == "terminology")) {
                rule_files(&path, out, false)?;
            }
        } else if !top && path.extension().is_some_and(|x| x == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The line of a rule file where the name quoted in `message` ('name') is written.
fn line_of_quoted(text: &str, message: &str) -> Option<usize> {
    let quoted = message.split('\'').nth(1)?;
    let name = quoted.strip_prefix("group:").unwrap_or(quoted);
    text.lines().position(|l| l.contains(name)).map(|i| i + 1)
}

impl RuleSet {
    /// Loads and compiles `dir` (site.toml, terminology/, and one rule per file in the
    /// sub-folders). Every problem of every file is returned, not only the first.
    pub fn load(dir: &Path) -> Result<Self, Vec<LoadError>> {
        let mut errors = Vec::new();
        let rel = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
        let site_path = dir.join("site.toml");
        let site = match std::fs::read_to_string(&site_path) {
            Ok(text) => toml::from_str::<Site>(&text)
                .map_err(|e| errors.push(toml_error("site.toml", &text, &e)))
                .ok(),
            Err(e) => {
                errors.push(LoadError {
                    file: site_path.display().to_string(),
                    line: None,
                    message: e.to_string(),
                });
                None
            }
        };
        let terms = Terminology::load(&dir.join("terminology"))
            .map_err(|es| {
                errors.extend(es.into_iter().map(|e| LoadError {
                    file: rel(Path::new(&e.file)),
                    line: None,
                    message: e.message,
                }))
            })
            .ok();
        let mut files = Vec::new();
        if let Err(e) = rule_files(dir, &mut files, true) {
            errors.push(LoadError {
                file: dir.display().to_string(),
                line: None,
                message: e.to_string(),
            });
        }
        files.sort();
        let mut rules: Vec<Rule> = Vec::new();
        for path in files {
            let file = rel(&path);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(LoadError {
                        file,
                        line: None,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let def: RuleDef = match toml::from_str(&text) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(toml_error(&file, &text, &e));
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
            for ex in &def.examples {
                let example = dir.join("..").join("examples").join(&ex.file);
                if !example.is_file() {
                    errors.push(LoadError {
                        file: file.clone(),
                        line: None,
                        message: format!("example '{}' not found in examples/", ex.file),
                    });
                }
            }
            match rule::compile(def, file.clone(), terms, site) {
                Ok(r) => rules.push(r),
                Err(es) => errors.extend(es.into_iter().map(|message| LoadError {
                    file: file.clone(),
                    line: line_of_quoted(&text, &message),
                    message,
                })),
            }
        }
        match (site, terms, errors.is_empty()) {
            (Some(site), Some(terms), true) => Ok(RuleSet {
                site,
                terms,
                rules,
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
