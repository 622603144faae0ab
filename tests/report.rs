//! The terminal report (`check --format text`) as a shell user meets it: wrapped to the width,
//! details indented under each finding, colour only on request or a terminal, each contact said
//! once, and a closed pipe ending quietly.

use std::io::Read;
use std::process::{Command, Stdio};

fn repo(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `check --format text` with stdout piped (not a terminal) and the given environment.
fn report(file: &str, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_referral-gateway"));
    cmd.args(["check", "--format", "text", &repo(file)])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("COLUMNS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("UTF-8"),
    )
}

const DVT: &str = "examples/us/us13-calf-swelling-query-dvt.json";
const NECK: &str = "examples/us/us05-neck-pain-only-coded.json";

#[test]
fn each_contact_is_said_once() {
    let (code, out) = report(DVT, &[]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(out.matches("ext 5378").count(), 1, "{out}");
    assert!(!out.contains("(ext 5378) (ext 5378)"), "{out}");
    // The guidance, the advice and the pathway are all still there.
    assert!(out.contains("Please do not refer to US"), "{out}");
    assert!(out.contains("Refer directly to the DVT clinic"), "{out}");
    let (code, out) = report(NECK, &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches("ext 8435").count(), 1, "{out}");
}

#[test]
fn wrapped_to_the_width_with_details_indented() {
    for width in [50usize, 72, 120] {
        let w = width.to_string();
        let (_, out) = report(DVT, &[("COLUMNS", &w)]);
        for line in out.lines() {
            // Only a single word longer than the line (a file name) may be wider.
            assert!(
                line.chars().count() <= width || !line.trim().contains(' '),
                "line over {width}: {line:?}\n{out}"
            );
        }
        // The finding's first line starts at column 2, its details further in.
        let finding = out
            .lines()
            .position(|l| l.starts_with("  warning") && l.contains("US13"))
            .unwrap_or_else(|| panic!("no US13 finding:\n{out}"));
        let details: Vec<&str> = out.lines().skip(finding + 1).take(4).collect();
        assert!(
            details.iter().all(|l| l.starts_with("      ")),
            "{details:?}"
        );
    }
    // Narrow: long lines wrap; a wider terminal uses fewer lines.
    let (_, narrow) = report(NECK, &[("COLUMNS", "50")]);
    let (_, wide) = report(NECK, &[("COLUMNS", "120")]);
    assert!(narrow.lines().count() > wide.lines().count());
}

#[test]
fn multi_line_guidance_stays_in_its_column() {
    let (_, out) = report(DVT, &[("COLUMNS", "100")]);
    let lines: Vec<&str> = out.lines().collect();
    let quote = lines
        .iter()
        .position(|l| l.contains("guidance") && l.contains("Please do not refer to US"))
        .unwrap_or_else(|| panic!("{out}"));
    let column = lines[quote].find("“Please").expect("quote opens");
    let next = lines[quote + 1];
    assert!(
        next.trim_start().starts_with("Refer to the DVT clinic"),
        "{out}"
    );
    assert_eq!(next.len() - next.trim_start().len(), column, "{out}");
}

#[test]
fn colour_only_on_a_terminal_or_when_forced() {
    let (_, piped) = report(DVT, &[]);
    assert!(!piped.contains('\u{1b}'), "piped output has no escapes");
    let (_, forced) = report(DVT, &[("CLICOLOR_FORCE", "1")]);
    assert!(forced.contains("\u{1b}["), "forced colour: {forced}");
    let (_, none) = report(DVT, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!none.contains('\u{1b}'), "NO_COLOR wins");
    // Colour changes nothing but the escapes.
    let stripped = forced
        .split('\u{1b}')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('m').map_or(part, |(_, rest)| rest)
            }
        })
        .collect::<String>();
    assert_eq!(stripped, piped);
}

/// `check FILES | head -1`: the reader goes away; the command ends quietly (no panic, no
/// error message) with the decisions' exit status.
#[test]
fn a_closed_pipe_ends_quietly() {
    let mut files: Vec<String> = Vec::new();
    for dir in ["us", "xr", "general", "ct"] {
        for e in std::fs::read_dir(repo(&format!("examples/{dir}"))).expect("examples") {
            files.push(e.expect("entry").path().display().to_string());
        }
    }
    // More than a pipe buffer holds, so the writer meets the closed pipe.
    let files: Vec<String> = (0..5).flat_map(|_| files.iter().cloned()).collect();
    for format in ["text", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
            .args(["check", "--format", format])
            .args(&files)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        // Read one byte, then hang up.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut one = [0u8; 1];
        stdout.read_exact(&mut one).expect("some output");
        drop(stdout);
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        let status = child.wait().expect("ends");
        assert!(!err.contains("panicked"), "{format}: {err}");
        assert!(err.is_empty(), "{format}: {err}");
        assert!(matches!(status.code(), Some(0..=3)), "{format}: {status:?}");
    }
}
