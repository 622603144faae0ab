//! Content negotiation, and the FHIR layer that writes every FHIR body.
//!
//! In: `Content-Type` picks the parser (`application/fhir+json`, `application/json`,
//! `application/fhir+xml`, `application/xml`, and the older or generic names FHIR lets servers
//! accept: `application/json+fhir`, `text/json`, `application/xml+fhir`, `text/xml`), UTF-8
//! only, FHIR R4 only (`fhirVersion=4.0` when the parameter is sent); without one the body is
//! sniffed.
//! Out: `_format`, else `Accept`, else the request's own format, else JSON; written with the
//! media type the caller named (R4 http.html §mime-type: a generic type such as
//! `application/json` is answered as `application/json`).

use super::error::{ApiError, Failed};
use super::AppState;
use crate::parse::Format;
use crate::rules::RuleSet;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const FHIR_XML: &str = "application/fhir+xml; charset=utf-8";

/// The FHIR version this server speaks, as the `fhirVersion` media type parameter names it
/// (major.minor; `4.0.1` is accepted too).
pub const FHIR_VERSION_PARAMETER: &str = "4.0";

/// Media types accepted in `Content-Type`: FHIR's own, the generic ones, and the names used
/// before STU3 (servers "MAY also support the older mime types").
pub const REQUEST_TYPES: [(&str, Format); 8] = [
    ("application/fhir+json", Format::Json),
    ("application/json", Format::Json),
    ("application/json+fhir", Format::Json),
    ("text/json", Format::Json),
    ("application/fhir+xml", Format::Xml),
    ("application/xml", Format::Xml),
    ("application/xml+fhir", Format::Xml),
    ("text/xml", Format::Xml),
];

/// Media types (and `_format` shorthands) a response can be asked for in: the same as a
/// request can be sent in, plus `json` and `xml`.
const RESPONSE_TYPES: [(&str, Format); 10] = [
    ("json", Format::Json),
    ("application/fhir+json", Format::Json),
    ("application/json", Format::Json),
    ("application/json+fhir", Format::Json),
    ("text/json", Format::Json),
    ("xml", Format::Xml),
    ("application/fhir+xml", Format::Xml),
    ("application/xml", Format::Xml),
    ("application/xml+fhir", Format::Xml),
    ("text/xml", Format::Xml),
];

/// The `format` codes of the CapabilityStatement: what the server reads and writes.
pub const CAPABILITY_FORMATS: [&str; 4] = [
    "json",
    "xml",
    "application/fhir+json",
    "application/fhir+xml",
];

/// What a response is written as: the format, and the media type named in `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub format: Format,
    /// The media type asked for (`application/json`), or FHIR's own for the format.
    pub media: &'static str,
    /// The caller named the FHIR version: the answer names it too.
    pub fhir_version: bool,
}

impl Wanted {
    /// FHIR's own media type for `format`.
    pub fn fhir(format: Format) -> Self {
        Wanted {
            format,
            media: match format {
                Format::Json => "application/fhir+json",
                Format::Xml => "application/fhir+xml",
            },
            fhir_version: false,
        }
    }

    /// The `Content-Type` of the answer.
    pub fn content_type(&self) -> String {
        if self.fhir_version {
            format!(
                "{}; fhirVersion={FHIR_VERSION_PARAMETER}; charset=utf-8",
                self.media
            )
        } else {
            format!("{}; charset=utf-8", self.media)
        }
    }
}

/// The parameters of a media type (`; charset=utf-8; fhirVersion=4.0`) as lower-case names
/// and unquoted values.
fn media_parameters<'a>(parts: impl Iterator<Item = &'a str>) -> Vec<(String, &'a str)> {
    parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"')))
        })
        .collect()
}

/// Whether a `fhirVersion` parameter value names FHIR R4.
fn is_r4(version: &str) -> bool {
    version == FHIR_VERSION_PARAMETER || version == "4.0.1"
}

/// The format of the request body as `Content-Type` declares it; `None` when absent.
pub fn request_format(headers: &HeaderMap) -> Result<Option<Format>, ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::UnsupportedMediaType(String::new()))?;
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let format = REQUEST_TYPES
        .iter()
        .find(|(m, _)| *m == essence)
        .map(|(_, f)| *f)
        .ok_or_else(|| ApiError::UnsupportedMediaType(text.to_string()))?;
    for (key, value) in media_parameters(parts) {
        match key.as_str() {
            "charset"
                if !value.eq_ignore_ascii_case("utf-8") && !value.eq_ignore_ascii_case("utf8") =>
            {
                return Err(ApiError::UnsupportedCharset(value.to_string()));
            }
            // R4 http.html §version-parameter: a body of another FHIR version is not read
            // as R4 (415).
            "fhirversion" if !is_r4(value) => {
                return Err(ApiError::UnsupportedFhirVersion {
                    version: value.to_string(),
                    header: "Content-Type",
                });
            }
            _ => {}
        }
    }
    Ok(Some(format))
}

/// Decodes `%XX` escapes; a `+` stays a `+` (it is part of `application/fhir+json`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(v as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query parameter's first value.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query_params(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Every query parameter, in order, names and values decoded.
pub fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// What a media type (or `_format` value) asks for; `Err` names a FHIR version other than R4.
fn response_type(media: &str) -> Option<Result<Wanted, String>> {
    let mut parts = media.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    // In a query string an unescaped `+` may have been sent for the one in `fhir+json`.
    let essence = essence.replace(' ', "+");
    let (name, format) = RESPONSE_TYPES.iter().find(|(m, _)| *m == essence)?;
    let version = media_parameters(parts)
        .into_iter()
        .find(|(k, _)| k == "fhirversion")
        .map(|(_, v)| v.to_string());
    if let Some(v) = &version {
        if !is_r4(v) {
            return Some(Err(v.clone()));
        }
    }
    let mut wanted = Wanted::fhir(*format);
    // `json` and `xml` are shorthands for FHIR's own types; a media type is answered as named.
    if name.contains('/') {
        wanted.media = name;
    }
    wanted.fhir_version = version.is_some();
    Some(Ok(wanted))
}

/// What the caller asked to get back: `Ok(None)` when it does not mind (then the request's
/// own format is used), an error when it accepts nothing this server writes.
pub fn wanted_format(query: Option<&str>, headers: &HeaderMap) -> Result<Option<Wanted>, ApiError> {
    if let Some(f) = query_param(query, "_format") {
        return match response_type(&f) {
            Some(Ok(w)) => Ok(Some(w)),
            Some(Err(version)) => Err(ApiError::UnsupportedFhirVersion {
                version,
                header: "_format",
            }),
            None => Err(ApiError::NotAcceptable(f)),
        };
    }
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    // The highest-q acceptable type; on a tie, the first listed.
    let mut best: Option<(f32, Option<Wanted>)> = None;
    let mut other_version = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let choice = match media.as_str() {
            "*/*" | "application/*" => None,
            _ => match response_type(item) {
                Some(Ok(w)) => Some(w),
                Some(Err(v)) => {
                    other_version = Some(v);
                    continue;
                }
                None => continue,
            },
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, choice));
        }
    }
    match (best, other_version) {
        (Some((_, choice)), _) => Ok(choice),
        // R4 http.html §version-parameter: only another FHIR version is acceptable (406).
        (None, Some(version)) => Err(ApiError::UnsupportedFhirVersion {
            version,
            header: "Accept",
        }),
        (None, None) => Err(ApiError::NotAcceptable(accept.to_string())),
    }
}

pub use super::extensions::{CurrentRules, NotFhir};

/// The format the request body was read in (after sniffing), for the response's default.
#[derive(Clone, Copy)]
pub struct SentFormat(pub Format);

/// A FHIR resource to send: the FHIR layer writes it in the negotiated format.
#[derive(Clone)]
pub struct Resource(pub Arc<Value>);

/// A FHIR answer of a handler.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(Resource(Arc::new(self.body)));
        res
    }
}

/// A FHIR request body with the format to read it in, and the rules in force.
pub struct FhirBody {
    pub bytes: Bytes,
    pub format: Format,
    pub rules: Arc<RuleSet>,
}

impl<S: Send + Sync> FromRequest<S> for FhirBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared = request_format(req.headers())?;
        let rules = req
            .extensions()
            .get::<CurrentRules>()
            .map(|c| c.0.clone())
            .ok_or_else(|| ApiError::Internal("the FHIR layer is missing".into()))?;
        let BodyLimit { bytes: limit, time } = req
            .extensions()
            .get::<BodyLimit>()
            .copied()
            .unwrap_or(BodyLimit {
                bytes: usize::MAX,
                time: None,
            });
        let read = Bytes::from_request(req, state);
        // A total deadline, not an idle one: a client trickling one byte a second never idles
        // long enough to trip tower-http's per-frame body timeout.
        let read = match time {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .map_err(|_| ApiError::BodyTimeout {
                    secs: t.as_secs().max(1),
                })?,
            None => read.await,
        };
        let bytes = read.map_err(|r| ApiError::from_bytes_rejection(&r, limit))?;
        let format = declared
            .or_else(|| Format::sniff(&bytes))
            .unwrap_or(Format::Json);
        Ok(FhirBody {
            bytes,
            format,
            rules,
        })
    }
}

/// The configured body limits: its size (for the message of a 413) and the time allowed to
/// receive it (408 after it).
#[derive(Clone, Copy)]
pub struct BodyLimit {
    pub bytes: usize,
    pub time: Option<std::time::Duration>,
}

fn is_fhir(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+"))
}

/// The FHIR layer: loads the rules for the request, and writes every FHIR answer and every
/// error as FHIR JSON or XML, as negotiated. A bare error response of an inner layer (the
/// 405 of the router, 413 of the body limit, 503 of the timeout) becomes an OperationOutcome.
pub async fn fhir_layer(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let rules = state.engine.rules();
    let wanted = wanted_format(req.uri().query(), req.headers());
    let declared = request_format(req.headers()).ok().flatten();
    let pretty = query_param(req.uri().query(), "_pretty").is_some_and(|v| v == "true");
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    req.extensions_mut().insert(CurrentRules(rules.clone()));
    req.extensions_mut().insert(BodyLimit {
        bytes: state.max_body_bytes,
        time: Some(state.body_timeout),
    });

    let res = next.run(req).await;
    if res.extensions().get::<NotFhir>().is_some() {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let status = parts.status;
    // Under /cds-services every answer is CDS Hooks JSON, errors of the layers included.
    if super::cds_hooks::is_cds_path(&path)
        && (status.is_client_error() || status.is_server_error())
    {
        let error = match parts.extensions.remove::<Failed>() {
            Some(Failed(err)) => err.to_string(),
            None => ApiError::from_status(
                status,
                &method,
                &path,
                state.max_body_bytes,
                state.timeout.as_secs(),
            )
            .to_string(),
        };
        let mut res = super::cds_hooks::error_response(status, error);
        for (name, value) in parts.headers.iter() {
            if name != CONTENT_TYPE && name != CONTENT_LENGTH {
                res.headers_mut().append(name.clone(), value.clone());
            }
        }
        return res;
    }
    let resource = if let Some(Failed(err)) = parts.extensions.remove::<Failed>() {
        err.answer(&rules.site).body
    } else if let Some(Resource(value)) = parts.extensions.remove::<Resource>() {
        Arc::unwrap_or_clone(value)
    } else if (status.is_client_error() || status.is_server_error()) && !is_fhir(&parts.headers) {
        let err = ApiError::from_status(
            status,
            &method,
            &path,
            state.max_body_bytes,
            state.timeout.as_secs(),
        );
        err.answer(&rules.site).body
    } else {
        // Not FHIR (the Prometheus text of /metrics).
        return Response::from_parts(parts, body);
    };
    let wanted = match wanted {
        Ok(w) => w.unwrap_or_else(|| {
            Wanted::fhir(
                parts
                    .extensions
                    .get::<SentFormat>()
                    .map(|s| s.0)
                    .or(declared)
                    .unwrap_or(Format::Json),
            )
        }),
        Err(e) => {
            // Nothing the caller accepts: say so, in JSON.
            let answer = e.answer(&rules.site);
            parts.status = e.status();
            return write(parts, answer.body, Wanted::fhir(Format::Json), false).await;
        }
    };
    write(parts, resource, wanted, pretty).await
}

/// Whether XML 1.0 can carry `c` at all (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Replaces the characters XML cannot carry (control characters, quoted from a bad request in
/// an error message, say) with U+FFFD, so that an answer written as XML is always well-formed.
/// fhirbolt writes them as they are.
pub fn xml_safe(value: &mut Value) {
    match value {
        Value::String(s) if !s.chars().all(xml_char) => {
            *s = s
                .chars()
                .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
                .collect();
        }
        Value::Array(items) => items.iter_mut().for_each(xml_safe),
        Value::Object(map) => map.values_mut().for_each(xml_safe),
        _ => {}
    }
}

/// Writes a FHIR resource into the response.
async fn write(
    mut parts: axum::http::response::Parts,
    resource: Value,
    wanted: Wanted,
    pretty: bool,
) -> Response {
    parts.headers.remove(CONTENT_LENGTH);
    let content_type = wanted.content_type();
    let (bytes, content_type) = match wanted.format {
        Format::Json => {
            let bytes = if pretty {
                serde_json::to_vec_pretty(&resource)
            } else {
                serde_json::to_vec(&resource)
            };
            (bytes.unwrap_or_default(), content_type)
        }
        Format::Xml => {
            // fhirbolt is CPU-bound on large Bundles.
            let converted = tokio::task::spawn_blocking(move || {
                let mut resource = resource;
                xml_safe(&mut resource);
                fhir_codec::json_to_xml(&resource)
            })
            .await;
            match converted {
                Ok(Ok(xml)) => (xml.into_bytes(), content_type),
                other => {
                    let why = match other {
                        Ok(Err(e)) => e.message,
                        Err(e) => e.to_string(),
                        Ok(Ok(_)) => String::new(),
                    };
                    tracing::error!(error = %why, "cannot write the answer as XML");
                    parts.status = StatusCode::INTERNAL_SERVER_ERROR;
                    let oo = serde_json::json!({
                        "resourceType": "OperationOutcome",
                        "issue": [{
                            "severity": "error",
                            "code": "exception",
                            "details": { "text": "The answer could not be written as FHIR XML; ask for JSON (_format=json)." }
                        }]
                    });
                    (
                        serde_json::to_vec(&oo).unwrap_or_default(),
                        FHIR_JSON.to_string(),
                    )
                }
            }
        }
    };
    parts.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static(FHIR_JSON)),
    );
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn content_types() {
        let ct = |v: &str| request_format(&headers(&[("content-type", v)]));
        assert_eq!(ct("application/fhir+json").ok(), Some(Some(Format::Json)));
        assert_eq!(
            ct("Application/FHIR+XML; charset=UTF-8").ok(),
            Some(Some(Format::Xml))
        );
        assert_eq!(
            ct("application/json;charset=\"utf-8\";fhirVersion=4.0").ok(),
            Some(Some(Format::Json))
        );
        assert!(matches!(
            ct("application/json; charset=iso-8859-1"),
            Err(ApiError::UnsupportedCharset(_))
        ));
        assert!(matches!(
            ct("text/plain"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert_eq!(request_format(&HeaderMap::new()).ok(), Some(None));
    }

    #[test]
    fn format_parameter_then_accept() {
        let none = HeaderMap::new();
        let format =
            |q: Option<&str>, h: &HeaderMap| wanted_format(q, h).ok().map(|w| w.map(|w| w.format));
        assert_eq!(format(Some("_format=xml"), &none), Some(Some(Format::Xml)));
        assert_eq!(
            format(Some("a=1&_format=application/fhir%2Bxml"), &none),
            Some(Some(Format::Xml))
        );
        assert_eq!(
            format(Some("_format=application/fhir+json"), &none),
            Some(Some(Format::Json))
        );
        assert!(matches!(
            wanted_format(Some("_format=yaml"), &none),
            Err(ApiError::NotAcceptable(_))
        ));
        let xml = headers(&[("accept", "application/fhir+xml")]);
        assert_eq!(format(None, &xml), Some(Some(Format::Xml)));
        assert_eq!(format(Some("_format=json"), &xml), Some(Some(Format::Json)));
        let q = headers(&[(
            "accept",
            "application/fhir+xml;q=0.5, application/fhir+json;q=0.9",
        )]);
        assert_eq!(format(None, &q), Some(Some(Format::Json)));
        let browser = headers(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]);
        assert_eq!(format(None, &browser), Some(None));
        let bad = headers(&[("accept", "text/plain")]);
        assert!(wanted_format(None, &bad).is_err());
    }

    /// R4 http.html §mime-type: a generic type asked for is the type answered.
    #[test]
    fn the_media_type_asked_for_is_the_one_answered() {
        let ct = |accept: &str| {
            wanted_format(None, &headers(&[("accept", accept)]))
                .ok()
                .flatten()
                .map(|w| w.content_type())
        };
        assert_eq!(
            ct("application/json").as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(ct("text/xml").as_deref(), Some("text/xml; charset=utf-8"));
        assert_eq!(
            ct("application/fhir+json; fhirVersion=4.0").as_deref(),
            Some("application/fhir+json; fhirVersion=4.0; charset=utf-8")
        );
        assert_eq!(
            wanted_format(Some("_format=json"), &HeaderMap::new())
                .ok()
                .flatten()
                .map(|w| w.content_type())
                .as_deref(),
            Some("application/fhir+json; charset=utf-8")
        );
    }

    /// R4 http.html §version-parameter: another FHIR version is refused, 415 sent, 406 asked.
    #[test]
    fn other_fhir_versions_are_refused() {
        let sent = request_format(&headers(&[(
            "content-type",
            "application/fhir+json; fhirVersion=3.0",
        )]));
        assert!(matches!(sent, Err(ref e) if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE));
        let asked = wanted_format(
            None,
            &headers(&[("accept", "application/fhir+json; fhirVersion=3.0")]),
        );
        assert!(matches!(asked, Err(ref e) if e.status() == StatusCode::NOT_ACCEPTABLE));
        // Another acceptable type listed beside it is used.
        let either = wanted_format(
            None,
            &headers(&[(
                "accept",
                "application/fhir+json; fhirVersion=3.0, application/fhir+xml; fhirVersion=4.0",
            )]),
        );
        assert_eq!(either.ok().flatten().map(|w| w.format), Some(Format::Xml));
        for ok in [
            "application/json+fhir",
            "text/xml",
            "text/json; fhirVersion=4.0.1",
        ] {
            assert!(
                request_format(&headers(&[("content-type", ok)])).is_ok(),
                "{ok}"
            );
        }
    }

    /// Found by fuzzing: a roxmltree message quoted a control character from the request, and
    /// the answer written as XML was not well-formed.
    #[test]
    fn answers_written_as_xml_carry_no_control_characters() {
        let mut v = serde_json::json!({ "a": ["ok\u{e}", { "b": "\u{0}\t\u{FFFF}" }], "n": 1 });
        xml_safe(&mut v);
        assert_eq!(
            v,
            serde_json::json!({ "a": ["ok\u{FFFD}", { "b": "\u{FFFD}\t\u{FFFD}" }], "n": 1 })
        );
    }

    #[test]
    fn percent_decoding_keeps_plus() {
        assert_eq!(percent_decode("a%2Fb+c%zz"), "a/b+c%zz");
    }
}
