//! The CDS Hooks 2.0 request of `order-select` and `order-sign`, read from JSON and checked
//! field by field, every problem reported (not only the first), and the Bundle the decision
//! engine reads, built from it.
//!
//! Unknown fields are ignored, as the specification's extensibility asks (`extension`,
//! fields of later versions); the fields this service uses are checked strictly.

use super::discovery::{Hook, Service};
use serde_json::{json, Map, Value};

/// The resource types of `draftOrders` and `prefetch` the engine reads: the ServiceRequests to
/// decide on, and the context they refer to. Other orders (MedicationRequest, ...) are not
/// imaging referrals and are left alone.
const ENGINE_TYPES: [&str; 7] = [
    "ServiceRequest",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Observation",
    "Condition",
];

/// A prefetch key as the specification defines its states: absent ("not sent": the client
/// chose not to, or failed to, prefetch it), `null` ("no data": the client found nothing), an
/// OperationOutcome ("failed": CDS Hooks 2.0 §prefetch, the client says why it could not
/// prefetch it), or the data (a resource, or the resources of a search Bundle).
#[derive(Debug, Clone, PartialEq)]
pub enum Prefetched {
    NotSent,
    NoData,
    /// The client sent an OperationOutcome (or a Bundle of nothing else): the data is not
    /// available, as if it had not been sent; the call goes on without it.
    Failed,
    Resources(Vec<Value>),
}

/// Whether a prefetch value is the client's report that the prefetch failed: an
/// OperationOutcome, or a Bundle whose only resources are OperationOutcomes (a search that
/// failed, `search.mode` `outcome`).
fn is_prefetch_failure(v: &Value) -> bool {
    match v.get("resourceType").and_then(Value::as_str) {
        Some("OperationOutcome") => true,
        Some("Bundle") => {
            let resources: Vec<&Value> = v
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("resource"))
                .collect();
            !resources.is_empty()
                && resources.iter().all(|r| {
                    r.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome")
                })
        }
        _ => false,
    }
}

/// One entry of `context.draftOrders`.
#[derive(Debug, Clone)]
pub struct DraftOrder {
    pub full_url: Option<String>,
    pub resource: Value,
}

impl DraftOrder {
    pub fn resource_type(&self) -> &str {
        self.resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `Type/id`, when the resource has an id.
    pub fn reference(&self) -> Option<String> {
        self.resource
            .get("id")
            .and_then(Value::as_str)
            .map(|id| format!("{}/{id}", self.resource_type()))
    }
}

/// A checked CDS Hooks request.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub hook_instance: String,
    /// `Practitioner/123` or `PractitionerRole/123`.
    pub user_id: String,
    pub patient_id: String,
    /// Every entry of `context.draftOrders`, in order.
    pub draft_orders: Vec<DraftOrder>,
    /// `order-select`: the orders just chosen (`Type/id`); `None` when not sent.
    pub selections: Option<Vec<String>>,
    /// By prefetch key of the discovery document.
    pub prefetch: Vec<(&'static str, Prefetched)>,
    /// `fhirServer`: the base of the CDS client's FHIR server, without a trailing slash.
    pub fhir_server: Option<String>,
    /// `fhirAuthorization.access_token`: for the prefetch fallback ([`super::prefetch`]).
    pub fhir_authorization: Option<AccessToken>,
}

/// The CDS client's access token to its FHIR server: never shown in `Debug` or logs.
#[derive(Clone, PartialEq)]
pub struct AccessToken(pub String);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

/// The resource type each prefetch key must hold (a search Bundle may add included resources).
pub const PREFETCH_TYPES: [(&str, &str); 3] = [
    ("patient", "Patient"),
    ("practitioner", "Practitioner"),
    ("practitionerRole", "PractitionerRole"),
];

fn type_of(v: &Value) -> &str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A FHIR `id`: 1 to 64 of `A-Z a-z 0-9 - .`.
fn is_fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// `Type/id` with one of `types` and a FHIR id.
fn is_reference_to(s: &str, types: &[&str]) -> bool {
    s.split_once('/')
        .is_some_and(|(t, id)| types.contains(&t) && is_fhir_id(id))
}

/// A required string field; records a problem when absent, not a string or empty.
fn required_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<&'a str> {
    match obj.get(key) {
        None => {
            problems.push(format!("{at}{key} is required"));
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
        Some(Value::String(_)) => {
            problems.push(format!("{at}{key} is empty"));
            None
        }
        Some(other) => {
            problems.push(format!(
                "{at}{key} must be a string, not {}",
                type_of(other)
            ));
            None
        }
    }
}

/// The resources of a prefetch value: the resource itself, or the entries of a Bundle.
fn prefetch_resources(key: &str, v: &Value, problems: &mut Vec<String>) -> Vec<Value> {
    let Some(rt) = v.get("resourceType").and_then(Value::as_str) else {
        problems.push(format!(
            "prefetch.{key} must be a FHIR resource or null, not {} without resourceType",
            type_of(v)
        ));
        return Vec::new();
    };
    if rt != "Bundle" {
        return vec![v.clone()];
    }
    let mut out = Vec::new();
    for (i, e) in v
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match e.get("resource") {
            Some(r) if r.get("resourceType").and_then(Value::as_str).is_some() => {
                out.push(r.clone())
            }
            _ => problems.push(format!(
                "prefetch.{key}.entry[{i}] has no resource with a resourceType"
            )),
        }
    }
    out
}

impl HookRequest {
    /// Reads and checks the request sent to `service`. The error lists every problem.
    pub fn from_json(body: &Value, service: &Service) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let Some(root) = body.as_object() else {
            return Err(vec![format!(
                "the body must be a JSON object (a CDS Hooks request), not {}",
                type_of(body)
            )]);
        };
        if let Some(hook) = required_str(root, "hook", "", &mut problems) {
            if hook != service.hook.name() {
                problems.push(format!(
                    "hook is '{hook}', but the service '{}' answers the '{}' hook",
                    service.id,
                    service.hook.name()
                ));
            }
        }
        let hook_instance = required_str(root, "hookInstance", "", &mut problems)
            .map(str::to_string)
            .unwrap_or_default();
        if !hook_instance.is_empty() && uuid::Uuid::parse_str(&hook_instance).is_err() {
            problems.push(format!("hookInstance '{hook_instance}' is not a UUID"));
        }
        let fhir_server = match root.get("fhirServer") {
            None => None,
            Some(Value::String(s)) if s.starts_with("https://") || s.starts_with("http://") => {
                Some(s.trim_end_matches('/').to_string())
            }
            Some(_) => {
                problems.push("fhirServer must be an absolute http(s) URL".into());
                None
            }
        };
        if root.get("fhirAuthorization").is_some() && root.get("fhirServer").is_none() {
            problems.push("fhirAuthorization is sent without fhirServer".into());
        }
        let fhir_authorization = read_authorization(root.get("fhirAuthorization"), &mut problems);

        let mut user_id = String::new();
        let mut patient_id = String::new();
        let mut draft_orders = Vec::new();
        let mut selections = None;
        match root.get("context") {
            None => problems.push("context is required".into()),
            Some(Value::Object(ctx)) => {
                if let Some(u) = required_str(ctx, "userId", "context.", &mut problems) {
                    if is_reference_to(u, &["Practitioner", "PractitionerRole"]) {
                        user_id = u.to_string();
                    } else {
                        problems.push(format!(
                            "context.userId '{u}' must be Practitioner/{{id}} or PractitionerRole/{{id}}"
                        ));
                    }
                }
                if let Some(p) = required_str(ctx, "patientId", "context.", &mut problems) {
                    if is_fhir_id(p) {
                        patient_id = p.to_string();
                    } else {
                        problems.push("context.patientId is not a FHIR id".into());
                    }
                }
                match ctx.get("encounterId") {
                    None => {}
                    Some(Value::String(e)) if is_fhir_id(e) => {}
                    Some(_) => problems.push("context.encounterId is not a FHIR id".into()),
                }
                draft_orders = read_draft_orders(ctx.get("draftOrders"), &mut problems);
                if service.hook == Hook::OrderSelect {
                    selections = read_selections(ctx.get("selections"), &mut problems);
                }
            }
            Some(other) => {
                problems.push(format!("context must be an object, not {}", type_of(other)))
            }
        }
        if let Some(sel) = &selections {
            for (i, s) in sel.iter().enumerate() {
                if !draft_orders
                    .iter()
                    .any(|d| d.reference().as_deref() == Some(s))
                {
                    problems.push(format!(
                        "context.selections[{i}] '{s}' is not a resource of context.draftOrders"
                    ));
                }
            }
        }

        let mut prefetch: Vec<(&'static str, Prefetched)> = PREFETCH_TYPES
            .iter()
            .map(|(k, _)| (*k, Prefetched::NotSent))
            .collect();
        match root.get("prefetch") {
            None | Some(Value::Null) => {}
            Some(Value::Object(p)) => {
                for (key, expected) in PREFETCH_TYPES {
                    let value = match p.get(key) {
                        None => Prefetched::NotSent,
                        Some(v) => read_prefetched(key, expected, v, &mut problems),
                    };
                    if let Some(slot) = prefetch.iter_mut().find(|(k, _)| *k == key) {
                        slot.1 = value;
                    }
                }
            }
            Some(other) => problems.push(format!(
                "prefetch must be an object, not {}",
                type_of(other)
            )),
        }
        check_patient(&prefetch, &patient_id, &mut problems);

        if problems.is_empty() {
            Ok(HookRequest {
                hook_instance,
                user_id,
                patient_id,
                draft_orders,
                selections,
                prefetch,
                fhir_server,
                fhir_authorization,
            })
        } else {
            Err(problems)
        }
    }

    /// The prefetch keys of the discovery document the client did not send (and that were
    /// not fetched from its `fhirServer` either).
    pub fn prefetch_not_sent(&self) -> Vec<&'static str> {
        self.prefetch_in(&Prefetched::NotSent)
    }

    /// The prefetch keys the client could not prefetch (it sent an OperationOutcome).
    pub fn prefetch_failed(&self) -> Vec<&'static str> {
        self.prefetch_in(&Prefetched::Failed)
    }

    fn prefetch_in(&self, state: &Prefetched) -> Vec<&'static str> {
        self.prefetch
            .iter()
            .filter(|(_, p)| p == state)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Whether the draft order is one this call decides on: every ServiceRequest, or for
    /// `order-select` with `selections` the selected ones only.
    pub fn is_decided(&self, order: &DraftOrder) -> bool {
        order.resource_type() == "ServiceRequest"
            && match &self.selections {
                None => true,
                Some(sel) => order.reference().is_some_and(|r| sel.contains(&r)),
            }
    }

    /// The collection Bundle the engine decides on: the decided ServiceRequests first, then
    /// the context resources of `draftOrders` and of `prefetch`. Returns the Bundle and, per
    /// Bundle entry, the index of the draft order it came from (`None` for prefetched ones).
    ///
    /// A draft order without `subject` or `requester` gets the patient and the user in
    /// context: in the EHR they are the order's patient and orderer, and the age and
    /// organisation rules need them. What the order says itself is never changed.
    pub fn engine_bundle(&self) -> (Value, Vec<Option<usize>>) {
        let mut entries = Vec::new();
        let mut origin = Vec::new();
        for (i, order) in self.draft_orders.iter().enumerate() {
            if !self.is_decided(order) {
                continue;
            }
            let mut resource = order.resource.clone();
            if let Value::Object(m) = &mut resource {
                m.entry("subject").or_insert_with(
                    || json!({ "reference": format!("Patient/{}", self.patient_id) }),
                );
                m.entry("requester")
                    .or_insert_with(|| json!({ "reference": self.user_id }));
            }
            entries.push(entry(order.full_url.as_deref(), resource));
            origin.push(Some(i));
        }
        for (i, order) in self.draft_orders.iter().enumerate() {
            let rt = order.resource_type();
            if rt != "ServiceRequest" && ENGINE_TYPES.contains(&rt) {
                entries.push(entry(order.full_url.as_deref(), order.resource.clone()));
                origin.push(Some(i));
            }
        }
        for (_, p) in &self.prefetch {
            if let Prefetched::Resources(rs) = p {
                for r in rs {
                    let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
                    if rt != "ServiceRequest" && ENGINE_TYPES.contains(&rt) {
                        entries.push(entry(None, r.clone()));
                        origin.push(None);
                    }
                }
            }
        }
        let mut bundle = json!({ "resourceType": "Bundle", "type": "collection" });
        if !entries.is_empty() {
            bundle["entry"] = Value::Array(entries);
        }
        (bundle, origin)
    }
}

/// A prefetch value as sent (or as fetched from the `fhirServer`): `null` is no data, an
/// OperationOutcome a failure, else the resources, which must include one of `expected`.
pub(super) fn read_prefetched(
    key: &str,
    expected: &str,
    v: &Value,
    problems: &mut Vec<String>,
) -> Prefetched {
    match v {
        Value::Null => Prefetched::NoData,
        v if is_prefetch_failure(v) => Prefetched::Failed,
        v => {
            let resources = prefetch_resources(key, v, problems);
            if !resources.is_empty() && !resources.iter().any(|r| r["resourceType"] == expected) {
                problems.push(format!("prefetch.{key} holds no {expected}"));
            }
            Prefetched::Resources(resources)
        }
    }
}

/// The prefetched patient must be the patient in context: deciding on another patient's age
/// would be worse than not deciding.
pub(super) fn check_patient(
    prefetch: &[(&'static str, Prefetched)],
    patient_id: &str,
    problems: &mut Vec<String>,
) {
    if let Some((_, Prefetched::Resources(rs))) = prefetch.iter().find(|(k, _)| *k == "patient") {
        for r in rs.iter().filter(|r| r["resourceType"] == "Patient") {
            if let Some(id) = r.get("id").and_then(Value::as_str) {
                if !patient_id.is_empty() && id != patient_id {
                    problems
                        .push("prefetch.patient is not the patient of context.patientId".into());
                }
            }
        }
    }
}

/// `fhirAuthorization` (CDS Hooks 2.0 "Passing the Access Token"): its `access_token`, with
/// `token_type` `Bearer`. The other fields are the client's business.
fn read_authorization(v: Option<&Value>, problems: &mut Vec<String>) -> Option<AccessToken> {
    let obj = match v? {
        Value::Object(o) => o,
        other => {
            problems.push(format!(
                "fhirAuthorization must be an object, not {}",
                type_of(other)
            ));
            return None;
        }
    };
    let token = required_str(obj, "access_token", "fhirAuthorization.", problems);
    if let Some(t) = required_str(obj, "token_type", "fhirAuthorization.", problems) {
        if !t.eq_ignore_ascii_case("bearer") {
            problems.push(format!(
                "fhirAuthorization.token_type is '{t}'; only Bearer is defined"
            ));
        }
    }
    token.map(|t| AccessToken(t.trim().to_string()))
}

fn entry(full_url: Option<&str>, resource: Value) -> Value {
    match full_url {
        Some(u) => json!({ "fullUrl": u, "resource": resource }),
        None => json!({ "resource": resource }),
    }
}

fn read_draft_orders(v: Option<&Value>, problems: &mut Vec<String>) -> Vec<DraftOrder> {
    let Some(v) = v else {
        problems.push("context.draftOrders is required (a FHIR Bundle of the draft orders)".into());
        return Vec::new();
    };
    match v.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {}
        Some(other) => {
            problems.push(format!(
                "context.draftOrders must be a FHIR Bundle, not a {other}"
            ));
            return Vec::new();
        }
        None => {
            problems.push(format!(
                "context.draftOrders must be a FHIR Bundle, not {}",
                type_of(v)
            ));
            return Vec::new();
        }
    }
    let entries = match v.get("entry") {
        None => return Vec::new(),
        Some(Value::Array(es)) => es,
        Some(other) => {
            problems.push(format!(
                "context.draftOrders.entry must be an array, not {}",
                type_of(other)
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match e.get("resource") {
            Some(r) if r.get("resourceType").and_then(Value::as_str).is_some() => {
                out.push(DraftOrder {
                    full_url: e.get("fullUrl").and_then(Value::as_str).map(str::to_string),
                    resource: r.clone(),
                })
            }
            _ => problems.push(format!(
                "context.draftOrders.entry[{i}] has no resource with a resourceType"
            )),
        }
    }
    out
}

/// `context.selections` of `order-select`: REQUIRED (CDS Hooks order-select 1.0 context),
/// one reference or more.
fn read_selections(v: Option<&Value>, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let Some(v) = v else {
        problems.push(
            "context.selections is required for order-select: the references (Type/id) of the orders just selected"
                .into(),
        );
        return None;
    };
    let list = match v {
        Value::Array(list) if !list.is_empty() => list,
        Value::Array(_) => {
            problems.push("context.selections is empty: name the orders just selected".into());
            return None;
        }
        other => {
            problems.push(format!(
                "context.selections must be an array of references, not {}",
                type_of(other)
            ));
            return None;
        }
    };
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        match s.as_str() {
            Some(r)
                if r.split_once('/')
                    .is_some_and(|(t, id)| !t.is_empty() && is_fhir_id(id)) =>
            {
                out.push(r.to_string())
            }
            _ => problems.push(format!(
                "context.selections[{i}] must be a reference Type/id such as ServiceRequest/123"
            )),
        }
    }
    Some(out)
}
