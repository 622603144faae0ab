//! The engine's decisions, turned into consults (contract §6 "What a consult records"), and
//! the consult ids written onto the answer.

use super::Consult;
use crate::context::{self, Resolver};
use crate::engine::{Checked, EntryResult, RequestResult};
use crate::outcome::response::{request_outcome, status_of};
use crate::parse::{BundleType, InputKind};
use crate::site::Site;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The NHS number's identifier system: preferred when a patient has several identifiers.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// Where a request came from and how it is to be recorded.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The authenticated client, else the peer address.
    pub client: &'a str,
    pub received_at: i64,
    pub rule_set: &'a str,
    /// Keep the request itself (false: `--audit-body hash`, only its SHA-256).
    pub keep_body: bool,
    /// The body as sent: hashed whole when it is one ServiceRequest.
    pub body: &'a [u8],
    /// The caller's `If-None-Exist` (a retry with the same one is the same consult).
    pub if_none_exist: Option<&'a str>,
    /// `hook/hookInstance` for CDS Hooks calls.
    pub hook_instance: Option<&'a str>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The SHA-256 (hex) of some bytes: request hashes and the rule-set version.
pub fn hash_hex(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

/// A new consult id: a UUID v7 (time-ordered), written bare.
pub fn new_consult_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn identifier_text(id: &Value) -> Option<String> {
    let value = id.get("value")?.as_str()?;
    Some(match id.get("system").and_then(Value::as_str) {
        Some(s) => format!("{s}|{value}"),
        None => value.to_string(),
    })
}

/// The patient's identifier: the NHS number when there is one, else the first.
fn subject_identifier(
    resolver: &Resolver<'_>,
    sr: &Value,
    r: &RequestResult,
) -> Option<(Option<String>, String)> {
    let ctx = context::resolve(resolver, sr, &r.path);
    let ids = ctx
        .patient
        .and_then(|(p, _)| p.get("identifier")?.as_array().cloned())
        .or_else(|| {
            sr.get("subject")?
                .get("identifier")
                .map(|i| vec![i.clone()])
        })?;
    let id = ids
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM))
        .or_else(|| ids.first())?;
    Some((
        id.get("system").and_then(Value::as_str).map(str::to_string),
        id.get("value")?.as_str()?.to_string(),
    ))
}

fn requester_org(resolver: &Resolver<'_>, sr: &Value, r: &RequestResult) -> Option<String> {
    context::resolve(resolver, sr, &r.path)
        .organisation_ods
        .ok()?
        .into_iter()
        .next()
}

/// The OperationOutcome of the consult: as answered, with the findings of the shadow rules
/// after it (marked as shadow: the caller never saw them).
fn recorded_outcome(r: &RequestResult, site: &Site) -> Value {
    let mut oo = request_outcome(r, site);
    if let Some(issues) = oo.get_mut("issue").and_then(Value::as_array_mut) {
        for f in r.shadow.iter().flat_map(|s| &s.findings) {
            let mut issue = crate::outcome::operation_outcome::issue(f, site);
            let d = issue
                .get("diagnostics")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            issue["diagnostics"] = json!(format!("shadow rule, not shown to the caller: {d}"));
            issues.push(issue);
        }
    }
    oo
}

/// One consult per decided ServiceRequest of `checked`, in order, under `ids` (the engine's
/// fresh consult ids, one per decided ServiceRequest).
pub fn consults(
    checked: &Checked,
    site: &Site,
    origin: &Origin<'_>,
    ids: &[String],
) -> Vec<Consult> {
    let decided_at = super::now_us();
    let resolver = Resolver::new(&checked.input);
    let channel = match (origin.hook_instance, checked.input.kind) {
        (Some(_), _) => "cds-hooks",
        (None, InputKind::ServiceRequest) => "rest",
        (None, InputKind::Bundle(BundleType::Batch)) => "batch",
        (None, InputKind::Bundle(BundleType::Transaction)) => "transaction",
        (None, InputKind::Bundle(BundleType::Collection)) => "collection",
    };
    let single = matches!(checked.input.kind, InputKind::ServiceRequest);
    let mut out = Vec::new();
    let mut ids = ids.iter();
    for (i, e) in checked.entries.iter().enumerate() {
        let EntryResult::Request(r) = e else { continue };
        let Some(id) = ids.next() else { break };
        let entry = checked.input.entries.get(i);
        let sr = entry.and_then(|en| checked.input.resource(en));
        let body_text = sr.map(Value::to_string);
        let request_hash = if single {
            sha256_hex(origin.body)
        } else {
            sha256_hex(body_text.as_deref().unwrap_or("").as_bytes())
        };
        let request_body = if !origin.keep_body {
            None
        } else if single {
            // The ServiceRequest as received; as JSON when it came as XML.
            match std::str::from_utf8(origin.body) {
                Ok(t) if t.trim_start().starts_with('{') => Some(t.to_string()),
                _ => body_text.clone(),
            }
        } else {
            body_text.clone()
        };
        let placer = sr
            .and_then(|s| s.get("identifier")?.as_array()?.first().cloned())
            .and_then(|id| identifier_text(&id));
        let sr_reference = entry.and_then(|en| en.full_url.clone()).or_else(|| {
            sr.and_then(|s| s.get("id")?.as_str())
                .map(|id| format!("ServiceRequest/{id}"))
        });
        let (subject_system, subject_value) =
            match sr.and_then(|s| subject_identifier(&resolver, s, r)) {
                Some((s, v)) => (s, Some(v)),
                None => (None, None),
            };
        let requester = sr.and_then(|s| requester_org(&resolver, s, r));
        // A retry is the same request again (same hash) from the same client under the same
        // placer identifier or If-None-Exist. A corrected request sent again under the same
        // order number is a new consult: its hash differs.
        let retry_key = match (origin.if_none_exist, &placer) {
            (Some(ine), _) => Some(format!(
                "{}\u{1f}ine:{ine}\u{1f}{request_hash}",
                origin.client
            )),
            (None, Some(p)) if origin.hook_instance.is_none() => Some(format!(
                "{}\u{1f}placer:{p}\u{1f}{request_hash}",
                origin.client
            )),
            _ => None,
        };
        let redirected_id = r
            .redirected
            .as_ref()
            .and_then(|s| s.get("id")?.as_str().map(str::to_string));
        out.push(Consult {
            id: id.clone(),
            received_at: origin.received_at,
            decided_at,
            rule_set: origin.rule_set.to_string(),
            client: origin.client.to_string(),
            channel: channel.to_string(),
            entry_index: entry.and_then(|en| en.index).map(|n| n as i64),
            hook_instance: origin.hook_instance.map(str::to_string),
            request_hash,
            request_body,
            decision: r.decision.code().to_string(),
            http_status: i64::from(status_of(r)),
            summary: r.summary.clone(),
            fired: r.fired.clone(),
            shadow_fired: r
                .shadow
                .as_ref()
                .map(|s| s.fired.clone())
                .unwrap_or_default(),
            outcome: recorded_outcome(r, site).to_string(),
            redirected: r.redirected.as_ref().map(Value::to_string),
            redirected_id,
            sr_reference,
            placer_identifier: placer,
            subject_system,
            subject_value,
            requester_org: requester,
            retry_key,
            latency_us: (decided_at - origin.received_at).max(0),
            forwarding: None,
        });
    }
    out
}

/// The configured canonical base, without a trailing slash.
pub fn canonical(site: &Site) -> &str {
    site.canonical.trim_end_matches('/')
}

/// The rule-set version extension's URL (`/metadata`, `/health`).
pub fn rule_set_version_url(site: &Site) -> String {
    format!("{}/StructureDefinition/rule-set-version", canonical(site))
}

/// The consult-id extension's URL.
pub fn extension_url(site: &Site) -> String {
    format!("{}/StructureDefinition/consult-id", canonical(site))
}

/// The consult-id identifier (system `{canonical}/consult`).
pub fn consult_identifier(site: &Site, id: &str) -> Value {
    json!({ "system": format!("{}/consult", canonical(site)), "value": id })
}

/// The consult-id extension.
pub fn consult_extension(site: &Site, id: &str) -> Value {
    json!({ "url": extension_url(site), "valueIdentifier": consult_identifier(site, id) })
}

/// Adds `ext` to a resource's `extension`, keeping FHIR's element order (after `id`, `meta`,
/// `text`, `contained`).
pub fn add_extension(resource: &mut Value, ext: Value) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    if let Some(list) = obj.get_mut("extension").and_then(Value::as_array_mut) {
        list.push(ext);
        return;
    }
    let mut ordered = serde_json::Map::new();
    let before = [
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
    ];
    for k in before {
        if let Some(v) = obj.remove(k) {
            ordered.insert(k.into(), v);
        }
    }
    ordered.insert("extension".into(), json!([ext]));
    for (k, v) in std::mem::take(obj) {
        ordered.insert(k, v);
    }
    *obj = ordered;
}

/// Adds the consult id to a redirected ServiceRequest as an identifier.
fn add_identifier(sr: &mut Value, site: &Site, id: &str) {
    let Some(obj) = sr.as_object_mut() else {
        return;
    };
    let ident = consult_identifier(site, id);
    if let Some(list) = obj.get_mut("identifier").and_then(Value::as_array_mut) {
        list.push(ident);
        return;
    }
    // `identifier` comes right after `contained` / `extension` in a ServiceRequest.
    let mut ordered = serde_json::Map::new();
    for k in [
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
    ] {
        if let Some(v) = obj.remove(k) {
            ordered.insert(k.into(), v);
        }
    }
    ordered.insert("identifier".into(), json!([ident]));
    for (k, v) in std::mem::take(obj) {
        ordered.insert(k, v);
    }
    *obj = ordered;
}

/// Writes the consult ids (one per decided ServiceRequest, in order) onto the answer: the
/// OperationOutcome root, each Bundle entry's `response.outcome`, and each redirected
/// ServiceRequest as an identifier. A rejected transaction's single OperationOutcome carries
/// every entry's id.
pub fn stamp(body: &mut Value, site: &Site, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    match body.get("resourceType").and_then(Value::as_str) {
        Some("OperationOutcome") => {
            for id in ids {
                add_extension(body, consult_extension(site, id));
            }
        }
        Some("ServiceRequest") => add_identifier(body, site, &ids[0]),
        Some("Bundle") => {
            let Some(entries) = body.get_mut("entry").and_then(Value::as_array_mut) else {
                return;
            };
            let mut next = ids.iter();
            for e in entries.iter_mut() {
                // Request entries have a decision in their outcome; context entries do not.
                let decided = e
                    .pointer("/response/outcome/issue/0/details/coding/0/system")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.ends_with("/CodeSystem/referral-decision"));
                if !decided {
                    continue;
                }
                let Some(id) = next.next() else { break };
                if let Some(oo) = e.pointer_mut("/response/outcome") {
                    add_extension(oo, consult_extension(site, id));
                }
                if let Some(sr) = e.get_mut("resource") {
                    add_identifier(sr, site, id);
                }
            }
        }
        _ => {}
    }
}
