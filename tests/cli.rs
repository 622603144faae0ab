//! The `check` and `rules` commands as a user runs them: output, exit status, stdin.

mod common;

use common::copy_dir;
use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
}

fn repo(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// Runs the command with `input` on stdin; its whole output.
fn run_with_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writes");
    child.wait_with_output().expect("finishes")
}

#[test]
fn exit_status_tells_the_decision() {
    assert_eq!(
        run(&[
            "check",
            &repo("examples/general/gen01-cxr-with-clinical-question.json")
        ])
        .0,
        0
    );
    assert_eq!(
        run(&["check", &repo("examples/us/us05-neck-pain-only-coded.json")]).0,
        1
    );
    assert_eq!(
        run(&["check", &repo("tests/data/bad/invalid-json.json")]).0,
        2
    );
    assert_eq!(
        run(&[
            "check",
            &repo("examples/us/us13-calf-swelling-query-dvt.json")
        ])
        .0,
        3
    );
}

#[test]
fn several_files_give_the_worst_status_and_a_bundle() {
    let accepted = repo("examples/general/gen01-cxr-with-clinical-question.json");
    let redirected = repo("examples/us/us13-calf-swelling-query-dvt.json");
    let rejected = repo("examples/us/us05-neck-pain-only-coded.json");
    let (code, out) = run(&["check", &accepted, &redirected]);
    assert_eq!(code, 3, "redirected is worse than accepted");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["resourceType"], "Bundle");
    assert_eq!(v["entry"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        v["entry"][1]["resource"]["resourceType"], "ServiceRequest",
        "the redirected request"
    );
    assert_eq!(
        run(&["check", &redirected, &rejected, &accepted]).0,
        1,
        "rejected is worse than redirected"
    );
    assert_eq!(
        run(&["check", &rejected, &repo("tests/data/bad/invalid-xml.xml")]).0,
        2
    );
}

#[test]
fn stdin_is_sniffed_json_or_xml() {
    for (file, expect) in [
        ("examples/us/us05-neck-pain-only-coded.json", 1),
        (
            // Read as XML, and rejected by the imaging profile: an ECG is not imaging.
            "tests/data/fhir-examples/uk-core/xml/UKCore-ServiceRequest-ECG-Example.xml",
            1,
        ),
    ] {
        let bytes = std::fs::read(repo(file)).expect("file");
        let out = run_with_stdin(&["check", "-", "--format", "text"], &bytes);
        assert_eq!(out.status.code(), Some(expect), "{file}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("ServiceRequest"));
    }
}

#[test]
fn text_report_shows_decision_rule_and_advice() {
    let (code, out) = run(&[
        "check",
        "--format",
        "text",
        &repo("examples/xr/xr08-low-back-pain-loinc.json"),
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("REJECTED"), "{out}");
    assert!(out.contains("XR08"), "{out}");
    // Wrapped to the width: the words, whatever the line breaks.
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("Duty Radiologist (ext 8435"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("at ") && l.contains("ServiceRequest.")),
        "{out}"
    );
}

#[test]
fn rules_commands() {
    let (code, out) = run(&["rules", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("US13") && l.contains("dvt-clinic")),
        "{out}"
    );
    assert_eq!(run(&["rules", "lint"]).0, 0);
    let (code, out) = run(&["rules", "test"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" 0 failed"));
}

/// A corpus case is sent as the FHIR request `rules case` prints: piped into
/// `check --explain -`, it is decided as the corpus report decides it. One file is a corpus too.
#[test]
fn a_corpus_case_prints_as_the_request_it_is_sent_as() {
    let file = repo("tests/corpus/blind192.toml");
    let (code, request) = run(&["rules", "case", "--corpus", &file, "b192-010"]);
    assert_eq!(code, 0, "{request}");
    let value: serde_json::Value = serde_json::from_str(&request).expect("one JSON request");
    assert_eq!(value["resourceType"], "ServiceRequest");
    let out = run_with_stdin(&["check", "--explain", "-"], request.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout);
    // A 2WW made, with a GP ultrasound: redirected (exit 3) by GEN02, as the case expects.
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("GEN02"), "{text}");
    // An unknown id says so and fails; the file alone is a corpus the report reads.
    assert_eq!(run(&["rules", "case", "--corpus", &file, "b192-none"]).0, 1);
    let cases = std::fs::read_to_string(&file)
        .expect("file")
        .matches("[[case]]")
        .count();
    let (_, report) = run(&["rules", "report", "--corpus", &file]);
    assert!(report.contains(&format!(" of {cases} (")), "{report}");
}

/// A corpus field written blank (`note = ""`, a template left empty) is sent as no element, as
/// FHIR forbids empty strings: the request is read, not refused as invalid.
#[test]
fn a_blank_corpus_field_is_sent_as_no_element() {
    let file = repo("tests/corpus/blind255.toml");
    let (code, request) = run(&["rules", "case", "--corpus", &file, "b255-006"]);
    assert_eq!(code, 0, "{request}");
    let value: serde_json::Value = serde_json::from_str(&request).expect("one JSON request");
    assert!(value.get("note").is_none(), "{request}");
    let out = run_with_stdin(&["check", "--explain", "-"], request.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("GEN01"), "{text}");
}

/// A reader that stops reading (`rules list | head -1`) ends the output quietly: no panic, and
/// the command's own exit status.
#[test]
fn a_closed_stdout_ends_a_rules_report_quietly() {
    for args in [
        ["rules", "list"],
        ["rules", "lint"],
        ["rules", "conditions"],
    ] {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        // Closed before anything is written: every write meets a broken pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("finishes");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn lint_names_the_file_and_line_of_a_broken_rule() {
    let dir = std::env::temp_dir().join(format!("rg-lint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(std::path::Path::new(&repo("rules")), &dir.join("rules"));
    std::fs::write(
        dir.join("rules/us/US99-broken.toml"),
        "id = \"US99\"\ntitle = \"t\"\nsection = \"s\"\nguidance = \"g\"\naction = \"redirect\"\npathway = \"nowhere\"\nwhy = \"w\"\nadvice = \"a\"\n[when]\nprocedure = [\"us-nothing\"]\nreason_any = [\"group:nope\"]\njsonpath_any = [\"$[?(\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("rules/us/US98-syntax.toml"),
        "id = \"US98\"\ntitle = \n",
    )
    .expect("write");
    let out = bin()
        .args(["rules", "lint", "--rules"])
        .arg(dir.join("rules"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("us/US99-broken.toml:10: unknown procedure concept 'us-nothing'"),
        "{err}"
    );
    assert!(
        err.contains("us/US99-broken.toml:6: unknown pathway 'nowhere'"),
        "{err}"
    );
    assert!(
        err.contains("no reason concept is in group 'nope'"),
        "{err}"
    );
    assert!(err.contains("unknown pathway 'nowhere'"), "{err}");
    assert!(err.contains("JSONPath '$[?(' does not compile"), "{err}");
    assert!(err.contains("us/US98-syntax.toml:2:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch of `n` copies of one accepted ServiceRequest, written to a temporary file.
fn batch_file(n: usize, tag: &str) -> std::path::PathBuf {
    let sr: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo(
            "examples/general/gen01-cxr-with-clinical-question.json",
        ))
        .expect("example"),
    )
    .expect("JSON");
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{i:012}"),
                "resource": sr,
                "request": { "method": "POST", "url": "ServiceRequest" }
            })
        })
        .collect();
    let bundle = serde_json::json!({ "resourceType": "Bundle", "type": "batch", "entry": entries });
    let path = std::env::temp_dir().join(format!("rg-check-{tag}-{}.json", std::process::id()));
    std::fs::write(&path, bundle.to_string()).expect("write");
    path
}

#[test]
fn check_has_no_http_limits_on_files_unless_given() {
    // Over `serve`'s default of 1000 entries: a file on disk is decided whole.
    let file = batch_file(1200, "limits");
    let big = file.to_string_lossy().into_owned();
    let (code, out) = run(&["check", &big]);
    assert_eq!(code, 0, "{}", &out[..out.len().min(400)]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["type"], "batch-response");
    assert_eq!(v["entry"].as_array().map(Vec::len), Some(1200));

    // The same limits as `serve` when asked for: too costly, exit status 2.
    let (code, out) = run(&["check", "--max-bundle-entries", "1000", &big]);
    assert_eq!(code, 2);
    assert!(out.contains("too-costly"), "{out}");
    let (code, out) = run(&["check", "--max-body-bytes", "1000", &big]);
    assert_eq!(code, 2);
    assert!(
        out.contains("too-costly") && out.contains("--max-body-bytes"),
        "{out}"
    );
    // stdin has no length to look at: read up to one byte over the limit.
    let mut child = bin()
        .args(["check", "--max-body-bytes", "1000", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs");
    let bytes = std::fs::read(&big).expect("read");
    // The gateway stops reading past the limit: a closed pipe is expected here.
    let _ = child.stdin.take().expect("stdin").write_all(&bytes);
    let out = child.wait_with_output().expect("waits");
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("too-costly"));
}

#[test]
fn a_big_file_shows_its_progress_on_a_terminal_only() {
    let file = batch_file(1500, "progress");
    let big = file.to_string_lossy().into_owned();
    // Piped, as scripts run it: the answer on stdout and nothing on stderr.
    let out = bin().args(["check", &big]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // On a terminal: script(1) runs the command on a pseudo-terminal and copies what it
    // draws. The answer goes to /dev/null; what is left is the bar on stderr.
    let script = std::path::Path::new("/usr/bin/script");
    if !script.exists() {
        let _ = std::fs::remove_file(&file);
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "script(1) (util-linux) is needed for the terminal test"
        );
        eprintln!(
            "SKIPPED: no /usr/bin/script (util-linux): the progress bar on a terminal is untested"
        );
        return;
    }
    let command = format!(
        "'{}' check '{big}' > /dev/null",
        env!("CARGO_BIN_EXE_referral-gateway")
    );
    let out = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script runs");
    let _ = std::fs::remove_file(&file);
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{drawn}");
    assert!(drawn.contains("/1500 entries"), "{drawn}");
}
