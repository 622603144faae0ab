//! Conformance suite, FHIR R4 `$validate` (resource-operation-validate.html, OperationDefinition
//! Resource-validate) and the locations of validation findings (contract §3 `expression`):
//! each case cites the clause it checks.

mod common;

use common::harness::*;
use common::server::{Server, FHIR_JSON};
use serde_json::{json, Value};

fn post(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, body) = read(s.post(path, Some(FHIR_JSON), body.to_string()));
    (status, body)
}

fn parameters(resource: Value, parts: &[Value]) -> Value {
    let mut params = vec![json!({"name": "resource", "resource": resource})];
    params.extend(parts.iter().cloned());
    json!({"resourceType": "Parameters", "parameter": params})
}

/// Resource-validate `profile` (0..1 uri): "If the server cannot validate against the
/// nominated profile, it SHALL return an error"; in a Parameters body as in the query.
#[test]
fn an_unknown_profile_is_an_error_in_the_parameters_as_in_the_query() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let unknown = "https://example.org/StructureDefinition/not-here";
    for path in ["/$validate", "/ServiceRequest/$validate"] {
        let body = parameters(
            example(ACCEPTED),
            &[json!({"name": "profile", "valueUri": unknown})],
        );
        let (status, oo) = post(server(), path, &body);
        assert_eq!(status, 400, "{path}: {oo}");
        assert_outcome(&oo, "not-supported");
        let (status, _) = post(
            server(),
            &format!("{path}?profile={unknown}"),
            &example(ACCEPTED),
        );
        assert_eq!(status, 400, "{path}?profile=");
        // The same Parameters as FHIR XML.
        let xml = fhir_codec::json_to_xml(&body).expect("XML");
        let res = server().post(path, Some("application/fhir+xml"), xml);
        assert_eq!(res.status().as_u16(), 400, "{path}, XML");
        // A profile the gateway has is checked: the answer is the validation outcome.
        let known = parameters(
            example(ACCEPTED),
            &[json!({"name": "profile", "valueUri": PROFILE})],
        );
        let (status, oo) = post(server(), path, &known);
        assert_eq!(
            (status, decision(&oo).as_deref()),
            (200, Some("accepted")),
            "{oo}"
        );
    }
}

/// Resource-validate `mode` (0..1 code, binding required to ResourceValidationMode): a value
/// outside it is an error, not ignored; `profile` needs a profile; the gateway performs no
/// update or delete, so it cannot answer those modes (400, said in its OperationDefinition).
#[test]
fn mode_is_bound_to_resource_validation_mode() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let mode = |code: &str| json!({"name": "mode", "valueCode": code});
    let (status, oo) = post(
        server(),
        "/$validate",
        &parameters(example(ACCEPTED), &[mode("everything")]),
    );
    assert_eq!(status, 400, "{oo}");
    assert_outcome(&oo, "invalid");
    let (status, _) = post(server(), "/$validate?mode=everything", &example(ACCEPTED));
    assert_eq!(status, 400);
    let (status, oo) = post(
        server(),
        "/$validate",
        &parameters(example(ACCEPTED), &[mode("create")]),
    );
    assert_eq!((status, decision(&oo).as_deref()), (200, Some("accepted")));
    let (status, _) = post(
        server(),
        "/$validate",
        &parameters(example(ACCEPTED), &[mode("profile")]),
    );
    assert_eq!(status, 400, "mode profile without a profile");
    let (status, oo) = post(
        server(),
        "/$validate",
        &parameters(
            example(REJECTED),
            &[
                mode("profile"),
                json!({"name": "profile", "valueUri": PROFILE}),
            ],
        ),
    );
    assert_eq!((status, decision(&oo).as_deref()), (200, Some("rejected")));
    for m in ["update", "delete"] {
        let (status, oo) = post(
            server(),
            "/ServiceRequest/$validate",
            &parameters(example(ACCEPTED), &[mode(m)]),
        );
        assert_eq!(status, 400, "{m}: {oo}");
        assert_outcome(&oo, "not-supported");
    }
}

/// Resource-validate is defined at type and instance level (`instance: true`):
/// `POST [base]/[type]/[id]/$validate` validates the resource sent against that instance; its
/// id, when it has one, must be the URL's.
#[test]
fn validate_at_instance_level() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let sr = example(REDIRECTED);
    let id = sr["id"].as_str().expect("id").to_string();
    let (status, oo) = post(server(), &format!("/ServiceRequest/{id}/$validate"), &sr);
    assert_eq!(status, 200, "{oo}");
    assert_eq!(decision(&oo).as_deref(), Some("redirected"));
    let (status, oo) = post(
        server(),
        &format!("/ServiceRequest/{id}/$validate"),
        &parameters(sr.clone(), &[]),
    );
    assert_eq!(status, 200, "{oo}");
    let (status, oo) = post(server(), "/ServiceRequest/another-id/$validate", &sr);
    assert_eq!(status, 400, "{oo}");
    assert_outcome(&oo, "invalid");
    let (status, _) = post(
        server(),
        &format!("/ServiceRequest/{id}/$validate"),
        &bundle_of("batch", &[("POST", Some(ACCEPTED))]),
    );
    assert_eq!(status, 400, "a Bundle is not a ServiceRequest instance");
}

/// Contract §3: `expression` is the FHIRPath of the element concerned, valid against the
/// input. A missing required element is named itself (or its parent), never a sibling.
#[test]
fn a_missing_element_is_named_not_a_sibling() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let mut sr = example(ACCEPTED);
    let o = sr.as_object_mut().expect("object");
    o.remove("subject");
    o.remove("intent");
    let (status, oo) = post(server(), "/$validate", &sr);
    assert_eq!(status, 200, "{oo}");
    let required: Vec<(String, String)> = oo["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter(|i| i["code"] == "required")
        .map(|i| {
            (
                i["details"]["text"].as_str().unwrap_or("").to_string(),
                i["expression"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for element in ["subject", "intent"] {
        let at: Vec<&str> = required
            .iter()
            .filter(|(text, _)| text.contains(&format!("'{element}'")))
            .map(|(_, at)| at.as_str())
            .collect();
        assert!(!at.is_empty(), "no issue for {element}: {oo}");
        for a in at {
            assert!(
                a == format!("ServiceRequest.{element}") || a == "ServiceRequest",
                "{element} located at {a}"
            );
        }
    }
    assert!(
        !expressions(&oo)
            .iter()
            .any(|e| e == "ServiceRequest.status"),
        "{oo}"
    );
    // Inside a Bundle entry too.
    let (_, oo) = post(
        server(),
        "/$validate",
        &json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": sr, "request": {"method": "POST", "url": "ServiceRequest"}}
        ]}),
    );
    let e = expressions(&oo);
    assert!(
        e.iter().any(|x| x == "Bundle.entry[0].resource.subject"),
        "{oo}"
    );
    assert!(!e.iter().any(|x| x.ends_with(".status")), "{oo}");
}
