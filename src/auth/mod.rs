//! Authentication and transport security (contract §8), as a layer over the HTTP front end.
//!
//! - `http::guard` (the HTTP side of this layer): the one middleware that decides, route by
//!   route, what a request needs and answers 401 / 403 / 429 when it lacks it; the
//!   authenticated [`Caller`] goes into the request's extensions (the consult's agent, §6);
//! - [`bearer`]: bearer JWTs of the FHIR routes, verified against the issuer's keys
//!   ([`jwks`]), with a cache of verified tokens; [`scope`]: SMART v2 and v1 scopes;
//! - [`console_session`]: signing in to the console (OpenID Connect, code + PKCE), its session
//!   cookie and CSRF checks;
//! - [`cds`]: the CDS Hooks 2.0 JWT, trusted issuers from a file, the `jti` replay cache;
//!   [`replay`]: that cache in the consult store, shared by the replicas of one store;
//! - [`rate`]: per-client token buckets; [`proxy`]: the client address and public base URL
//!   behind trusted proxies; [`request_id`]: the caller's `X-Request-Id`, bounded;
//! - [`tls`]: TLS and mutual TLS with rustls, the certificate reloaded on SIGHUP.
//!
//! Nothing here logs a token, key or assertion: failures are logged and counted by reason only.

pub mod bearer;
pub mod cds;
pub mod console_session;
pub mod jwks;
pub mod proxy;
pub mod rate;
pub mod replay;
pub mod request_id;
pub mod scope;
pub mod tls;

use ipnet::IpNet;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The security options of `serve` (the flags of the same names, `cli::AuthFlags`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthArgs {
    /// OpenID Connect issuer of the bearer tokens of the FHIR routes: its discovery document
    /// (`{issuer}/.well-known/openid-configuration`) gives the JWKS; tokens must carry this
    /// `iss`. Turns authentication of the FHIR routes on.
    pub auth_issuer: Option<String>,
    /// The issuer's keys as a JWKS URL or file, instead of discovery (`--auth-issuer` still
    /// names the `iss` that tokens must carry).
    pub auth_jwks: Option<String>,
    /// The `aud` that bearer tokens must carry (default: the public base URL).
    pub auth_audience: Option<String>,
    /// Trusted CDS Hooks clients: a JSON file whose keys are the trusted `iss` values and whose
    /// values are a JWKS URL, an inline JWKS `{"keys": [...]}`, or `{"jwks": ..., "fhirServers":
    /// [...]}`. Turns the CDS Hooks JWT check on.
    pub cds_trusted_issuers: Option<PathBuf>,
    /// The gateway's URL as its callers see it (behind a TLS-terminating proxy, say): what `aud`
    /// and the CDS Hooks service URLs are compared with (default: from the `Host` header).
    pub public_base_url: Option<String>,
    /// Proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (CIDR ranges,
    /// comma-separated or repeated).
    pub trusted_proxies: Vec<IpNet>,
    /// Requests a second each client may make (bursts of twice as many); 429 above it. Off
    /// unless given.
    pub rate_limit_per_client: Option<NonZeroU32>,
    /// A different limit for one client: `CLIENT=N` (the client as in the logs and metrics:
    /// the token's `client_id`, else its `sub`), repeatable.
    pub rate_limit_client: Vec<String>,
    /// Server certificate chain (PEM): serve HTTPS. Reloaded on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// Private key of the server certificate (PEM). Reloaded on SIGHUP.
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to: mutual TLS. An extra
    /// requirement on the connection; it never replaces the token.
    pub tls_client_ca: Option<PathBuf>,
    /// Serve on a non-loopback address without authentication (development only: a warning at
    /// start-up and in /health).
    pub insecure: bool,
    /// A second address serving only `GET /metrics`, without a token (for a Prometheus scraper
    /// on a private network); `/metrics` on the main port keeps needing a bearer token.
    pub metrics_listen: Option<String>,
    /// The OpenID Connect client the console signs users in as (authorization code + PKCE,
    /// a public client at the `--auth-issuer`).
    pub console_client_id: Option<String>,
}

/// Who made a request, once authenticated: the consult's agent (§6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: Option<String>,
    /// The OAuth client: `client_id` (or `azp`), else `sub`.
    pub client_id: String,
    /// Scopes granted (bearer tokens); empty for CDS Hooks clients.
    pub scopes: Vec<String>,
    /// The CDS Hooks `tenant` claim, when sent.
    pub tenant: Option<String>,
}

/// Failed authentications by scheme and reason, for `/metrics`.
#[derive(Debug, Default)]
pub struct FailureCounts(Mutex<BTreeMap<(&'static str, &'static str), u64>>);

impl FailureCounts {
    pub fn add(&self, scheme: &'static str, reason: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((scheme, reason))
            .or_default() += 1;
    }

    pub fn get(&self, scheme: &'static str, reason: &'static str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(scheme, reason))
            .copied()
            .unwrap_or(0)
    }
}

/// Everything the security layer needs, built once at start-up from [`AuthArgs`].
pub struct Gate {
    /// Bearer tokens of the FHIR routes; `None`: those routes are open.
    pub bearer: Option<bearer::BearerVerifier>,
    /// The CDS Hooks JWT; `None`: the CDS Hooks routes are open.
    pub cds: Option<cds::CdsVerifier>,
    /// Console sign-in (`--console-client-id`); `None`: with authentication on, the console
    /// needs a bearer token like any other route.
    pub console: Option<console_session::ConsoleAuth>,
    pub rate: Option<rate::RateLimits>,
    pub proxies: proxy::TrustedProxies,
    pub tls: Option<Arc<tls::Tls>>,
    pub insecure: bool,
    pub failures: FailureCounts,
    /// Requests refused with 429.
    pub rate_limited: std::sync::atomic::AtomicU64,
    /// SIGHUP reloads of the trust (TLS, CDS issuers, JWKS file) by result.
    pub reloads_ok: std::sync::atomic::AtomicU64,
    pub reloads_failed: std::sync::atomic::AtomicU64,
}

impl Gate {
    /// Nothing configured: every route open (loopback development, and unit tests).
    pub fn open() -> Self {
        Self {
            bearer: None,
            cds: None,
            console: None,
            rate: None,
            proxies: proxy::TrustedProxies::default(),
            tls: None,
            insecure: false,
            failures: FailureCounts::default(),
            rate_limited: Default::default(),
            reloads_ok: Default::default(),
            reloads_failed: Default::default(),
        }
    }

    /// Reads the files the options name (trusted issuers, JWKS file, certificates); remote
    /// keys are fetched when first needed.
    pub fn from_args(args: &AuthArgs) -> Result<Self, String> {
        let proxies = proxy::TrustedProxies::new(
            args.trusted_proxies.clone(),
            args.public_base_url.as_deref(),
        )?;
        let bearer = match (&args.auth_issuer, &args.auth_jwks) {
            (Some(issuer), jwks) => Some(bearer::BearerVerifier::new(
                issuer,
                jwks.as_deref(),
                args.auth_audience.clone(),
            )?),
            (None, Some(_)) => {
                return Err(
                    "--auth-jwks needs --auth-issuer too: the `iss` that tokens must carry".into(),
                )
            }
            (None, None) => None,
        };
        let console = match (&args.console_client_id, &args.auth_issuer) {
            (Some(id), Some(issuer)) => Some(console_session::ConsoleAuth::new(id, issuer)?),
            (Some(_), None) => {
                return Err("--console-client-id needs --auth-issuer: users sign in to the console at that issuer".into())
            }
            (None, _) => None,
        };
        let cds = match &args.cds_trusted_issuers {
            Some(path) => Some(cds::CdsVerifier::from_file(path)?),
            None => None,
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(tls::Tls::load(
                cert.clone(),
                key.clone(),
                args.tls_client_ca.clone(),
            )?)),
            _ => None,
        };
        let rate = match args.rate_limit_per_client {
            Some(n) => Some(rate::RateLimits::new(n, &args.rate_limit_client)?),
            None if !args.rate_limit_client.is_empty() => {
                return Err("--rate-limit-client needs --rate-limit-per-client".into())
            }
            None => None,
        };
        Ok(Self {
            bearer,
            cds,
            console,
            rate,
            proxies,
            tls,
            insecure: args.insecure,
            failures: FailureCounts::default(),
            rate_limited: Default::default(),
            reloads_ok: Default::default(),
            reloads_failed: Default::default(),
        })
    }

    /// Whether both the FHIR routes and the CDS Hooks routes have authentication configured.
    pub fn fully_configured(&self) -> bool {
        self.bearer.is_some() && self.cds.is_some()
    }

    /// At start-up: fetches the issuers' keys (a failure is logged; they are fetched again
    /// when needed) and says what is and is not protected.
    pub async fn start(&self) {
        if let Some(b) = &self.bearer {
            b.keys().warm_up().await;
            if b.audience().is_none() && self.proxies.public_base().is_none() {
                tracing::warn!("neither --auth-audience nor --public-base-url is set: the audience bearer tokens must carry is taken from each request's Host header; set one of them in production");
            }
        }
        if let Some(w) = self.warning() {
            tracing::warn!("{w}");
        }
    }

    /// What `/health` and the start-up log warn of: routes left open by `--insecure`.
    pub fn warning(&self) -> Option<String> {
        if !self.insecure || self.fully_configured() {
            return None;
        }
        let open: Vec<&str> = [
            (self.bearer.is_none(), "the FHIR routes"),
            (self.cds.is_none(), "the CDS Hooks services"),
        ]
        .iter()
        .filter(|(open, _)| *open)
        .map(|(_, what)| *what)
        .collect();
        Some(format!(
            "--insecure: {} accept unauthenticated requests",
            open.join(" and ")
        ))
    }

    /// SIGHUP: reloads the TLS certificate and key, the trusted CDS Hooks issuers
    /// (`--cds-trusted-issuers`) and an `--auth-jwks FILE`. What fails to load keeps its
    /// previous version in force; each reload is counted by result in `/metrics`.
    pub fn reload(&self) {
        let count = |ok: bool| {
            let c = if ok {
                &self.reloads_ok
            } else {
                &self.reloads_failed
            };
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let mut ok = true;
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    ok = false;
                    tracing::error!(
                        error = %e,
                        "TLS certificate reload failed: still serving the previous one"
                    );
                }
            }
        }
        if let Some(cds) = &self.cds {
            match cds.reload() {
                Ok(Some(n)) => tracing::info!(issuers = n, "CDS Hooks trusted issuers reloaded"),
                Ok(None) => {}
                Err(e) => {
                    ok = false;
                    tracing::error!(error = %e, "CDS Hooks trusted issuers reload failed: the previous ones stay trusted");
                }
            }
        }
        if let Some(bearer) = &self.bearer {
            match bearer.reload() {
                Ok(Some(n)) => tracing::info!(keys = n, "--auth-jwks file reloaded"),
                Ok(None) => {}
                Err(e) => {
                    ok = false;
                    tracing::error!(error = %e, "--auth-jwks file reload failed: the previous keys stay in force");
                }
            }
        }
        count(ok);
    }

    /// Prometheus lines: failed authentications by scheme and reason, rate-limited requests.
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out.push_str("# HELP referral_gateway_auth_failures_total Failed authentications by scheme and reason.\n");
        out.push_str("# TYPE referral_gateway_auth_failures_total counter\n");
        let counts = self
            .failures
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for ((scheme, reason), n) in counts.iter() {
            let _ = writeln!(
                out,
                "referral_gateway_auth_failures_total{{scheme=\"{scheme}\",reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str("# HELP referral_gateway_rate_limited_total Requests refused with 429 (per-client rate limit).\n");
        out.push_str("# TYPE referral_gateway_rate_limited_total counter\n");
        let _ = writeln!(
            out,
            "referral_gateway_rate_limited_total {}",
            self.rate_limited.load(std::sync::atomic::Ordering::Relaxed)
        );
        out.push_str("# HELP referral_gateway_auth_reloads_total SIGHUP reloads of the TLS certificate, trusted CDS Hooks issuers and JWKS file, by result.\n");
        out.push_str("# TYPE referral_gateway_auth_reloads_total counter\n");
        for (result, n) in [("ok", &self.reloads_ok), ("failed", &self.reloads_failed)] {
            let _ = writeln!(
                out,
                "referral_gateway_auth_reloads_total{{result=\"{result}\"}} {}",
                n.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        out
    }

    /// The CapabilityStatement's `rest.security`: SMART on FHIR (Backend Services), with the
    /// token endpoint when discovery has found it.
    pub fn capability_security(&self) -> Option<Value> {
        let bearer = self.bearer.as_ref()?;
        let mut security = json!({
            "cors": true,
            "service": [{
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                }],
                "text": "OAuth2 bearer tokens (SMART Backend Services: client credentials with a signed JWT assertion)",
            }],
            "description": format!(
                "Every route but /metadata, /health and the conformance resources needs `Authorization: Bearer` with a JWT from {} (scopes system/ServiceRequest.c to submit orders, system/ServiceRequest.r for $validate and reads, system/AuditEvent.rs for consult reads and $stats; SMART v1 forms accepted). CDS Hooks calls need the CDS Hooks JWT of a trusted issuer.",
                bearer.issuer()
            ),
        });
        if let Some(token) = bearer.token_endpoint() {
            security["extension"] = json!([{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": token}],
            }]);
        }
        Some(security)
    }
}

/// Safe by default (contract §8): serving on an address other than loopback needs both the
/// FHIR routes and the CDS Hooks routes authenticated, unless `--insecure` says otherwise.
pub fn check_exposure(gate: &Gate, bound: Option<std::net::SocketAddr>) -> Result<(), String> {
    let loopback = bound.is_some_and(|a| a.ip().is_loopback());
    if loopback || gate.fully_configured() || gate.insecure {
        return Ok(());
    }
    let mut missing = Vec::new();
    if gate.bearer.is_none() {
        missing.push("--auth-issuer (bearer tokens for the FHIR routes)");
    }
    if gate.cds.is_none() {
        missing.push("--cds-trusted-issuers (the CDS Hooks JWT)");
    }
    Err(format!(
        "not starting: {} is not a loopback address and authentication is not configured: set {}, or pass --insecure to serve unauthenticated requests anyway",
        bound.map_or_else(|| "the listen address".to_string(), |a| a.to_string()),
        missing.join(" and ")
    ))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
