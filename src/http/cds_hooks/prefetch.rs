//! The prefetch fallback (contract §7; CDS Hooks 2.0 "Prefetch" and "FHIR Resource Access"): a
//! prefetch key the CDS client did not send, or answered with an OperationOutcome, is fetched
//! from the request's `fhirServer` with `fhirAuthorization.access_token` as a Bearer token, so
//! that the age and organisation rules can decide.
//!
//! - Only from a `fhirServer` that the trusted-issuers file (`--cds-trusted-issuers`) lists
//!   under `fhirServers` for the issuer of the call's JWT: never from a URL the request alone
//!   names. Without that file no `fhirServer` is allowed.
//! - Only the discovery document's own templates ([`super::discovery::PREFETCH`]), their
//!   tokens filled from the checked context (FHIR ids only), on that base; a template whose
//!   tokens the context cannot fill (`{{userPractitionerId}}` when the user is a
//!   PractitionerRole) is not required. A server that ignores `_include` is asked for the
//!   role's organisation and practitioner by reading their relative references.
//! - Redirects are not followed (the token goes nowhere else); one deadline for all of it.
//! - When a `fhirServer` was given and the data still cannot be had (not allowed, no
//!   `fhirAuthorization`, refused, unreachable, too slow, not usable), the call is answered
//!   `412` (the specification's "unable to obtain required data"). A `404` is the server's
//!   answer that there is no such data: like a prefetch of `null`. Without a `fhirServer`
//!   nothing is fetched and the cards say what was missing.

use super::discovery::PREFETCH;
use super::request::{check_patient, read_prefetched, HookRequest, Prefetched, PREFETCH_TYPES};
use crate::http::outbound::pooled_client;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The deadline when none is configured (`--upstream-timeout-secs`' default).
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The client of the fallback: the pooled client of the upstream calls, and one deadline per
/// CDS Hooks call.
pub struct Fetcher {
    http: Option<reqwest::Client>,
    deadline: Duration,
}

/// Why the data the call needs cannot be had: the `412` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Unobtainable {
    pub error: String,
    pub details: Vec<String>,
}

impl Fetcher {
    /// `upstream_timeout_secs` (0: the default) bounds the fallback, and at most half of the
    /// request's own timeout, so the call is still answered in time.
    pub fn new(upstream_timeout_secs: u64, request_timeout: Duration) -> Self {
        let configured = match upstream_timeout_secs {
            0 => DEFAULT_DEADLINE,
            s => Duration::from_secs(s),
        };
        let deadline = configured
            .min(request_timeout / 2)
            .max(Duration::from_millis(100));
        let http = match pooled_client(deadline) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client of the CDS Hooks prefetch fallback; calls that need it will be answered 412");
                None
            }
        };
        Self { http, deadline }
    }

    /// Fetches what the client should have prefetched and did not, when the request names a
    /// `fhirServer` in `allowed` (the trusted issuer's `fhirServers`). Returns the keys filled.
    pub async fn complete(
        &self,
        request: &mut HookRequest,
        allowed: &[String],
    ) -> Result<Vec<&'static str>, Unobtainable> {
        let wanted = wanted(request);
        if wanted.is_empty() || !request.draft_orders.iter().any(|o| request.is_decided(o)) {
            return Ok(Vec::new());
        }
        let Some(server) = request.fhir_server.clone() else {
            return Ok(Vec::new());
        };
        let keys: Vec<&str> = wanted.iter().map(|(k, _)| *k).collect();
        let missing = format!(
            "the prefetch keys `{}` were not sent and cannot be fetched from fhirServer",
            keys.join("`, `")
        );
        if !allowed.contains(&server) {
            return Err(Unobtainable {
                error: missing,
                details: vec![format!(
                    "fhirServer {server} is not one this service may call for the issuer of this call: the trusted-issuers file (--cds-trusted-issuers) lists the fhirServers of each issuer; send the prefetch instead"
                )],
            });
        }
        let Some(token) = request.fhir_authorization.clone() else {
            return Err(Unobtainable {
                error: missing,
                details: vec!["fhirAuthorization was not sent: the service has no access token for fhirServer; send the prefetch, or fhirAuthorization".into()],
            });
        };
        let Some(http) = &self.http else {
            return Err(Unobtainable {
                error: missing,
                details: vec!["the service's HTTP client is not available".into()],
            });
        };
        let call = Arc::new(Call {
            http: http.clone(),
            base: server.clone(),
            token: token.0,
        });
        let fetched = match tokio::time::timeout(self.deadline, call.all(wanted)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "fhirServer did not answer within {} ms",
                self.deadline.as_millis()
            )),
        };
        let fetched = fetched.map_err(|why| Unobtainable {
            error: missing.clone(),
            details: vec![why],
        })?;
        let mut problems = Vec::new();
        let mut filled = Vec::new();
        for (key, value) in fetched {
            let expected = PREFETCH_TYPES
                .iter()
                .find(|(k, _)| *k == key)
                .map_or("", |(_, t)| *t);
            let value = match value {
                Some(v) => read_prefetched(key, expected, &v, &mut problems),
                None => Prefetched::NoData,
            };
            if value == Prefetched::Failed {
                problems.push(format!(
                    "fhirServer answered {key} with an OperationOutcome"
                ));
            }
            if let Some(slot) = request.prefetch.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
                filled.push(key);
            }
        }
        check_patient(&request.prefetch, &request.patient_id, &mut problems);
        if !problems.is_empty() {
            return Err(Unobtainable {
                error: format!(
                    "what fhirServer answered for `{}` is not usable",
                    keys.join("`, `")
                ),
                details: problems,
            });
        }
        Ok(filled)
    }
}

/// The keys to fetch and their queries: those not sent or failed, whose template the context
/// fills.
fn wanted(request: &HookRequest) -> Vec<(&'static str, String)> {
    request
        .prefetch
        .iter()
        .filter(|(_, p)| matches!(p, Prefetched::NotSent | Prefetched::Failed))
        .filter_map(|(key, _)| {
            let template = PREFETCH.iter().find(|(k, _)| k == key)?.1;
            Some((*key, fill(template, request)?))
        })
        .collect()
}

/// A template with its tokens filled from the context; `None` when a token cannot be. The
/// values are checked FHIR ids (`A-Z a-z 0-9 - .`), safe in a path and a query.
fn fill(template: &str, request: &HookRequest) -> Option<String> {
    let (user_type, user_id) = request.user_id.split_once('/')?;
    let mut out = template.replace("{{context.patientId}}", &request.patient_id);
    let tokens = [
        ("{{userPractitionerId}}", "Practitioner"),
        ("{{userPractitionerRoleId}}", "PractitionerRole"),
    ];
    for (token, ty) in tokens {
        if out.contains(token) {
            if user_type != ty {
                return None;
            }
            out = out.replace(token, user_id);
        }
    }
    (!out.contains("{{") && !request.patient_id.is_empty()).then_some(out)
}

/// The calls of one CDS Hooks request to its `fhirServer`.
struct Call {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Call {
    /// Every wanted key at once; a key's value is `None` when the server has no such data.
    async fn all(
        self: Arc<Self>,
        wanted: Vec<(&'static str, String)>,
    ) -> Result<Vec<(&'static str, Option<Value>)>, String> {
        let answers = each(&self, &wanted, |call, (key, query)| async move {
            call.key(key, &query).await
        })
        .await;
        let mut out = Vec::new();
        for ((key, _), answer) in wanted.iter().zip(answers) {
            out.push((*key, answer?));
        }
        Ok(out)
    }

    async fn key(self: Arc<Self>, key: &'static str, query: &str) -> Result<Option<Value>, String> {
        let mut value = self.get(key, query).await?;
        if key == "practitionerRole" {
            if let Some(bundle) = &mut value {
                self.add_role_references(key, bundle).await?;
            }
        }
        Ok(value)
    }

    /// A server that ignored `_include`: the organisation and practitioner the roles refer to
    /// (relative references on the same server only), read and added to the search Bundle.
    async fn add_role_references(
        self: &Arc<Self>,
        key: &'static str,
        bundle: &mut Value,
    ) -> Result<(), String> {
        let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
            return Ok(());
        };
        let resources: Vec<&Value> = entries.iter().filter_map(|e| e.get("resource")).collect();
        let present = |reference: &str| {
            resources.iter().any(|r| {
                format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap_or(""),
                    r["id"].as_str().unwrap_or("")
                ) == reference
            })
        };
        let mut reads = Vec::new();
        for role in resources
            .iter()
            .filter(|r| r["resourceType"] == "PractitionerRole")
        {
            for (field, ty) in [
                ("organization", "Organization"),
                ("practitioner", "Practitioner"),
            ] {
                let Some(reference) = role[field]["reference"].as_str() else {
                    continue;
                };
                let reference = reference
                    .strip_prefix(self.base.as_str())
                    .map_or(reference, |r| r.trim_start_matches('/'));
                let relative = reference
                    .split_once('/')
                    .is_some_and(|(t, id)| t == ty && is_fhir_id(id));
                if relative && !present(reference) && !reads.iter().any(|r| r == reference) {
                    reads.push(reference.to_string());
                }
            }
        }
        let found = each(self, &reads, |call, reference: String| async move {
            call.get(key, &reference).await
        })
        .await;
        let mut added = Vec::new();
        for resource in found {
            if let Some(r) = resource? {
                added.push(serde_json::json!({ "resource": r }));
            }
        }
        if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
            entries.extend(added);
        }
        Ok(())
    }

    /// One GET: the JSON body of a 2xx, `None` for 404 / 410, else why not.
    async fn get(&self, key: &str, query: &str) -> Result<Option<Value>, String> {
        let res = self
            .http
            .get(format!("{}/{query}", self.base))
            .header(reqwest::header::ACCEPT, "application/fhir+json")
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_connect() {
                    "could not be reached"
                } else if e.is_timeout() {
                    "did not answer in time"
                } else {
                    "failed in transport"
                };
                format!("fetching {key} from fhirServer: the call {why}")
            })?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 => ": the access token of fhirAuthorization was refused",
                300..=399 => ": a redirect, which this service does not follow",
                _ => "",
            };
            return Err(format!(
                "fetching {key} from fhirServer: it answered {}{hint}",
                status.as_u16()
            ));
        }
        let body = res
            .bytes()
            .await
            .map_err(|_| format!("fetching {key} from fhirServer: the answer was cut off"))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|_| format!("fetching {key} from fhirServer: the answer is not JSON"))
    }
}

/// A FHIR `id`.
fn is_fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Runs each call of `calls` at once on the runtime; the answers in the same order.
async fn each<T, F, Fut>(call: &Arc<Call>, items: &[T], f: F) -> Vec<Result<Option<Value>, String>>
where
    T: Clone + Send + 'static,
    F: Fn(Arc<Call>, T) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Value>, String>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, item) in items.iter().enumerate() {
        let fut = f(call.clone(), item.clone());
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Result<Option<Value>, String>> = items
        .iter()
        .map(|_| Err("the fetch did not finish".to_string()))
        .collect();
    while let Some(done) = set.join_next().await {
        if let Ok((i, answer)) = done {
            out[i] = answer;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::cds_hooks::discovery;
    use serde_json::json;

    fn request(user: &str, prefetch: Value) -> HookRequest {
        let body = json!({
            "hook": "order-sign",
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "fhirServer": "https://ehr.test/fhir/",
            "context": {
                "userId": user,
                "patientId": "p-1",
                "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [
                    {"resource": {"resourceType": "ServiceRequest", "id": "o1", "status": "draft", "intent": "order", "subject": {"reference": "Patient/p-1"}}}
                ]},
            },
            "prefetch": prefetch,
        });
        let service = discovery::service("imaging-referral-order-sign").expect("service");
        HookRequest::from_json(&body, service).expect("valid request")
    }

    #[test]
    fn only_templates_the_context_fills_are_wanted() {
        let r = request("PractitionerRole/r-1", json!({}));
        assert_eq!(r.fhir_server.as_deref(), Some("https://ehr.test/fhir"));
        let w = wanted(&r);
        assert_eq!(
            w,
            vec![
                ("patient", "Patient/p-1".to_string()),
                ("practitionerRole", "PractitionerRole?_id=r-1&_include=PractitionerRole:organization&_include=PractitionerRole:practitioner".to_string()),
            ]
        );
        let r = request(
            "Practitioner/d-1",
            json!({"patient": null, "practitioner": {"resourceType": "OperationOutcome"}}),
        );
        assert_eq!(
            wanted(&r),
            vec![("practitioner", "Practitioner/d-1".to_string())]
        );
    }

    #[test]
    fn a_server_not_listed_for_the_issuer_is_never_called() {
        let mut r = request("PractitionerRole/r-1", json!({}));
        let fetcher = Fetcher::new(1, Duration::from_secs(30));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let err = rt
            .block_on(fetcher.complete(&mut r, &["https://other.test/fhir".into()]))
            .expect_err("not allowed");
        assert!(
            err.details[0].contains("not one this service may call"),
            "{err:?}"
        );
        assert_eq!(
            r.prefetch_not_sent(),
            ["patient", "practitioner", "practitionerRole"]
        );
    }
}
