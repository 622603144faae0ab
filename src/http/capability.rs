//! `GET /metadata`: the CapabilityStatement, generated from what the server supports: the
//! endpoints of [`super::routes`], the formats of [`super::negotiate`], and the profiles found
//! in the profiles folder.

use super::negotiate::CAPABILITY_FORMATS;
use super::routes::{SYSTEM_INTERACTIONS, TYPE_INTERACTIONS, VALIDATE_OPERATION};
use super::AppState;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The StructureDefinitions of the profiles folder, by the resource type they constrain.
#[derive(Debug, Default, Clone)]
pub struct Profiles {
    pub by_type: BTreeMap<String, Vec<String>>,
}

impl Profiles {
    pub fn count(&self) -> usize {
        self.by_type.values().map(Vec::len).sum()
    }
}

/// Reads the canonical URL and type of every StructureDefinition (`*.json`) in `dir`. A missing
/// folder lists no profile; a file that is not a StructureDefinition (a CodeSystem, say) is
/// skipped; an unreadable one is logged and skipped.
pub fn load_profiles(dir: &Path) -> Profiles {
    let mut profiles = Profiles::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::debug!(dir = %dir.display(), "no profiles folder: no profiles listed");
        return profiles;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let value: Value = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "profile skipped");
                continue;
            }
        };
        if value.get("resourceType").and_then(Value::as_str) != Some("StructureDefinition") {
            continue;
        }
        let (Some(url), Some(ty)) = (
            value.get("url").and_then(Value::as_str),
            value.get("type").and_then(Value::as_str),
        ) else {
            continue;
        };
        profiles
            .by_type
            .entry(ty.to_string())
            .or_default()
            .push(url.to_string());
    }
    profiles
}

/// The CapabilityStatement of this server.
pub fn capability_statement(state: &AppState) -> Value {
    let profiles = state.profiles.load();
    let rules = state.rules.load();
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
    if let Some(urls) = profiles.by_type.get("ServiceRequest") {
        service_request["supportedProfile"] = json!(urls);
    }
    let mut resources = vec![service_request];
    // Profiles of the context resources that travel in Bundles.
    for (ty, urls) in &profiles.by_type {
        if ty != "ServiceRequest" {
            resources.push(json!({ "type": ty, "supportedProfile": urls }));
        }
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
