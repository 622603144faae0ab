//! FHIR XML as real senders write it is read; what FHIR XML forbids is refused (issue 20).
//!
//! Each case starts from `tests/data/xml/referral.xml`, a referral the shipped guidance
//! accepts, and changes one thing.

mod common;

use common::*;
use referral_gateway::engine::Checked;
use referral_gateway::finding::Decision;
use referral_gateway::parse::{Format, Unusable};

fn referral() -> String {
    std::fs::read_to_string(repo().join("tests/data/xml/referral.xml")).expect("test data")
}

fn with(from: &str, to: &str) -> String {
    let text = referral();
    assert!(text.contains(from), "the test data has changed: no {from}");
    text.replacen(from, to, 1)
}

fn check(text: &str) -> Result<Checked, Unusable> {
    check_bytes(text.as_bytes(), Format::Xml)
}

fn accepted(text: &str) -> Checked {
    let c = check(text).unwrap_or_else(|e| panic!("refused: {:#?}", e.findings()));
    let r = only(&c);
    assert!(!r.invalid, "invalid: {:#?}", r.findings);
    assert_eq!(r.decision, Decision::Accepted, "{:#?}", r.findings);
    c
}

fn refused(text: &str) -> Vec<String> {
    match check(text) {
        Ok(c) => panic!("accepted: {:#?}", only(&c).findings),
        Err(Unusable::Malformed(f)) => f.into_iter().map(|f| f.text).collect(),
        Err(other) => panic!("not malformed: {other:?}"),
    }
}

const ROOT: &str = r#"<ServiceRequest xmlns="http://hl7.org/fhir">"#;

#[test]
fn the_plain_form_is_accepted() {
    accepted(&referral());
}

#[test]
fn schema_location_and_unused_namespaces_are_accepted() {
    accepted(&with(
        ROOT,
        r#"<ServiceRequest xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir ../../schema/servicerequest.xsd" xmlns:xhtml="http://www.w3.org/1999/xhtml" xmlns:other="urn:example:unused">"#,
    ));
}

#[test]
fn prefixed_fhir_elements_are_accepted() {
    let prefixed = regex::Regex::new(r"<(/?)([A-Za-z])").expect("regex");
    let text = prefixed.replace_all(&referral(), "<${1}f:$2").replace(
        r#"xmlns="http://hl7.org/fhir""#,
        r#"xmlns:f="http://hl7.org/fhir""#,
    );
    assert!(text.contains("<f:status value=\"active\"/>"), "{text}");
    let c = accepted(&text);
    let sr = c.input.resource(&c.input.entries[0]).expect("resource");
    assert_eq!(sr["contained"][0]["birthDate"], "1958-03-02");
}

#[test]
fn encoding_names_in_any_case_are_accepted() {
    for enc in ["utf-8", "Utf-8", "UTF-8"] {
        accepted(&with(
            r#"encoding="UTF-8""#,
            &format!(r#"encoding="{enc}""#),
        ));
    }
    accepted(&with(r#"<?xml version="1.0" encoding="UTF-8"?>"#, ""));
}

#[test]
fn other_encodings_are_refused() {
    let e = refused(&with(r#"encoding="UTF-8""#, r#"encoding="ISO-8859-1""#));
    assert!(e[0].contains("UTF-8"), "{e:?}");
}

const NARRATIVE: &str = r##"<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml" xml:lang="en-GB" lang="en-GB"><p class="summary" style="font-weight: bold">Chest X-ray &amp; <span title="question">?consolidation</span></p><table border="1"><tr><td colspan="2">Ex-smoker</td></tr></table><a href="https://example.org/guidance">guidance</a><br/><img src="#pic" alt="x"/></div></text>"##;

#[test]
fn narrative_with_xml_lang_and_xhtml_attributes_is_accepted_and_kept() {
    let c = accepted(&with(
        "  <contained>",
        &format!("{NARRATIVE}\n  <contained>"),
    ));
    let sr = c.input.resource(&c.input.entries[0]).expect("resource");
    let div = sr["text"]["div"].as_str().expect("div");
    assert!(
        div.starts_with(r#"<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="en-GB" lang="en-GB"><p class="summary""#),
        "{div}"
    );
    assert!(div.contains("Chest X-ray &amp; <span"), "{div}");
}

#[test]
fn narrative_with_a_prefixed_xhtml_namespace_is_accepted() {
    let text = with(
        "  <contained>",
        r#"<text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p>Chest X-ray</h:p></h:div></text>
  <contained>"#,
    );
    let c = accepted(&text);
    let sr = c.input.resource(&c.input.entries[0]).expect("resource");
    assert_eq!(
        sr["text"]["div"],
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Chest X-ray</p></div>"#
    );
}

#[test]
fn comments_are_accepted_anywhere() {
    accepted(&with(
        "  <status value=\"active\"/>",
        "  <!-- sent by order comms -->\n  <status value=\"active\"/><!-- end -->",
    ));
}

#[test]
fn root_outside_the_fhir_namespace_is_refused() {
    let e = refused(&with(ROOT, "<ServiceRequest>"));
    assert!(e[0].contains("no namespace"), "{e:?}");
    let e = refused(&with(
        ROOT,
        r#"<ServiceRequest xmlns="http://hl7.org/fhir/r4">"#,
    ));
    assert!(e[0].contains("http://hl7.org/fhir/r4"), "{e:?}");
}

#[test]
fn foreign_elements_and_attributes_are_refused() {
    let e = refused(&with(
        "  <status value=\"active\"/>",
        "  <status value=\"active\"/><x:flag xmlns:x=\"urn:example\" value=\"1\"/>",
    ));
    assert!(
        e[0].contains("'flag' is in the namespace 'urn:example'"),
        "{e:?}"
    );
    let e = refused(&with(
        "<status value=\"active\"/>",
        "<status value=\"active\" xml:lang=\"en\"/>",
    ));
    assert!(e[0].contains("'xml:lang'"), "{e:?}");
    let e = refused(&with(
        "<status value=\"active\"/>",
        "<status value=\"active\" note=\"x\"/>",
    ));
    assert!(e[0].contains("'note'"), "{e:?}");
}

#[test]
fn text_outside_the_narrative_and_processing_instructions_are_refused() {
    let e = refused(&with(
        "<status value=\"active\"/>",
        "<status>active</status>",
    ));
    assert!(e[0].contains("Text is not allowed"), "{e:?}");
    let e = refused(&with(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><?xml-stylesheet href="a.xsl"?>"#,
    ));
    assert!(e[0].contains("Processing instructions"), "{e:?}");
}

#[test]
fn undeclared_entities_and_doctypes_are_refused() {
    let e = refused(&with("Chest X-ray", "Chest&nbsp;X-ray"));
    assert!(e[0].contains("not well-formed"), "{e:?}");
    let e = refused(&with(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE ServiceRequest [<!ENTITY x "y">]>"#,
    ));
    assert!(e[0].contains("DOCTYPE"), "{e:?}");
}

#[test]
fn narrative_in_the_fhir_namespace_is_refused() {
    let e = refused(&with(
        "  <contained>",
        "<text><status value=\"generated\"/><div>Chest X-ray</div></text>\n  <contained>",
    ));
    assert!(e[0].contains("XHTML namespace"), "{e:?}");
}

#[test]
fn unknown_elements_are_still_refused_with_their_place() {
    let e = match check(&with(
        "<status value=\"active\"/>",
        "<status value=\"active\"/><colour value=\"red\"/>",
    )) {
        Err(Unusable::Malformed(f)) => f,
        other => panic!("{other:?}"),
    };
    assert!(e[0].text.contains("colour"), "{e:?}");
    assert!(e[0].position.is_some(), "{e:?}");
}
