//! The CDS Hooks prefetch fallback (contract §7, last bullet) end to end: an EHR that does not
//! prefetch names its `fhirServer` and `fhirAuthorization`, and the gateway fetches the patient
//! and the user's role and organisation from it, so the age and organisation rules decide.
//! The `fhirServer` is a real FHIR server (Medplum's FHIR router, tests/support/fhir-upstream,
//! requiring `Authorization: Bearer` with a static token); the calls carry a CDS Hooks JWT of an
//! issuer whose entry in `--cds-trusted-issuers` lists that server under `fhirServers`.
//! Faults a real server cannot produce on demand (a 500) come from the TCP stub of
//! tests/common/upstream.rs, which also counts the calls that must never be made.

mod common;

use common::cds::cds_request;
use common::oidc::{now, uuid_like, TestKey};
use common::repo;
use common::server::Server;
use common::upstream::{refused_base, Fault, FaultStub, FhirUpstream};
use serde_json::{json, Value};
use std::path::PathBuf;

const SIGN: &str = "/cds-services/imaging-referral-order-sign";
const ISS: &str = "https://ehr.prefetch.test";
/// The EHR's access token to its FHIR server (the server's static token).
const FHIR_TOKEN: &str = "ehr-token-for-the-cds-service";
const AGE_BUNDLE: &str = "us/us14-haematuria-age-45-bundle.json"; // US14 needs the age
const ORGANISATION_BUNDLE: &str = "ct/ct01-ctc-unauthorised-centre.json"; // CT01 needs the org

fn example(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(rel)).expect("example");
    serde_json::from_str(&text).expect("JSON")
}

/// The gateway trusting one issuer, whose `fhirServers` are `allowed`.
struct Setup {
    key: TestKey,
    gateway: Server,
    file: PathBuf,
}

impl Setup {
    fn start(allowed: &[&str], extra: &[&str]) -> Self {
        let key = TestKey::es384("ehr-prefetch-1");
        let trusted = json!({
            ISS: {"jwks": {"keys": [key.public_jwk()]}, "fhirServers": allowed},
        });
        let file = std::env::temp_dir().join(format!("rg-cds-prefetch-{}.json", uuid_like()));
        std::fs::write(&file, trusted.to_string()).expect("trusted issuers");
        let mut args = vec!["--cds-trusted-issuers", file.to_str().expect("path")];
        args.extend_from_slice(extra);
        let gateway = Server::start(&args);
        Self { key, gateway, file }
    }

    /// Posts a CDS Hooks request with a fresh JWT of the trusted issuer.
    fn call(&self, request: &Value) -> (u16, Value) {
        let url = self.gateway.url(SIGN);
        let t = now();
        let jwt = self.key.sign(
            &json!({"iss": ISS, "sub": "ehr-client", "aud": url, "iat": t, "exp": t + 300, "jti": uuid_like()}),
            Some("JWT"),
        );
        let res = self
            .gateway
            .client
            .post(&url)
            .bearer_auth(jwt)
            .header("content-type", "application/json")
            .body(request.to_string())
            .send()
            .expect("POST");
        let status = res.status().as_u16();
        let text = res.text().expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, body)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Every resource an EHR would have prefetched for `example`, written to the FHIR server
/// (`PUT`, with their ids), and the request without any prefetch, naming that server.
fn seeded_request(fhir: &FhirUpstream, example_path: &str) -> Value {
    let mut req = cds_request("order-sign", &example(example_path), &[]);
    let prefetch = req
        .as_object_mut()
        .expect("object")
        .remove("prefetch")
        .expect("the example has prefetch");
    let mut resources = Vec::new();
    for (_, v) in prefetch.as_object().expect("object") {
        match v["resourceType"].as_str() {
            Some("Bundle") => resources.extend(
                v["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| e["resource"].clone()),
            ),
            _ => resources.push(v.clone()),
        }
    }
    for r in resources {
        let path = format!(
            "{}/{}/{}",
            fhir.base,
            r["resourceType"].as_str().expect("type"),
            r["id"].as_str().expect("id")
        );
        let res = fhir
            .client
            .put(path)
            .bearer_auth(FHIR_TOKEN)
            .header("content-type", "application/fhir+json")
            .body(r.to_string())
            .send()
            .expect("PUT");
        assert!(res.status().is_success(), "seeding: {}", res.status());
    }
    with_server(&mut req, &fhir.base, Some(FHIR_TOKEN));
    req
}

fn with_server(req: &mut Value, server: &str, token: Option<&str>) {
    req["fhirServer"] = json!(server);
    if let Some(t) = token {
        req["fhirAuthorization"] = json!({
            "access_token": t, "token_type": "Bearer", "expires_in": 300,
            "scope": "user/Patient.read user/PractitionerRole.read user/Organization.read user/Practitioner.read",
            "subject": "referral-gateway",
        });
    }
}

fn rules_of(body: &Value) -> Vec<String> {
    body["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| {
            c["source"]["topic"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn summaries(body: &Value) -> Vec<String> {
    body["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| c["summary"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn error_text(body: &Value) -> String {
    format!("{} {}", body["error"], body["details"])
}

#[test]
fn prefetch_fetched_from_the_allowed_fhir_server_lets_the_age_and_organisation_rules_decide() {
    let Some(fhir) = FhirUpstream::start_with(&["--static-token", FHIR_TOKEN]) else {
        return;
    };
    let s = Setup::start(&[&fhir.base], &[]);

    // The age rule: the patient read from the server gives US14 its age, so it redirects.
    let req = seeded_request(&fhir, AGE_BUNDLE);
    let (status, body) = s.call(&req);
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(rules_of(&body), ["US14"], "{body:#}");
    let card = &body["cards"][0];
    assert_eq!(
        card["suggestions"][0]["actions"][1]["resource"]["performerType"]["coding"][0]["code"],
        "haematuria-clinic",
        "{card:#}"
    );

    // The organisation rule: the role searched (the server ignores _include, so its
    // organisation and practitioner are read by reference) gives CT01 the ordering centre.
    let req = seeded_request(&fhir, ORGANISATION_BUNDLE);
    let (status, body) = s.call(&req);
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(rules_of(&body), ["CT01"], "{body:#}");
    assert!(
        !summaries(&body)[0].starts_with("More information"),
        "{body:#}"
    );

    // The same call without fhirServer: today's card saying what was not sent.
    let mut req = seeded_request(&fhir, AGE_BUNDLE);
    let obj = req.as_object_mut().expect("object");
    obj.remove("fhirServer");
    obj.remove("fhirAuthorization");
    let (status, body) = s.call(&req);
    assert_eq!(status, 200, "{body:#}");
    assert!(
        summaries(&body)[0].starts_with("More information needed"),
        "{body:#}"
    );
    assert!(
        body["cards"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`patient`")),
        "{body:#}"
    );
}

#[test]
fn a_prefetch_given_as_an_operation_outcome_is_fetched_too() {
    let Some(fhir) = FhirUpstream::start_with(&["--static-token", FHIR_TOKEN]) else {
        return;
    };
    let s = Setup::start(&[&fhir.base], &[]);
    let mut req = seeded_request(&fhir, AGE_BUNDLE);
    req["prefetch"] = json!({
        "patient": {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]},
    });
    let (status, body) = s.call(&req);
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(rules_of(&body), ["US14"], "{body:#}");
    assert!(
        !summaries(&body)[0].starts_with("More information"),
        "{body:#}"
    );
}

/// A fhirServer the trusted-issuers file does not list for the issuer is never called: the
/// answer is 412, because a fhirServer was given and the data cannot be had from it (CDS Hooks
/// 2.0: "unable to obtain required data because it cannot access the FHIR server").
#[test]
fn a_fhir_server_not_allowed_for_the_issuer_is_never_called_and_the_answer_is_412() {
    let Some(fhir) = FhirUpstream::start_with(&["--static-token", FHIR_TOKEN]) else {
        return;
    };
    // Not a FHIR server: a stub that counts the calls made to it (there must be none).
    let elsewhere = FaultStub::start(Fault::Status(200));
    let s = Setup::start(&[&fhir.base], &[]);
    let mut req = seeded_request(&fhir, AGE_BUNDLE);
    with_server(&mut req, &elsewhere.base, Some(FHIR_TOKEN));
    let (status, body) = s.call(&req);
    assert_eq!(status, 412, "{body:#}");
    assert!(
        error_text(&body).contains("not one this service may call"),
        "{body:#}"
    );
    assert_eq!(elsewhere.hits(), 0, "a fhirServer not allowed was called");

    // Without a trusted-issuers file no fhirServer is allowed at all.
    let open = Server::start(&[]);
    let res = open
        .client
        .post(open.url(SIGN))
        .header("content-type", "application/json")
        .body(req.to_string())
        .send()
        .expect("POST");
    assert_eq!(res.status().as_u16(), 412);
    assert_eq!(elsewhere.hits(), 0, "a fhirServer not allowed was called");

    // An allowed fhirServer but no fhirAuthorization: nothing to fetch with.
    let mut req = seeded_request(&fhir, AGE_BUNDLE);
    req.as_object_mut()
        .expect("object")
        .remove("fhirAuthorization");
    let (status, body) = s.call(&req);
    assert_eq!(status, 412, "{body:#}");
    assert!(error_text(&body).contains("fhirAuthorization"), "{body:#}");
}

#[test]
fn data_that_cannot_be_fetched_is_412() {
    let Some(fhir) = FhirUpstream::start_with(&["--static-token", FHIR_TOKEN]) else {
        return;
    };
    let failing = FaultStub::start(Fault::Status(500));
    let refused = refused_base();
    let s = Setup::start(&[&fhir.base, &failing.base, &refused], &[]);

    // The real server refuses the access token.
    let mut req = seeded_request(&fhir, AGE_BUNDLE);
    with_server(&mut req, &fhir.base, Some("not-the-ehr-token"));
    let (status, body) = s.call(&req);
    assert_eq!(status, 412, "{body:#}");
    assert!(error_text(&body).contains("401"), "{body:#}");

    // A server error, and a server that refuses connections.
    for base in [&failing.base, &refused] {
        let mut req = seeded_request(&fhir, AGE_BUNDLE);
        with_server(&mut req, base, Some(FHIR_TOKEN));
        let (status, body) = s.call(&req);
        assert_eq!(status, 412, "{base}: {body:#}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("`patient`")),
            "{body:#}"
        );
    }
    assert!(failing.hits() > 0);

    // A patient the server does not have is no data (as a prefetch of null), not a failure:
    // the card says the age is needed.
    let mut req = seeded_request(&fhir, AGE_BUNDLE);
    req["context"]["patientId"] = json!("not-on-the-server");
    let (status, body) = s.call(&req);
    assert_eq!(status, 200, "{body:#}");
    assert!(
        summaries(&body)[0].starts_with("More information needed"),
        "{body:#}"
    );
    // The token never reaches the log.
    assert!(!s.gateway.log().contains(FHIR_TOKEN));
}
