//! The parameters of `$validate` (R4 `Resource-validate` at type and instance level, and the
//! gateway's own system-level OperationDefinition in `profiles/`): `mode` and `profile`, from the
//! query string or from the parts of a `Parameters` body. A `profile` the gateway does not have,
//! or a `mode` outside its required binding, is an error (400): the operation "SHALL return an
//! error" when it cannot validate against the profile nominated.

use super::error::ApiError;
use super::negotiate::query_params;
use crate::parse::Format;
use crate::rules::RuleSet;
use serde_json::Value;

/// `mode` (required binding to ResourceValidationMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Would the resource be accepted if POSTed: the decision and every finding.
    Create,
    /// Checked against the nominated profile (as well as the enforced ones): the same answer.
    Profile,
    /// The gateway performs no update or delete (without an upstream server): it cannot say
    /// whether one would succeed.
    Update,
    Delete,
}

impl Mode {
    fn parse(code: &str) -> Option<Self> {
        match code {
            "create" => Some(Mode::Create),
            "profile" => Some(Mode::Profile),
            "update" => Some(Mode::Update),
            "delete" => Some(Mode::Delete),
            _ => None,
        }
    }
}

/// What a `$validate` call asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidateParams {
    /// Canonical URLs of the profiles nominated (query and body together).
    pub profiles: Vec<String>,
    pub mode: Option<Mode>,
}

/// The parts of a `Parameters` body other than `resource`, as `(name, value)`; empty when the
/// body is not a Parameters, or not readable (the engine then says why).
fn parameter_parts(bytes: &[u8], format: Format) -> Vec<(String, Value)> {
    let value: Option<Value> = match format {
        Format::Json => serde_json::from_slice(bytes).ok(),
        Format::Xml => std::str::from_utf8(bytes)
            .ok()
            .filter(|t| t.contains("<Parameters"))
            .and_then(|t| fhir_codec::xml_to_json(t).ok()),
    };
    let Some(value) = value.filter(|v| v["resourceType"] == "Parameters") else {
        return Vec::new();
    };
    value["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.to_string();
            (name != "resource").then(|| (name, p.clone()))
        })
        .collect()
}

/// The value of a primitive part (`valueUri`, `valueCanonical`, `valueCode`, ...).
fn part_value(part: &Value) -> Option<String> {
    part.as_object()?
        .iter()
        .find(|(k, _)| k.starts_with("value"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// Reads and checks `mode` and `profile` of a `$validate` call.
pub fn read(
    query: Option<&str>,
    bytes: &[u8],
    format: Format,
    rules: &RuleSet,
) -> Result<ValidateParams, ApiError> {
    let mut params = ValidateParams::default();
    let mut modes = Vec::new();
    for (name, value) in query_params(query) {
        match name.as_str() {
            "profile" => params.profiles.push(value),
            "mode" => modes.push(value),
            _ => {}
        }
    }
    for (name, part) in parameter_parts(bytes, format) {
        let value = part_value(&part).ok_or_else(|| {
            ApiError::InvalidParameter(format!(
                "The Parameters part '{name}' has no value: {name} is a primitive (valueUri for profile, valueCode for mode)."
            ))
        });
        match name.as_str() {
            "profile" => params.profiles.push(value?),
            "mode" => modes.push(value?),
            // Other parts are not parameters of $validate: ignored, as unknown parameters are.
            _ => {}
        }
    }
    match modes.as_slice() {
        [] => {}
        [one] => {
            params.mode = Some(Mode::parse(one).ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "The mode '{one}' is not a ResourceValidationMode (its binding is required): use create, update, delete or profile."
                ))
            })?)
        }
        _ => {
            return Err(ApiError::InvalidParameter(
                "$validate takes at most one mode.".into(),
            ))
        }
    }
    for url in &params.profiles {
        if rules.conformance.profile(url).is_none() {
            return Err(ApiError::UnknownProfile(url.clone()));
        }
    }
    match params.mode {
        Some(Mode::Profile) if params.profiles.is_empty() => Err(ApiError::InvalidParameter(
            "The mode 'profile' checks against the profile nominated: send a profile as well."
                .into(),
        )),
        Some(m @ (Mode::Update | Mode::Delete)) => {
            Err(ApiError::ModeNotSupported(if m == Mode::Update {
                "update"
            } else {
                "delete"
            }))
        }
        _ => Ok(params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RuleSet {
        RuleSet::load(&crate::load::default_rules_dir()).expect("rules")
    }

    const PROFILE: &str =
        "https://referral-gateway.example.org/fhir/StructureDefinition/imaging-referral";

    #[test]
    fn mode_and_profile_come_from_the_query_or_the_parameters() {
        let rules = rules();
        let body = serde_json::json!({
            "resourceType": "Parameters",
            "parameter": [
                {"name": "resource", "resource": {"resourceType": "ServiceRequest"}},
                {"name": "mode", "valueCode": "profile"},
                {"name": "profile", "valueUri": PROFILE},
            ]
        })
        .to_string();
        let p = read(None, body.as_bytes(), Format::Json, &rules).expect("params");
        assert_eq!(p.mode, Some(Mode::Profile));
        assert_eq!(p.profiles, [PROFILE]);
        let p = read(Some("mode=create"), b"{}", Format::Json, &rules).expect("params");
        assert_eq!(p.mode, Some(Mode::Create));
    }

    #[test]
    fn unknown_profiles_and_modes_are_errors() {
        let rules = rules();
        let unknown = serde_json::json!({
            "resourceType": "Parameters",
            "parameter": [{"name": "profile", "valueUri": "https://example.org/StructureDefinition/x"}]
        })
        .to_string();
        assert!(matches!(
            read(None, unknown.as_bytes(), Format::Json, &rules),
            Err(ApiError::UnknownProfile(_))
        ));
        for q in [
            "mode=everything",
            "mode=profile",
            "mode=create&mode=profile",
        ] {
            assert!(matches!(
                read(Some(q), b"{}", Format::Json, &rules),
                Err(ApiError::InvalidParameter(_))
            ));
        }
        assert!(matches!(
            read(Some("mode=delete"), b"{}", Format::Json, &rules),
            Err(ApiError::ModeNotSupported("delete"))
        ));
    }
}
