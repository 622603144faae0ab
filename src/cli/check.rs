//! `referral-gateway check FILE...`

use super::OutputFormat;
use crate::engine::{Answered, Call, Caller, Checked, Engine, EntryResult};
use crate::finding::{Decision, Finding, IssueType, Severity};
use crate::outcome::response::{answer, unusable_answer, validate_answer, Answer};
use crate::parse::{Format, Unusable};
use crate::rules::RuleSet;
use serde_json::{json, Value};
use std::io::Read;
use std::sync::Arc;

/// Exit status of one decision (contract §5).
pub fn exit_code(decision: Decision, invalid: bool) -> i32 {
    match (invalid, decision) {
        (true, _) => 2,
        (false, Decision::Rejected) => 1,
        (false, Decision::Redirected) => 3,
        (false, Decision::Accepted) => 0,
    }
}

/// The worst of two exit statuses, in the order 2, 1, 3, 0.
pub fn worst(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        2 => 3,
        1 => 2,
        3 => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The result of checking one file.
pub struct FileResult {
    pub name: String,
    pub outcome: Result<Checked, Unusable>,
    pub answer: Answer,
    pub exit: i32,
}

fn read_input(name: &str) -> Result<(Vec<u8>, Option<Format>), String> {
    if name == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok((buf, None))
    } else {
        let bytes = std::fs::read(name).map_err(|e| format!("cannot read {name}: {e}"))?;
        Ok((bytes, Format::from_path(name)))
    }
}

/// Checks one file (or stdin): one call of the engine service, as every front end makes.
pub fn check_file(engine: &Engine, name: &str, validate: bool) -> FileResult {
    let rules = engine.rules();
    let site = &rules.site;
    let (bytes, format) = match read_input(name) {
        Ok((bytes, format)) => {
            let format = format
                .or_else(|| Format::sniff(&bytes))
                .unwrap_or(Format::Json);
            (bytes, format)
        }
        Err(e) => {
            let unusable =
                Unusable::Malformed(vec![Finding::new(Severity::Fatal, IssueType::NotFound, e)]);
            return FileResult {
                name: name.to_string(),
                answer: unusable_answer(&unusable, site),
                outcome: Err(unusable),
                exit: 2,
            };
        }
    };
    let call = Call {
        caller: Caller::Cli,
        bytes: bytes.into(),
        format,
        profiles: Vec::new(),
        rules: rules.clone(),
    };
    let translate = |result: Result<&Checked, &Unusable>, rules: &RuleSet| {
        let site = &rules.site;
        Ok::<_, std::convert::Infallible>(match result {
            Ok(c) => {
                let exit = c
                    .requests()
                    .map(|r| exit_code(r.decision, r.invalid))
                    .fold(0, worst);
                let answer = if validate {
                    validate_answer(c, site)
                } else {
                    answer(c, site)
                };
                (answer, exit, None)
            }
            Err(u) => (unusable_answer(u, site), 2, Some(u.clone())),
        })
    };
    match engine.decide_blocking(call, translate) {
        Ok(Answered {
            answer: (answer, exit, unusable),
            record,
        }) => {
            let outcome = match (unusable, record) {
                (Some(u), _) => Err(u),
                (None, Some(r)) => Ok(Arc::try_unwrap(r)
                    .map(|r| r.checked)
                    .unwrap_or_else(|r| r.checked.clone())),
                (None, None) => Err(Unusable::Malformed(Vec::new())),
            };
            FileResult {
                name: name.to_string(),
                outcome,
                answer,
                exit,
            }
        }
        Err(e) => {
            let unusable = Unusable::Malformed(vec![Finding::new(
                Severity::Fatal,
                IssueType::Exception,
                e.to_string(),
            )]);
            FileResult {
                name: name.to_string(),
                answer: unusable_answer(&unusable, site),
                outcome: Err(unusable),
                exit: 2,
            }
        }
    }
}

/// Runs `check` and returns the exit status.
pub fn run(engine: &Engine, files: &[String], format: OutputFormat, validate: bool) -> i32 {
    let results: Vec<FileResult> = files
        .iter()
        .map(|f| check_file(engine, f, validate))
        .collect();
    let exit = results.iter().map(|r| r.exit).fold(0, worst);
    match format {
        OutputFormat::Json => {
            let out = if results.len() == 1 {
                results[0].answer.body.clone()
            } else {
                let entries: Vec<Value> = results
                    .iter()
                    .map(|r| json!({ "resource": r.answer.body }))
                    .collect();
                json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
            };
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        OutputFormat::Text => {
            for r in &results {
                print!("{}", text_report(r));
            }
        }
    }
    exit
}

/// The human-readable report of one file.
pub fn text_report(r: &FileResult) -> String {
    let mut out = String::new();
    match &r.outcome {
        Err(u) => {
            out.push_str(&format!("{}: UNUSABLE INPUT\n", r.name));
            for f in u.findings() {
                out.push_str(&format!("  {:<8} {}\n", f.severity.as_str(), f.text));
                let pos = f
                    .position
                    .map(|(l, c)| format!(" (line {l}, column {c})"))
                    .unwrap_or_default();
                let at = f
                    .expression
                    .first()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "the body".into());
                out.push_str(&format!("           at {at}{pos}\n"));
            }
        }
        Ok(c) => {
            for e in &c.entries {
                let EntryResult::Request(req) = e else {
                    continue;
                };
                out.push_str(&format!(
                    "{}: {} — {}\n",
                    r.name,
                    req.path,
                    req.decision.code().to_uppercase()
                ));
                out.push_str(&format!("  {}\n", req.summary));
                for f in &req.findings {
                    if f.severity == Severity::Information && f.rule.is_none() {
                        continue;
                    }
                    let id = f.rule.as_ref().map(|x| x.id.as_str()).unwrap_or("");
                    out.push_str(&format!(
                        "  {:<8} {:<6} {}\n",
                        f.severity.as_str(),
                        id,
                        f.text
                    ));
                    if let Some(p) = f.expression.first() {
                        let pos = f
                            .position
                            .map(|(l, c)| format!(" (line {l}, column {c})"))
                            .unwrap_or_default();
                        out.push_str(&format!("           at {p}{pos}\n"));
                    }
                    if let Some(d) = &f.diagnostics {
                        out.push_str(&format!("           why: {d}\n"));
                    }
                }
            }
        }
    }
    out
}
