//! `referral-gateway check FILE...`

use super::progress::ProgressDisplay;
use super::{report, OutputFormat};
use crate::engine::{Answered, Asker, Call, Caller, Checked, Engine, Purpose};
use crate::finding::{Decision, Finding, FindingId, IssueType, Severity};
use crate::outcome::response::{answer, unusable_answer, validate_answer, Answer};
use crate::parse::{Format, Unusable};
use crate::rules::RuleSet;
use serde_json::{json, Value};
use std::io::{Read, Write};
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

/// Reads a file (or stdin), refusing one over `max_bytes` before reading it whole.
fn read_input(name: &str, max_bytes: Option<u64>) -> Result<(Vec<u8>, Option<Format>), Unusable> {
    let cannot_read = |e: std::io::Error| {
        Unusable::Malformed(vec![Finding::new(
            FindingId::CliCannotRead,
            Severity::Fatal,
            IssueType::NotFound,
            format!("cannot read {name}: {e}"),
        )])
    };
    let too_big = |max: u64| {
        Unusable::TooCostly(vec![Finding::new(
            FindingId::CliTooLarge,
            Severity::Fatal,
            IssueType::TooCostly,
            format!("{name} is larger than --max-body-bytes ({max} bytes)"),
        )])
    };
    let (reader, format): (Box<dyn Read>, _) = if name == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(name).map_err(cannot_read)?;
        if let (Some(max), Ok(meta)) = (max_bytes, file.metadata()) {
            if meta.len() > max {
                return Err(too_big(max));
            }
        }
        (Box::new(file), Format::from_path(name))
    };
    let mut buf = Vec::new();
    // One byte over the limit is enough to know (stdin has no length to look at).
    let cap = max_bytes.map_or(u64::MAX, |m| m.saturating_add(1));
    reader
        .take(cap)
        .read_to_end(&mut buf)
        .map_err(cannot_read)?;
    match max_bytes {
        Some(max) if buf.len() as u64 > max => Err(too_big(max)),
        _ => Ok((buf, format)),
    }
}

/// What `check` prints for each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The answer a POST gets.
    Answer,
    /// The OperationOutcome of `$validate`: every decision and finding.
    Validate,
    /// The explanation of `$explain`.
    Explain,
}

/// Checks one file (or stdin): one call of the engine service, as every front end makes.
/// An explanation is a what-if question, not a decision of the gateway: it asks the engine for
/// the trace directly (no decision sinks).
pub fn check_file(
    engine: &Engine,
    name: &str,
    mode: Mode,
    max_bytes: Option<u64>,
    display: &ProgressDisplay,
) -> FileResult {
    let rules = engine.rules();
    let site = &rules.site;
    let (bytes, format) = match read_input(name, max_bytes) {
        Ok((bytes, format)) => {
            let format = format
                .or_else(|| Format::sniff(&bytes))
                .unwrap_or(Format::Json);
            display.reading(name, bytes.len());
            (bytes, format)
        }
        Err(unusable) => {
            return FileResult {
                name: name.to_string(),
                answer: unusable_answer(&unusable, site),
                outcome: Err(unusable),
                exit: 2,
            };
        }
    };
    if mode == Mode::Explain {
        let outcome = crate::engine::check_explained(&rules, &bytes, format, &engine.limits());
        let (answer, exit) = match &outcome {
            Ok(c) => (
                Answer {
                    status: 200,
                    body: crate::explain::parameters(c),
                },
                c.requests()
                    .map(|r| exit_code(r.decision, r.invalid))
                    .fold(0, worst),
            ),
            Err(u) => (unusable_answer(u, site), 2),
        };
        return FileResult {
            name: name.to_string(),
            outcome,
            answer,
            exit,
        };
    }
    let validate = mode == Mode::Validate;
    let call = Call {
        caller: Caller::Cli,
        purpose: Purpose::Order,
        asker: Asker {
            client: "cli".into(),
            if_none_exist: None,
        },
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
            answer: (mut answer, exit, unusable),
            record,
            consult_ids,
        }) => {
            // Recorded (`check --store`): the answer names its consults, as `serve`'s does.
            if !consult_ids.is_empty() {
                crate::store::record::stamp(&mut answer.body, site, &consult_ids);
            }
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
                FindingId::CliFailed,
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

/// `check --store URL`: the engine with the consult store as its decision sink, and the
/// async runtime its commits run on (the caller enters it while checking). A store that cannot
/// be opened, or is not answering, is an error before anything is decided.
pub fn with_store(engine: Engine, url: &str) -> Result<(Engine, tokio::runtime::Runtime), String> {
    let url = crate::store::StoreUrl::parse(url).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let store = runtime.block_on(async {
        let store = crate::store::open(&url, crate::store::StoreSync::Normal)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("'none' records nothing: give sqlite:PATH or postgres://...")?;
        store.check_writable().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(store)
    })?;
    let sink = crate::store::sink::StoreSink::new(store, true);
    Ok((engine.with_sink(std::sync::Arc::new(sink)), runtime))
}

/// Runs `check` and returns the exit status. Each file's answer is written as soon as it is
/// decided and then dropped, so a run over thousands of files holds one decision at a time
/// (keeping them all had the kernel clearing fresh pages for half the run). A closed stdout
/// (`check FILE | head`) ends the output quietly: the rest is still decided, and the exit status
/// tells the decisions.
pub fn run(
    engine: &Engine,
    files: &[String],
    format: OutputFormat,
    mode: Mode,
    max_bytes: Option<u64>,
    display: &ProgressDisplay,
) -> i32 {
    let rules = engine.rules();
    let width = report::width();
    // Several files are answered as one collection Bundle of their answers.
    let collection = files.len() > 1 && matches!(format, OutputFormat::Json);
    let mut stdout = anstream::stdout().lock();
    let mut written = if collection {
        stdout.write_all(COLLECTION_HEAD.as_bytes())
    } else {
        Ok(())
    };
    let mut exit = 0;
    for (i, file) in files.iter().enumerate() {
        let r = check_file(engine, file, mode, max_bytes, display);
        display.finished();
        exit = worst(exit, r.exit);
        if written.is_err() {
            continue;
        }
        written = match format {
            OutputFormat::Json if collection => {
                write_collection_entry(&mut stdout, &r.answer.body, i == 0)
            }
            OutputFormat::Json => writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&r.answer.body).unwrap_or_default()
            ),
            OutputFormat::Text => {
                let text =
                    report::render(&rules, &r.name, &r.outcome, width, mode == Mode::Explain);
                stdout.write_all(text.as_bytes())
            }
        };
    }
    if collection {
        written = written.and_then(|()| stdout.write_all(COLLECTION_TAIL.as_bytes()));
    }
    match written.and_then(|()| stdout.flush()) {
        Ok(()) => exit,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit,
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            exit
        }
    }
}

/// `{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ...}, ...]}` as
/// `serde_json::to_string_pretty` writes it, one entry at a time.
const COLLECTION_HEAD: &str =
    "{\n  \"resourceType\": \"Bundle\",\n  \"type\": \"collection\",\n  \"entry\": [\n";
const COLLECTION_TAIL: &str = "\n  ]\n}\n";

fn write_collection_entry(
    out: &mut impl Write,
    answer: &Value,
    first: bool,
) -> std::io::Result<()> {
    if !first {
        out.write_all(b",\n")?;
    }
    let entry = serde_json::to_string_pretty(&json!({ "resource": answer })).unwrap_or_default();
    // Pretty JSON holds no raw line break inside a string: every line is indented alike.
    for (n, line) in entry.lines().enumerate() {
        if n > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(b"    ")?;
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_written_entry_by_entry_is_the_pretty_bundle() {
        let answers = [
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "diagnostics": "two\nlines \"quoted\""}]}),
            json!({"resourceType": "ServiceRequest", "status": "active", "code": {"coding": []}, "x": [1, [2, {}]]}),
            json!({}),
        ];
        let mut out = Vec::new();
        out.extend_from_slice(COLLECTION_HEAD.as_bytes());
        for (i, a) in answers.iter().enumerate() {
            write_collection_entry(&mut out, a, i == 0).expect("writes");
        }
        out.extend_from_slice(COLLECTION_TAIL.as_bytes());
        let entries: Vec<Value> = answers.iter().map(|a| json!({ "resource": a })).collect();
        let whole = serde_json::to_string_pretty(
            &json!({ "resourceType": "Bundle", "type": "collection", "entry": entries }),
        )
        .expect("serialises");
        assert_eq!(String::from_utf8(out).expect("UTF-8"), format!("{whole}\n"));
    }
}
