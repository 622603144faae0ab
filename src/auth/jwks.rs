//! An issuer's signing keys: a JWKS from a URL (directly, or found by OpenID Connect
//! discovery) or given inline / in a file, cached by `kid`.
//!
//! A token whose `kid` is not in the cache makes the cache fetch the JWKS again (the issuer has
//! rotated its keys), but at most once per [`MIN_REFRESH`]: a flood of tokens with made-up kids
//! costs the issuer one request per interval, not one per token.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Least time between two fetches of a JWKS caused by unknown kids.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);

/// Time allowed for one fetch of a discovery document or JWKS.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest JWKS or discovery document read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `{issuer}/.well-known/openid-configuration` names the JWKS.
    Discovery {
        issuer: String,
    },
    Url(String),
    /// Keys given inline (in the trusted-issuers file): never fetched.
    Inline,
    /// Keys read from a file (`--auth-jwks FILE`): read again on SIGHUP, never fetched.
    File(std::path::PathBuf),
}

/// One usable key: what it verifies and the algorithms it may be used with.
pub struct Key {
    pub decoding: DecodingKey,
    /// The allowed algorithms this key's type (and `alg`, when the JWK names one) permits.
    pub algorithms: Vec<Algorithm>,
}

/// Why no key could be had for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// No key with that kid, even after a refresh (or a refresh was not allowed yet).
    UnknownKid,
    /// The keys could not be fetched (the issuer is down, or sent nonsense).
    Unavailable(String),
}

pub struct KeyStore {
    source: KeySource,
    allowed: &'static [Algorithm],
    http: reqwest::Client,
    keys: arc_swap::ArcSwap<HashMap<String, Arc<Key>>>,
    /// When the keys were last fetched; the lock also makes concurrent misses fetch once.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Found by discovery.
    token_endpoint: OnceLock<String>,
    jwks_uri: OnceLock<String>,
}

impl KeyStore {
    pub fn new(source: KeySource, allowed: &'static [Algorithm]) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for JWKS: {e}"))?;
        Ok(Self {
            source,
            allowed,
            http,
            keys: arc_swap::ArcSwap::from_pointee(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            token_endpoint: OnceLock::new(),
            jwks_uri: OnceLock::new(),
        })
    }

    /// Keys given inline.
    pub fn inline(set: &JwkSet, allowed: &'static [Algorithm]) -> Result<Self, String> {
        let store = Self::new(KeySource::Inline, allowed)?;
        let keys = usable_keys(set, allowed);
        if keys.is_empty() {
            return Err("the JWKS has no usable signing key (each needs a kid, and a type the allowed algorithms can use)".into());
        }
        store.keys.store(Arc::new(keys));
        Ok(store)
    }

    /// A JWKS from a file, or a URL to fetch it from.
    pub fn from_location(location: &str, allowed: &'static [Algorithm]) -> Result<Self, String> {
        if location.starts_with("https://") || location.starts_with("http://") {
            Self::new(KeySource::Url(location.to_string()), allowed)
        } else {
            let path = std::path::PathBuf::from(location);
            let store = Self::new(KeySource::File(path.clone()), allowed)?;
            store.keys.store(Arc::new(read_key_file(&path, allowed)?));
            Ok(store)
        }
    }

    /// SIGHUP: reads a JWKS file again (the keys of other sources are fetched when an unknown
    /// kid is met). `Ok(Some(n))`: `n` keys now in force; `Ok(None)`: not a file; on an error
    /// the previous keys stay.
    pub fn reload_file(&self) -> Result<Option<usize>, String> {
        let KeySource::File(path) = &self.source else {
            return Ok(None);
        };
        let keys = read_key_file(path, self.allowed)?;
        let n = keys.len();
        self.keys.store(Arc::new(keys));
        Ok(Some(n))
    }

    /// Whether the keys are never fetched (inline, or a file).
    fn fixed(&self) -> bool {
        matches!(self.source, KeySource::Inline | KeySource::File(_))
    }

    /// The token endpoint, once discovery has run.
    pub fn token_endpoint(&self) -> Option<&str> {
        self.token_endpoint.get().map(String::as_str)
    }

    /// The JWKS URL: the configured one, or the one discovery found.
    pub fn jwks_url(&self) -> Option<&str> {
        match &self.source {
            KeySource::Url(u) => Some(u),
            _ => self.jwks_uri.get().map(String::as_str),
        }
    }

    /// The key with this kid, fetching the keys again when it is unknown (rate-limited).
    pub async fn key(&self, kid: &str) -> Result<Arc<Key>, KeyError> {
        if let Some(k) = self.keys.load().get(kid) {
            return Ok(k.clone());
        }
        if self.fixed() {
            return Err(KeyError::UnknownKid);
        }
        let mut last = self.last_fetch.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(k) = self.keys.load().get(kid) {
            return Ok(k.clone());
        }
        let never_fetched = last.is_none();
        if last.is_some_and(|t| t.elapsed() < MIN_REFRESH) {
            return Err(KeyError::UnknownKid);
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => self.keys.store(Arc::new(keys)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the issuer's keys");
                if never_fetched {
                    // Let the next request try again at once: the issuer may just be starting.
                    *last = None;
                }
                return Err(KeyError::Unavailable(e));
            }
        }
        self.keys
            .load()
            .get(kid)
            .cloned()
            .ok_or(KeyError::UnknownKid)
    }

    /// Fetches the keys now (at start-up, so that the first request does not wait).
    pub async fn warm_up(&self) {
        if self.fixed() {
            return;
        }
        let mut last = self.last_fetch.lock().await;
        match self.fetch().await {
            Ok(keys) => {
                *last = Some(Instant::now());
                tracing::info!(keys = keys.len(), "issuer keys fetched");
                self.keys.store(Arc::new(keys));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the issuer's keys yet; will retry on the first request")
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<Key>>, String> {
        let url = match &self.source {
            KeySource::Inline | KeySource::File(_) => return Ok(self.keys.load().as_ref().clone()),
            KeySource::Url(u) => u.clone(),
            KeySource::Discovery { issuer } => match self.jwks_uri.get() {
                Some(u) => u.clone(),
                None => {
                    let doc = discover(&self.http, issuer).await?;
                    let _ = self
                        .token_endpoint
                        .set(doc.token_endpoint.unwrap_or_default());
                    let _ = self.jwks_uri.set(doc.jwks_uri.clone());
                    doc.jwks_uri
                }
            },
        };
        let bytes = get_document(&self.http, &url).await?;
        let set: JwkSet =
            serde_json::from_slice(&bytes).map_err(|e| format!("{url} is not a JWKS: {e}"))?;
        Ok(usable_keys(&set, self.allowed))
    }
}

/// The parts of an OpenID Connect discovery document the gateway uses.
#[derive(serde::Deserialize)]
pub(crate) struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
}

/// Reads `{issuer}/.well-known/openid-configuration` (API tokens' keys and the console's
/// sign-in both start here).
pub(crate) async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let bytes = get_document(http, &url).await?;
    let doc: Discovery = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{url} is not an OpenID Connect discovery document: {e}"))?;
    // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
    if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(format!(
            "{url} names the issuer {}, not {issuer}",
            doc.issuer
        ));
    }
    Ok(doc)
}

/// GETs a JSON document from an identity provider: a non-2xx answer is an error, and so is a
/// body over [`MAX_DOCUMENT_BYTES`].
async fn get_document(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut res = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", res.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The usable keys of a JWKS file; an error when it has none.
fn read_key_file(
    path: &std::path::Path,
    allowed: &[Algorithm],
) -> Result<HashMap<String, Arc<Key>>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the JWKS file {shown}: {e}"))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| format!("the JWKS file {shown} is not a JWKS: {e}"))?;
    let keys = usable_keys(&set, allowed);
    if keys.is_empty() {
        return Err(format!("the JWKS file {shown} has no usable signing key (each needs a kid, and a type the allowed algorithms can use)"));
    }
    Ok(keys)
}

/// The signing keys of a JWKS that have a kid and suit one of the allowed algorithms.
fn usable_keys(set: &JwkSet, allowed: &[Algorithm]) -> HashMap<String, Arc<Key>> {
    set.keys
        .iter()
        .filter_map(|jwk| Some((jwk.common.key_id.clone()?, usable_key(jwk, allowed)?)))
        .map(|(kid, key)| (kid, Arc::new(key)))
        .collect()
}

fn usable_key(jwk: &Jwk, allowed: &[Algorithm]) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    // Only asymmetric keys: an "oct" key would let anyone holding it (or the public key,
    // taken as an HMAC secret) sign tokens.
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[Algorithm::RS256, Algorithm::RS384],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            jsonwebtoken::jwk::EllipticCurve::P256 => &[Algorithm::ES256],
            jsonwebtoken::jwk::EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        _ => return None,
    };
    let named = jwk
        .common
        .key_algorithm
        .as_ref()
        .and_then(|a| a.to_string().parse::<Algorithm>().ok());
    let algorithms: Vec<Algorithm> = family
        .iter()
        .copied()
        .filter(|a| allowed.contains(a))
        .filter(|a| named.is_none_or(|n| n == *a))
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        decoding,
        algorithms,
    })
}
