//! Credentials for the upstream: none, a static bearer token, or SMART Backend Services
//! (client-credentials grant with a signed JWT client assertion, RS384 or ES384, the key a PEM
//! or a JWK file; the access token is cached until shortly before it expires, and fetched again
//! when the upstream says 401). Tokens and keys are never logged or shown in `Debug`.

use super::{jwk, UpstreamArgs};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A token is used until this long before it expires (clock skew, time in flight).
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// SMART Backend Services: the assertion lives at most five minutes.
const ASSERTION_LIFETIME_SECS: u64 = 300;

pub enum Credentials {
    None,
    Static(String),
    Smart(Box<Smart>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "Credentials::None",
            Credentials::Static(_) => "Credentials::Static(..)",
            Credentials::Smart(_) => "Credentials::Smart(..)",
        })
    }
}

pub struct Smart {
    client_id: String,
    token_url: String,
    scope: String,
    key: EncodingKey,
    algorithm: Algorithm,
    key_id: Option<String>,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Credentials {
    /// The credentials the flags ask for; an error says what is missing or unreadable.
    pub fn from_args(args: &UpstreamArgs) -> Result<Self, String> {
        let smart = [
            args.upstream_client_id.is_some(),
            args.upstream_key.is_some(),
            args.upstream_token_url.is_some(),
        ];
        if args.upstream_token.is_some() && smart.iter().any(|s| *s) {
            return Err("give either --upstream-token or the SMART Backend Services flags (--upstream-client-id, --upstream-key, --upstream-token-url), not both".into());
        }
        if let Some(token) = &args.upstream_token {
            if token.trim().is_empty() {
                return Err("--upstream-token is empty".into());
            }
            return Ok(Credentials::Static(token.trim().to_string()));
        }
        if smart.iter().all(|s| !*s) {
            return Ok(Credentials::None);
        }
        let (Some(client_id), Some(key_path), Some(token_url)) = (
            &args.upstream_client_id,
            &args.upstream_key,
            &args.upstream_token_url,
        ) else {
            return Err("SMART Backend Services needs all of --upstream-client-id, --upstream-key and --upstream-token-url".into());
        };
        let bytes = std::fs::read(key_path)
            .map_err(|e| format!("cannot read --upstream-key {}: {e}", key_path.display()))?;
        let (key, algorithm, jwk_kid) = if jwk::looks_like_jwk(&bytes) {
            let k = jwk::from_jwk(&bytes)
                .map_err(|why| format!("--upstream-key {}: {why}", key_path.display()))?;
            if !signs(&k.key, k.algorithm) {
                return Err(format!(
                    "--upstream-key {} is a JWK that cannot sign {:?} (RS384 needs an RSA key of 2048 bits or more with n, e, d, p, q, dp, dq and qi; ES384 an EC P-384 key with d, x and y)",
                    key_path.display(),
                    k.algorithm
                ));
            }
            (k.key, k.algorithm, k.kid)
        } else {
            let (key, algorithm) = signing_key(&bytes).ok_or_else(|| {
                format!(
                    "--upstream-key {} is not an RSA or EC P-384 private key in PEM or JWK (RS384 / ES384)",
                    key_path.display()
                )
            })?;
            (key, algorithm, None)
        };
        Ok(Credentials::Smart(Box::new(Smart {
            client_id: client_id.clone(),
            token_url: token_url.clone(),
            scope: args.upstream_scope.clone(),
            key,
            algorithm,
            // The flag, else the JWK's own kid.
            key_id: args.upstream_key_id.clone().or(jwk_kid),
            cached: tokio::sync::Mutex::new(None),
        })))
    }

    /// Whether a 401 can be cured by fetching a new token.
    pub fn refreshable(&self) -> bool {
        matches!(self, Credentials::Smart(_))
    }

    /// The bearer token to send, fetching (or, with `refresh`, re-fetching) a SMART token.
    pub async fn bearer(
        &self,
        http: &reqwest::Client,
        refresh: bool,
    ) -> Result<Option<String>, String> {
        match self {
            Credentials::None => Ok(None),
            Credentials::Static(t) => Ok(Some(t.clone())),
            Credentials::Smart(s) => s.token(http, refresh).await.map(Some),
        }
    }
}

/// The key and its algorithm: RSA signs RS384, an EC P-384 key ES384. Each is tried by
/// signing once, so a key of the wrong curve is refused at start-up, not on the first order.
fn signing_key(pem: &[u8]) -> Option<(EncodingKey, Algorithm)> {
    let candidates = [
        (EncodingKey::from_rsa_pem(pem).ok(), Algorithm::RS384),
        (EncodingKey::from_ec_pem(pem).ok(), Algorithm::ES384),
    ];
    candidates.into_iter().find_map(|(key, alg)| {
        let key = key?;
        signs(&key, alg).then_some((key, alg))
    })
}

/// Whether `key` signs with `alg` (one probe signature).
fn signs(key: &EncodingKey, alg: Algorithm) -> bool {
    let probe = serde_json::json!({ "probe": true });
    jsonwebtoken::encode(&Header::new(alg), &probe, key).is_ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Smart {
    fn assertion(&self) -> Result<String, String> {
        let now = unix_now();
        let mut header = Header::new(self.algorithm);
        header.typ = Some("JWT".into());
        header.kid = self.key_id.clone();
        let claims = AssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: &self.token_url,
            exp: now + ASSERTION_LIFETIME_SECS,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign the client assertion: {e}"))
    }

    async fn token(&self, http: &reqwest::Client, refresh: bool) -> Result<String, String> {
        // One fetch at a time: callers waiting here get the token the first one fetched.
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if !refresh && Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let assertion = self.assertion()?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.scope.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        let res = http
            .post(&self.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("the token endpoint could not be reached: {e}"))?;
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| format!("the token endpoint's answer was cut off: {e}"))?;
        if !status.is_success() {
            return Err(format!("the token endpoint answered {status}"));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| "the token endpoint's answer has no access_token".to_string())?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(300));
        // Shortly before expiry, but a very short-lived token is still used for half its life.
        let usable = lifetime.saturating_sub(EXPIRY_MARGIN).max(lifetime / 2);
        *cached = Some((token.access_token.clone(), Instant::now() + usable));
        Ok(token.access_token)
    }
}
