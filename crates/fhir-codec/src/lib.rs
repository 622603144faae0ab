//! The one crate of the workspace that calls `fhirbolt`.
//!
//! fhirbolt's deserializers are generic and are compiled inside whichever crate calls them
//! (minutes, gigabytes). Keeping every call behind this small, non-generic API means the
//! gateway itself rebuilds in seconds.
//!
//! Everything goes through fhirbolt's `Resource` enum, never a typed resource struct:
//! fhirbolt 0.4.0 mis-parses typed `Bundle`s and typed resources whose `contained` comes
//! first (a format flag of its shared parser state is switched at the first nested resource
//! and never restored), while the enum path is correct on every shape. See the regression
//! tests at the bottom of this file.

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

/// What kind of problem fhirbolt reported. Classified here, once, from serde's wording, so
/// that no caller reads the message to tell one kind from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// An element R4 does not define here (`name`).
    UnknownField {
        name: String,
    },
    /// A value that is none of the names R4 allows (an unknown `resourceType`, for instance).
    UnknownVariant,
    /// A required element is missing (`name`).
    MissingField {
        name: String,
    },
    /// A value of the wrong JSON type (a string where R4 wants an object, ...).
    InvalidType,
    Other,
}

/// A problem fhirbolt reported: its kind, and its message as fhirbolt wrote it (serde wording,
/// for diagnostics only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CodecError {
    fn new(message: String) -> Self {
        // serde's de::Error messages: "unknown field `x`, expected one of ...", "unknown variant
        // `x`, expected ...", "missing field `x`", "invalid type: ...".
        let named = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .map(str::to_string)
        };
        let kind = if let Some(name) = named("unknown field `") {
            ErrorKind::UnknownField { name }
        } else if message.starts_with("unknown variant") {
            ErrorKind::UnknownVariant
        } else if let Some(name) = named("missing field `") {
            ErrorKind::MissingField { name }
        } else if message.starts_with("invalid type: ") {
            ErrorKind::InvalidType
        } else {
            ErrorKind::Other
        };
        Self { kind, message }
    }

    /// The message without serde's list of the names it expected (it can run to fifty).
    pub fn brief(&self) -> &str {
        self.message
            .split(", expected one of")
            .next()
            .unwrap_or(&self.message)
    }

    /// What an `InvalidType` message says after "invalid type: ", brief.
    pub fn detail(&self) -> &str {
        let b = self.brief();
        b.strip_prefix("invalid type: ").unwrap_or(b)
    }
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodecError {}

fn err(e: impl std::fmt::Display) -> CodecError {
    CodecError::new(e.to_string())
}

/// fhirbolt 0.4.0 panics on any empty JSON array (`"reasonCode": []`: an `unwrap` on `None` in
/// `fhirbolt-serde` `element/de.rs` line 163). FHIR forbids empty arrays anyway and the gateway
/// reports them itself, so they are removed from the copy fhirbolt reads.
fn without_empty_arrays(value: &Value) -> Value {
    // Children first: an array that only held empty arrays is empty afterwards.
    let is_empty_array = |v: &Value| matches!(v, Value::Array(a) if a.is_empty());
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_empty_arrays(v)))
                .filter(|(_, v)| !is_empty_array(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(without_empty_arrays)
                .filter(|v| !is_empty_array(v))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs a fhirbolt call so that a panic inside fhirbolt becomes an error, never a crash.
fn guarded<T>(f: impl FnOnce() -> Result<T, CodecError>) -> Result<T, CodecError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(CodecError {
            kind: ErrorKind::Other,
            message: "the FHIR parser failed on this input".into(),
        })
    })
}

fn read(resource: &Value) -> Result<Resource, CodecError> {
    let copy = without_empty_arrays(resource);
    guarded(|| fhirbolt::json::from_json_value(copy, strict()).map_err(err))
}

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig {
        mode: DeserializationMode::Strict,
    })
}

/// Reads one JSON resource into the R4 model (strict: unknown elements and wrong JSON types are
/// errors) and writes it back as JSON. The caller compares the two to find what fhirbolt
/// silently normalised (a single object where the model wants an array, for instance).
pub fn round_trip_json(resource: &Value) -> Result<Value, CodecError> {
    let parsed = read(resource)?;
    guarded(|| fhirbolt::json::to_json_value(parsed, None).map_err(err))
}

/// Whether one JSON resource fits the R4 model (strict). Cheaper than [`round_trip_json`].
pub fn check_json(resource: &Value) -> Result<(), CodecError> {
    read(resource).map(|_| ())
}

/// Reads an R4 XML resource and gives it as FHIR JSON.
pub fn xml_to_json(xml: &str) -> Result<Value, CodecError> {
    guarded(|| {
        let parsed: Resource = fhirbolt::xml::from_str(xml, strict()).map_err(err)?;
        fhirbolt::json::to_json_value(parsed, None).map_err(err)
    })
}

/// Writes a FHIR JSON resource as R4 XML.
pub fn json_to_xml(resource: &Value) -> Result<String, CodecError> {
    let parsed = read(resource)?;
    guarded(|| fhirbolt::xml::to_string(&parsed, None).map_err(err))
}
