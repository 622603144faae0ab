//! Conformance suite, FHIR R4 CapabilityStatement (capabilitystatement.html, http.html
//! §capabilities) and contract §4 / §7: the statement describes exactly what the gateway does.
//! Each case cites the clause it checks.

mod common;

use common::harness::*;
use common::server::{Server, FHIR_JSON};
use serde_json::Value;

fn metadata() -> Value {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let (status, _, cs) = read(server().get("/metadata"));
    assert_eq!(status, 200);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    cs
}

fn resource<'a>(cs: &'a Value, ty: &str) -> &'a Value {
    cs["rest"][0]["resource"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["type"] == ty))
        .unwrap_or_else(|| panic!("no {ty} in {cs}"))
}

fn codes(v: &Value, key: &str, field: &str) -> Vec<String> {
    v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x[field].as_str().map(str::to_string))
        .collect()
}

/// Contract §7 "Without --upstream ... its CapabilityStatement does not claim create" (http.html
/// §create: the server creates a resource; the gateway stores nothing).
#[test]
fn no_create_is_claimed_without_an_upstream() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cs = metadata();
    let sr = resource(&cs, "ServiceRequest");
    assert!(
        !codes(sr, "interaction", "code").contains(&"create".to_string()),
        "{sr}"
    );
    assert!(sr["documentation"]
        .as_str()
        .unwrap_or("")
        .contains("POST /ServiceRequest"));
    // What it does document is served.
    let (status, _, _) = read(server().post(
        "/ServiceRequest",
        Some(FHIR_JSON),
        example(ACCEPTED).to_string(),
    ));
    assert_eq!(status, 200);
}

/// capabilitystatement.html `rest.operation` / `rest.resource.operation`: `definition` is the
/// OperationDefinition of the operation at that level. HL7's Resource-validate is type and
/// instance level; the system-level `$validate` is the gateway's own, served and marked
/// `system: true` (contract §4: "described by the gateway's own OperationDefinition").
#[test]
fn validate_is_declared_at_the_level_its_definition_has() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cs = metadata();
    let sr = resource(&cs, "ServiceRequest");
    assert_eq!(sr["operation"][0]["name"], "validate");
    assert_eq!(
        sr["operation"][0]["definition"],
        "http://hl7.org/fhir/OperationDefinition/Resource-validate"
    );
    let system = &cs["rest"][0]["operation"][0];
    assert_eq!(system["name"], "validate");
    let url = system["definition"]
        .as_str()
        .expect("definition")
        .to_string();
    assert_ne!(
        url,
        "http://hl7.org/fhir/OperationDefinition/Resource-validate"
    );
    // The definition is served, found by its url, and says system level.
    let (status, _, found) = read(server().get(&format!("/OperationDefinition?url={url}")));
    assert_eq!(status, 200);
    assert_eq!(found["total"], 1, "{found}");
    let od = &found["entry"][0]["resource"];
    assert_eq!(od["code"], "validate");
    assert_eq!(
        (
            od["system"].as_bool(),
            od["type"].as_bool(),
            od["instance"].as_bool()
        ),
        (Some(true), Some(false), Some(false))
    );
    let params = codes(od, "parameter", "name");
    assert_eq!(params, ["resource", "mode", "profile", "return"]);
    let id = od["id"].as_str().expect("id");
    let (status, _, read_back) = read(server().get(&format!("/OperationDefinition/{id}")));
    assert_eq!(
        (status, read_back["url"].as_str()),
        (200, Some(url.as_str()))
    );
}

/// capabilitystatement.html `rest.resource.searchParam` (cpb-12: unique names): every search
/// parameter a type supports is declared, and every one declared works.
#[test]
fn the_search_parameters_of_the_conformance_types_are_declared_and_work() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cs = metadata();
    for ty in [
        "StructureDefinition",
        "CodeSystem",
        "ValueSet",
        "ConceptMap",
        "OperationDefinition",
    ] {
        let r = resource(&cs, ty);
        assert_eq!(
            codes(r, "interaction", "code"),
            ["read", "search-type"],
            "{ty}"
        );
        let names = codes(r, "searchParam", "name");
        assert_eq!(names, ["_id", "url"], "{ty}");
        // Each declared parameter narrows the search to the one resource it names.
        let (_, _, all) = read(server().get(&format!("/{ty}")));
        let first = &all["entry"][0]["resource"];
        let id = first["id"].as_str().expect("id");
        let url = first["url"].as_str().expect("url");
        for q in [format!("_id={id}"), format!("url={url}")] {
            let (status, _, one) = read(server().get(&format!("/{ty}?{q}")));
            assert_eq!((status, one["total"].as_u64()), (200, Some(1)), "{ty}?{q}");
        }
    }
}

/// dom-6 (a resource should have a narrative for robust management) and
/// capabilitystatement.html `rest.security.cors`: the statement has a generated XHTML
/// narrative and says CORS is supported, which it is.
#[test]
fn the_statement_has_a_narrative_and_declares_cors() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cs = metadata();
    assert_eq!(cs["text"]["status"], "generated");
    let div = cs["text"]["div"].as_str().expect("div");
    assert!(
        div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"),
        "{div}"
    );
    assert!(
        div.contains("ServiceRequest") && div.contains("$validate"),
        "{div}"
    );
    // Well-formed XHTML: FHIR XML carries it as markup, so the XML answer must parse.
    let xml = server().get("/metadata?_format=xml").text().expect("XML");
    let back = fhir_codec::xml_to_json(&xml).expect("the narrative is well-formed XHTML");
    assert_eq!(back["text"]["status"], "generated");
    assert_eq!(cs["rest"][0]["security"]["cors"], true);
    let res = server()
        .client
        .get(server().url("/metadata"))
        .header("origin", "https://app.example.org")
        .send()
        .expect("GET");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

/// cpb-14 (kind = instance: implementation present), cpb-9 (a resource described once per
/// mode), and everything else the statement claims at system level is served.
#[test]
fn what_is_claimed_is_served_and_said_once() {
    // Its own server and store: tests never share state.
    let own = Server::start(&[]);
    let server = || &own;
    let cs = metadata();
    assert_eq!(cs["kind"], "instance");
    assert!(cs["implementation"]["description"].is_string());
    let types = codes(&cs["rest"][0], "resource", "type");
    let mut unique = types.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), types.len(), "{types:?}");
    let system = codes(&cs["rest"][0], "interaction", "code");
    assert_eq!(system, ["batch", "transaction"]);
    for kind in system {
        let b = bundle_of(&kind, &[("POST", Some(ACCEPTED))]);
        let (status, _, answer) = read(server().post("/", Some(FHIR_JSON), b.to_string()));
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_eq!(answer["type"], format!("{kind}-response"));
    }
}
