//! The codec's contract and the fhirbolt 0.4.0 bugs it works around, pinned.
//!
//! These live in an integration test, not in `#[cfg(test)]` inside the crate: a unit-test
//! build compiles the whole crate (every fhirbolt deserializer) a second time, which cost about
//! as much as the crate itself on a cold `cargo test`.
use fhir_codec::*;
use serde_json::{json, Value};

fn bundle() -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{
            "fullUrl": "urn:uuid:0b8f7c9e-8f5a-4c39-9d1e-3f1f3c2d9a11",
            "resource": {
                "resourceType": "ServiceRequest",
                "contained": [{"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}],
                "status": "active", "intent": "order",
                "subject": {"reference": "#p1"}
            },
            "request": {"method": "POST", "url": "ServiceRequest"}
        }]
    })
}

/// fhirbolt 0.4.0's typed `Bundle` parse rejects this Bundle (a contained resource first); the
/// codec's enum path reads it. (Probing fhirbolt's typed path here would compile its whole
/// model into this test a second time, so the upstream bug itself is no longer pinned.)
#[test]
fn enum_path_reads_bundles_with_contained_resources_first() {
    let b = bundle();
    assert!(check_json(&b).is_ok());
    let back = round_trip_json(&b).expect("round trip");
    assert_eq!(back["entry"][0]["request"]["method"], "POST");
    assert_eq!(back["entry"][0]["resource"]["subject"]["reference"], "#p1");
}

/// fhirbolt 0.4.0 panics on empty arrays; through the codec they are never a crash.
#[test]
fn empty_arrays_do_not_panic() {
    let v = json!({"resourceType": "Bundle", "type": "batch", "entry": []});
    assert!(check_json(&v).is_ok());
    assert!(check_json(&json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}, "code": {"coding": []}})).is_ok());
    // Arrays that hold only empty arrays are empty too.
    let nested = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}, "note": [[[]]]});
    let parser_failed = Some("the FHIR parser failed on this input".to_string());
    assert_ne!(
        check_json(&nested).err().map(|e| e.message),
        parser_failed,
        "fhirbolt panicked"
    );
}

#[test]
fn unknown_element_is_an_error() {
    let e = check_json(&json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}, "bogus": 1}))
        .expect_err("unknown element");
    assert!(e.message.contains("unknown field `bogus`"), "{e}");
}

/// Each kind of error, as the gateway reads it: by kind, never by its message.
#[test]
fn errors_have_kinds() {
    let sr = |extra: Value| {
        let mut v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}});
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    };
    let kind = |v: &Value| check_json(v).expect_err("an error").kind;
    assert_eq!(
        kind(&sr(json!({"bogus": 1}))),
        ErrorKind::UnknownField {
            name: "bogus".into()
        }
    );
    let mut no_subject = sr(json!({}));
    no_subject.as_object_mut().map(|o| o.remove("subject"));
    assert_eq!(
        kind(&no_subject),
        ErrorKind::MissingField {
            name: "subject".into()
        }
    );
    assert_eq!(
        kind(&sr(json!({"note": [{"text": 5}]}))),
        ErrorKind::InvalidType
    );
    // An unknown resourceType: fhirbolt reports the object's type, not the name.
    assert_eq!(
        kind(&json!({"resourceType": "Nonsense"})),
        ErrorKind::InvalidType
    );
    let e = check_json(&sr(json!({"bogus": 1}))).expect_err("an error");
    assert_eq!(e.brief(), "unknown field `bogus`");
}

#[test]
fn single_object_for_array_is_normalised_and_visible_in_round_trip() {
    let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}, "category": {"text": "x"}});
    let back = round_trip_json(&v).expect("fhirbolt accepts it");
    assert!(back["category"].is_array());
}

#[test]
fn xml_round_trips_through_json() {
    let xml = r#"<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/><intent value="order"/><subject><reference value="Patient/1"/></subject></ServiceRequest>"#;
    let v = xml_to_json(xml).expect("xml");
    assert_eq!(v["resourceType"], "ServiceRequest");
    assert_eq!(v["subject"]["reference"], "Patient/1");
    let back = json_to_xml(&v).expect("to xml");
    assert!(back.contains("<reference value=\"Patient/1\"/>"));
}
