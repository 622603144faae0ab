//! The redirected ServiceRequest (contract §3): a new request addressed to the pathway the
//! guidance names, derived from the original.

use crate::finding::Decision;
use crate::rules::rule::Rule;
use crate::site::{Pathway, Site};
use serde_json::{json, Map, Value};

/// Elements of the original kept on the redirected request.
const KEPT: &[&str] = &[
    "intent",
    "priority",
    "code",
    "subject",
    "encounter",
    "requester",
    "reasonCode",
    "reasonReference",
    "supportingInfo",
    "authoredOn",
];

/// The reference to the request a redirect replaces. The receiving system must be able to
/// tell which order was redirected, so there is always one: by id or `fullUrl`, else by the
/// request's own business identifier (the placer's order number), else by description.
fn replaced_reference(original: &Value, original_ref: Option<&str>) -> Value {
    if let Some(r) = original_ref {
        return json!({ "reference": r });
    }
    match original
        .get("identifier")
        .and_then(Value::as_array)
        .and_then(|ids| ids.iter().find(|i| i.get("value").is_some()))
    {
        Some(id) => json!({ "type": "ServiceRequest", "identifier": id }),
        None => json!({
            "type": "ServiceRequest",
            "display": "The ServiceRequest sent for checking (it has neither an id nor an identifier)"
        }),
    }
}

/// Builds the redirected request. `original_ref` is how to refer to the original (its
/// `ServiceRequest/id` or Bundle `fullUrl`), when it has one.
pub fn redirected_request(
    original: &Value,
    original_ref: Option<&str>,
    rule: &Rule,
    pathway: &Pathway,
    why: &str,
    site: &Site,
) -> Value {
    let mut out = Map::new();
    out.insert("resourceType".into(), json!("ServiceRequest"));
    out.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    out.insert(
        "meta".into(),
        json!({ "tag": [site.decision_coding(Decision::Redirected)] }),
    );
    // Contained resources travel with the request when a kept element refers to them.
    let kept_text: String = KEPT
        .iter()
        .filter_map(|k| original.get(*k))
        .map(Value::to_string)
        .collect();
    let contained: Vec<Value> = original
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| {
            c.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| kept_text.contains(&format!("\"#{id}\"")))
        })
        .cloned()
        .collect();
    if !contained.is_empty() {
        out.insert("contained".into(), Value::Array(contained));
    }
    out.insert(
        "replaces".into(),
        json!([replaced_reference(original, original_ref)]),
    );
    out.insert("status".into(), json!("draft"));
    for key in KEPT {
        if let Some(v) = original.get(*key) {
            out.insert((*key).into(), v.clone());
        } else if *key == "intent" {
            out.insert("intent".into(), json!("order"));
        }
    }
    out.insert("category".into(), json!([{ "text": "Referral" }]));
    out.insert(
        "performerType".into(),
        json!({ "coding": [{ "system": site.code_system("referral-pathway"), "code": pathway.id, "display": pathway.name }], "text": pathway.name }),
    );
    out.insert(
        "performer".into(),
        json!([{ "display": format!("{} ({})", pathway.name, pathway.contact) }]),
    );
    let advice = rule.def.advice.trim();
    let booking = pathway.booking.trim().trim_end_matches('.');
    // Most rules' advice already says how to refer ("refer directly to the DVT clinic (ext
    // 5378)"): the pathway's booking text is added only when it tells the GP something more.
    let how = if advice.to_lowercase().contains(&booking.to_lowercase()) {
        String::new()
    } else {
        format!(" How to refer: {booking}.")
    };
    out.insert(
        "note".into(),
        json!([{ "text": format!(
            "Redirected by guidance rule {} ({}). Why: {}. {advice}{how}",
            rule.def.id,
            rule.def.title,
            why,
        ) }]),
    );
    // Keep FHIR's element order: resource elements as the R4 definition lists them.
    let order = [
        "resourceType",
        "id",
        "meta",
        "contained",
        "replaces",
        "status",
        "intent",
        "category",
        "priority",
        "code",
        "subject",
        "encounter",
        "authoredOn",
        "requester",
        "performerType",
        "performer",
        "reasonCode",
        "reasonReference",
        "supportingInfo",
        "note",
    ];
    let mut ordered = Map::new();
    for k in order {
        if let Some(v) = out.shift_remove(k) {
            ordered.insert(k.into(), v);
        }
    }
    Value::Object(ordered)
}
