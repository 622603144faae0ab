//! The single-pass structure check (`parse::shape`) against fhirbolt's reading (issue 19): where
//! the single pass says a resource is clean, fhirbolt's full check must find nothing, on every
//! JSON resource of the repository and on thousands of one-change mutations of them (wrong JSON
//! types, single values for arrays, nulls, empty values, unknown and removed elements). The
//! single pass may send a clean resource to fhirbolt (it is conservative); it must never call
//! a resource clean that fhirbolt faults.

mod common;

use common::repo;
use referral_gateway::fhirpath::FhirPath;
use referral_gateway::parse::shape::Shapes;
use referral_gateway::parse::structure::model_findings;
use serde_json::{json, Value};
use std::path::Path;

fn json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// Every resource in `v`: itself when it has a type, and every nested one.
fn resources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if m.get("resourceType").is_some_and(Value::is_string) {
                out.push(v);
            }
            m.values().for_each(|c| resources(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| resources(c, out)),
        _ => {}
    }
}

/// Paths (JSON pointers) of every value under `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

fn agree(v: &Value, what: &str) -> bool {
    let rt = v["resourceType"].as_str().unwrap_or("Resource");
    if !Shapes::r4().accepts(v) {
        return false;
    }
    let found = model_findings(v, &FhirPath::root(rt));
    assert!(
        found.is_empty(),
        "{what}: the single pass calls it clean, fhirbolt finds {found:#?}\n{v}"
    );
    true
}

fn replacements(old: &Value) -> Vec<Value> {
    let mut r = vec![
        json!("x"),
        json!(""),
        json!(1),
        json!(-1),
        json!(1.5),
        json!(3_000_000_000i64),
        json!(true),
        Value::Null,
        json!([]),
        json!({}),
        json!({"x": 1}),
        json!([old.clone()]),
        json!([1]),
        json!(["x"]),
        json!([{}]),
    ];
    if let Value::Array(a) = old {
        if let Some(first) = a.first() {
            r.push(first.clone());
        }
    }
    if let Value::Number(n) = old {
        r.push(Value::String(n.to_string()));
    }
    if let Value::Bool(b) = old {
        r.push(Value::String(b.to_string()));
    }
    r
}

#[test]
fn the_single_pass_never_calls_clean_what_fhirbolt_faults() {
    let root = repo();
    let mut files = Vec::new();
    json_files(&root.join("examples"), &mut files);
    json_files(&root.join("tests/data"), &mut files);
    files.sort();
    let (mut resources_seen, mut clean, mut mutations, mut clean_mutations) = (0, 0, 0, 0);
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut found = Vec::new();
        resources(&value, &mut found);
        for (n, r) in found.into_iter().enumerate() {
            resources_seen += 1;
            let what = format!("{} resource {n}", file.display());
            if agree(r, &what) {
                clean += 1;
            }
            // Mutations of the first resources of each file (each costs a fhirbolt check when
            // the single pass calls it clean).
            if n >= 3 {
                continue;
            }
            let mut at = Vec::new();
            pointers(r, String::new(), &mut at);
            for p in at.iter().take(60) {
                let Some(old) = r.pointer(p) else { continue };
                let mut variants: Vec<Value> = replacements(old)
                    .into_iter()
                    .map(|new| {
                        let mut m = r.clone();
                        if let Some(slot) = m.pointer_mut(p) {
                            *slot = new;
                        }
                        m
                    })
                    .collect();
                // Removed, and a sibling that R4 does not define.
                let (parent, key) = p.rsplit_once('/').unwrap_or(("", p));
                let mut removed = r.clone();
                if let Some(Value::Object(m)) = removed.pointer_mut(parent) {
                    m.shift_remove(key);
                    variants.push(removed);
                }
                let mut extra = r.clone();
                if let Some(Value::Object(m)) = extra.pointer_mut(parent) {
                    m.insert("notAnElement".into(), json!(1));
                    m.insert(format!("_{key}"), json!({"id": "a"}));
                    variants.push(extra);
                }
                for v in variants {
                    mutations += 1;
                    if agree(&v, &format!("{what} with {p} changed")) {
                        clean_mutations += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "{resources_seen} resources ({clean} clean), {mutations} mutations ({clean_mutations} clean)"
    );
    assert!(
        resources_seen > 100 && clean > 50,
        "{resources_seen} {clean}"
    );
    assert!(clean_mutations > 100, "{clean_mutations}");
}
