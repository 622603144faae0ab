//! Consults as FHIR: `AuditEvent` (one per consult, its id the consult id), `Provenance` (one
//! per redirect), and the `Parameters` of `$stats`.

use super::record::{canonical, consult_identifier};
use super::{instant, Consult, Stats};
use crate::site::Site;
use serde_json::{json, Value};

const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const ODS_ORGANIZATION: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const PROVENANCE_ACTIVITY: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";

fn detail(kind: &str, value: &str) -> Value {
    json!({ "type": kind, "valueString": value })
}

/// The gateway as an agent / observer.
fn gateway(site: &Site) -> Value {
    json!({
        "identifier": { "system": format!("{}/gateway", canonical(site)), "value": env!("CARGO_PKG_NAME") },
        "display": format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
    })
}

/// How the original ServiceRequest is named: its reference, else its placer identifier.
fn request_what(c: &Consult) -> Value {
    if let Some(r) = &c.sr_reference {
        let mut what = json!({ "reference": r, "type": "ServiceRequest" });
        if let Some(p) = &c.placer_identifier {
            what["identifier"] = identifier(p);
        }
        return what;
    }
    match &c.placer_identifier {
        Some(p) => json!({ "type": "ServiceRequest", "identifier": identifier(p) }),
        None => {
            json!({ "type": "ServiceRequest", "display": "The ServiceRequest sent (it had neither an id nor an identifier)" })
        }
    }
}

fn identifier(system_value: &str) -> Value {
    match system_value.split_once('|') {
        Some((s, v)) if !s.is_empty() => json!({ "system": s, "value": v }),
        Some((_, v)) => json!({ "value": v }),
        None => json!({ "value": system_value }),
    }
}

/// One consult as an AuditEvent (contract §6 "FHIR read and search").
pub fn audit_event(c: &Consult, site: &Site) -> Value {
    let mut contained = Vec::new();
    if let Ok(mut oo) = serde_json::from_str::<Value>(&c.outcome) {
        if let Some(o) = oo.as_object_mut() {
            o.insert("id".into(), json!("outcome"));
            let mut ordered = serde_json::Map::new();
            ordered.insert("resourceType".into(), json!("OperationOutcome"));
            ordered.insert("id".into(), json!("outcome"));
            for (k, v) in std::mem::take(o) {
                ordered.entry(k).or_insert(v);
            }
            *o = ordered;
        }
        contained.push(oo);
    }
    let mut request_details = vec![detail("decision", &c.decision)];
    request_details.extend(c.fired.iter().map(|r| detail("rule", r)));
    request_details.extend(c.shadow_fired.iter().map(|r| detail("shadow-rule", r)));
    request_details.push(detail("channel", &channel_text(c)));
    request_details.push(detail("request-sha256", &c.request_hash));
    if let Some(body) = &c.request_body {
        request_details.push(detail("request", body));
    }
    let mut entities = vec![json!({
        "what": request_what(c),
        "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
        "detail": request_details,
    })];
    // The patient and the requesting organisation, as the request named them: what the
    // gateway's SearchParameters subject-identifier and requester-organization search
    // (profiles/SearchParameter-AuditEvent-*.json give these paths as their expressions).
    if let Some(value) = &c.subject_value {
        let mut id = json!({ "value": value });
        if let Some(system) = &c.subject_system {
            id["system"] = json!(system);
        }
        entities.push(json!({
            "what": { "identifier": id, "type": "Patient" },
            "type": { "system": ENTITY_TYPE, "code": "1", "display": "Person" },
            "role": { "system": OBJECT_ROLE, "code": "1", "display": "Patient" },
        }));
    }
    if let Some(ods) = &c.requester_org {
        entities.push(json!({
            "what": { "identifier": { "system": ODS_ORGANIZATION, "value": ods }, "type": "Organization" },
            "type": { "system": ENTITY_TYPE, "code": "3", "display": "Organization" },
            "description": "The organisation that requested the imaging (ODS code).",
        }));
    }
    entities.push(json!({
        "what": { "reference": "#outcome", "type": "OperationOutcome" },
        "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
        "description": "The decision and every finding, as answered (shadow rules included).",
    }));
    if let (Some(id), Some(sr)) = (&c.redirected_id, &c.redirected) {
        if let Ok(mut v) = serde_json::from_str::<Value>(sr) {
            v["id"] = json!("redirected");
            contained.push(v);
            entities.push(json!({
                "what": { "reference": "#redirected", "type": "ServiceRequest" },
                "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
                "name": format!("ServiceRequest/{id}"),
                "description": "The redirected ServiceRequest answered (its id is the entity's name).",
            }));
        }
    }
    entities.push(json!({
        "what": { "identifier": { "system": format!("{}/rule-set", canonical(site)), "value": c.rule_set } },
        "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
        "description": "The rule set (rules and profiles, by content hash) the decision was made under.",
    }));
    if let Some(f) = &c.forwarding {
        entities.push(json!({
            "what": { "display": "The upstream FHIR server's answer" },
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
            "detail": [detail("forwarding", f)],
        }));
    }
    let mut subtype = Vec::new();
    if c.channel != "cds-hooks" {
        subtype
            .push(json!({ "system": RESTFUL_INTERACTION, "code": "create", "display": "create" }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": c.id,
        "contained": contained,
        "extension": [super::record::consult_extension(site, &c.id)],
        "type": { "system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation" },
        "action": "E",
        "period": { "start": instant(c.received_at), "end": instant(c.decided_at) },
        "recorded": instant(c.decided_at),
        "outcome": if c.decision == "rejected" { "4" } else { "0" },
        "outcomeDesc": c.summary,
        "agent": [
            {
                "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "AUT", "display": "author (originator)" }] },
                "who": { "identifier": { "system": format!("{}/client", canonical(site)), "value": c.client }, "display": c.client },
                "requestor": true,
            },
            {
                "type": { "coding": [{ "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application" }] },
                "who": gateway(site),
                "requestor": false,
            },
        ],
        "source": {
            "observer": gateway(site),
            "type": [{ "system": SOURCE_TYPE, "code": "4", "display": "Application Server" }],
        },
        "entity": entities,
    });
    if !subtype.is_empty() {
        event["subtype"] = Value::Array(subtype);
    }
    order(
        event,
        &[
            "resourceType",
            "id",
            "contained",
            "extension",
            "type",
            "subtype",
            "action",
            "period",
            "recorded",
            "outcome",
            "outcomeDesc",
            "agent",
            "source",
            "entity",
        ],
    )
}

fn channel_text(c: &Consult) -> String {
    match (&c.hook_instance, c.entry_index) {
        (Some(h), Some(i)) => format!("cds-hooks {h} draft {i}"),
        (Some(h), None) => format!("cds-hooks {h}"),
        (None, Some(i)) => format!("{} entry {i}", c.channel),
        (None, None) => c.channel.clone(),
    }
}

fn order(v: Value, keys: &[&str]) -> Value {
    let Value::Object(mut o) = v else { return v };
    let mut out = serde_json::Map::new();
    for k in keys {
        if let Some(x) = o.remove(*k) {
            if x.as_array().is_some_and(Vec::is_empty) {
                continue;
            }
            out.insert((*k).into(), x);
        }
    }
    out.extend(o);
    Value::Object(out)
}

/// The Provenance of a redirect: the new request, derived from the original by a rule, in a
/// consult.
pub fn provenance(c: &Consult, site: &Site) -> Option<Value> {
    let id = c.redirected_id.as_ref()?;
    let rule = c.fired.first().cloned().unwrap_or_default();
    let redirect_rule = serde_json::from_str::<Value>(c.redirected.as_deref()?)
        .ok()
        .and_then(|sr| {
            let note = sr.pointer("/note/0/text")?.as_str()?.to_string();
            Some(note)
        });
    let mut source = request_what(c);
    if let Some(o) = source.as_object_mut() {
        o.remove("type");
    }
    Some(json!({
        "resourceType": "Provenance",
        "id": c.id,
        "target": [{ "reference": format!("ServiceRequest/{id}") }],
        "recorded": instant(c.decided_at),
        "reason": [{ "text": redirect_rule.unwrap_or_else(|| format!("Redirected by guidance rule {rule}")) }],
        "activity": { "coding": [{ "system": PROVENANCE_ACTIVITY, "code": "CREATE", "display": "create" }] },
        "agent": [{
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "assembler", "display": "Assembler" }] },
            "who": gateway(site),
        }],
        "entity": [
            { "role": "source", "what": source },
            { "role": "derivation", "what": { "reference": format!("AuditEvent/{}", c.id), "identifier": consult_identifier(site, &c.id) } },
            { "role": "quotation", "what": { "identifier": { "system": site.code_system("guidance-rule"), "value": rule } } },
        ],
    }))
}

/// `$stats` as a FHIR Parameters (contract §6 "Statistics").
pub fn stats_parameters(s: &Stats) -> Value {
    let mut params = vec![json!({ "name": "total", "valueInteger": s.total })];
    for (code, n) in &s.decisions {
        params.push(json!({ "name": "decision", "part": [
            { "name": "code", "valueCode": code },
            { "name": "count", "valueInteger": n },
        ]}));
    }
    for r in &s.rules {
        let mut part = vec![
            json!({ "name": "id", "valueString": r.id }),
            json!({ "name": "fired", "valueInteger": r.fired }),
            json!({ "name": "shadowFired", "valueInteger": r.shadow_fired }),
            json!({ "name": "overridden", "valueInteger": r.overridden }),
        ];
        for (reason, n) in &r.override_reasons {
            part.push(json!({ "name": "overrideReason", "part": [
                { "name": "code", "valueCode": reason },
                { "name": "count", "valueInteger": n },
            ]}));
        }
        params.push(json!({ "name": "rule", "part": part }));
    }
    for (client, n) in &s.clients {
        params.push(json!({ "name": "client", "part": [
            { "name": "id", "valueString": client },
            { "name": "count", "valueInteger": n },
        ]}));
    }
    let ms = |us: Option<i64>| us.map(|u| (u as f64) / 1000.0);
    let mut latency = Vec::new();
    if let Some(p) = ms(s.p50_us) {
        latency.push(json!({ "name": "p50", "valueDecimal": p }));
    }
    if let Some(p) = ms(s.p99_us) {
        latency.push(json!({ "name": "p99", "valueDecimal": p }));
    }
    if !latency.is_empty() {
        params.push(json!({ "name": "latency", "part": latency }));
    }
    json!({ "resourceType": "Parameters", "parameter": params })
}
