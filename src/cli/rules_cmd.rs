//! `referral-gateway rules list | lint | test`

use super::{RulesAction, RulesArg};
use crate::engine;
use crate::finding::Decision;
use crate::parse::{Format, Limits};
use crate::rules::RuleSet;
use crate::site::RuleMode;

/// The result of one rule example.
#[derive(Debug, Clone)]
pub struct ExampleRun {
    pub rule: String,
    pub file: String,
    pub expected: Decision,
    pub got: Result<Decision, String>,
    pub expected_fires: bool,
    pub fired: bool,
    pub fired_rules: Vec<String>,
}

impl ExampleRun {
    pub fn passed(&self) -> bool {
        self.got.as_ref().ok() == Some(&self.expected) && self.fired == self.expected_fires
    }
}

/// Runs every example of every rule.
pub fn run_examples(rules: &RuleSet) -> Vec<ExampleRun> {
    let dir = rules.examples_dir();
    let mut runs = Vec::new();
    for rule in &rules.rules {
        for ex in &rule.def.examples {
            let path = dir.join(&ex.file);
            let expected_fires = ex.fires.unwrap_or(ex.expect != Decision::Accepted);
            let (got, fired_rules) = match std::fs::read(&path) {
                Err(e) => (
                    Err(format!("cannot read {}: {e}", path.display())),
                    Vec::new(),
                ),
                Ok(bytes) => {
                    let format = Format::from_path(&ex.file).unwrap_or(Format::Json);
                    match engine::check(rules, &bytes, format, &Limits::default()) {
                        Err(u) => (
                            Err(format!(
                                "unusable input: {}",
                                u.findings().first().map(|f| f.text.as_str()).unwrap_or("")
                            )),
                            Vec::new(),
                        ),
                        Ok(c) => {
                            let reqs: Vec<_> = c.requests().collect();
                            match reqs.as_slice() {
                                [r] if r.invalid => (
                                    Err(format!(
                                        "invalid FHIR: {}",
                                        r.findings.first().map(|f| f.text.as_str()).unwrap_or("")
                                    )),
                                    Vec::new(),
                                ),
                                [r] => (Ok(r.decision), r.fired.clone()),
                                _ => (
                                    Err(format!(
                                        "expected one ServiceRequest, found {}",
                                        reqs.len()
                                    )),
                                    Vec::new(),
                                ),
                            }
                        }
                    }
                }
            };
            let fired = fired_rules.contains(&rule.def.id);
            runs.push(ExampleRun {
                rule: rule.def.id.clone(),
                file: ex.file.clone(),
                expected: ex.expect,
                got,
                expected_fires,
                fired,
                fired_rules,
            });
        }
    }
    runs
}

/// Runs a `rules` action and returns the exit status.
pub fn run(source: &RulesArg, action: RulesAction) -> i32 {
    // The reference of the conditions depends on the gateway, not on a rules folder.
    if let RulesAction::Conditions { readme } = &action {
        return conditions(readme.as_deref());
    }
    let rules = match source.load() {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{} problem(s) in {}", errors.len(), source.dir().display());
            return 1;
        }
    };
    match action {
        RulesAction::List => {
            for r in &rules.rules {
                let target = r
                    .def
                    .pathway
                    .as_deref()
                    .map(|p| format!(" → {p}"))
                    .unwrap_or_default();
                let mode = match rules.site.rule_mode(&r.def.id) {
                    RuleMode::Enforce => String::new(),
                    m => format!(" [{}]", m.as_str()),
                };
                outln!(
                    "{:<6} {:<8} {}{target}{mode}",
                    r.def.id,
                    r.def.action.as_str(),
                    r.def.title
                );
            }
            0
        }
        RulesAction::Lint => {
            let without_examples: Vec<&str> = rules
                .rules
                .iter()
                .filter(|r| r.def.examples.is_empty())
                .map(|r| r.def.id.as_str())
                .collect();
            for id in &without_examples {
                outln!("warning: rule {id} has no examples");
            }
            for (word, right, ids) in rules.terms.words_corrected_away() {
                outln!(
                    "warning: '{word}' is read as '{right}' (spelling.toml corrections) before any pattern is read, so the alternatives naming it never match: {}",
                    ids.join(", ")
                );
            }
            outln!(
                "{} rules, {} procedure, {} reason and {} observation concepts, {} pathways: all files parse and every reference resolves",
                rules.rules.len(),
                rules.terms.procedures.len(),
                rules.terms.reasons.len(),
                rules.terms.observations.len(),
                rules.site.pathways.len()
            );
            let modes: Vec<String> = rules
                .site
                .rule_modes
                .iter()
                .filter(|(_, m)| **m != RuleMode::Enforce)
                .map(|(id, m)| format!("{id} {}", m.as_str()))
                .collect();
            outln!(
                "rule modes: {} (every other rule enforces its action)",
                if modes.is_empty() {
                    "all enforce".to_string()
                } else {
                    modes.join(", ")
                }
            );
            let conformance = &rules.conformance;
            outln!(
                "profiles: {} conformance resources, {} StructureDefinition(s), {} ValueSet(s) expanded",
                conformance.resources.len(),
                conformance.profiles.len(),
                conformance.value_sets.len()
            );
            for p in &conformance.profiles {
                let enforced = rules.site.enforce_profiles.contains(&p.url);
                outln!(
                    "  {} ({}){}: enforces {} element rule(s) and {} invariant(s)",
                    p.url,
                    p.resource_type,
                    if enforced {
                        ", enforced on every request"
                    } else {
                        ", when declared in meta.profile"
                    },
                    p.elements.len(),
                    p.invariants.len()
                );
                for line in &p.not_enforced {
                    outln!("  note: not enforced: {line}");
                }
            }
            0
        }
        RulesAction::Report { corpus } => {
            let cases = match crate::engine::corpus::read_corpus(&corpus) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 1;
                }
            };
            let outcomes = crate::engine::corpus::run(&rules, &cases);
            out!("{}", crate::engine::corpus::markdown(&rules, &outcomes));
            i32::from(!outcomes.iter().all(|o| o.agrees()))
        }
        RulesAction::Case { corpus, ids } => {
            let cases = match crate::engine::corpus::read_corpus(&corpus) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 1;
                }
            };
            let mut status = 0;
            for id in &ids {
                match cases.iter().find(|c| &c.id == id) {
                    Some(case) => outln!("{}", crate::engine::corpus::build(case)),
                    None => {
                        eprintln!("error: no case {id} in {}", corpus.display());
                        status = 1;
                    }
                }
            }
            status
        }
        RulesAction::Publish { out } => {
            for (name, cs) in crate::rules::publish::generated_resources(&rules) {
                let path = out.join(&name);
                let text = serde_json::to_string_pretty(&cs).unwrap_or_default() + "\n";
                if let Err(e) =
                    std::fs::create_dir_all(&out).and_then(|_| std::fs::write(&path, text))
                {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return 1;
                }
                outln!("wrote {}", path.display());
            }
            0
        }
        RulesAction::Conditions { readme } => conditions(readme.as_deref()),
        RulesAction::Test => {
            let runs = run_examples(&rules);
            let failed: Vec<&ExampleRun> = runs.iter().filter(|r| !r.passed()).collect();
            for r in &runs {
                let mark = if r.passed() { "ok  " } else { "FAIL" };
                let got = match &r.got {
                    Ok(d) => d.code().to_string(),
                    Err(e) => e.clone(),
                };
                outln!(
                    "{mark} {:<6} {:<60} expected {} ({}fires), got {got} (fired: {})",
                    r.rule,
                    r.file,
                    r.expected.code(),
                    if r.expected_fires { "" } else { "never " },
                    if r.fired_rules.is_empty() {
                        "none".to_string()
                    } else {
                        r.fired_rules.join(", ")
                    }
                );
            }
            outln!(
                "{} passed, {} failed",
                runs.len() - failed.len(),
                failed.len()
            );
            i32::from(!failed.is_empty())
        }
    }
}

/// `rules conditions`: prints the generated `[when]` reference, or rewrites it in `readme`.
fn conditions(readme: Option<&std::path::Path>) -> i32 {
    use crate::rules::conditions;
    let Some(path) = readme else {
        out!("{}", conditions::reference());
        return 0;
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return 1;
        }
    };
    let Some(new) = conditions::readme_with_reference(&text) else {
        eprintln!(
            "error: {} has no generated section (the lines {} and {})",
            path.display(),
            conditions::README_BEGIN.trim(),
            conditions::README_END.trim()
        );
        return 1;
    };
    if new == text {
        outln!("{} is up to date", path.display());
    } else if let Err(e) = std::fs::write(path, new) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return 1;
    } else {
        outln!("wrote {}", path.display());
    }
    0
}
