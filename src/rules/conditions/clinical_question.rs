//! `clinical_question`: `true`, a clinical question or differential diagnosis is asked;
//! `false`, none is.

use super::{holds, Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "clinical_question",
    needs: Needs::Request,
    reads_reason: false,
    example: "clinical_question = false",
    doc: &["true: a question is required; false: must be absent"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct ClinicalQuestion(bool);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    w.boolean(cx)
        .map(|b| Arc::new(ClinicalQuestion(b)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for ClinicalQuestion {
    fn check(&self, f: &Facts<'_>) -> Check {
        match (&f.mapped.question, self.0) {
            (Some((p, what)), true) => holds(format!("clinical question: {what}"), Some(p.clone())),
            (None, false) => holds(
                "no clinical question or differential diagnosis is given",
                None,
            ),
            _ => Check::Fails,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        run(&[
            (
                "clinical_question = false",
                request("Chest X-ray", "cough"),
                Holds,
            ),
            (
                "clinical_question = false",
                request("Chest X-ray", "cough ?pneumonia"),
                Fails,
            ),
            (
                "clinical_question = true",
                request("Chest X-ray", "cough ?pneumonia"),
                Holds,
            ),
            (
                "clinical_question = true",
                request("Chest X-ray", "cough"),
                Fails,
            ),
            (
                "clinical_question = true",
                request("US abdomen", "suspected gallstones"),
                Holds,
            ),
        ]);
    }
}
