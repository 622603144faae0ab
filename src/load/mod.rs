//! Loading: where the rules and profiles come from ([`RuleSource`]), the file loaders (a folder
//! on disk or the copy built into the binary), and the one [`LoadError`] every loader returns,
//! with the file, line and column.
//!
//! Below the stages: the rules, terminology and profile compilers take files from here and
//! report their problems as `LoadError`s; nothing here knows what the files mean.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a rule, terminology, site or profile file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    pub message: String,
}

impl LoadError {
    /// A problem of a whole file (or folder).
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    /// A TOML syntax or schema error, placed at the line and column its span starts.
    pub fn toml(file: &str, text: &str, e: &toml::de::Error) -> Self {
        let (line, column) = match e.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or("");
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        Self {
            file: file.to_string(),
            line,
            column,
            message: e.message().to_string(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// The files of a folder as `(path relative to the folder with '/', text)`, sorted.
pub type SourceFiles = Vec<(String, String)>;

/// Reads every file ending `.{ext}` below `dir` (in sub-folders too when `recursive`).
pub fn read_dir_files(dir: &Path, ext: &str, recursive: bool) -> Result<SourceFiles, LoadError> {
    fn walk(
        root: &Path,
        dir: &Path,
        ext: &str,
        recursive: bool,
        out: &mut SourceFiles,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if recursive {
                    walk(root, &path, ext, recursive, out)?;
                }
            } else if path.extension().is_some_and(|x| x == ext) {
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
    walk(dir, dir, ext, recursive, &mut files)
        .map_err(|e| LoadError::new(dir.display().to_string(), e.to_string()))?;
    files.sort();
    Ok(files)
}

/// The rules shipped in the repository, built into the binary: the default when the
/// repository's `rules/` folder is not on this machine.
static EMBEDDED_RULES: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/rules");

/// The profiles shipped in the repository, built into the binary.
static EMBEDDED_PROFILES: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/profiles");

fn embedded(dir: &include_dir::Dir<'_>, ext: &str, recursive: bool) -> SourceFiles {
    fn walk(d: &include_dir::Dir<'_>, ext: &str, recursive: bool, out: &mut SourceFiles) {
        for f in d.files() {
            if f.path().extension().is_some_and(|x| x == ext) {
                if let Some(text) = f.contents_utf8() {
                    out.push((
                        f.path().to_string_lossy().replace('\\', "/"),
                        text.to_string(),
                    ));
                }
            }
        }
        if recursive {
            for sub in d.dirs() {
                walk(sub, ext, recursive, out);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, ext, recursive, &mut files);
    files.sort();
    files
}

/// The embedded rules folder: every `*.toml`, with its path in the folder.
pub fn embedded_rule_files() -> SourceFiles {
    embedded(&EMBEDDED_RULES, "toml", true)
}

/// The embedded profiles folder: every `*.json` at its top.
pub fn embedded_profile_files() -> SourceFiles {
    embedded(&EMBEDDED_PROFILES, "json", false)
}

/// Reads a rules folder: every `*.toml` below it.
pub fn read_rule_files(dir: &Path) -> Result<SourceFiles, LoadError> {
    read_dir_files(dir, "toml", true)
}

/// Reads a profiles folder: every `*.json` at its top.
pub fn read_profile_files(dir: &Path) -> Result<SourceFiles, LoadError> {
    read_dir_files(dir, "json", false)
}

/// The rules shipped in the repository.
pub fn default_rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// The folder the embedded rules stand for: examples are looked up beside it when it exists.
pub fn embedded_rules_dir() -> PathBuf {
    default_rules_dir()
}

/// Where the rules and profiles come from: the same choice for every command, and kept by the
/// server for reloads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSource {
    /// A rules folder; `None`: the repository's `rules/` when it is on this machine (so that
    /// edits and reloads need no rebuild), else the copy built into the binary.
    pub rules: Option<PathBuf>,
    /// A profiles folder; `None`: the `profiles/` folder beside the rules folder, else the
    /// profiles built into the binary.
    pub profiles: Option<PathBuf>,
}

/// The files of a [`RuleSource`], read.
#[derive(Debug, Clone)]
pub struct SourceSet {
    pub rule_files: SourceFiles,
    pub profile_files: SourceFiles,
    /// Where the rules came from (examples are looked up beside it).
    pub dir: PathBuf,
}

impl RuleSource {
    /// A rules folder, with the profiles beside it.
    pub fn dir_only(dir: impl Into<PathBuf>) -> Self {
        Self {
            rules: Some(dir.into()),
            profiles: None,
        }
    }

    /// The rules folder in use (the repository's for the built-in rules).
    pub fn dir(&self) -> PathBuf {
        self.rules.clone().unwrap_or_else(default_rules_dir)
    }

    /// Reads the rule and profile files of this source.
    pub fn read(&self) -> Result<SourceSet, Vec<LoadError>> {
        let rules_dir = match &self.rules {
            Some(dir) => Some(dir.clone()),
            None if default_rules_dir().is_dir() => Some(default_rules_dir()),
            None => None,
        };
        let profile_files = match (&self.profiles, &rules_dir) {
            (Some(p), _) => read_profile_files(p).map_err(|e| vec![e])?,
            (None, Some(dir)) if dir.join("..").join("profiles").is_dir() => {
                read_profile_files(&dir.join("..").join("profiles")).map_err(|e| vec![e])?
            }
            (None, _) => embedded_profile_files(),
        };
        match rules_dir {
            Some(dir) => Ok(SourceSet {
                rule_files: read_rule_files(&dir).map_err(|e| vec![e])?,
                profile_files,
                dir,
            }),
            None => Ok(SourceSet {
                rule_files: embedded_rule_files(),
                profile_files,
                dir: embedded_rules_dir(),
            }),
        }
    }
}

impl fmt::Display for RuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rules {
            Some(dir) => write!(f, "{}", dir.display())?,
            None if default_rules_dir().is_dir() => write!(f, "{}", default_rules_dir().display())?,
            None => f.write_str("(built into the binary)")?,
        }
        if let Some(p) = &self.profiles {
            write!(f, " with profiles from {}", p.display())?;
        }
        Ok(())
    }
}

/// The line of a file where the name quoted in `message` ('name') is written.
pub fn line_of_quoted(text: &str, message: &str) -> Option<usize> {
    let quoted = message.split('\'').nth(1)?;
    let name = quoted.strip_prefix("group:").unwrap_or(quoted);
    text.lines().position(|l| l.contains(name)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_errors_say_line_and_column() {
        let text = "id = \"US01\"\naction = 3\n";
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            id: String,
            action: String,
        }
        let e = toml::from_str::<Doc>(text).expect_err("action is not a string");
        let err = LoadError::toml("us/US01.toml", text, &e);
        assert_eq!((err.line, err.column), (Some(2), Some(10)));
        assert!(err.to_string().starts_with("us/US01.toml:2:10: "), "{err}");
    }
}
