//! A real OpenID Connect provider for a test: `tests/support/oidc/server.mjs` (oidc-provider
//! from npm) on a free loopback port, with keys the test makes; and those keys, to sign client
//! assertions, CDS Hooks JWTs and the forged tokens of the negative cases.
//!
//! Node and npm are needed: without them [`node_or_skip`] says so loudly and the test skips,
//! unless `CI=true`, where it fails.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// An ECDSA key made for the test, with its kid.
pub struct TestKey {
    pub pair: rcgen::KeyPair,
    pub kid: String,
    pub alg: Algorithm,
}

impl TestKey {
    pub fn es384(kid: &str) -> Self {
        Self {
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key"),
            kid: kid.into(),
            alg: Algorithm::ES384,
        }
    }

    pub fn es256(kid: &str) -> Self {
        Self {
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key"),
            kid: kid.into(),
            alg: Algorithm::ES256,
        }
    }

    fn alg_name(&self) -> &'static str {
        match self.alg {
            Algorithm::ES256 => "ES256",
            _ => "ES384",
        }
    }

    /// Signs `claims` with this key, its kid and `typ` in the header.
    pub fn sign(&self, claims: &Value, typ: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = typ.map(str::to_string);
        let key = EncodingKey::from_ec_der(&self.pair.serialize_der());
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }

    pub fn public_pem(&self) -> String {
        self.pair.public_key_pem()
    }

    /// The public key as a JWK.
    pub fn public_jwk(&self) -> Value {
        let raw = self.pair.public_key_raw();
        // Uncompressed point: 0x04, x, y.
        let half = (raw.len() - 1) / 2;
        json!({
            "kty": "EC",
            "crv": if self.alg == Algorithm::ES256 { "P-256" } else { "P-384" },
            "x": URL_SAFE_NO_PAD.encode(&raw[1..1 + half]),
            "y": URL_SAFE_NO_PAD.encode(&raw[1 + half..]),
            "kid": self.kid,
            "alg": self.alg_name(),
            "use": "sig",
        })
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A JWT with an unsigned header of the test's choosing (`alg: none`, HS256 ...), signed with
/// `signature` as given.
pub fn raw_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn support_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc")
}

fn works(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether node and npm are here, with the provider installed (`npm ci` once per test run).
/// Without them: a loud message, `false` (skip) — and a failure when `CI=true`.
pub fn node_or_skip(test: &str) -> bool {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = INSTALLED.get_or_init(|| {
        if !works("node") || !works("npm") {
            return Err("node and npm are not installed".into());
        }
        if support_dir().join("node_modules/oidc-provider").is_dir() {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(support_dir())
            .output()
            .map_err(|e| format!("npm ci: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "npm ci failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match ready {
        Ok(()) => true,
        Err(why) => {
            let msg = format!(
                "\n!!!!!!!! SKIPPED {test}: {why}; the OpenID Connect provider of tests/support/oidc cannot run !!!!!!!!\n"
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}(CI=true: a skipped authentication test is a failure)");
            }
            eprintln!("{msg}");
            false
        }
    }
}

/// A client registered with the provider.
pub struct ClientReg<'a> {
    pub id: &'a str,
    pub key: &'a TestKey,
    /// The scopes it may ask for.
    pub scope: &'a str,
}

pub struct Provider {
    child: Child,
    config: PathBuf,
    pub issuer: String,
    pub token_endpoint: String,
    /// The provider's signing key (the tests forge tokens with it).
    pub signing: TestKey,
    http: Client,
}

/// Every scope the test provider's resource server knows.
pub const SCOPES: [&str; 5] = [
    "system/ServiceRequest.c",
    "system/ServiceRequest.r",
    "system/ServiceRequest.cruds",
    "system/AuditEvent.rs",
    "system/ServiceRequest.write",
];

impl Provider {
    /// Starts a provider issuing tokens for `audience` to `clients`.
    pub fn start(audience: &str, clients: &[ClientReg]) -> Self {
        Self::start_with_console(audience, clients, &[])
    }

    /// Also registers console clients `(client_id, allowed scopes, resource scopes granted)`:
    /// public clients signing users in (authorization code + PKCE) with the provider's
    /// development login pages; `None` grants every resource scope asked for.
    pub fn start_with_console(
        audience: &str,
        clients: &[ClientReg],
        console_clients: &[(&str, &str, Option<&str>)],
    ) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let signing = TestKey::es384("provider-key-1");
        let config = std::env::temp_dir().join(format!(
            "rg-oidc-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let doc = json!({
            "signingKey": {"pem": signing.pair.serialize_pem(), "kid": signing.kid, "alg": "ES384"},
            "audience": audience,
            "scopes": SCOPES,
            "ttl": 300,
            "clients": clients.iter().map(|c| json!({
                "client_id": c.id,
                "publicKeyPem": c.key.public_pem(),
                "kid": c.key.kid,
                "alg": c.key.alg_name(),
                "scope": c.scope,
            })).collect::<Vec<_>>(),
            "consoleClients": console_clients.iter().map(|(id, scope, granted)| {
                let mut c = json!({"client_id": id, "scope": scope});
                if let Some(g) = granted {
                    c["resourceScope"] = json!(g);
                }
                c
            }).collect::<Vec<_>>(),
        });
        std::fs::write(&config, doc.to_string()).expect("provider config");
        let mut child = Command::new("node")
            .arg(support_dir().join("server.mjs"))
            .arg(&config)
            .current_dir(support_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let line = super::first_stdout_line(&mut child);
        let issuer = line
            .trim()
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("the OpenID Connect provider did not start: {line:?}"))
            .to_string();
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let discovery: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .expect("discovery")
            .json()
            .expect("discovery JSON");
        let token_endpoint = discovery["token_endpoint"]
            .as_str()
            .expect("token endpoint")
            .to_string();
        Self {
            child,
            config,
            issuer,
            token_endpoint,
            signing,
            http,
        }
    }

    /// A client-credentials token for `client` (SMART Backend Services: a signed assertion),
    /// for `resource` when given (else the provider's default audience).
    pub fn token(
        &self,
        client: &str,
        key: &TestKey,
        scope: &str,
        resource: Option<&str>,
    ) -> Result<String, String> {
        let now = now();
        let assertion = key.sign(
            &json!({
                "iss": client, "sub": client, "aud": self.token_endpoint,
                "iat": now, "exp": now + 300,
                "jti": format!("{client}-{}", uuid_like()),
            }),
            Some("JWT"),
        );
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("scope", scope.to_string()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", assertion),
        ];
        if let Some(r) = resource {
            form.push(("resource", r.to_string()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let res = self
            .http
            .post(&self.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let answer: Value = res.json().map_err(|e| e.to_string())?;
        match answer["access_token"].as_str() {
            Some(t) if status.is_success() => Ok(t.to_string()),
            _ => Err(format!("token endpoint said {status}: {answer}")),
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A value unique within the test run.
pub fn uuid_like() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        now(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Response::json` without reqwest's `json` feature (which the other tests do without).
pub trait JsonBody {
    fn json(self) -> Result<Value, serde_json::Error>;
}

impl JsonBody for reqwest::blocking::Response {
    fn json(self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.text().unwrap_or_default())
    }
}
