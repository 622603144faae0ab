//! `GET /metadata`: the CapabilityStatement, generated from what the server supports: the
//! endpoints of [`super::routes`], the formats of [`super::negotiate`], and the conformance
//! resources of the profiles folder (loaded with the rules).

use super::negotiate::CAPABILITY_FORMATS;
use super::routes::{SYSTEM_INTERACTIONS, TYPE_INTERACTIONS, VALIDATE_OPERATION};
use super::AppState;
use serde_json::{json, Value};

/// The conformance resources served from the profiles folder.
pub const CONFORMANCE_TYPES: [&str; 4] = [
    "StructureDefinition",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
];

/// The CapabilityStatement of this server.
pub fn capability_statement(state: &AppState) -> Value {
    let rules = state.rules.load();
    let conformance = &rules.conformance;
    let profiles_of = |ty: &str| -> Vec<&str> {
        conformance
            .profiles
            .iter()
            .filter(|p| p.resource_type == ty)
            .map(|p| p.url.as_str())
            .collect()
    };
    let validate = json!({
        "name": VALIDATE_OPERATION.0,
        "definition": VALIDATE_OPERATION.1,
    });
    let mut service_request = json!({
        "type": "ServiceRequest",
        "documentation": format!(
            "A ServiceRequest for imaging is checked against the referral guidance ({} rules): accepted (200 OperationOutcome), redirected (200 redirected ServiceRequest) or rejected (422 OperationOutcome).",
            rules.rules.len()
        ),
        "interaction": TYPE_INTERACTIONS.iter().map(|(code, doc)| json!({ "code": code, "documentation": doc })).collect::<Vec<_>>(),
        "operation": [validate.clone()],
    });
    let supported = profiles_of("ServiceRequest");
    if !supported.is_empty() {
        service_request["supportedProfile"] = json!(supported);
    }
    let mut resources = vec![service_request];
    // The conformance resources the server publishes (GET /{type}/{id}, GET /{type}).
    for ty in CONFORMANCE_TYPES {
        let mut r = json!({
            "type": ty,
            "documentation": format!("The {ty} resources of the gateway's profiles folder."),
            "interaction": [{"code": "read"}, {"code": "search-type"}],
        });
        let urls = profiles_of(ty);
        if !urls.is_empty() {
            r["supportedProfile"] = json!(urls);
        }
        resources.push(r);
    }
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": state.started,
        "publisher": env!("CARGO_PKG_NAME"),
        "kind": "instance",
        "software": {
            "name": env!("CARGO_PKG_NAME"),
            "version": env!("CARGO_PKG_VERSION"),
        },
        "implementation": {
            "description": format!("{} — {} (listening on {})", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_DESCRIPTION"), state.listen),
        },
        "fhirVersion": "4.0.1",
        "format": CAPABILITY_FORMATS,
        "rest": [{
            "mode": "server",
            "documentation": "Checks GP imaging referrals against the referral guidance. Nothing is stored.",
            "resource": resources,
            "interaction": SYSTEM_INTERACTIONS.iter().map(|(code, doc)| json!({ "code": code, "documentation": doc })).collect::<Vec<_>>(),
            "operation": [validate],
        }],
    })
}
