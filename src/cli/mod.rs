//! The command line front end (contract §5): `check`, `rules`, `serve`.

pub mod check;
pub mod rules_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// referral-gateway: checks GP imaging referrals (FHIR R4 ServiceRequests) against the
/// hospital's referral guidance.
#[derive(Debug, Parser)]
#[command(name = "referral-gateway", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the rules and profiles come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RulesArg {
    /// Folder of rules, terminology and site data (default: the rules shipped in the repository).
    #[arg(long, env = "REFERRAL_GATEWAY_RULES", global = true)]
    pub rules: Option<PathBuf>,
    /// Folder of FHIR conformance resources: StructureDefinitions, ValueSets, CodeSystems,
    /// ConceptMaps (default: the `profiles/` folder beside the rules folder, else the profiles
    /// shipped in the repository).
    #[arg(long, env = "REFERRAL_GATEWAY_PROFILES", global = true)]
    pub profiles: Option<PathBuf>,
}

impl RulesArg {
    pub fn dir(&self) -> PathBuf {
        self.rules.clone().unwrap_or_else(default_rules_dir)
    }

    /// Loads the chosen rules: `--rules DIR`, else the repository's rules/ folder when it is
    /// on this machine (so that edits and reloads need no rebuild), else the copy built into
    /// the binary; with `--profiles DIR` or the profiles that go with them.
    pub fn load(&self) -> Result<crate::rules::RuleSet, Vec<crate::rules::LoadError>> {
        use crate::rules::RuleSet;
        let profiles = self.profiles.as_deref();
        match &self.rules {
            Some(dir) => RuleSet::load_with_profiles(dir, profiles),
            None if default_rules_dir().is_dir() => {
                RuleSet::load_with_profiles(&default_rules_dir(), profiles)
            }
            None => RuleSet::embedded_with_profiles(profiles),
        }
    }
}

impl std::fmt::Display for RulesArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// The rules shipped in the repository.
pub fn default_rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// FHIR JSON: the same answer the HTTP gateway gives.
    Json,
    /// A short report for people: decision, findings, advice.
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check FHIR files (or `-` for stdin) offline. Exit status: 0 accepted, 1 rejected,
    /// 2 unusable input, 3 redirected; for several requests the worst in the order 2, 1, 3, 0.
    Check {
        /// FHIR JSON or XML files; `-` reads stdin (format sniffed from the first byte).
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
        format: OutputFormat,
        /// Print the OperationOutcome with every decision and finding (as `$validate` answers)
        /// instead of the answer a POST gets.
        #[arg(long)]
        validate: bool,
        #[command(flatten)]
        rules: RulesArg,
    },
    /// List, lint and test the rules.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
        #[command(flatten)]
        rules: RulesArg,
    },
    /// Run the FHIR HTTP gateway (contract §4) until SIGTERM or Ctrl-C; SIGHUP reloads the rules.
    Serve {
        #[command(flatten)]
        serve: crate::http::ServeArgs,
        #[command(flatten)]
        rules: RulesArg,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum RulesAction {
    /// Id, action and title of every rule.
    List,
    /// Check every rule, terminology and site file; errors name the file and line.
    Lint,
    /// Run every rule's own examples and compare the decisions.
    Test,
    /// Run a clinical corpus (TOML cases with the decision the guidance expects) and print the
    /// agreement, the per-rule precision / recall table and every disagreement (Markdown).
    /// Exit status 1 when any case disagrees.
    Report {
        #[arg(long, default_value = "tests/corpus")]
        corpus: PathBuf,
    },
    /// Write the conformance resources generated from the rules (FHIR JSON) into a folder: the
    /// CodeSystems of decisions, rules and pathways, and the terminology's CodeSystems,
    /// ValueSets and ConceptMaps.
    #[command(alias = "codesystems")]
    Publish {
        #[arg(long, default_value = "profiles")]
        out: PathBuf,
    },
}
