//! `no_clinical_information`: `true`, the request gives no finding, symptom or question (no
//! reason at all, or only words that carry no finding, or negated ones); `false`, it gives some.

use super::{holds, Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "no_clinical_information",
    needs: Needs::Request,
    reads_reason: false,
    example: "no_clinical_information = true",
    doc: &[
        "no finding, symptom or question: no reason at all,",
        "or only words that carry no finding / negated ones",
    ],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct NoClinicalInformation(bool);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    w.boolean(cx)
        .map(|b| Arc::new(NoClinicalInformation(b)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for NoClinicalInformation {
    fn check(&self, f: &Facts<'_>) -> Check {
        let none = !f.mapped.has_clinical_information;
        if none == self.0 {
            holds(
                if !none {
                    "clinical information is given"
                } else if f.mapped.has_reason_elements {
                    "the reason and notes hold no finding, symptom or clinical question (only courtesies, administrative remarks or negated findings)"
                } else {
                    "no reasonCode, reasonReference or note is given"
                },
                None,
            )
        } else {
            Check::Fails
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{outcome, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let none = "no_clinical_information = true";
        run(&[
            (none, request("Chest X-ray", ""), Holds),
            (none, request("Chest X-ray", "please"), Holds),
            (none, request("Chest X-ray", "cough"), Fails),
            (
                "no_clinical_information = false",
                request("Chest X-ray", "cough"),
                Holds,
            ),
            (
                "no_clinical_information = false",
                request("Chest X-ray", ""),
                Fails,
            ),
        ]);
    }

    #[test]
    fn says_whether_anything_was_written() {
        let none = "no_clinical_information = true";
        let (_, said) = outcome(none, &request("Chest X-ray", ""));
        assert_eq!(said, ["no reasonCode, reasonReference or note is given"]);
        let (_, said) = outcome(none, &request("Chest X-ray", "please"));
        assert!(
            said[0].starts_with("the reason and notes hold no finding"),
            "{said:?}"
        );
    }
}
