//! Forwarding decided orders (contract §7): an accepted ServiceRequest (or a redirected one
//! whose pathway says `forward = "upstream"`) is created upstream as a conditional create; a
//! batch forwards what may go ahead as one upstream batch and merges the answers with the
//! gateway's own in the caller's order; a transaction is all or nothing.

use super::client::{Answered, Call, Upstream};
use super::fault::Fault;
use super::rewrite::{location, rewrite_links};
use crate::engine::{Checked, EntryResult, RequestResult};
use crate::finding::Decision;
use crate::http::negotiate::Reply;
use crate::outcome::response::{request_outcome, Answer};
use crate::parse::{BundleType, InputKind};
use crate::site::{Forward, Site};
use axum::body::Bytes;
use axum::http::header::{ETAG, LAST_MODIFIED, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// What the caller asked for with its request.
#[derive(Debug, Clone)]
pub struct Asked {
    pub prefer: Prefer,
    /// The caller's own `If-None-Exist`.
    pub if_none_exist: Option<String>,
    /// The gateway's public base for this request.
    pub gateway_base: String,
}

/// `Prefer: return=...` (FHIR RESTful API); representation when not said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    Minimal,
    Representation,
    OperationOutcome,
}

impl Prefer {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let asked = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .filter_map(|p| p.trim().strip_prefix("return="))
            .map(|v| v.trim_matches('"').to_ascii_lowercase())
            .next();
        match asked.as_deref() {
            Some("minimal") => Prefer::Minimal,
            Some("operationoutcome") => Prefer::OperationOutcome,
            _ => Prefer::Representation,
        }
    }
}

impl Asked {
    pub fn from_headers(up: &Upstream, headers: &HeaderMap) -> Self {
        Asked {
            prefer: Prefer::from_headers(headers),
            if_none_exist: headers
                .get("if-none-exist")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            gateway_base: up.gateway_base(headers),
        }
    }
}

/// The forwarding result of one ServiceRequest, for its consult record (contract §6, §7):
/// put on the response as an extension, one per forwarded (or not forwarded) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The entry of the caller's Bundle (`None` for a single ServiceRequest).
    pub entry: Option<usize>,
    pub consult_id: String,
    /// Whether the upstream created (or already had) the order.
    pub forwarded: bool,
    /// The upstream's status, when it answered.
    pub status: Option<u16>,
    /// Where the upstream keeps it (the upstream's own URL).
    pub location: Option<String>,
    /// Why not, when not.
    pub fault: Option<String>,
}

/// The forwarding results of a response.
#[derive(Debug, Clone, Default)]
pub struct ForwardRecord(pub Vec<Forwarded>);

/// The consult identifier's system.
pub fn consult_system(site: &Site) -> String {
    format!("{}/consult", site.canonical.trim_end_matches('/'))
}

/// The consult id of the `n`th decided ServiceRequest as the store kept it; without a store
/// (`--store none`) a fresh one, so that the conditional create still has an identifier.
fn consult_id_of(consult_ids: &[String], n: usize) -> String {
    consult_ids
        .get(n)
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Adds `{canonical}/consult|{consult-id}` to the resource's identifiers (once).
fn with_consult_identifier(mut resource: Value, site: &Site, consult_id: &str) -> Value {
    let system = consult_system(site);
    let ident = json!({ "system": system, "value": consult_id });
    match resource.get_mut("identifier").and_then(Value::as_array_mut) {
        Some(ids) => {
            if !ids.contains(&ident) {
                ids.push(ident);
            }
        }
        None => resource["identifier"] = json!([ident]),
    }
    resource
}

/// Percent-encodes a search parameter value (RFC 3986 unreserved characters stay).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn identifier_condition(system: &str, value: &str) -> String {
    format!("identifier={}|{}", encode(system), encode(value))
}

/// The placer identifier of a ServiceRequest: the identifier typed `PLAC` (v2-0203) when
/// there is one, else the first identifier with a system and a value.
fn placer_identifier(sr: &Value) -> Option<(String, String)> {
    let ids = sr.get("identifier")?.as_array()?;
    let complete = |i: &&Value| {
        i.get("system").and_then(Value::as_str).is_some()
            && i.get("value").and_then(Value::as_str).is_some()
    };
    let typed_plac = |i: &&Value| {
        i.pointer("/type/coding")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.get("code").and_then(Value::as_str) == Some("PLAC"))
            })
    };
    let chosen = ids
        .iter()
        .filter(complete)
        .find(typed_plac)
        .or_else(|| ids.iter().find(complete))?;
    Some((
        chosen["system"].as_str()?.to_string(),
        chosen["value"].as_str()?.to_string(),
    ))
}

/// The `If-None-Exist` of a forwarded order (contract §7): the caller's own, else the
/// request's placer identifier, else the consult identifier.
fn condition(caller: Option<&str>, original: &Value, site: &Site, consult_id: &str) -> String {
    if let Some(c) = caller {
        return c.to_string();
    }
    match placer_identifier(original) {
        Some((system, value)) => identifier_condition(&system, &value),
        None => identifier_condition(&consult_system(site), consult_id),
    }
}

/// What one ServiceRequest sends upstream, if anything: the resource to create, whether it
/// is the redirected request, and the decision OperationOutcome.
fn to_forward(r: &RequestResult, original: &Value, site: &Site) -> Option<(Value, bool)> {
    if r.invalid {
        return None;
    }
    match r.decision {
        Decision::Accepted => Some((for_create(original), false)),
        Decision::Redirected => {
            let sr = r.redirected.as_ref()?;
            let pathway = sr
                .pointer("/performerType/coding/0/code")
                .and_then(Value::as_str)?;
            (site.pathway(pathway)?.forward == Forward::Upstream).then(|| (sr.clone(), true))
        }
        Decision::Rejected => None,
    }
}

/// The request as a create sends it: the server assigns the id and the version, so the
/// sender's own are left out (FHIR RESTful API, create).
fn for_create(sr: &Value) -> Value {
    let mut sr = sr.clone();
    if let Some(o) = sr.as_object_mut() {
        o.remove("id");
    }
    if let Some(meta) = sr.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            sr.as_object_mut().map(|o| o.remove("meta"));
        }
    }
    sr
}

fn json_body(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Copies the upstream's `Location` (rewritten), `ETag` and `Last-Modified` onto `res`.
fn copy_headers(res: &mut Response, a: &Answered, up: &Upstream, gateway_base: &str) {
    if let Some(loc) = a.header("location") {
        if let Ok(v) = HeaderValue::from_str(&location(loc, up.base(), gateway_base)) {
            res.headers_mut().insert(LOCATION, v);
        }
    }
    for name in [ETAG, LAST_MODIFIED] {
        if let Some(v) = a.headers.get(&name) {
            res.headers_mut().insert(name, v.clone());
        }
    }
}

fn consult_header(res: &mut Response, consult_id: &str) {
    if let Ok(v) = HeaderValue::from_str(consult_id) {
        res.headers_mut().insert("x-consult-id", v);
    }
}

/// An upstream answer to the caller: its status and headers, the body as `Prefer` asks.
fn relay(a: &Answered, up: &Upstream, asked: &Asked, decision: Value) -> Result<Response, Fault> {
    let mut body = a.json()?;
    if let Some(b) = body.as_mut() {
        rewrite_links(b, up.base(), &asked.gateway_base);
    }
    let ok = a.status.is_success();
    let mut res = match (ok, asked.prefer, body) {
        (true, Prefer::Minimal, _) => a.status.into_response(),
        (true, Prefer::OperationOutcome, _) | (true, _, None) => Reply {
            status: a.status,
            body: decision,
        }
        .into_response(),
        (_, _, Some(body)) => Reply {
            status: a.status,
            body,
        }
        .into_response(),
        (false, _, None) => Reply {
            status: a.status,
            body: json!({
                "resourceType": "OperationOutcome",
                "issue": [{ "severity": "error", "code": "processing", "details": { "text": format!("The upstream FHIR server answered {} with no body.", a.status) } }]
            }),
        }
        .into_response(),
    };
    copy_headers(&mut res, a, up, &asked.gateway_base);
    Ok(res)
}

/// `POST /ServiceRequest` with an upstream: the forwarded answer, or `None` when the gateway's
/// own answer stands (rejected, invalid, redirected to a pathway that is not forwarded).
pub async fn single(
    up: &Upstream,
    checked: &Checked,
    answer: &Answer,
    site: &Site,
    asked: &Asked,
    consult_ids: &[String],
) -> Option<Response> {
    let r = checked.requests().next()?;
    let original = &checked.input.root;
    let (resource, redirected) = to_forward(r, original, site)?;
    let consult_id = consult_id_of(consult_ids, 0);
    let decision = if redirected {
        request_outcome(r, site)
    } else {
        answer.body.clone()
    };
    // A redirected request is a new order: only its consult identifier names it.
    let cond = if redirected {
        identifier_condition(&consult_system(site), &consult_id)
    } else {
        condition(asked.if_none_exist.as_deref(), original, site, &consult_id)
    };
    let resource = with_consult_identifier(resource, site, &consult_id);
    let call = Call {
        method: Method::POST,
        path: "/ServiceRequest",
        headers: vec![
            ("content-type", "application/fhir+json".into()),
            ("if-none-exist", cond),
            ("prefer", "return=representation".into()),
        ],
        body: Some(json_body(&resource)),
        idempotent: true,
    };
    let result = up.send(call).await;
    let (mut res, record) = match result
        .and_then(|a| relay(&a, up, asked, decision).map(|res| (res, a)))
    {
        Ok((res, a)) => {
            let record = Forwarded {
                entry: None,
                consult_id: consult_id.clone(),
                forwarded: a.status.is_success(),
                status: Some(a.status.as_u16()),
                location: a.header("location").map(str::to_string),
                fault: (!a.status.is_success())
                    .then(|| format!("the upstream refused it with {}", a.status)),
            };
            (res, record)
        }
        Err(fault) => {
            let what = match fault {
                Fault::Open { .. } | Fault::Credentials(_) => {
                    "The order was not sent upstream; send it again later."
                }
                _ => "The order may or may not have reached the upstream: sending it again is safe, it is a conditional create and is never created twice.",
            };
            let record = Forwarded {
                entry: None,
                consult_id: consult_id.clone(),
                forwarded: false,
                status: None,
                location: None,
                fault: Some(fault.reason()),
            };
            (fault.answer(what), record)
        }
    };
    consult_header(&mut res, &consult_id);
    res.extensions_mut().insert(ForwardRecord(vec![record]));
    Some(res)
}

/// One entry of the upstream Bundle and where it came from.
struct Outgoing {
    index: usize,
    consult_id: Option<String>,
    entry: Value,
}

/// The entries of a Bundle that go upstream: ServiceRequests that may go ahead (as
/// conditional creates) and context entries whose type site data lists.
fn outgoing(checked: &Checked, site: &Site, consult_ids: &[String]) -> Vec<Outgoing> {
    let root = &checked.input.root;
    let mut out = Vec::new();
    // The position of each decided ServiceRequest among them: its consult id.
    let mut decided = 0;
    for (i, (e, entry)) in checked
        .entries
        .iter()
        .zip(checked.input.entries.iter())
        .enumerate()
    {
        let nth = decided;
        if matches!(e, EntryResult::Request(_)) {
            decided += 1;
        }
        let Some(index) = entry.index else { continue };
        let sent = &root["entry"][index];
        let Some(original) = checked.input.resource(entry) else {
            continue;
        };
        match e {
            EntryResult::Request(r) => {
                let Some((resource, redirected)) = to_forward(r, original, site) else {
                    continue;
                };
                let consult_id = consult_id_of(consult_ids, nth);
                let caller = sent
                    .pointer("/request/ifNoneExist")
                    .and_then(Value::as_str)
                    .filter(|_| !redirected);
                let cond = if redirected {
                    identifier_condition(&consult_system(site), &consult_id)
                } else {
                    condition(caller, original, site, &consult_id)
                };
                let mut upstream_entry = json!({
                    "resource": with_consult_identifier(resource, site, &consult_id),
                    "request": { "method": "POST", "url": "ServiceRequest", "ifNoneExist": cond },
                });
                // The caller's fullUrl keeps references between entries resolvable upstream.
                if let (Some(full), false) = (sent.get("fullUrl"), redirected) {
                    upstream_entry["fullUrl"] = full.clone();
                }
                out.push(Outgoing {
                    index: i,
                    consult_id: Some(consult_id),
                    entry: upstream_entry,
                });
            }
            EntryResult::NotPerformed { .. } => {}
            EntryResult::Context { .. } => {
                let ty = original.get("resourceType").and_then(Value::as_str);
                if ty.is_some_and(|t| site.upstream.forward_context_types.iter().any(|f| f == t)) {
                    let mut upstream_entry = sent.clone();
                    if upstream_entry.get("request").is_none() {
                        upstream_entry["request"] = json!({ "method": "POST", "url": ty });
                    }
                    out.push(Outgoing {
                        index: i,
                        consult_id: None,
                        entry: upstream_entry,
                    });
                }
            }
        }
    }
    out
}

/// The gateway's decision outcome with the upstream's issues after it.
fn merged_outcome(gateway: Option<&Value>, upstream: Option<&Value>) -> Option<Value> {
    let mut oo = gateway.or(upstream)?.clone();
    if let (Some(_), Some(up)) = (gateway, upstream) {
        let extra = up["issue"].as_array().cloned().unwrap_or_default();
        if let Some(issues) = oo.get_mut("issue").and_then(Value::as_array_mut) {
            issues.extend(extra);
        }
    }
    Some(oo)
}

/// `POST /` with a batch or transaction Bundle and an upstream.
pub async fn bundle(
    up: &Upstream,
    checked: &Checked,
    answer: &Answer,
    site: &Site,
    asked: &Asked,
    consult_ids: &[String],
) -> Option<Response> {
    let InputKind::Bundle(kind) = checked.input.kind else {
        return None;
    };
    let transaction = match kind {
        BundleType::Transaction => true,
        BundleType::Batch => false,
        _ => return None,
    };
    // A rejected transaction (422 / 400) goes nowhere.
    if answer.status != 200 {
        return None;
    }
    let outgoing = outgoing(checked, site, consult_ids);
    if outgoing.is_empty() {
        return None;
    }
    // Conditional creates only: the Bundle may be sent again without creating anything twice.
    let idempotent = outgoing.iter().all(|o| o.consult_id.is_some());
    let upstream_bundle = json!({
        "resourceType": "Bundle",
        "type": if transaction { "transaction" } else { "batch" },
        "entry": outgoing.iter().map(|o| o.entry.clone()).collect::<Vec<_>>(),
    });
    let call = Call {
        method: Method::POST,
        path: "",
        headers: vec![("content-type", "application/fhir+json".into())],
        body: Some(json_body(&upstream_bundle)),
        idempotent,
    };
    let records = |forwarded: bool, status: Option<u16>, fault: Option<String>| {
        outgoing
            .iter()
            .filter_map(|o| {
                Some(Forwarded {
                    entry: Some(o.index),
                    consult_id: o.consult_id.clone()?,
                    forwarded,
                    status,
                    location: None,
                    fault: fault.clone(),
                })
            })
            .collect::<Vec<_>>()
    };
    let a = match up.send(call).await {
        Ok(a) => a,
        Err(fault) => {
            let what = match (&fault, transaction) {
                (Fault::Open { .. } | Fault::Credentials(_), _) => "Nothing was sent upstream; send the Bundle again later.".to_string(),
                (Fault::ServerError(_), true) => "The upstream failed the transaction, so nothing of it was committed; send it again later.".to_string(),
                (_, true) => "Whether the upstream committed the transaction is not known: sending it again is safe, its ServiceRequests are conditional creates and are never created twice.".to_string(),
                _ => "Entries may or may not have reached the upstream: sending the batch again is safe, its ServiceRequests are conditional creates and are never created twice.".to_string(),
            };
            let mut res = fault.answer(&what);
            res.extensions_mut()
                .insert(ForwardRecord(records(false, None, Some(fault.reason()))));
            return Some(res);
        }
    };
    let body = match a.json() {
        Ok(b) => b,
        Err(fault) => {
            return Some(fault.answer("The upstream's answer to the Bundle could not be read."))
        }
    };
    if !a.status.is_success() {
        // The upstream refused the whole Bundle (a failed transaction): its answer, as it is.
        let mut res = relay(&a, up, asked, Value::Null).unwrap_or_else(|f| f.answer(""));
        res.extensions_mut().insert(ForwardRecord(records(
            false,
            Some(a.status.as_u16()),
            Some(format!("the upstream refused the Bundle with {}", a.status)),
        )));
        return Some(res);
    }
    let mut body = body.unwrap_or(Value::Null);
    rewrite_links(&mut body, up.base(), &asked.gateway_base);
    let upstream_entries = body["entry"].as_array().cloned().unwrap_or_default();
    let mut merged = answer.body.clone();
    let mut record = Vec::new();
    if let Some(entries) = merged.get_mut("entry").and_then(Value::as_array_mut) {
        for (o, up_entry) in outgoing.iter().zip(upstream_entries.iter()) {
            let Some(slot) = entries.get_mut(o.index) else {
                continue;
            };
            let gateway_outcome = slot.pointer("/response/outcome").cloned();
            let mut entry = up_entry.clone();
            let status = entry
                .pointer("/response/status")
                .and_then(Value::as_str)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse::<u16>().ok());
            if let Some(loc) = entry.pointer("/response/location").and_then(Value::as_str) {
                let absolute = location(loc, up.base(), &asked.gateway_base);
                entry["response"]["location"] = json!(absolute);
            }
            if let Some(oo) =
                merged_outcome(gateway_outcome.as_ref(), entry.pointer("/response/outcome"))
            {
                entry["response"]["outcome"] = oo;
            }
            if let Some(consult_id) = &o.consult_id {
                let ok = status.is_some_and(|s| (200..300).contains(&s));
                record.push(Forwarded {
                    entry: Some(o.index),
                    consult_id: consult_id.clone(),
                    forwarded: ok,
                    status,
                    location: up_entry
                        .pointer("/response/location")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    fault: (!ok)
                        .then(|| format!("the upstream answered the entry with {status:?}")),
                });
            }
            *slot = entry;
        }
    }
    let mut res = Reply {
        status: StatusCode::OK,
        body: merged,
    }
    .into_response();
    res.extensions_mut().insert(ForwardRecord(record));
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_is_read_as_fhir_defines_it() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert("prefer", HeaderValue::from_str(v).expect("header"));
            Prefer::from_headers(&m)
        };
        assert_eq!(h("return=minimal"), Prefer::Minimal);
        assert_eq!(
            h("handling=strict, return=OperationOutcome"),
            Prefer::OperationOutcome
        );
        assert_eq!(h("return=representation"), Prefer::Representation);
        assert_eq!(
            Prefer::from_headers(&HeaderMap::new()),
            Prefer::Representation
        );
    }

    #[test]
    fn the_placer_identifier_is_the_condition() {
        let site = &crate::rules::RuleSet::load(&crate::load::default_rules_dir())
            .expect("rules")
            .site;
        let sr = json!({"identifier": [
            {"system": "urn:other", "value": "x"},
            {"type": {"coding": [{"code": "PLAC"}]}, "system": "https://gp.example/orders", "value": "A 1|2"}
        ]});
        assert_eq!(
            condition(None, &sr, site, "c"),
            "identifier=https%3A%2F%2Fgp.example%2Forders|A%201%7C2"
        );
        assert_eq!(
            condition(Some("identifier=a|b"), &sr, site, "c"),
            "identifier=a|b"
        );
        let bare = json!({"identifier": [{"value": "no system"}]});
        assert_eq!(
            condition(None, &bare, site, "0193"),
            format!("identifier={}|0193", encode(&consult_system(site)))
        );
    }
}
