//! The harness of each condition's holds/fails table: a `[when]` written as a rule file writes
//! it, compiled against the shipped terminology and site data, checked on a request that went
//! through the engine's own stages (parse, context, terminology).

use super::{Check, Cx, Facts, When, WhenDef};
use crate::context::{self, Resolver};
use crate::load::LoadError;
use crate::parse::{self, Format, Limits};
use crate::site::Site;
use crate::terminology::Terminology;
use serde_json::{json, Value};
use std::sync::OnceLock;

struct Shipped {
    terms: Terminology,
    site: Site,
}

/// The terminology and site data of the rules built into the binary.
fn shipped() -> &'static Shipped {
    static SHIPPED: OnceLock<Shipped> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let files = crate::load::embedded_rule_files();
        let site = files
            .iter()
            .find(|(n, _)| n == "site.toml")
            .map(|(_, t)| toml::from_str(t).expect("site.toml"))
            .expect("site.toml");
        let terms = Terminology::from_files(
            files
                .iter()
                .filter(|(n, _)| n.starts_with("terminology/"))
                .map(|(n, t)| (n.as_str(), t.as_str())),
        )
        .expect("terminology");
        Shipped { terms, site }
    })
}

#[derive(serde::Deserialize)]
struct Doc {
    when: WhenDef,
}

/// Compiles `[when]` followed by `body` (so the body's first line is line 2).
pub fn compile(body: &str) -> Result<When, Vec<LoadError>> {
    let text = format!("[when]\n{body}");
    let doc: Doc = toml::from_str(&text).map_err(|e| vec![LoadError::toml("t", &text, &e)])?;
    let s = shipped();
    let mut cx = Cx::new(&s.terms, &s.site, "t", &text);
    let when = When::compile(&doc.when, &mut cx);
    if cx.errors.is_empty() {
        Ok(when)
    } else {
        Err(cx.errors)
    }
}

pub fn compile_errors(body: &str) -> Vec<LoadError> {
    compile(body).err().unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Holds,
    Fails,
    /// Not checked for want of context.
    Unknown,
}

/// The conditions of `[when] body` on `request` (a ServiceRequest, or a Bundle whose first
/// ServiceRequest is checked), folded as a rule folds them, with what they said.
pub fn outcome(body: &str, request: &Value) -> (Want, Vec<String>) {
    let when = compile(body).unwrap_or_else(|e| panic!("{body}: {e:?}"));
    let bytes = serde_json::to_vec(request).expect("JSON");
    let input = parse::parse(&bytes, Format::Json, &Limits::default())
        .unwrap_or_else(|e| panic!("unusable request: {e:?}"));
    let resolver = Resolver::new(&input);
    let entry = input
        .entries
        .iter()
        .find(|e| e.is_service_request())
        .expect("a ServiceRequest");
    let sr = input.resource(entry).expect("resource");
    let ctx = context::resolve(&resolver, sr, &entry.path);
    let s = shipped();
    let mapped = s.terms.map(sr, &entry.path, &ctx);
    let facts = Facts {
        sr,
        at: &entry.path,
        ctx: &ctx,
        mapped: &mapped,
        terms: &s.terms,
        site: &s.site,
    };
    let mut want = Want::Holds;
    let mut said = Vec::new();
    for c in &when.conditions {
        match c.condition.check(&facts) {
            Check::Holds(why, _) => said.extend(why),
            Check::Fails => want = Want::Fails,
            Check::Unknown(m) => {
                said.push(format!("missing {}: {}", m.what, m.looked));
                if want == Want::Holds {
                    want = Want::Unknown;
                }
            }
        }
    }
    (want, said)
}

/// Asserts every row `(body, request, want)` of a condition's table.
#[track_caller]
pub fn run(rows: &[(&str, Value, Want)]) {
    for (i, (body, request, want)) in rows.iter().enumerate() {
        let (got, said) = outcome(body, request);
        assert_eq!(
            got, *want,
            "row {i}: `{body}` on {request}: expected {want:?}, got {got:?} ({said:?})"
        );
    }
}

/// A ServiceRequest from a GP surgery for `procedure` (the text of `code`), with `reason` as
/// the text of its one reasonCode (none when empty), for a patient born 1980-06-01, written
/// 2026-06-15.
pub fn request(procedure: &str, reason: &str) -> Value {
    let mut sr = json!({
        "resourceType": "ServiceRequest",
        "id": "sr",
        "contained": [{"resourceType": "Patient", "id": "pat", "birthDate": "1980-06-01"}],
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "code": {"text": procedure},
        "subject": {"reference": "#pat"},
        "authoredOn": "2026-06-15",
        "requester": {"display": "Dr Sam Example, Example Surgery"},
    });
    if !reason.is_empty() {
        sr["reasonCode"] = json!([{ "text": reason }]);
    }
    sr
}

/// `v` with the top-level fields of `patch` set (a `null` removes the field).
pub fn with(mut v: Value, patch: Value) -> Value {
    for (k, x) in patch.as_object().expect("an object").clone() {
        let obj = v.as_object_mut().expect("an object");
        if x.is_null() {
            obj.remove(&k);
        } else {
            obj.insert(k, x);
        }
    }
    v
}

/// `sr` with its patient born on `date`.
pub fn born(mut sr: Value, date: &str) -> Value {
    sr["contained"][0]["birthDate"] = json!(date);
    sr
}
