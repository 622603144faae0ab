//! The gateway's FHIR validation against the HL7 Java validator's own R4 test cases
//! (tests/data/fhir-test-cases: Bundles, Parameters and the syntax cases; origin, licence and
//! selection in its README).
//!
//! Each case has the reference validator's verdict: valid (no error) or invalid. The gateway's
//! verdict is that of its FHIR validation on the resource as sent, whatever its type (the
//! gateway itself decides only on ServiceRequests, batch/transaction/collection Bundles and
//! Parameters carrying them): invalid when any error is found, valid otherwise.
//!
//! A false alarm (the gateway says invalid, the reference valid) fails the test. Misses (the
//! reference finds an error the gateway leaves to a full validator, such as a SNOMED CT display
//! name) are counted and printed; the count may not fall below what is measured today.

mod common;

use common::*;
use referral_gateway::parse::{self, Format, Limits, Unusable};
use serde_json::Value;

/// Agreements measured when this test was last changed (`cargo test --test reference_cases -- --nocapture`).
const AGREEMENTS_AT_LEAST: usize = 51;

fn gateway_errors(bytes: &[u8], format: Format) -> Vec<String> {
    let limits = Limits {
        max_bundle_entries: 10_000,
        max_depth: 64,
    };
    match parse::parse_any_resource(
        bytes,
        format,
        &limits,
        &referral_gateway::profile::base::check_input,
    ) {
        Err(Unusable::Malformed(f)) | Err(Unusable::TooCostly(f)) => {
            f.into_iter().map(|f| f.text).collect()
        }
        Ok(input) => input
            .findings
            .iter()
            .chain(input.entries.iter().flat_map(|e| e.findings.iter()))
            .filter(|f| f.is_error())
            .map(|f| {
                let at = f
                    .expression
                    .first()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                format!("{at}: {}", f.text)
            })
            .collect(),
    }
}

#[test]
fn agrees_with_the_reference_validator() {
    let dir = repo().join("tests/data/fhir-test-cases");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let cases = manifest["cases"].as_array().expect("cases");
    let (mut agree, mut false_alarms, mut misses) = (0, Vec::new(), Vec::new());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let file = case["file"].as_str().expect("file");
        let bytes = std::fs::read(dir.join(file)).expect("case file");
        let format = Format::from_path(file).unwrap_or(Format::Json);
        let errors = gateway_errors(&bytes, format);
        let reference_invalid = case["reference"] == "invalid";
        let verdict = |invalid: bool| if invalid { "invalid" } else { "valid" };
        println!(
            "{:<55} reference {:<8} gateway {:<8} {}",
            name,
            verdict(reference_invalid),
            verdict(!errors.is_empty()),
            errors.first().map(String::as_str).unwrap_or("")
        );
        match (reference_invalid, errors.is_empty()) {
            (true, false) | (false, true) => agree += 1,
            (false, false) => false_alarms.push(format!("{name}: {errors:?}")),
            (true, true) => misses.push(format!("{name}: {}", case["reference_errors"])),
        }
    }
    println!(
        "{agree} of {} agree; {} false alarms; {} misses",
        cases.len(),
        false_alarms.len(),
        misses.len()
    );
    for m in &misses {
        println!("miss: {m}");
    }
    assert!(false_alarms.is_empty(), "false alarms: {false_alarms:#?}");
    assert!(
        agree >= AGREEMENTS_AT_LEAST,
        "{agree} agreements, fewer than the {AGREEMENTS_AT_LEAST} measured before"
    );
}

/// japanese-utf8-ok is Shift_JIS without an XML declaration, so by XML 1.0 (4.3.3) it must be
/// UTF-8 and is not well-formed: the gateway refuses the bytes, where the reference validator
/// reads them anyway and reports what it holds (relative fullUrls, repeated fullUrls, required
/// elements missing, references that do not resolve). Read as the UTF-8 it should have been
/// (the derived file, transcoded and otherwise unchanged), the gateway refuses it for what it
/// holds too: its XML reader stops at the first missing required element, the Encounter's
/// status, which the reference reports as well.
#[test]
fn japanese_utf8_ok_is_invalid_for_its_bundle_too() {
    let dir = repo().join("tests/data/fhir-test-cases");
    let original = std::fs::read(dir.join("japanese-utf8-ok.xml")).expect("case file");
    let errors = gateway_errors(&original, Format::Xml);
    assert!(
        errors.iter().any(|e| e.contains("not valid UTF-8")),
        "{errors:?}"
    );
    let utf8 = std::fs::read(dir.join("japanese-utf8-ok.transcoded-utf8.xml")).expect("derived");
    let errors = gateway_errors(&utf8, Format::Xml);
    assert!(
        errors.iter().any(|e| e.contains("missing field `status`")),
        "{errors:#?}"
    );
    assert!(!errors.iter().any(|e| e.contains("UTF-8")), "{errors:#?}");
}
