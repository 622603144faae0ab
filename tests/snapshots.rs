//! Reviewed snapshots of the full answer to every example (issue 12): for each file under
//! `examples/` (every rule's own pass and fail examples, the profile examples), the answer a
//! `POST` gets (status and body: OperationOutcome, redirected ServiceRequest or response
//! Bundle), the answer `$validate` gets, and the CDS Hooks cards the `order-sign` service
//! gives for it (the example sent as an EHR would send it, `common::cds`, to a running
//! gateway), kept in `tests/snapshots/`.
//!
//! A change of answer fails here until its snapshot is reviewed. To accept changes: run with
//! `UPDATE_SNAPSHOTS=1`, read `git diff tests/snapshots/`, and say in the commit why the
//! answers changed. When a snapshot does not match, the new answer is written beside it as
//! `*.json.new` for review. Generated ids (UUIDs) are written as `<uuid>`.

mod common;

use common::cds::cds_request;
use common::server::Server;
use common::{repo, rules};
use referral_gateway::engine;
use referral_gateway::outcome::response::{answer, unusable_answer, validate_answer, Answer};
use referral_gateway::parse::{Format, Limits};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
/// The `order-sign` answer (status and body) to the example as an EHR would send it.
fn cds_answer(server: &Server, bytes: &[u8]) -> Value {
    let Ok(fhir) = serde_json::from_slice::<Value>(bytes) else {
        return Value::Null;
    };
    let request = cds_request("order-sign", &fhir, &[]);
    let res = server.post(
        "/cds-services/imaging-referral-order-sign",
        Some("application/json"),
        request.to_string(),
    );
    let status = res.status().as_u16();
    let text = res.text().expect("body");
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    json!({ "status": status, "body": body })
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("examples/ is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if Format::from_path(&path.to_string_lossy()).is_some() {
            out.push(path);
        }
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Generated ids vary from run to run: `<uuid>` in their place (also inside `urn:uuid:`).
fn redact(v: &mut Value) {
    match v {
        Value::String(s) => {
            let (prefix, rest) = s.split_at(if s.starts_with("urn:uuid:") { 9 } else { 0 });
            if is_uuid(rest) {
                *s = format!("{prefix}<uuid>");
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        Value::Object(o) => o.values_mut().for_each(redact),
        _ => {}
    }
}

fn shown(a: Answer) -> Value {
    json!({ "status": a.status, "body": a.body })
}

/// The snapshot of one example: both answers, generated ids redacted.
fn snapshot(server: &Server, file: &Path) -> String {
    let bytes = std::fs::read(file).expect("readable");
    let format = Format::from_path(&file.to_string_lossy()).unwrap_or(Format::Json);
    let site = &rules().site;
    let (post, validate) = match engine::check(rules(), &bytes, format, &Limits::default()) {
        Ok(c) => (answer(&c, site), validate_answer(&c, site)),
        Err(u) => (unusable_answer(&u, site), unusable_answer(&u, site)),
    };
    let rel = file
        .strip_prefix(repo())
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/");
    let mut v = json!({
        "example": rel,
        "post": shown(post),
        "$validate": shown(validate),
        "cds-hooks order-sign": cds_answer(server, &bytes),
    });
    redact(&mut v);
    serde_json::to_string_pretty(&v).expect("JSON") + "\n"
}

#[test]
fn every_example_answers_as_its_reviewed_snapshot() {
    let mut examples = Vec::new();
    files(&repo().join("examples"), &mut examples);
    examples.sort();
    assert!(examples.len() > 50, "the examples are found");
    let dir = repo().join("tests").join("snapshots");
    std::fs::create_dir_all(&dir).expect("tests/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut problems = Vec::new();
    // One gateway for the CDS Hooks answers, owned by this test: it stops when the test ends.
    let server = Server::start(&[]);
    for file in &examples {
        let rel = file
            .strip_prefix(repo().join("examples"))
            .expect("under examples/");
        let name = rel.to_string_lossy().replace(['/', '\\'], "__") + ".snap.json";
        let path = dir.join(&name);
        let got = snapshot(&server, file);
        let want = std::fs::read_to_string(&path).ok();
        let new = dir.join(format!("{name}.new"));
        if want.as_deref() == Some(got.as_str()) {
            let _ = std::fs::remove_file(&new);
            continue;
        }
        if update {
            std::fs::write(&path, &got).expect("snapshot written");
            let _ = std::fs::remove_file(&new);
        } else {
            std::fs::write(&new, &got).expect("new snapshot written");
            problems.push(match want {
                Some(_) => format!("{name}: the answer changed (see {name}.new)"),
                None => format!("{name}: no snapshot yet (see {name}.new)"),
            });
        }
    }
    // A snapshot whose example is gone is stale.
    for entry in std::fs::read_dir(&dir).expect("tests/snapshots") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        let Some(stem) = name.strip_suffix(".snap.json") else {
            continue;
        };
        if !repo()
            .join("examples")
            .join(stem.replace("__", "/"))
            .is_file()
        {
            problems.push(format!("{name}: its example is gone; delete the snapshot"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} snapshot(s) differ; review them, then UPDATE_SNAPSHOTS=1 cargo test --test snapshots:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn redaction_keeps_everything_but_generated_ids() {
    let mut v = json!({"id": "0d4c3f0e-8b7a-4f7e-9a55-1c2b3d4e5f60", "fullUrl": "urn:uuid:0d4c3f0e-8b7a-4f7e-9a55-1c2b3d4e5f60", "code": "US05", "n": 3});
    redact(&mut v);
    assert_eq!(
        v,
        json!({"id": "<uuid>", "fullUrl": "urn:uuid:<uuid>", "code": "US05", "n": 3})
    );
}
