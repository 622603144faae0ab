//! Authentication of the FHIR routes (contract §8, issue 17) against a real OpenID Connect
//! provider (oidc-provider, tests/support/oidc): client-credentials tokens got with a signed
//! client assertion, as SMART Backend Services clients do, and every way a token can be wrong.

mod common;

use common::oidc::{node_or_skip, now, raw_jwt, ClientReg, JsonBody, Provider, TestKey};
use common::repo;
use common::server::{Server, FHIR_JSON};
use reqwest::blocking::Response;
use serde_json::{json, Value};

/// The audience the gateway is configured with and the provider issues tokens for.
const AUDIENCE: &str = "https://gateway.test/fhir";

fn example(rel: &str) -> String {
    std::fs::read_to_string(repo().join("examples").join(rel)).expect("example")
}

fn accepted_order() -> String {
    example("xr/xr01-coccyx-bony-swelling-accepted.json")
}

/// A provider with one client allowed every scope, and a gateway trusting it.
struct Setup {
    idp: Provider,
    client_key: TestKey,
    gateway: Server,
}

impl Setup {
    fn start(extra: &[&str]) -> Self {
        let client_key = TestKey::es384("ehr-key-1");
        let idp = Provider::start(
            AUDIENCE,
            &[ClientReg {
                id: "ehr-backend",
                key: &client_key,
                scope: "system/ServiceRequest.c system/ServiceRequest.r system/ServiceRequest.cruds system/AuditEvent.rs system/ServiceRequest.write",
            }],
        );
        let mut args = vec!["--auth-issuer", &idp.issuer, "--auth-audience", AUDIENCE];
        args.extend_from_slice(extra);
        let gateway = Server::start(&args);
        Self {
            idp,
            client_key,
            gateway,
        }
    }

    fn token(&self, scope: &str) -> String {
        self.idp
            .token("ehr-backend", &self.client_key, scope, None)
            .expect("a token from the provider")
    }

    /// Claims like the provider's own, for forged tokens.
    fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.idp.issuer, "aud": AUDIENCE, "sub": "ehr-backend",
            "client_id": "ehr-backend", "scope": "system/ServiceRequest.c",
            "iat": now, "exp": now + 300, "jti": common::oidc::uuid_like(),
        })
    }

    fn post(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self
            .gateway
            .client
            .post(self.gateway.url(path))
            .header("content-type", FHIR_JSON)
            .body(accepted_order());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().expect("POST")
    }
}

/// The status, `WWW-Authenticate` and OperationOutcome of a refused request.
fn refused(res: Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    assert!(res.headers().get("x-request-id").is_some());
    let body: Value = res.json().expect("an OperationOutcome");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    (status, challenge, body)
}

fn issue_code(oo: &Value) -> &str {
    oo["issue"][0]["code"].as_str().unwrap_or("")
}

#[test]
fn a_token_from_the_provider_with_the_scope_is_accepted() {
    if !node_or_skip("a_token_from_the_provider_with_the_scope_is_accepted") {
        return;
    }
    let s = Setup::start(&[]);
    let token = s.token("system/ServiceRequest.c");
    let res = s.post("/ServiceRequest", Some(&token));
    assert_eq!(res.status(), 200);
    // Again, from the cache of verified tokens.
    let res = s.post("/ServiceRequest", Some(&token));
    assert_eq!(res.status(), 200);
    // SMART v1 and wider v2 forms grant it too.
    for scope in ["system/ServiceRequest.write", "system/ServiceRequest.cruds"] {
        let t = s.token(scope);
        assert_eq!(s.post("/ServiceRequest", Some(&t)).status(), 200, "{scope}");
    }
    // `$validate` needs .r.
    let t = s.token("system/ServiceRequest.r");
    assert_eq!(s.post("/$validate", Some(&t)).status(), 200);
}

#[test]
fn open_routes_need_no_token() {
    if !node_or_skip("open_routes_need_no_token") {
        return;
    }
    let s = Setup::start(&[]);
    for path in [
        "/health",
        "/metadata",
        "/StructureDefinition",
        "/cds-services",
    ] {
        assert_eq!(s.gateway.get(path).status(), 200, "{path}");
    }
    let metadata: Value = s.gateway.get("/metadata").json().expect("JSON");
    let security = &metadata["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(
        security["extension"][0]["extension"][0]["valueUri"],
        s.idp.token_endpoint.as_str()
    );
    // Everything else is closed, unknown routes and /metrics included.
    for path in ["/metrics", "/no-such-route"] {
        let (status, _, oo) = refused(s.gateway.get(path));
        assert_eq!(status, 401, "{path}");
        assert_eq!(issue_code(&oo), "login");
    }
}

#[test]
fn every_bad_token_is_refused_with_its_reason() {
    if !node_or_skip("every_bad_token_is_refused_with_its_reason") {
        return;
    }
    let s = Setup::start(&[]);
    let base = s.claims();
    let with = |patch: Value| {
        let mut c = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let now = now();
    let rogue = TestKey::es384("rogue-key");
    let provider_public_pem = s.idp.signing.public_pem();
    let hs256 = {
        // HS256 "signed" with the provider's public key as the secret: the classic key
        // confusion attack.
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(s.idp.signing.kid.clone());
        jsonwebtoken::encode(
            &h,
            &base,
            &jsonwebtoken::EncodingKey::from_secret(provider_public_pem.as_bytes()),
        )
        .expect("HS256")
    };
    let other_audience = s
        .idp
        .token(
            "ehr-backend",
            &s.client_key,
            "system/ServiceRequest.c",
            Some("https://another-service.test"),
        )
        .expect("a token for another audience");
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "missing"),
        ("garbage", Some("not-a-jwt".into()), "malformed"),
        ("empty bearer", Some(String::new()), "malformed"),
        (
            "expired",
            Some(s.idp.signing.sign(
                &with(json!({"iat": now - 900, "exp": now - 120})),
                Some("at+jwt"),
            )),
            "expired",
        ),
        (
            "not yet valid",
            Some(
                s.idp
                    .signing
                    .sign(&with(json!({"nbf": now + 600})), Some("at+jwt")),
            ),
            "not_yet_valid",
        ),
        (
            "wrong issuer",
            Some(s.idp.signing.sign(
                &with(json!({"iss": "https://impostor.test"})),
                Some("at+jwt"),
            )),
            "issuer",
        ),
        ("wrong audience", Some(other_audience), "audience"),
        (
            "unknown kid",
            Some(rogue.sign(&base, Some("at+jwt"))),
            "unknown_kid",
        ),
        (
            "known kid, wrong key",
            Some(TestKey::es384(&s.idp.signing.kid).sign(&base, Some("at+jwt"))),
            "signature",
        ),
        (
            "alg none",
            Some(raw_jwt(&json!({"alg": "none", "typ": "JWT"}), &base, b"")),
            "algorithm",
        ),
        (
            "HS256 with the public key as secret",
            Some(hs256),
            "algorithm",
        ),
        (
            "no exp",
            Some(s.idp.signing.sign(
                &{
                    let mut c = base.clone();
                    c.as_object_mut().expect("object").remove("exp");
                    c
                },
                Some("at+jwt"),
            )),
            "missing_claim",
        ),
    ];
    for (case, token, reason) in &cases {
        let (status, challenge, oo) = refused(s.post("/ServiceRequest", token.as_deref()));
        assert_eq!(status, 401, "{case}: {oo}");
        assert_eq!(issue_code(&oo), "login", "{case}");
        assert!(challenge.starts_with("Bearer "), "{case}: {challenge}");
        if *reason == "missing" {
            assert!(!challenge.contains("error="), "{case}: {challenge}");
        } else {
            assert!(
                challenge.contains("error=\"invalid_token\"")
                    && challenge.contains(&format!("error_description=\"{reason}\"")),
                "{case}: {challenge}"
            );
        }
        // The answer never quotes the token.
        if let Some(t) = token.as_deref().filter(|t| t.len() > 10) {
            assert!(!oo.to_string().contains(t), "{case}");
        }
    }
    // Counted by reason in /metrics.
    let t = s.token("system/ServiceRequest.r");
    let metrics = s
        .gateway
        .client
        .get(s.gateway.url("/metrics"))
        .bearer_auth(&t)
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    for (case, _, reason) in &cases {
        assert!(
            metrics.contains(&format!(
                "referral_gateway_auth_failures_total{{scheme=\"bearer\",reason=\"{reason}\"}}"
            )),
            "{case}: {metrics}"
        );
    }
    assert!(metrics.contains(
        "referral_gateway_auth_failures_total{scheme=\"bearer\",reason=\"algorithm\"} 2"
    ));
}

#[test]
fn a_token_without_the_scope_is_forbidden() {
    if !node_or_skip("a_token_without_the_scope_is_forbidden") {
        return;
    }
    let s = Setup::start(&[]);
    let read_only = s.token("system/ServiceRequest.r");
    let (status, challenge, oo) = refused(s.post("/ServiceRequest", Some(&read_only)));
    assert_eq!(status, 403);
    assert_eq!(issue_code(&oo), "forbidden");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"system/ServiceRequest.c\""),
        "{challenge}"
    );
    // The same token may $validate.
    assert_eq!(
        s.post("/ServiceRequest/$validate", Some(&read_only))
            .status(),
        200
    );
    // Submitting does not give $validate (.r).
    let create_only = s.token("system/ServiceRequest.c");
    let (status, _, _) = refused(s.post("/$validate", Some(&create_only)));
    assert_eq!(status, 403);
}

#[test]
fn keys_by_jwks_file_instead_of_discovery() {
    if !node_or_skip("keys_by_jwks_file_instead_of_discovery") {
        return;
    }
    let client_key = TestKey::es384("ehr-key-1");
    let idp = Provider::start(
        AUDIENCE,
        &[ClientReg {
            id: "ehr-backend",
            key: &client_key,
            scope: "system/ServiceRequest.c",
        }],
    );
    let jwks = std::env::temp_dir().join(format!("rg-jwks-{}.json", common::oidc::uuid_like()));
    std::fs::write(
        &jwks,
        json!({"keys": [idp.signing.public_jwk()]}).to_string(),
    )
    .expect("jwks");
    let gateway = Server::start(&[
        "--auth-issuer",
        &idp.issuer,
        "--auth-jwks",
        jwks.to_str().expect("path"),
        "--auth-audience",
        AUDIENCE,
    ]);
    let token = idp
        .token("ehr-backend", &client_key, "system/ServiceRequest.c", None)
        .expect("token");
    let res = gateway
        .client
        .post(gateway.url("/ServiceRequest"))
        .header("content-type", FHIR_JSON)
        .bearer_auth(&token)
        .body(accepted_order())
        .send()
        .expect("POST");
    assert_eq!(res.status(), 200);
    let _ = std::fs::remove_file(&jwks);
}

/// A full authenticated run — tokens got from the provider, orders about a named patient
/// submitted, bad tokens and CDS Hooks JWTs sent — and its JSON logs searched: no token (nor
/// any part of one), no key, no patient detail; the client is there.
#[test]
fn a_full_authenticated_run_logs_no_token_key_or_patient_data() {
    if !node_or_skip("a_full_authenticated_run_logs_no_token_key_or_patient_data") {
        return;
    }
    const FAMILY: &str = "Quackenbush";
    const NHS_NUMBER: &str = "9434765919";
    let cds_key = TestKey::es384("cds-key-1");
    let trusted =
        std::env::temp_dir().join(format!("rg-trusted-{}.json", common::oidc::uuid_like()));
    std::fs::write(
        &trusted,
        json!({"https://ehr.test": {"keys": [cds_key.public_jwk()]}}).to_string(),
    )
    .expect("trusted");
    let s = Setup::start(&[
        "--log-format",
        "json",
        "--cds-trusted-issuers",
        trusted.to_str().expect("path"),
    ]);
    let mut order: Value = serde_json::from_str(&accepted_order()).expect("JSON");
    order["note"] = json!([{"text": format!("Mr {FAMILY}, NHS {NHS_NUMBER}")}]);
    order["identifier"] =
        json!([{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}]);
    let mut secrets = Vec::new();
    for scope in ["system/ServiceRequest.c", "system/ServiceRequest.r"] {
        let token = s.token(scope);
        for path in ["/ServiceRequest", "/$validate"] {
            let res = s
                .gateway
                .client
                .post(s.gateway.url(path))
                .header("content-type", FHIR_JSON)
                .bearer_auth(&token)
                .body(order.to_string())
                .send()
                .expect("POST");
            assert!([200, 403].contains(&res.status().as_u16()));
        }
        secrets.push(token);
    }
    let forged = s.idp.signing.sign(&json!({"iss": "x", "exp": 1}), None);
    assert_eq!(s.post("/ServiceRequest", Some(&forged)).status(), 401);
    secrets.push(forged);
    let cds_url = s.gateway.url("/cds-services/imaging-referral-order-sign");
    let now = now();
    let jwt = cds_key.sign(
        &json!({"iss": "https://ehr.test", "aud": cds_url, "iat": now, "exp": now + 60, "jti": common::oidc::uuid_like()}),
        Some("JWT"),
    );
    let call = json!({
        "hook": "order-sign", "hookInstance": "b9c7a1e2-0000-4000-8000-000000000001",
        "context": {"userId": "PractitionerRole/x", "patientId": "p",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
    });
    for _ in 0..2 {
        // The second is a replay: refused, and logged as such.
        s.gateway
            .client
            .post(&cds_url)
            .header("content-type", "application/json")
            .bearer_auth(&jwt)
            .body(call.to_string())
            .send()
            .expect("CDS call");
    }
    secrets.push(jwt);
    let log = s.gateway.log();
    assert!(log.contains("ehr-backend"), "the client is logged:\n{log}");
    assert!(log.contains("replayed"), "{log}");
    for secret in &secrets {
        for part in secret.split('.').filter(|p| p.len() > 8) {
            assert!(!log.contains(part), "a token's part is in the log:\n{log}");
        }
    }
    for key in [
        s.client_key.pair.serialize_pem(),
        s.idp.signing.pair.serialize_pem(),
        cds_key.pair.serialize_pem(),
    ] {
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!log.contains(&body[..40]), "a key is in the log");
    }
    assert!(
        !log.contains(FAMILY) && !log.contains(NHS_NUMBER),
        "patient data in the log:\n{log}"
    );
    let _ = std::fs::remove_file(&trusted);
}

/// A flood of tokens with made-up kids costs the issuer one JWKS fetch per interval, not one per
/// token: the JWKS is served here by a counting HTTP server.
#[test]
fn unknown_kids_cannot_hammer_the_issuer() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let signing = TestKey::es384("real-kid");
    let jwks = json!({"keys": [signing.public_jwk()]}).to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let jwks_url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                jwks.len()
            );
        }
    });
    let issuer = "https://issuer.test";
    let gateway = Server::start(&[
        "--auth-issuer",
        issuer,
        "--auth-jwks",
        &jwks_url,
        "--auth-audience",
        AUDIENCE,
    ]);
    let now = now();
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": "c", "scope": "system/ServiceRequest.r", "exp": now + 300});
    let post = |token: &str| {
        gateway
            .client
            .post(gateway.url("/$validate"))
            .header("content-type", FHIR_JSON)
            .bearer_auth(token)
            .body(accepted_order())
            .send()
            .expect("POST")
            .status()
            .as_u16()
    };
    assert_eq!(post(&signing.sign(&claims, None)), 200);
    let after_first = fetches.load(Ordering::SeqCst);
    assert!((1..=2).contains(&after_first), "{after_first}");
    for i in 0..50 {
        let rogue = TestKey::es384(&format!("made-up-{i}"));
        assert_eq!(post(&rogue.sign(&claims, None)), 401);
    }
    let after_flood = fetches.load(Ordering::SeqCst);
    assert!(
        after_flood <= after_first + 1,
        "50 unknown kids made {} JWKS fetches",
        after_flood - after_first
    );
    // The real key still works throughout.
    assert_eq!(post(&signing.sign(&claims, None)), 200);
}

/// The consult records the authenticated client (contract §6, §8), not the address it came
/// from; reading the record needs `system/AuditEvent.rs`, and the read is itself attributed.
#[test]
fn the_consult_records_the_authenticated_client() {
    if !node_or_skip("the_consult_records_the_authenticated_client") {
        return;
    }
    let s = Setup::start(&[]);
    let token = s.token("system/ServiceRequest.c");
    let res = s.post("/ServiceRequest", Some(&token));
    assert_eq!(res.status(), 200);
    let consult = res
        .headers()
        .get("x-consult-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Consult-Id")
        .to_string();
    let read = |scope: &str| {
        let t = s.token(scope);
        s.gateway
            .client
            .get(s.gateway.url(&format!("/AuditEvent/{consult}")))
            .bearer_auth(t)
            .send()
            .expect("GET")
    };
    assert_eq!(read("system/ServiceRequest.r").status(), 403);
    let res = read("system/AuditEvent.rs");
    assert_eq!(res.status(), 200);
    let event = res.json().expect("AuditEvent");
    let clients: Vec<&str> = event["agent"]
        .as_array()
        .expect("agents")
        .iter()
        .filter(|a| a["requestor"] == true)
        .filter_map(|a| a["who"]["identifier"]["value"].as_str())
        .collect();
    assert_eq!(clients, vec!["ehr-backend"], "{event}");
    // The statistics count consults by that client too.
    let t = s.token("system/AuditEvent.rs");
    let stats = s
        .gateway
        .client
        .get(s.gateway.url("/$stats"))
        .bearer_auth(t)
        .send()
        .expect("GET")
        .json()
        .expect("Parameters");
    assert!(
        stats["parameter"]
            .as_array()
            .expect("parameters")
            .iter()
            .any(|p| p["name"] == "client" && p["part"][0]["valueString"] == "ehr-backend"),
        "{stats}"
    );
}

/// `--metrics-listen`: `/metrics` on its own address needs no token (and nothing else is served
/// there); on the main port it still needs a bearer token (contract §8).
#[test]
fn metrics_on_their_own_address_need_no_token_and_on_the_main_port_need_one() {
    if !node_or_skip("metrics_on_their_own_address_need_no_token_and_on_the_main_port_need_one") {
        return;
    }
    let s = Setup::start(&["--metrics-listen", "127.0.0.1:0"]);
    let metrics_base = metrics_address(&s.gateway);
    // Main port: no token, 401; a valid token (any scope), 200.
    let (status, challenge, _) = refused(s.gateway.get("/metrics"));
    assert_eq!(status, 401);
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let token = s.token("system/ServiceRequest.r");
    let res = s
        .gateway
        .client
        .get(s.gateway.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .expect("GET");
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .expect("text")
        .contains("referral_gateway_auth_failures_total"));
    // The metrics address: no token needed; the failure just counted is there.
    let res = s
        .gateway
        .client
        .get(format!("{metrics_base}/metrics"))
        .send()
        .expect("GET");
    assert_eq!(res.status(), 200);
    let text = res.text().expect("text");
    assert!(
        text.contains(
            "referral_gateway_auth_failures_total{scheme=\"bearer\",reason=\"missing\"} 1"
        ),
        "{text}"
    );
    // Nothing else is served there: not the FHIR routes, not even /health.
    for path in ["/health", "/metadata", "/AuditEvent"] {
        let res = s
            .gateway
            .client
            .get(format!("{metrics_base}{path}"))
            .send()
            .expect("GET");
        assert_eq!(res.status(), 404, "{path}");
    }
    let res = s
        .gateway
        .client
        .post(format!("{metrics_base}/ServiceRequest"))
        .header("content-type", FHIR_JSON)
        .body(accepted_order())
        .send()
        .expect("POST");
    assert_eq!(res.status(), 404);
}

/// The base URL of a gateway's `--metrics-listen` address, from its start-up log.
fn metrics_address(gateway: &Server) -> String {
    let log = gateway.log();
    log.lines()
        .find_map(|l| l.split("without a token, on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|url| url.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"))
        .to_string()
}

/// Waits until the metrics at `base` (a `--metrics-listen` address) have the line `want`.
fn wait_for_metrics_line(gateway: &Server, base: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = gateway
            .client
            .get(format!("{base}/metrics"))
            .send()
            .expect("GET /metrics")
            .text()
            .expect("text");
        if text.lines().any(|l| l == want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw `{want}` in\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// SIGHUP reads an `--auth-jwks FILE` again: after a key rotation the new key's tokens are
/// accepted and the removed key's refused, even one accepted (and cached) before. A file that
/// no longer reads leaves the keys in force.
#[test]
fn sighup_reads_an_auth_jwks_file_again() {
    let old_key = TestKey::es384("idp-key-1");
    let new_key = TestKey::es384("idp-key-2");
    let file = std::env::temp_dir().join(format!("rg-jwks-{}.json", common::oidc::uuid_like()));
    let write_keys = |keys: &[&TestKey]| {
        let doc = json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()});
        std::fs::write(&file, doc.to_string()).expect("JWKS file");
    };
    write_keys(&[&old_key]);
    let issuer = "https://idp.test";
    let gateway = Server::start(&[
        "--auth-issuer",
        issuer,
        "--auth-jwks",
        file.to_str().expect("path"),
        "--auth-audience",
        AUDIENCE,
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_address(&gateway);
    let token = |key: &TestKey| {
        let now = now();
        key.sign(
            &json!({
                "iss": issuer, "aud": AUDIENCE, "sub": "ehr-backend", "client_id": "ehr-backend",
                "scope": "system/ServiceRequest.c", "iat": now, "exp": now + 300,
            }),
            Some("JWT"),
        )
    };
    let post = |t: &str| {
        gateway
            .client
            .post(gateway.url("/ServiceRequest"))
            .header("content-type", FHIR_JSON)
            .bearer_auth(t)
            .body(accepted_order())
            .send()
            .expect("POST")
    };
    let (old_token, new_token) = (token(&old_key), token(&new_key));
    assert_eq!(post(&old_token).status(), 200);
    let (status, challenge, _) = refused(post(&new_token));
    assert_eq!(status, 401);
    assert!(challenge.contains("unknown_kid"), "{challenge}");

    write_keys(&[&new_key]);
    gateway.signal("-HUP");
    wait_for_metrics_line(
        &gateway,
        &metrics,
        "referral_gateway_auth_reloads_total{result=\"ok\"} 1",
    );
    assert_eq!(post(&new_token).status(), 200);
    let (status, challenge, _) = refused(post(&old_token));
    assert_eq!(
        status, 401,
        "the removed key's token, verified before, is refused now"
    );
    assert!(challenge.contains("unknown_kid"), "{challenge}");

    // A broken file: the reload fails and the keys in force stay.
    std::fs::write(&file, "{not json").expect("write");
    gateway.signal("-HUP");
    wait_for_metrics_line(
        &gateway,
        &metrics,
        "referral_gateway_auth_reloads_total{result=\"failed\"} 1",
    );
    assert_eq!(post(&new_token).status(), 200);
    let _ = std::fs::remove_file(&file);
}
