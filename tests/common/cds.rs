//! A small CDS Hooks client: any FHIR file of `examples/` as the request an EHR would send.

use serde_json::{json, Map, Value};

/// The user of the calls (`context.userId`) when the example has no PractitionerRole.
pub const USER: &str = "PractitionerRole/cds-test-gp";

/// Replaces every `reference` found in `map` (a Bundle fullUrl → `Type/id`).
pub fn rewrite_references(v: &mut Value, map: &Map<String, Value>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("reference") {
                if let Some(Value::String(to)) = map.get(r.as_str()) {
                    *r = to.clone();
                }
            }
            m.values_mut().for_each(|x| rewrite_references(x, map));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_references(x, map)),
        _ => {}
    }
}

/// The CDS Hooks request an EHR would send for a FHIR example (a ServiceRequest or a Bundle):
/// ServiceRequests and the resources no prefetch key holds (Observations) go in
/// `draftOrders`; the Patient, the Practitioner, and the PractitionerRole with its
/// Organization (as a search Bundle) in `prefetch`, referred to as `Type/id` the way an EHR
/// refers to them. `drop_prefetch` leaves those keys out, as a client that did not prefetch.
pub fn cds_request(hook: &str, fhir: &Value, drop_prefetch: &[&str]) -> Value {
    let resources: Vec<(Option<String>, Value)> = match fhir["resourceType"].as_str() {
        Some("Bundle") => fhir["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["fullUrl"].as_str().map(str::to_string),
                    e["resource"].clone(),
                )
            })
            .collect(),
        _ => vec![(None, fhir.clone())],
    };
    let type_id = |r: &Value| {
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        )
    };
    let mut refs = Map::new();
    for (url, r) in &resources {
        if let Some(u) = url {
            refs.insert(u.clone(), json!(type_id(r)));
        }
    }
    // As an EHR's FHIR server would return them: references as Type/id.
    let resources: Vec<(Option<String>, Value)> = resources
        .into_iter()
        .map(|(url, mut r)| {
            rewrite_references(&mut r, &refs);
            (url, r)
        })
        .collect();
    let of_type = |t: &'static str| {
        resources
            .iter()
            .filter(move |(_, r)| r["resourceType"] == t)
            .map(|(_, r)| r.clone())
    };
    let has_role = of_type("PractitionerRole").next().is_some();
    let mut prefetch = Map::new();
    if let Some(p) = of_type("Patient").next() {
        prefetch.insert("patient".into(), p);
    }
    if let Some(p) = of_type("Practitioner").next() {
        prefetch.insert("practitioner".into(), p);
    }
    if has_role {
        let entries: Vec<Value> = of_type("PractitionerRole")
            .chain(of_type("Organization"))
            .map(|r| json!({ "resource": r }))
            .collect();
        prefetch.insert(
            "practitionerRole".into(),
            json!({ "resourceType": "Bundle", "type": "searchset", "entry": entries }),
        );
    }
    let in_prefetch = |t: &str| {
        matches!(t, "Patient" | "Practitioner")
            || (has_role && matches!(t, "PractitionerRole" | "Organization"))
    };
    let mut orders = Vec::new();
    for (_, r) in &resources {
        if in_prefetch(r["resourceType"].as_str().unwrap_or("")) {
            continue;
        }
        orders.push(json!({ "resource": r }));
    }
    let patient_id = of_type("Patient")
        .next()
        .and_then(|p| p["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| "cds-test-patient".into());
    let user = of_type("PractitionerRole")
        .next()
        .map_or(USER.to_string(), |r| type_id(&r));
    for k in drop_prefetch {
        prefetch.remove(*k);
    }
    let mut req = json!({
        "hook": hook,
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {
            "userId": user,
            "patientId": patient_id,
            "draftOrders": { "resourceType": "Bundle", "type": "collection", "entry": orders },
        },
    });
    if !prefetch.is_empty() {
        req["prefetch"] = Value::Object(prefetch);
    }
    select_every_order(&mut req);
    req
}

/// For `order-select`, whose `context.selections` is required: every draft ServiceRequest is
/// selected (one without an id gets one, as the EHR's draft orders have).
pub fn select_every_order(req: &mut Value) {
    if req["hook"] != "order-select" {
        return;
    }
    let mut selections = Vec::new();
    for (i, e) in req["context"]["draftOrders"]["entry"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let r = &mut e["resource"];
        if r["resourceType"] != "ServiceRequest" {
            continue;
        }
        if r.get("id").is_none() {
            r["id"] = json!(format!("draft-order-{i}"));
        }
        selections.push(json!(format!(
            "ServiceRequest/{}",
            r["id"].as_str().unwrap_or("")
        )));
    }
    req["context"]["selections"] = Value::Array(selections);
}
