//! Every input that fuzzing (`fuzz/`, see ROBUSTNESS.md) found to break a promise of the
//! gateway, replayed: `tests/data/fuzz/*.json` and `*.xml`. Each gets an answer with a status
//! the contract allows, and the answer is a FHIR resource that can be written as well-formed XML.

mod common;

use common::{repo, rules};
use referral_gateway::engine;
use referral_gateway::http::negotiate::xml_safe;
use referral_gateway::outcome::response::{answer, unusable_answer, validate_answer};
use referral_gateway::parse::{Format, Limits};

#[test]
fn fuzz_findings_are_answered() {
    let dir = repo().join("tests/data/fuzz");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/data/fuzz") {
        let path = entry.expect("entry").path();
        let name = path.display().to_string();
        let Some(format) = Format::from_path(&name) else {
            continue;
        };
        seen += 1;
        let bytes = std::fs::read(&path).expect("readable");
        let site = &rules().site;
        let answers = match engine::check(rules(), &bytes, format, &Limits::default()) {
            Err(u) => vec![unusable_answer(&u, site)],
            Ok(c) => vec![answer(&c, site), validate_answer(&c, site)],
        };
        for a in answers {
            assert!(
                matches!(a.status, 200 | 400 | 413 | 422),
                "{name}: {}",
                a.status
            );
            let mut body = a.body.clone();
            xml_safe(&mut body);
            let xml = fhir_codec::json_to_xml(&body)
                .unwrap_or_else(|e| panic!("{name}: not writable as XML: {e}"));
            if let Err(e) = roxmltree::Document::parse(&xml) {
                panic!("{name}: the XML answer is not well-formed: {e}\n{xml}");
            }
        }
    }
    assert!(seen > 0, "no findings in {}", dir.display());
}
