//! Bearer JWTs of the FHIR routes (contract §8): signature by one of the issuer's keys, with an
//! algorithm from the allow-list; `iss`, `aud`, `exp` and `nbf` with a 60 s skew. A verified
//! token is cached until it expires, so checking it again costs a hash-map lookup.

use super::jwks::{KeyError, KeySource, KeyStore};
use super::{now_secs, Caller};
use jsonwebtoken::{Algorithm, Validation};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Signature algorithms accepted for bearer tokens; never `none`, never HMAC.
pub const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Clock skew allowed on `exp`, `nbf` (and `iat` of CDS Hooks JWTs).
pub const LEEWAY_SECS: u64 = 60;

/// Most verified tokens remembered; past it, expired ones are dropped (or all, if none are).
const CACHE_CAPACITY: usize = 10_000;

/// Why a token was refused: the label of the failure counter, and what the 401 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Algorithm,
    UnknownKid,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    MissingClaim,
    /// CDS Hooks: the `typ` header is not `JWT`.
    Type,
    /// CDS Hooks: `iss` is not a trusted issuer.
    Untrusted,
    /// CDS Hooks: the `jti` was seen before.
    Replayed,
    /// CDS Hooks: `jku` is not the issuer's JWKS URL.
    Jku,
    /// CDS Hooks: `exp` is too far ahead (its `jti` would have to be remembered too long).
    Lifetime,
    /// The keys could not be had: 503, not 401.
    KeysUnavailable,
    /// CDS Hooks: the replay cache (the consult store) could not record the `jti`: 503.
    ReplayCacheUnavailable,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Algorithm => "algorithm",
            Refusal::UnknownKid => "unknown_kid",
            Refusal::Signature => "signature",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Issuer => "issuer",
            Refusal::Audience => "audience",
            Refusal::MissingClaim => "missing_claim",
            Refusal::Type => "type",
            Refusal::Untrusted => "untrusted_issuer",
            Refusal::Replayed => "replayed",
            Refusal::Jku => "jku",
            Refusal::Lifetime => "lifetime",
            Refusal::KeysUnavailable => "keys_unavailable",
            Refusal::ReplayCacheUnavailable => "replay_cache_unavailable",
        }
    }

    /// What the caller is told (never the token or anything from it).
    pub fn explain(self) -> &'static str {
        match self {
            Refusal::Missing => "No bearer token was sent: send `Authorization: Bearer` with an access token from the gateway's issuer.",
            Refusal::Malformed => "The bearer token is not a JWT this gateway can read.",
            Refusal::Algorithm => "The token is signed with an algorithm that is not accepted here (RS256, RS384, ES256, ES384 for access tokens; RS384, ES384 for CDS Hooks), or one its key does not allow.",
            Refusal::UnknownKid => "The token is signed with a key (kid) the issuer does not publish.",
            Refusal::Signature => "The token's signature does not verify.",
            Refusal::Expired => "The token has expired.",
            Refusal::NotYetValid => "The token is not valid yet (nbf or iat in the future).",
            Refusal::Issuer => "The token is not from the issuer this gateway trusts.",
            Refusal::Audience => "The token is not meant for this gateway (aud).",
            Refusal::MissingClaim => "The token lacks a claim this gateway requires.",
            Refusal::Type => "The CDS Hooks JWT must have the header typ \"JWT\".",
            Refusal::Untrusted => "The CDS Hooks JWT is not from a trusted issuer.",
            Refusal::Replayed => "The CDS Hooks JWT was used before (its jti has been seen).",
            Refusal::Jku => "The CDS Hooks JWT's jku is not the JWKS URL configured for its issuer.",
            Refusal::Lifetime => "The CDS Hooks JWT expires too far in the future.",
            Refusal::KeysUnavailable => "The issuer's signing keys cannot be fetched at the moment; try again shortly.",
            Refusal::ReplayCacheUnavailable => "The gateway cannot check the CDS Hooks JWT against the ones already used (its store is unavailable); try again shortly with a new JWT.",
        }
    }

    /// Whether the refusal is the gateway's fault (503 + Retry-After), not the token's (401).
    pub fn unavailable(self) -> bool {
        matches!(
            self,
            Refusal::KeysUnavailable | Refusal::ReplayCacheUnavailable
        )
    }

    /// From a jsonwebtoken validation error.
    pub fn of(e: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => Refusal::Expired,
            K::ImmatureSignature => Refusal::NotYetValid,
            K::InvalidIssuer => Refusal::Issuer,
            K::InvalidAudience => Refusal::Audience,
            K::InvalidSignature => Refusal::Signature,
            K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => {
                Refusal::Algorithm
            }
            K::MissingRequiredClaim(_) => Refusal::MissingClaim,
            _ => Refusal::Malformed,
        }
    }
}

/// The claims read from an access token.
#[derive(Debug, serde::Deserialize)]
struct AccessClaims {
    iss: String,
    /// Optional here so that a token without it is refused as a missing claim (jsonwebtoken
    /// requires it) rather than as unreadable.
    exp: Option<u64>,
    sub: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
    /// OAuth 2 / SMART: space-separated.
    scope: Option<String>,
    /// Some issuers: `scp`, a string or a list.
    scp: Option<OneOrMany>,
    /// Entra ID: application permissions of client-credentials tokens are app roles.
    roles: Option<Vec<String>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl AccessClaims {
    fn scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(s) = &self.scope {
            out.extend(s.split_ascii_whitespace().map(str::to_string));
        }
        match &self.scp {
            Some(OneOrMany::One(s)) => out.extend(s.split_ascii_whitespace().map(str::to_string)),
            Some(OneOrMany::Many(v)) => out.extend(v.iter().cloned()),
            None => {}
        }
        if let Some(r) = &self.roles {
            out.extend(r.iter().cloned());
        }
        out
    }
}

/// The algorithm a JWT's header names, read without trusting it, so that `alg: none` (which
/// jsonwebtoken rightly cannot even parse) is refused as an algorithm, not as garbage.
pub(crate) fn header_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Alg {
        alg: String,
    }
    serde_json::from_slice::<Alg>(&bytes).ok().map(|a| a.alg)
}

/// Reads a JWT's header and checks its `alg` against `allowed`. A header jsonwebtoken cannot
/// read is an algorithm refusal when it still names one (`none`), else malformed.
pub(crate) fn read_header(
    token: &str,
    allowed: &[Algorithm],
) -> Result<jsonwebtoken::Header, Refusal> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| match header_alg(token) {
        Some(_) => Refusal::Algorithm,
        None => Refusal::Malformed,
    })?;
    if !allowed.contains(&header.alg) {
        return Err(Refusal::Algorithm);
    }
    Ok(header)
}

/// Verifies bearer tokens for one issuer.
pub struct BearerVerifier {
    issuer: String,
    /// `--auth-audience`; else the public base URL of the request.
    audience: Option<String>,
    keys: KeyStore,
    /// (audience, token) → the caller and the token's `exp`.
    verified: Mutex<HashMap<(String, String), (Caller, u64)>>,
}

impl BearerVerifier {
    pub fn new(issuer: &str, jwks: Option<&str>, audience: Option<String>) -> Result<Self, String> {
        let keys = match jwks {
            Some(location) => KeyStore::from_location(location, ALLOWED)?,
            None => KeyStore::new(
                KeySource::Discovery {
                    issuer: issuer.to_string(),
                },
                ALLOWED,
            )?,
        };
        Ok(Self {
            issuer: issuer.to_string(),
            audience,
            keys,
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    pub fn token_endpoint(&self) -> Option<&str> {
        self.keys.token_endpoint()
    }

    /// SIGHUP: reads an `--auth-jwks FILE` again. When it changed the keys, the tokens already
    /// verified are forgotten, so that a token of a removed key is refused from now on.
    pub fn reload(&self) -> Result<Option<usize>, String> {
        let reloaded = self.keys.reload_file()?;
        if reloaded.is_some() {
            self.verified
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        Ok(reloaded)
    }

    /// The configured audience, if any.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// Verifies `token` for `audience` (the configured one, else the request's public base).
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Caller, Refusal> {
        let audience = self.audience.as_deref().unwrap_or(audience);
        let now = now_secs();
        let cache_key = (audience.to_string(), token.to_string());
        if let Some((caller, exp)) = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
        {
            if now <= exp + LEEWAY_SECS {
                return Ok(caller.clone());
            }
            return Err(Refusal::Expired);
        }
        let header = read_header(token, ALLOWED)?;
        let kid = header.kid.as_deref().ok_or(Refusal::UnknownKid)?;
        let key = self.keys.key(kid).await.map_err(|e| match e {
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
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|e| Refusal::of(&e))?;
        let claims = data.claims;
        let client_id = claims
            .client_id
            .clone()
            .or_else(|| claims.azp.clone())
            .or_else(|| claims.sub.clone())
            .ok_or(Refusal::MissingClaim)?;
        let caller = Caller {
            issuer: claims.iss.clone(),
            subject: claims.sub.clone(),
            client_id,
            scopes: claims.scopes(),
            tenant: None,
        };
        let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, (_, exp)| now <= *exp + LEEWAY_SECS);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(cache_key, (caller.clone(), claims.exp.unwrap_or(now)));
        Ok(caller)
    }
}
