//! The CDS Hooks 2.0 JWT (contract §8, issue 17): CDS clients sign each call with their own
//! ES384 key (made here); trusted issuers come from `--cds-trusted-issuers`, one with an inline
//! JWKS and one whose JWKS URL is a real OpenID Connect provider's (tests/support/oidc).

mod common;

use common::oidc::{node_or_skip, now, raw_jwt, uuid_like, JsonBody, Provider, TestKey};
use common::repo;
use common::server::Server;
use serde_json::{json, Value};
use std::path::PathBuf;

const SIGN: &str = "/cds-services/imaging-referral-order-sign";
const INLINE_ISS: &str = "https://ehr-inline.test";
const URL_ISS: &str = "https://ehr-by-url.test";

fn order_sign_request() -> String {
    let text = std::fs::read_to_string(
        repo().join("examples/general/gen01-cxr-with-clinical-question.json"),
    )
    .expect("example");
    let sr: Value = serde_json::from_str(&text).expect("JSON");
    json!({
        "hook": "order-sign",
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {
            "userId": "PractitionerRole/cds-test-gp",
            "patientId": "cds-test-patient",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": sr}]},
        },
    })
    .to_string()
}

struct Setup {
    inline_key: TestKey,
    /// The provider whose JWKS URL the second issuer names (its key signs that issuer's JWTs).
    idp: Option<Provider>,
    gateway: Server,
    file: PathBuf,
}

impl Setup {
    fn start(with_url_issuer: bool) -> Self {
        Self::start_with(with_url_issuer, &[])
    }

    fn start_with(with_url_issuer: bool, extra: &[&str]) -> Self {
        let inline_key = TestKey::es384("ehr-inline-1");
        let idp = with_url_issuer.then(|| Provider::start("https://unused.test", &[]));
        let mut trusted = json!({
            INLINE_ISS: {"jwks": {"keys": [inline_key.public_jwk()]}, "fhirServers": ["https://ehr-inline.test/fhir"]},
        });
        if let Some(idp) = &idp {
            trusted[URL_ISS] = json!(format!("{}/jwks", idp.issuer));
        }
        let file = std::env::temp_dir().join(format!("rg-cds-trusted-{}.json", uuid_like()));
        std::fs::write(&file, trusted.to_string()).expect("trusted issuers");
        let gateway = Self::gateway_on(&file, extra);
        Self {
            inline_key,
            idp,
            gateway,
            file,
        }
    }

    /// A gateway trusting the issuers of `file`.
    fn gateway_on(file: &std::path::Path, extra: &[&str]) -> Server {
        let mut args = vec!["--cds-trusted-issuers", file.to_str().expect("path")];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    fn service_url(&self) -> String {
        self.gateway.url(SIGN)
    }

    fn claims(&self, iss: &str) -> Value {
        claims_for(iss, &self.service_url())
    }

    fn call(&self, jwt: Option<&str>) -> (u16, Value) {
        call_at(&self.gateway, jwt)
    }
}

fn claims_for(iss: &str, aud: &str) -> Value {
    let now = now();
    json!({
        "iss": iss, "sub": "ehr-client-7", "aud": aud,
        "iat": now, "exp": now + 300, "jti": uuid_like(),
    })
}

/// POSTs an order-sign call to `gateway` with `jwt`; the status and the JSON answer.
fn call_at(gateway: &Server, jwt: Option<&str>) -> (u16, Value) {
    let mut req = gateway
        .client
        .post(gateway.url(SIGN))
        .header("content-type", "application/json")
        .body(order_sign_request());
    if let Some(t) = jwt {
        req = req.bearer_auth(t);
    }
    let res = req.send().expect("POST");
    let status = res.status().as_u16();
    if status == 401 {
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ascii").to_string())
            .unwrap_or_default();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
    }
    (status, res.json().unwrap_or(Value::Null))
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

#[test]
fn a_signed_call_from_a_trusted_issuer_is_answered_and_a_replay_is_not() {
    let s = Setup::start(false);
    let jwt = s.inline_key.sign(&s.claims(INLINE_ISS), Some("JWT"));
    let (status, body) = s.call(Some(&jwt));
    assert_eq!(status, 200, "{body}");
    assert!(body["cards"].is_array(), "{body}");
    // The same JWT again: its jti has been seen.
    let (status, body) = s.call(Some(&jwt));
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("jti"),
        "{body}"
    );
    // Discovery stays open.
    assert_eq!(s.gateway.get("/cds-services").status(), 200);
    // The FHIR routes are not covered by the CDS Hooks trust: without --auth-issuer they
    // stay open (on loopback only; see tests/safe_default.rs).
}

#[test]
fn every_bad_cds_jwt_is_refused() {
    let s = Setup::start(false);
    let base = s.claims(INLINE_ISS);
    let with = |patch: Value| {
        let mut c = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            c[k] = v.clone();
        }
        c["jti"] = json!(uuid_like());
        c
    };
    let now = now();
    let key = &s.inline_key;
    let stranger = TestKey::es384("ehr-inline-1");
    let es256 = TestKey::es256("ehr-inline-1");
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(key.kid.clone());
        jsonwebtoken::encode(
            &h,
            &with(json!({})),
            &jsonwebtoken::EncodingKey::from_secret(key.public_pem().as_bytes()),
        )
        .expect("HS256")
    };
    let no_kid = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
        h.typ = Some("JWT".into());
        jsonwebtoken::encode(
            &h,
            &with(json!({})),
            &jsonwebtoken::EncodingKey::from_ec_der(&key.pair.serialize_der()),
        )
        .expect("sign")
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no JWT", None, "missing"),
        ("garbage", Some("garbage".into()), "malformed"),
        (
            "untrusted issuer",
            Some(key.sign(&with(json!({"iss": "https://stranger.test"})), Some("JWT"))),
            "untrusted_issuer",
        ),
        (
            "wrong audience",
            Some(key.sign(
                &with(json!({"aud": "https://elsewhere.test/cds-services/x"})),
                Some("JWT"),
            )),
            "audience",
        ),
        (
            "expired",
            Some(key.sign(
                &with(json!({"iat": now - 900, "exp": now - 120})),
                Some("JWT"),
            )),
            "expired",
        ),
        (
            "issued in the future",
            Some(key.sign(
                &with(json!({"iat": now + 600, "exp": now + 900})),
                Some("JWT"),
            )),
            "not_yet_valid",
        ),
        (
            "no jti",
            Some(key.sign(
                &{
                    let mut c = with(json!({}));
                    c.as_object_mut().expect("o").remove("jti");
                    c
                },
                Some("JWT"),
            )),
            "missing_claim",
        ),
        (
            "valid for a day",
            Some(key.sign(&with(json!({"exp": now + 86_400})), Some("JWT"))),
            "lifetime",
        ),
        (
            "typ not JWT",
            Some(key.sign(&with(json!({})), Some("at+jwt"))),
            "type",
        ),
        ("no kid", Some(no_kid), "unknown_kid"),
        (
            "unknown kid",
            Some(TestKey::es384("other-kid").sign(&with(json!({})), Some("JWT"))),
            "unknown_kid",
        ),
        (
            "right kid, wrong key",
            Some(stranger.sign(&with(json!({})), Some("JWT"))),
            "signature",
        ),
        (
            "ES256 (not allowed by CDS Hooks)",
            Some(es256.sign(&with(json!({})), Some("JWT"))),
            "algorithm",
        ),
        (
            "alg none",
            Some(raw_jwt(
                &json!({"alg": "none", "typ": "JWT", "kid": key.kid}),
                &with(json!({})),
                b"",
            )),
            "algorithm",
        ),
        (
            "HS256 with the public key as secret",
            Some(hs256),
            "algorithm",
        ),
        (
            "jku elsewhere",
            Some({
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
                h.typ = Some("JWT".into());
                h.kid = Some(key.kid.clone());
                h.jku = Some("https://attacker.test/jwks".into());
                jsonwebtoken::encode(
                    &h,
                    &with(json!({})),
                    &jsonwebtoken::EncodingKey::from_ec_der(&key.pair.serialize_der()),
                )
                .expect("sign")
            }),
            "jku",
        ),
    ];
    for (case, jwt, _) in &cases {
        let (status, body) = s.call(jwt.as_deref());
        assert_eq!(status, 401, "{case}: {body}");
        assert!(body["error"].is_string(), "{case}: {body}");
    }
    let metrics = s.gateway.get("/metrics").text().expect("metrics");
    for (case, _, reason) in &cases {
        assert!(
            metrics.contains(&format!(
                "referral_gateway_auth_failures_total{{scheme=\"cds\",reason=\"{reason}\"}}"
            )),
            "{case}: {metrics}"
        );
    }
}

#[test]
fn an_issuer_whose_jwks_is_a_url_of_a_real_provider() {
    if !node_or_skip("an_issuer_whose_jwks_is_a_url_of_a_real_provider") {
        return;
    }
    let s = Setup::start(true);
    let idp = s.idp.as_ref().expect("provider");
    let jwt = idp.signing.sign(&s.claims(URL_ISS), Some("JWT"));
    let (status, body) = s.call(Some(&jwt));
    assert_eq!(status, 200, "{body}");
    // The provider's key does not make the inline issuer's JWTs.
    let jwt = idp.signing.sign(&s.claims(INLINE_ISS), Some("JWT"));
    assert_eq!(s.call(Some(&jwt)).0, 401);
}

/// Two replicas behind one public URL share a PostgreSQL store: a JWT answered by one is
/// refused by the other (contract §8: the replay cache is in the store).
#[test]
fn a_jwt_replayed_to_a_second_replica_on_the_same_store_is_refused() {
    let Some(db) = common::pg::TestDb::create(
        "a_jwt_replayed_to_a_second_replica_on_the_same_store_is_refused",
    ) else {
        return;
    };
    let public = "http://gateway.test";
    let shared = ["--store", db.url.as_str(), "--public-base-url", public];
    let s = Setup::start_with(false, &shared);
    let second = Setup::gateway_on(&s.file, &shared);
    let jwt = s.inline_key.sign(
        &claims_for(INLINE_ISS, &format!("{public}{SIGN}")),
        Some("JWT"),
    );
    let (status, body) = call_at(&s.gateway, Some(&jwt));
    assert_eq!(status, 200, "{body}");
    let (status, body) = call_at(&second, Some(&jwt));
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("jti"),
        "{body}"
    );
    assert!(second
        .metrics()
        .contains("referral_gateway_auth_failures_total{scheme=\"cds\",reason=\"replayed\"} 1"));
    // A fresh JWT is answered by the second replica.
    let jwt = s.inline_key.sign(
        &claims_for(INLINE_ISS, &format!("{public}{SIGN}")),
        Some("JWT"),
    );
    assert_eq!(call_at(&second, Some(&jwt)).0, 200);
}

/// The jtis are kept in the SQLite store too: a gateway restarted on the same file still
/// refuses a JWT it answered before.
#[test]
fn a_jwt_replayed_after_a_restart_on_the_same_sqlite_store_is_refused() {
    let dir = std::env::temp_dir().join(format!("rg-cds-restart-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = format!("sqlite:{}", dir.join("c.sqlite").display());
    let public = "http://gateway.test";
    let args = ["--store", store.as_str(), "--public-base-url", public];
    let mut s = Setup::start_with(false, &args);
    let jwt = s.inline_key.sign(
        &claims_for(INLINE_ISS, &format!("{public}{SIGN}")),
        Some("JWT"),
    );
    assert_eq!(call_at(&s.gateway, Some(&jwt)).0, 200);
    s.gateway = Setup::gateway_on(&s.file, &args);
    let (status, body) = call_at(&s.gateway, Some(&jwt));
    assert_eq!(status, 401, "{body}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGHUP reads `--cds-trusted-issuers` again: after a key rotation in the file the new key's
/// JWTs are answered and the removed key's refused; a file that no longer reads leaves the
/// trust in force.
#[test]
fn sighup_reads_the_trusted_issuers_file_again() {
    let s = Setup::start(false);
    let new_key = TestKey::es384("ehr-inline-2");
    assert_eq!(
        s.call(Some(&s.inline_key.sign(&s.claims(INLINE_ISS), Some("JWT"))))
            .0,
        200
    );
    let early = new_key.sign(&s.claims(INLINE_ISS), Some("JWT"));
    assert_eq!(s.call(Some(&early)).0, 401, "not trusted yet");

    let rotated = json!({ INLINE_ISS: {"jwks": {"keys": [new_key.public_jwk()]}} });
    std::fs::write(&s.file, rotated.to_string()).expect("rotate");
    s.gateway.signal("-HUP");
    s.gateway
        .wait_for_metric("referral_gateway_auth_reloads_total{result=\"ok\"}", 1);
    // Refused before the reload, so its jti was never recorded: answered now.
    let (status, body) = s.call(Some(&early));
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.call(Some(&s.inline_key.sign(&s.claims(INLINE_ISS), Some("JWT"))));
    assert_eq!(status, 401, "the removed key: {body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("kid"),
        "{body}"
    );

    // A file that no longer reads: the reload fails, the trust in force stays.
    std::fs::write(&s.file, "{\"https://x.test\": 3").expect("break");
    s.gateway.signal("-HUP");
    s.gateway
        .wait_for_metric("referral_gateway_auth_reloads_total{result=\"failed\"}", 1);
    assert_eq!(
        s.call(Some(&new_key.sign(&s.claims(INLINE_ISS), Some("JWT"))))
            .0,
        200
    );
}
