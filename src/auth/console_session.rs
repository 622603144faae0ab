//! Signing in to the console (contract §9; the HTTP side is `http::console_session`): with authentication on, a browser signs in to
//! `/console` with OpenID Connect against the gateway's issuer (`--auth-issuer`), as the public
//! client `--console-client-id`: authorization code with PKCE (S256), `state` bound to the
//! browser by a cookie, `nonce` checked in the ID token.
//!
//! - The session is a random id (244 random bits) in a cookie `HttpOnly; Secure;
//!   SameSite=Lax; Path=/console`; what it stands for (the user, the scopes of the access token)
//!   stays in this process, in memory, until the access token expires (8 hours at most). Behind
//!   a load balancer with several replicas, make console sessions sticky.
//! - Every state-changing request (anything but GET / HEAD) must come from the gateway's own
//!   pages: its `Origin` (else `Referer`) must be the public base URL's origin, and a
//!   `Sec-Fetch-Site` other than `same-origin` is refused. With `SameSite=Lax` a cross-site
//!   form cannot even carry the session.
//! - Reading consults (`/console/consults`, `/console/dashboard`) needs the scope of the FHIR
//!   reads of consults, `system/AuditEvent.rs`, in the access token the sign-in got.
//! - Without authentication the console is served to loopback clients only.
//!
//! The ID token and the access token are verified with the issuer's keys (the same key store
//! as the bearer tokens, [`super::bearer`]); neither is logged or put in a cookie.

use super::bearer::{read_header, ALLOWED, LEEWAY_SECS};
use super::{now_secs, Caller, Gate};
use axum::http::header::COOKIE;
use axum::http::HeaderMap;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The session cookie.
pub const SESSION_COOKIE: &str = "rg_console";
/// The cookie that binds a sign-in in progress (its `state`) to the browser that started it.
pub const LOGIN_COOKIE: &str = "rg_console_login";
/// Where the issuer sends the browser back.
pub const CALLBACK_PATH: &str = "/console/callback";
pub const LOGOUT_PATH: &str = "/console/logout";

/// Longest a session lasts (shorter when the access token expires sooner).
const MAX_SESSION_SECS: u64 = 8 * 3600;
/// Time allowed to sign in at the issuer.
pub const LOGIN_SECS: u64 = 600;
/// Most sign-ins in progress and sessions held (past it, expired ones are dropped; then the
/// oldest sign-ins in progress).
const MAX_ENTRIES: usize = 10_000;
/// The scopes asked for: the ID token, and the scope of the consult reads (contract §8).
const SCOPE: &str = "openid system/AuditEvent.rs";

/// The issuer's endpoints, from its discovery document.
#[derive(Clone)]
struct Endpoints {
    authorization: String,
    token: String,
}

/// A sign-in in progress, by its `state`.
pub struct Pending {
    verifier: String,
    nonce: String,
    redirect_uri: String,
    /// The console page asked for, to return to.
    pub back_to: String,
    started: u64,
}

/// A signed-in user.
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub expires: u64,
}

/// Console sign-in, configured by `--console-client-id`.
pub struct ConsoleAuth {
    client_id: String,
    issuer: String,
    http: reqwest::Client,
    endpoints: tokio::sync::Mutex<Option<Endpoints>>,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl ConsoleAuth {
    pub fn new(client_id: &str, issuer: &str) -> Result<Self, String> {
        if client_id.trim().is_empty() {
            return Err("--console-client-id is empty".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client for console sign-in: {e}"))?;
        Ok(Self {
            client_id: client_id.to_string(),
            issuer: issuer.trim_end_matches('/').to_string(),
            http,
            endpoints: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The session of a cookie value, if it is current.
    pub fn session(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(id) {
            Some(s) if s.expires > now_secs() => Some(s.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    async fn endpoints(&self) -> Result<Endpoints, String> {
        let mut slot = self.endpoints.lock().await;
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let doc = crate::auth::jwks::discover(&self.http, &self.issuer).await?;
        let (Some(authorization), Some(token)) = (doc.authorization_endpoint, doc.token_endpoint)
        else {
            return Err(format!(
                "{} names no authorization or token endpoint: the issuer cannot sign users in",
                self.issuer
            ));
        };
        let e = Endpoints {
            authorization,
            token,
        };
        *slot = Some(e.clone());
        Ok(e)
    }

    /// Starts a sign-in: where to send the browser (the issuer's authorization endpoint) and
    /// the `state` to bind to it with [`LOGIN_COOKIE`].
    pub async fn start(
        &self,
        base: &str,
        audience: &str,
        back_to: &str,
    ) -> Result<(String, String), String> {
        let endpoints = self.endpoints().await?;
        let state = random_token();
        let verifier = random_token();
        let nonce = random_token();
        let redirect_uri = format!("{base}{CALLBACK_PATH}");
        let challenge = base64_url(&sha2::Sha256::digest(verifier.as_bytes()));
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            // RFC 8707: an access token for the gateway (its audience), whose scopes count.
            .append_pair("resource", audience)
            .finish();
        let sep = if endpoints.authorization.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!("{}{sep}{query}", endpoints.authorization);
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let now = now_secs();
            if pending.len() >= MAX_ENTRIES {
                pending.retain(|_, p| p.started + LOGIN_SECS > now);
                if pending.len() >= MAX_ENTRIES {
                    pending.clear();
                }
            }
            pending.insert(
                state.clone(),
                Pending {
                    verifier,
                    nonce,
                    redirect_uri,
                    back_to: back_to.to_string(),
                    started: now,
                },
            );
        }
        Ok((location, state))
    }

    /// The issuer sent the browser back: checks the state against the browser's cookie, trades
    /// the code (with the PKCE verifier) for tokens, verifies them and opens a session.
    pub async fn finish(
        &self,
        gate: &Gate,
        params: &CallbackParams,
        login_cookie: Option<&str>,
        audience: &str,
    ) -> Result<(String, Pending, Session), Refused> {
        let state = params.state.as_deref().ok_or(Refused::Bad("no state"))?;
        if login_cookie != Some(state) {
            return Err(Refused::Bad(
                "this sign-in was not started by this browser (state and cookie differ)",
            ));
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(state)
            .ok_or(Refused::Bad("unknown or already used sign-in state"))?;
        if pending.started + LOGIN_SECS < now_secs() {
            return Err(Refused::Bad("the sign-in took too long; start again"));
        }
        if let Some(error) = &params.error {
            // Only a short, plain code is repeated (it is shown to the user).
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(Refused::Issuer(code));
        }
        // RFC 9207: when the issuer names itself, it must be this one (mix-up attacks).
        if let Some(iss) = &params.iss {
            if iss.trim_end_matches('/') != self.issuer {
                return Err(Refused::Bad("the answer is from another issuer"));
            }
        }
        let code = params.code.as_deref().ok_or(Refused::Bad("no code"))?;
        let endpoints = self.endpoints().await.map_err(Refused::Unavailable)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &pending.redirect_uri)
            .append_pair("client_id", &self.client_id)
            .append_pair("code_verifier", &pending.verifier)
            .finish();
        let res = self
            .http
            .post(&endpoints.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Refused::Unavailable(format!("token endpoint: {e}")))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| Refused::Unavailable(format!("token endpoint: {e}")))?;
        #[derive(serde::Deserialize)]
        struct Tokens {
            access_token: Option<String>,
            id_token: Option<String>,
            expires_in: Option<u64>,
            error: Option<String>,
        }
        let tokens: Tokens = serde_json::from_slice(&bytes).map_err(|_| {
            Refused::Unavailable(format!("token endpoint: HTTP {status}, not JSON"))
        })?;
        if !status.is_success() {
            let code = tokens.error.unwrap_or_default();
            tracing::warn!(status = %status, error = %code, "console sign-in: the token endpoint refused the code");
            return Err(Refused::Bad("the issuer did not accept the sign-in code"));
        }
        let (Some(access), Some(id_token)) = (tokens.access_token, tokens.id_token) else {
            return Err(Refused::Bad(
                "the issuer sent no access token or no ID token",
            ));
        };
        let bearer = gate
            .bearer
            .as_ref()
            .ok_or(Refused::Bad("authentication is not configured"))?;
        let subject = self
            .verify_id_token(bearer, &id_token, &pending.nonce)
            .await?;
        let mut caller = bearer
            .verify(&access, audience)
            .await
            .map_err(|r| Refused::Token(r.label()))?;
        // The user, not the console's client, is who reads.
        caller.subject = Some(subject.clone());
        caller.client_id = subject;
        let lifetime = tokens.expires_in.unwrap_or(3600).min(MAX_SESSION_SECS);
        let session = Session {
            caller,
            expires: now_secs() + lifetime,
        };
        let id = random_token();
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            if sessions.len() >= MAX_ENTRIES {
                let now = now_secs();
                sessions.retain(|_, s| s.expires > now);
            }
            if sessions.len() >= MAX_ENTRIES {
                return Err(Refused::Unavailable("too many console sessions".into()));
            }
            sessions.insert(id.clone(), session.clone());
        }
        Ok((id, pending, session))
    }

    /// The ID token's `sub`, once its signature, `iss`, `aud` (this client), `exp` and `nonce`
    /// are checked.
    async fn verify_id_token(
        &self,
        bearer: &super::bearer::BearerVerifier,
        token: &str,
        nonce: &str,
    ) -> Result<String, Refused> {
        let header = read_header(token, ALLOWED).map_err(|r| Refused::Token(r.label()))?;
        let kid = header.kid.as_deref().ok_or(Refused::Token("unknown_kid"))?;
        let key = bearer
            .keys()
            .key(kid)
            .await
            .map_err(|_| Refused::Token("unknown_kid"))?;
        if !key.algorithms.contains(&header.alg) {
            return Err(Refused::Token("algorithm"));
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.algorithms = key.algorithms.clone();
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[bearer.issuer(), &self.issuer]);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        #[derive(serde::Deserialize)]
        struct IdClaims {
            sub: String,
            nonce: Option<String>,
        }
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key.decoding, &validation)
            .map_err(|e| Refused::Token(super::bearer::Refusal::of(&e).label()))?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(Refused::Token("nonce"));
        }
        Ok(claims.sub)
    }

    pub fn end(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// Why a sign-in failed.
pub enum Refused {
    /// The request is wrong (400).
    Bad(&'static str),
    /// The issuer said no (`error=` on the callback): 401.
    Issuer(String),
    /// A token did not verify: 401, by reason.
    Token(&'static str),
    /// The issuer cannot be reached: 503.
    Unavailable(String),
}

#[derive(serde::Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// 244 random bits (two v4 UUIDs, from the operating system's generator), as 64 hex digits.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of cookie `name` in the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + end])
}

/// Whether a state-changing request comes from the console's own pages (CSRF).
pub fn same_origin(headers: &HeaderMap, base: &str) -> bool {
    let Some(own) = origin_of(base) else {
        return false;
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" {
            return false;
        }
    }
    let claimed = headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .map(str::to_string)
        .or_else(|| {
            headers
                .get("referer")
                .and_then(|v| v.to_str().ok())
                .and_then(origin_of)
                .map(str::to_string)
        });
    claimed.is_some_and(|o| o.eq_ignore_ascii_case(own))
}

/// Whether a console path shows consults (and so needs the consult-read scope).
pub fn reads_consults(path: &str) -> bool {
    ["/console/consults", "/console/dashboard"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://gw.example/fhir"),
            Some("https://gw.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("nonsense"), None);
    }

    #[test]
    fn csrf_checks() {
        use axum::http::HeaderValue;
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        let base = "https://gw.example/fhir";
        assert!(same_origin(&h(&[("origin", "https://gw.example")]), base));
        assert!(same_origin(
            &h(&[("referer", "https://gw.example/console/playground")]),
            base
        ));
        assert!(!same_origin(
            &h(&[("origin", "https://evil.example")]),
            base
        ));
        assert!(!same_origin(&h(&[]), base), "no origin at all is refused");
        assert!(!same_origin(&h(&[("origin", "null")]), base));
        assert!(!same_origin(
            &h(&[
                ("origin", "https://gw.example"),
                ("sec-fetch-site", "cross-site")
            ]),
            base
        ));
    }

    #[test]
    fn cookies_are_read_by_name() {
        use axum::http::HeaderValue;
        let mut m = HeaderMap::new();
        m.insert(COOKIE, HeaderValue::from_static("a=1; rg_console=abc; b=2"));
        assert_eq!(cookie(&m, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&m, LOGIN_COOKIE), None);
    }

    #[test]
    fn consult_pages_need_the_scope() {
        assert!(reads_consults("/console/consults"));
        assert!(reads_consults("/console/dashboard"));
        assert!(!reads_consults("/console"));
        assert!(!reads_consults("/console/playground"));
    }
}
