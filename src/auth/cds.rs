//! The CDS Hooks 2.0 JWT (contract §8; CDS Hooks "Trusting CDS Clients"): every call to a
//! service carries `Authorization: Bearer` with a JWT signed by the CDS client. It must come from
//! a trusted issuer (`--cds-trusted-issuers`), name its key (`kid`), have `typ` `JWT` and `alg`
//! RS384 or ES384, be meant for the exact service URL (`aud`), be current (`exp`, `iat`, 60 s
//! skew) and not have been seen before (`jti`, in a [`ReplayCache`]).
//!
//! The trusted-issuers file is a JSON object: each key a trusted `iss`, each value one of
//! - a JWKS URL: `"https://ehr.example/jwks.json"` (fetched, refreshed on an unknown kid);
//! - an inline JWKS: `{"keys": [...]}`;
//! - `{"jwks": URL or inline JWKS, "fhirServers": ["https://ehr.example/fhir"], "tenant": "..."}`:
//!   the FHIR servers that issuer may name as `fhirServer`, and the tenant its JWTs must carry.
//!
//! A `jku` header is used only when it equals the issuer's configured JWKS URL; any other is
//! refused (a token must not choose the keys it is checked with).

use super::bearer::{read_header, Refusal, LEEWAY_SECS};
use super::jwks::{KeyError, KeyStore};
use super::{now_secs, Caller};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

/// Algorithms CDS Hooks 2.0 allows.
pub const ALLOWED: &[Algorithm] = &[Algorithm::RS384, Algorithm::ES384];

/// Longest a CDS Hooks JWT may still be valid for (its `jti` is remembered that long). The spec
/// asks clients for 5 minutes at most.
pub const MAX_LIFETIME_SECS: u64 = 3600;

/// Remembers the `jti`s seen, until their tokens expire. In memory per replica by default;
/// replicas that share a consult store share one through it, so that a replay to a second
/// replica is caught too.
pub trait ReplayCache: Send + Sync {
    /// Records `(issuer, jti)` until `expires` (Unix seconds); whether this is its first use.
    fn first_use<'a>(
        &'a self,
        issuer: &'a str,
        jti: &'a str,
        expires: u64,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;
}

/// The replay cache of one process.
#[derive(Default)]
pub struct MemoryReplayCache(Mutex<HashMap<(String, String), u64>>);

impl ReplayCache for MemoryReplayCache {
    fn first_use<'a>(
        &'a self,
        issuer: &'a str,
        jti: &'a str,
        expires: u64,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_secs();
        if seen.len() >= 100_000 {
            seen.retain(|_, until| *until >= now);
        }
        let first = match seen.get(&(issuer.to_string(), jti.to_string())) {
            Some(until) if *until >= now => false,
            _ => {
                seen.insert((issuer.to_string(), jti.to_string()), expires);
                true
            }
        };
        Box::pin(std::future::ready(Ok(first)))
    }
}

/// One trusted CDS client.
pub struct TrustedIssuer {
    keys: KeyStore,
    /// The JWKS URL, when the keys come from one: the only `jku` accepted.
    jwks_url: Option<String>,
    /// The `fhirServer` bases this issuer may send (§7); empty: none.
    pub fhir_servers: Vec<String>,
    /// The `tenant` its JWTs must carry, when configured.
    pub tenant: Option<String>,
}

/// The trust of a verified CDS Hooks call, for the handlers (which `fhirServer` may be used).
#[derive(Clone)]
pub struct CdsTrust {
    pub fhir_servers: Vec<String>,
}

pub struct CdsVerifier {
    /// Swapped whole when the file is read again (SIGHUP).
    issuers: arc_swap::ArcSwap<HashMap<String, Arc<TrustedIssuer>>>,
    /// The trusted-issuers file, when the issuers came from one.
    path: Option<std::path::PathBuf>,
    replays: arc_swap::ArcSwap<Arc<dyn ReplayCache>>,
}

#[derive(serde::Deserialize)]
struct CdsClaims {
    iss: String,
    sub: Option<String>,
    exp: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
    tenant: Option<String>,
}

impl CdsVerifier {
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let mut verifier = Self::with_issuers(read_issuers_file(path)?);
        verifier.path = Some(path.to_path_buf());
        Ok(verifier)
    }

    pub fn from_value(doc: &Value) -> Result<Self, String> {
        Ok(Self::with_issuers(issuers_of(doc)?))
    }

    fn with_issuers(issuers: HashMap<String, Arc<TrustedIssuer>>) -> Self {
        Self {
            issuers: arc_swap::ArcSwap::from_pointee(issuers),
            path: None,
            replays: arc_swap::ArcSwap::from_pointee(
                Arc::new(MemoryReplayCache::default()) as Arc<dyn ReplayCache>
            ),
        }
    }

    /// SIGHUP: reads the trusted-issuers file again and puts it in force whole (issuers
    /// added or removed, keys rotated); on an error the previous trust stays. The number of
    /// trusted issuers now, or `None` when they did not come from a file.
    pub fn reload(&self) -> Result<Option<usize>, String> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let issuers = read_issuers_file(path)?;
        let n = issuers.len();
        self.issuers.store(Arc::new(issuers));
        Ok(Some(n))
    }

    /// Puts the replay cache somewhere shared (the consult store, when replicas share one).
    pub fn set_replay_cache(&self, cache: Arc<dyn ReplayCache>) {
        self.replays.store(Arc::new(cache));
    }

    /// Verifies a CDS Hooks JWT sent to `service_urls` (the URL called; the first is the one
    /// the token is expected to name, others are accepted too).
    pub async fn verify(
        &self,
        token: &str,
        service_urls: &[String],
    ) -> Result<(Caller, CdsTrust), Refusal> {
        let header = read_header(token, ALLOWED)?;
        if header.typ.as_deref() != Some("JWT") {
            return Err(Refusal::Type);
        }
        let kid = header.kid.as_deref().ok_or(Refusal::UnknownKid)?;
        // The issuer is read before the signature is checked, to find its keys; nothing else of
        // the unverified payload is used.
        let iss = unverified_issuer(token).ok_or(Refusal::Malformed)?;
        let trusted = self
            .issuers
            .load()
            .get(&iss)
            .cloned()
            .ok_or(Refusal::Untrusted)?;
        if let Some(jku) = &header.jku {
            if trusted.jwks_url.as_deref() != Some(jku.as_str()) {
                return Err(Refusal::Jku);
            }
        }
        let key = trusted.keys.key(kid).await.map_err(|e| match e {
            KeyError::UnknownKid => Refusal::UnknownKid,
            KeyError::Unavailable(_) => Refusal::KeysUnavailable,
        })?;
        if !key.algorithms.contains(&header.alg) {
            return Err(Refusal::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = key.algorithms.clone();
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&iss]);
        validation.set_audience(service_urls);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<CdsClaims>(token, &key.decoding, &validation)
            .map_err(|e| Refusal::of(&e))?
            .claims;
        // CDS Hooks requires iat and jti too.
        let (Some(exp), Some(iat), Some(jti)) = (claims.exp, claims.iat, claims.jti.as_deref())
        else {
            return Err(Refusal::MissingClaim);
        };
        let now = now_secs();
        if iat > now + LEEWAY_SECS {
            return Err(Refusal::NotYetValid);
        }
        if exp > now + MAX_LIFETIME_SECS {
            return Err(Refusal::Lifetime);
        }
        if let Some(tenant) = &trusted.tenant {
            if claims.tenant.as_deref() != Some(tenant.as_str()) {
                return Err(Refusal::Audience);
            }
        }
        let replays = self.replays.load_full();
        let first = replays
            .first_use(&claims.iss, jti, exp + LEEWAY_SECS)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the jti replay cache failed");
                Refusal::ReplayCacheUnavailable
            })?;
        if !first {
            return Err(Refusal::Replayed);
        }
        Ok((
            Caller {
                client_id: claims.sub.clone().unwrap_or_else(|| claims.iss.clone()),
                issuer: claims.iss,
                subject: claims.sub,
                scopes: Vec::new(),
                tenant: claims.tenant,
            },
            CdsTrust {
                fhir_servers: trusted.fhir_servers.clone(),
            },
        ))
    }
}

/// Reads a trusted-issuers file (the format is in the module's documentation).
fn read_issuers_file(path: &Path) -> Result<HashMap<String, Arc<TrustedIssuer>>, String> {
    let what = format!("--cds-trusted-issuers {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{what}: cannot read: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{what}: not JSON: {e}"))?;
    issuers_of(&doc).map_err(|e| format!("{what}: {e}"))
}

/// The trusted issuers of a trusted-issuers document.
fn issuers_of(doc: &Value) -> Result<HashMap<String, Arc<TrustedIssuer>>, String> {
    let map = doc
        .as_object()
        .ok_or("expected a JSON object of issuer → JWKS")?;
    let mut issuers = HashMap::new();
    for (iss, value) in map {
        let (jwks, fhir_servers, tenant) = match value {
            Value::Object(o) if o.contains_key("jwks") => {
                let servers = match o.get("fhirServers") {
                    None => Vec::new(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|s| {
                            s.as_str()
                                .map(|s| s.trim_end_matches('/').to_string())
                                .ok_or(format!("{iss}: fhirServers must be URLs"))
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(format!("{iss}: fhirServers must be a list")),
                };
                let tenant = match o.get("tenant") {
                    None => None,
                    Some(Value::String(t)) => Some(t.clone()),
                    Some(_) => return Err(format!("{iss}: tenant must be a string")),
                };
                (&o["jwks"], servers, tenant)
            }
            other => (other, Vec::new(), None),
        };
        let (keys, jwks_url) = match jwks {
            Value::String(url) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("{iss}: the JWKS URL {url} is not an http(s) URL"));
                }
                (KeyStore::from_location(url, ALLOWED)?, Some(url.clone()))
            }
            Value::Object(_) => {
                let set: JwkSet = serde_json::from_value(jwks.clone())
                    .map_err(|e| format!("{iss}: not a JWKS: {e}"))?;
                (
                    KeyStore::inline(&set, ALLOWED).map_err(|e| format!("{iss}: {e}"))?,
                    None,
                )
            }
            _ => {
                return Err(format!(
                    "{iss}: expected a JWKS URL, an inline JWKS or {{\"jwks\": ...}}"
                ))
            }
        };
        issuers.insert(
            iss.clone(),
            Arc::new(TrustedIssuer {
                keys,
                jwks_url,
                fhir_servers,
                tenant,
            }),
        );
    }
    Ok(issuers)
}

/// The `iss` of a JWT's payload, unverified.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    serde_json::from_slice::<Iss>(&bytes).ok().map(|i| i.iss)
}
