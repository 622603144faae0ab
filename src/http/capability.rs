//! `GET /metadata`: the CapabilityStatement, generated from what the server supports: the
//! endpoints of [`super::routes`] (described here, beside the statement that publishes them), the formats of [`super::negotiate`], and the conformance
//! resources of the profiles folder (loaded with the rules). It claims exactly what the gateway
//! does: no `create` (nothing is stored), `$validate` on ServiceRequest by HL7's definition and
//! at system level by the gateway's own, read and search (`_id`, `url`) of the conformance
//! resources, batch and transaction, CORS; with a generated narrative.

use super::negotiate::CAPABILITY_FORMATS;
use super::AppState;
use serde_json::{json, Value};

/// What `POST /ServiceRequest` does (CapabilityStatement `rest.resource.documentation`). It is
/// not the FHIR `create` interaction: nothing is created (contract §7: `create` is declared
/// when an upstream server is configured).
pub const SERVICE_REQUEST_POST: &str = "POST /ServiceRequest decides on the ServiceRequest and stores nothing (so no FHIR create interaction is declared): accepted, 200 + OperationOutcome; redirected, 200 + the redirected ServiceRequest (with Prefer: return=OperationOutcome, the decision OperationOutcome); rejected, 422 + OperationOutcome. GET /ServiceRequest/{id} answers 404 (nothing is stored); PUT, PATCH and DELETE answer 405.";

/// System interactions (CapabilityStatement `rest.interaction`).
pub const SYSTEM_INTERACTIONS: [(&str, &str); 2] = [
    (
        "batch",
        "POST / with a batch (or collection) Bundle: 200 + batch-response, one entry per entry. An entry POSTing a ServiceRequest is decided; context resources (POST or PUT) are read, not stored; any other method (GET, DELETE, PATCH, a PUT of a ServiceRequest) is answered 405 in its entry.",
    ),
    (
        "transaction",
        "POST / with a transaction Bundle: all or nothing; any rejected entry gives 422 + one OperationOutcome naming Bundle.entry[i] (400 when an entry is invalid or asks for a method the gateway does not perform).",
    ),
];

/// `$validate` on ServiceRequest, at type and instance level: HL7's own definition.
pub const VALIDATE_OPERATION: (&str, &str) = (
    "validate",
    "http://hl7.org/fhir/OperationDefinition/Resource-validate",
);

/// The id of the gateway's OperationDefinition of `POST /$validate` (system level), in
/// `profiles/`: HL7's `Resource-validate` is defined at type and instance level only.
pub const SYSTEM_VALIDATE_ID: &str = "validate";

/// The search parameters of the conformance types (CapabilityStatement
/// `rest.resource.searchParam`): name, type, HL7 definition.
pub const CONFORMANCE_SEARCH_PARAMS: [(&str, &str, &str); 2] = [
    (
        "_id",
        "token",
        "http://hl7.org/fhir/SearchParameter/Resource-id",
    ),
    (
        "url",
        "uri",
        "http://hl7.org/fhir/SearchParameter/conformance-url",
    ),
];

/// The conformance resources served from the profiles folder.
pub const CONFORMANCE_TYPES: [&str; 6] = [
    "StructureDefinition",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
    "SearchParameter",
    "OperationDefinition",
];

/// Text for XHTML: `&`, `<` and `>` escaped.
fn xhtml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The narrative of the CapabilityStatement (dom-6: a resource should have one): what is
/// served, one row per resource type, then the system interactions and operations.
fn narrative(rest: &Value) -> Value {
    let mut div = String::from(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>referral-gateway: FHIR R4 (4.0.1) server that checks GP imaging referrals against the hospital's referral guidance. JSON and XML.</p><table><tr><th>Resource</th><th>Interactions</th><th>Search parameters</th><th>Operations</th></tr>",
    );
    let names = |v: &Value, key: &str, field: &str| -> String {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x[field].as_str())
            .map(|s| format!("<code>{}</code>", xhtml_text(s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in rest["resource"].as_array().into_iter().flatten() {
        div.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            xhtml_text(r["type"].as_str().unwrap_or("")),
            names(r, "interaction", "code"),
            names(r, "searchParam", "name"),
            names(r, "operation", "name").replace("<code>", "<code>$"),
        ));
    }
    div.push_str(&format!(
        "</table><p>System: {}; operations {}.</p></div>",
        names(rest, "interaction", "code"),
        names(rest, "operation", "name").replace("<code>", "<code>$"),
    ));
    json!({ "status": "generated", "div": div })
}

/// The CapabilityStatement of this server.
pub fn capability_statement(state: &AppState) -> Value {
    let rules = state.engine.rules();
    let conformance = &rules.conformance;
    let profiles_of = |ty: &str| -> Vec<&str> {
        conformance
            .profiles
            .iter()
            .filter(|p| p.resource_type == ty)
            .map(|p| p.url.as_str())
            .collect()
    };
    // `POST /ServiceRequest/$validate` and `POST /ServiceRequest/{id}/$validate`.
    let type_validate = json!({
        "name": VALIDATE_OPERATION.0,
        "definition": VALIDATE_OPERATION.1,
        "documentation": "POST /ServiceRequest/$validate and POST /ServiceRequest/{id}/$validate: 200 + OperationOutcome with the decision and every finding. Parameters: resource, profile (a StructureDefinition the gateway has; another is a 400), mode create or profile (update and delete: 400, nothing is stored).",
    });
    let mut service_request = json!({
        "type": "ServiceRequest",
        "documentation": format!(
            "A ServiceRequest for imaging is checked against the referral guidance ({} rules). {SERVICE_REQUEST_POST}",
            rules.rules.len()
        ),
        "operation": [type_validate, {
            "name": "explain",
            "definition": crate::explain::operation_url(&rules.site),
            "documentation": crate::http::console::explain_route::DOCUMENTATION,
        }],
    });
    let supported = profiles_of("ServiceRequest");
    if !supported.is_empty() {
        service_request["supportedProfile"] = json!(supported);
    }
    if let Some(up) = &state.upstream {
        // With an upstream the gateway is a FHIR server for orders (contract §7).
        service_request["interaction"] =
            json!(crate::http::upstream::interactions("ServiceRequest", up));
    }
    let mut resources = vec![service_request];
    if let Some(up) = &state.upstream {
        for ty in rules
            .site
            .upstream
            .read_types
            .iter()
            .filter(|t| *t != "ServiceRequest")
        {
            resources.push(json!({
                "type": ty,
                "documentation": format!("Passed through to the upstream FHIR server {}.", up.base()),
                "interaction": crate::http::upstream::interactions(ty, up),
            }));
        }
    }
    // The conformance resources the server publishes (GET /{type}/{id}, GET /{type}).
    for ty in CONFORMANCE_TYPES {
        let mut r = json!({
            "type": ty,
            "documentation": format!("The {ty} resources of the gateway's profiles folder: read (with ETag and Last-Modified) and search by _id and url."),
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": CONFORMANCE_SEARCH_PARAMS
                .iter()
                .map(|(name, ty, definition)| json!({"name": name, "definition": definition, "type": ty}))
                .collect::<Vec<_>>(),
        });
        let urls = profiles_of(ty);
        if !urls.is_empty() {
            r["supportedProfile"] = json!(urls);
        }
        resources.push(r);
    }
    if state.store.is_some() {
        // The consult record (contract §6), read back over FHIR.
        resources.extend(super::audit::capability_resources(&rules.site));
    }
    let system_validate = conformance
        .resource("OperationDefinition", SYSTEM_VALIDATE_ID)
        .and_then(|od| od.url.clone());
    let mut rest = json!({
        "mode": "server",
        "documentation": format!("Checks GP imaging referrals against the referral guidance. {} Prefer: return=OperationOutcome makes a 2xx answer the decision OperationOutcome; return=minimal and return=representation change nothing. Errors are OperationOutcomes.", if state.store.is_some() {
            "Every decision is recorded (the consult record) before it is answered, and is read back as an AuditEvent; the ServiceRequests themselves are not stored here."
        } else {
            "Nothing is recorded (--store none)."
        }),
        "security": {
            "cors": true,
            "description": "CORS on every endpoint: any origin, GET and POST; Location, ETag, X-Request-Id and X-Consult-Id are exposed to scripts.",
        },
        "resource": resources,
        "interaction": SYSTEM_INTERACTIONS.iter().map(|(code, doc)| json!({ "code": code, "documentation": doc })).collect::<Vec<_>>(),
    });
    if let Some(url) = system_validate {
        rest["operation"] = json!([{
            "name": VALIDATE_OPERATION.0,
            "definition": url,
            "documentation": "POST /$validate with a ServiceRequest, a Bundle or a Parameters: 200 + OperationOutcome with every decision and finding.",
        }]);
    }
    let stats = conformance
        .resource("OperationDefinition", "stats")
        .and_then(|od| od.url.clone());
    if let (Some(_), Some(url)) = (&state.store, stats) {
        let op = super::audit::stats_operation(&url);
        match rest["operation"].as_array_mut() {
            Some(ops) => ops.push(op),
            None => rest["operation"] = json!([op]),
        }
    }
    if let Some(security) = state.auth.capability_security() {
        // What authentication requires, and the CORS sentence kept.
        let cors = rest["security"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        rest["security"] = security;
        let auth = rest["security"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        rest["security"]["description"] = json!(format!("{auth} {cors}"));
    }
    json!({
        "resourceType": "CapabilityStatement",
        "text": narrative(&rest),
        "extension": [{
            "url": crate::store::record::rule_set_version_url(&rules.site),
            "valueString": rules.version,
        }],
        "status": "active",
        "date": state.started,
        "publisher": env!("CARGO_PKG_NAME"),
        "kind": "instance",
        "software": {
            "name": env!("CARGO_PKG_NAME"),
            "version": env!("CARGO_PKG_VERSION"),
        },
        "implementation": {
            "description": format!("{} — {} (listening on {}); rule set {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_DESCRIPTION"), state.listen, rules.version),
        },
        "fhirVersion": "4.0.1",
        "format": CAPABILITY_FORMATS,
        "rest": [rest],
    })
}
