//! The one error type of the HTTP front end. Every failure, extractor rejections and the bare
//! responses of tower-http layers (408/413/405 ...) included, ends up as an [`ApiError`] whose
//! answer is a FHIR OperationOutcome with the right status.
//!
//! `IntoResponse` puts the error itself in the response's extensions; the FHIR layer
//! ([`super::negotiate::fhir_layer`]) writes it out as an OperationOutcome with the current
//! site's code systems, in the format the caller asked for. That layer is always present.

use crate::fhirpath::FhirPath;
use crate::finding::{Finding, FindingId, IssueType, Severity};
use crate::outcome::operation_outcome::plain_outcome;
use crate::outcome::response::{unusable_answer, Answer};
use crate::parse::Unusable;
use crate::site::Site;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Every way a request can fail outside the decision itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("no endpoint at {path}")]
    NotFound { path: String },
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("unsupported charset: {0}")]
    UnsupportedCharset(String),
    #[error("no acceptable response format: {0}")]
    NotAcceptable(String),
    /// A `fhirVersion` media type parameter naming another FHIR version: 415 in
    /// `Content-Type`, 406 in `Accept` or `_format` (R4 http.html §version-parameter).
    #[error("FHIR version {version} in {header}")]
    UnsupportedFhirVersion {
        version: String,
        header: &'static str,
    },
    #[error("body over {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("body could not be read")]
    BodyUnreadable,
    #[error("{found} sent to {endpoint}, which takes {expected}")]
    WrongResourceType {
        endpoint: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("no {resource_type} with id {id}")]
    UnknownResource { resource_type: String, id: String },
    /// A read of a resource type the gateway decides on but never stores.
    #[error("{resource_type}/{id} is not stored")]
    NotStored {
        resource_type: &'static str,
        id: String,
    },
    #[error("unknown profile {0}")]
    UnknownProfile(String),
    /// An operation parameter that is not valid (the sentence says which and why).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A `$validate` mode the gateway cannot answer (`update`, `delete`).
    #[error("$validate mode {0} is not supported")]
    ModeNotSupported(&'static str),
    /// An instance-level call whose resource has another id than the URL.
    #[error("resource id {resource_id} at the URL of id {url_id}")]
    IdMismatch { url_id: String, resource_id: String },
    #[error("request timed out after {secs} s")]
    Timeout { secs: u64 },
    /// The client did not finish sending the body in time (a slow or stalled upload).
    #[error("request body not received within {secs} s")]
    BodyTimeout { secs: u64 },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("shutting down")]
    ShuttingDown,
    /// A decision sink (e.g. the consult store) could not take the decision, so the answer is
    /// not given.
    #[error("the decision could not be recorded: {0}")]
    NotRecorded(String),
    /// The consult record cannot be read (or the read recorded) now: 503 with `Retry-After`.
    #[error("the consult store is unavailable: {0}")]
    StoreUnavailable(String),
    /// The server runs with `--store none`: there is no consult record to read.
    #[error("no consult store")]
    NoStore,
    /// A search the gateway cannot run as asked (unknown parameter, bad value).
    #[error("bad search: {0}")]
    BadSearch(String),
    /// A bare error status from a layer that none of the above describes.
    #[error("HTTP {0}")]
    Status(u16),
}

/// `Retry-After` of a 503 for a consult that could not be recorded (or read).
pub const STORE_RETRY_AFTER_SECS: u64 = 2;

/// The error carried to the FHIR layer in the response's extensions.
#[derive(Debug, Clone)]
pub struct Failed(pub Arc<ApiError>);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. }
            | ApiError::UnknownResource { .. }
            | ApiError::NotStored { .. } => StatusCode::NOT_FOUND,
            ApiError::UnknownProfile(_)
            | ApiError::InvalidParameter(_)
            | ApiError::ModeNotSupported(_)
            | ApiError::IdMismatch { .. } => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) | ApiError::UnsupportedCharset(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedFhirVersion { header, .. } => {
                if *header == "Content-Type" {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                } else {
                    StatusCode::NOT_ACCEPTABLE
                }
            }
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyUnreadable | ApiError::WrongResourceType { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Timeout { .. }
            | ApiError::ShuttingDown
            | ApiError::NotRecorded(_)
            | ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NoStore => StatusCode::NOT_FOUND,
            ApiError::BadSearch(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Status(s) => {
                StatusCode::from_u16(*s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// The error a bare (non-FHIR) error response of a layer stands for.
    pub fn from_status(
        status: StatusCode,
        method: &str,
        path: &str,
        limit: usize,
        secs: u64,
    ) -> Self {
        match status {
            StatusCode::NOT_FOUND => ApiError::NotFound { path: path.into() },
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed {
                method: method.into(),
                path: path.into(),
            },
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit },
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
                ApiError::Timeout { secs }
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(String::new()),
            other => ApiError::Status(other.as_u16()),
        }
    }

    /// The error of a failed body read.
    pub fn from_bytes_rejection(r: &BytesRejection, limit: usize) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BodyUnreadable
        }
    }

    /// The OperationOutcome of this error, with the status it goes out with.
    pub fn answer(&self, site: &Site) -> Answer {
        let status = self.status().as_u16();
        let plain = |id: FindingId, code: IssueType, text: String| Answer {
            status,
            body: plain_outcome(&[Finding::new(id, Severity::Error, code, text)], site),
        };
        match self {
            ApiError::NotFound { path } => plain(
                FindingId::HttpNotFound, IssueType::NotFound,
                format!(
                    "There is nothing at {path}. This gateway serves POST /ServiceRequest, POST / (batch or transaction Bundle), POST /ServiceRequest/$validate, POST /ServiceRequest/{{id}}/$validate, POST /$validate, GET /metadata, GET /health, GET /metrics, the conformance resources (GET /StructureDefinition, /CodeSystem, /ValueSet, /ConceptMap, /SearchParameter, /OperationDefinition and /{{type}}/{{id}}) and the CDS Hooks services under /cds-services."
                ),
            ),
            ApiError::UnknownResource { resource_type, id } => plain(
                FindingId::HttpUnknownResource, IssueType::NotFound,
                format!("This gateway has no {resource_type} with id '{id}'. GET /{resource_type} lists the ones it has."),
            ),
            ApiError::NotStored { resource_type, id } => plain(
                FindingId::HttpNotStored, IssueType::NotFound,
                format!("There is no {resource_type}/{id} here: this gateway decides on each {resource_type} sent to it and stores none, so none can be read back."),
            ),
            ApiError::UnknownProfile(url) => plain(
                FindingId::HttpUnknownProfile, IssueType::NotSupported,
                format!("The profile {url} is not one this gateway has, so it cannot validate against it. GET /StructureDefinition lists the profiles it has."),
            ),
            ApiError::InvalidParameter(why) => plain(FindingId::HttpInvalidParameter, IssueType::Invalid, why.clone()),
            ApiError::ModeNotSupported(mode) => plain(
                FindingId::HttpModeNotSupported, IssueType::NotSupported,
                format!("$validate cannot answer mode '{mode}': this gateway performs no update or delete (it decides on requests and stores nothing), so it cannot say whether one would succeed. Use mode create (the default) or profile."),
            ),
            ApiError::IdMismatch { url_id, resource_id } => plain(
                FindingId::HttpIdMismatch, IssueType::Invalid,
                format!("The ServiceRequest has the id '{resource_id}', but the URL names ServiceRequest/{url_id}: they must be the same."),
            ),
            ApiError::MethodNotAllowed { method, path } => plain(
                FindingId::HttpMethodNotAllowed, IssueType::NotSupported,
                format!("{method} is not supported on {path}; the Allow header lists the methods that are."),
            ),
            ApiError::UnsupportedMediaType(ct) => plain(
                FindingId::HttpUnsupportedMediaType, IssueType::NotSupported,
                format!(
                    "The Content-Type{} is not supported: send application/fhir+json or application/fhir+xml (application/json, application/xml, text/json, text/xml and the older application/json+fhir and application/xml+fhir are accepted too).",
                    if ct.is_empty() { String::new() } else { format!(" '{ct}'") }
                ),
            ),
            ApiError::UnsupportedCharset(cs) => plain(
                FindingId::HttpUnsupportedCharset, IssueType::NotSupported,
                format!("The charset '{cs}' is not supported: FHIR JSON and XML are sent in UTF-8."),
            ),
            ApiError::NotAcceptable(asked) => plain(
                FindingId::HttpNotAcceptable, IssueType::NotSupported,
                format!("This gateway cannot answer as '{asked}': ask for application/fhir+json or application/fhir+xml (_format json or xml)."),
            ),
            ApiError::UnsupportedFhirVersion { version, header } => plain(
                FindingId::HttpUnsupportedFhirVersion, IssueType::NotSupported,
                format!("{header} names FHIR version '{version}': this gateway reads and writes FHIR R4 only (fhirVersion=4.0)."),
            ),
            ApiError::PayloadTooLarge { limit } => unusable_answer(
                &Unusable::TooCostly(vec![Finding::new(FindingId::HttpPayloadTooLarge,
                    Severity::Error,
                    IssueType::TooCostly,
                    format!("The body is larger than this gateway accepts ({limit} bytes). Send fewer or smaller resources; split large Bundles."),
                )]),
                site,
            ),
            ApiError::BodyUnreadable => plain(
                FindingId::HttpBodyUnreadable, IssueType::Incomplete,
                "The request body could not be read to its end.".into(),
            ),
            ApiError::WrongResourceType {
                endpoint,
                expected,
                found,
            } => unusable_answer(
                &Unusable::Malformed(vec![Finding::new(FindingId::HttpWrongResourceType,
                    Severity::Error,
                    IssueType::Invalid,
                    format!("{endpoint} takes {expected}, not a {found}. Send a ServiceRequest to POST /ServiceRequest, a batch or transaction Bundle to POST /, and anything to check without a decision to POST /$validate."),
                )
                .at(FhirPath::root(found))]),
                site,
            ),
            ApiError::Timeout { secs } => plain(
                FindingId::HttpTimeout, IssueType::Timeout,
                format!("The request was not finished within {secs} s. Try again; send large Bundles in smaller parts."),
            ),
            ApiError::BodyTimeout { secs } => plain(
                FindingId::HttpBodyTimeout, IssueType::Timeout,
                format!("The request body was not received within {secs} s. Send the whole body at once; the connection is closed."),
            ),
            ApiError::Internal(_) => plain(
                FindingId::HttpInternal, IssueType::Exception,
                "The gateway failed on this request. It has been logged under the X-Request-Id of this response; please report that id.".into(),
            ),
            ApiError::ShuttingDown => Answer {
                status,
                body: plain_outcome(
                    &[Finding::new(FindingId::HttpShuttingDown, Severity::Error, IssueType::Transient, "The gateway is shutting down.")],
                    site,
                ),
            },
            ApiError::NotRecorded(_) => Answer {
                status,
                body: plain_outcome(
                    &[Finding::new(FindingId::HttpNotRecorded,
                        Severity::Error,
                        IssueType::Transient,
                        format!("The decision could not be recorded in the consult record, so it is not given: every decision is recorded before it is answered. Send the request again in {STORE_RETRY_AFTER_SECS} seconds; if it goes on, report the X-Request-Id of this response."),
                    )],
                    site,
                ),
            },
            ApiError::StoreUnavailable(_) => Answer {
                status,
                body: plain_outcome(
                    &[Finding::new(FindingId::HttpStoreUnavailable,
                        Severity::Error,
                        IssueType::Transient,
                        format!("The consult record cannot be read now. Try again in {STORE_RETRY_AFTER_SECS} seconds."),
                    )],
                    site,
                ),
            },
            ApiError::NoStore => plain(
                FindingId::HttpNoStore, IssueType::NotFound,
                "This gateway runs without a consult record (--store none): there are no AuditEvents, Provenances or statistics to read.".into(),
            ),
            ApiError::BadSearch(why) => plain(FindingId::HttpBadSearch, IssueType::Invalid, format!("The search cannot be run: {why}.")),
            ApiError::Status(s) => plain(
                FindingId::HttpStatus, IssueType::Processing,
                format!(
                    "The request failed: HTTP {s} {}.",
                    self.status().canonical_reason().unwrap_or("")
                ),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(why) => tracing::error!(error = %why, "internal error"),
            ApiError::NotRecorded(why) => tracing::error!(error = %why, "decision not recorded"),
            ApiError::StoreUnavailable(why) => {
                tracing::error!(error = %why, "the consult store cannot be read")
            }
            _ => {}
        }
        let mut res = status.into_response();
        if matches!(
            self,
            ApiError::NotRecorded(_) | ApiError::StoreUnavailable(_)
        ) {
            // The store recovers by itself (it reconnects or reopens on the next call).
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(STORE_RETRY_AFTER_SECS),
            );
        }
        res.extensions_mut().insert(Failed(Arc::new(self)));
        res
    }
}
