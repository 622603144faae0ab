//! `clinical_change`: `true`, a reason of kind `clinical-change` is present (e.g. a lesion
//! that has grown); `false`, none is.

use super::{flag_check, Check, Condition, Cx, Facts, Kind, Needs, Written};
use crate::terminology::ReasonKind;
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "clinical_change",
    needs: Needs::Request,
    reads_reason: false,
    example: "clinical_change = false",
    doc: &["false: no reason of kind clinical-change present"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct ClinicalChange(bool);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    w.boolean(cx)
        .map(|b| Arc::new(ClinicalChange(b)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for ClinicalChange {
    fn check(&self, f: &Facts<'_>) -> Check {
        flag_check(f, ReasonKind::ClinicalChange, "clinical change", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let us = "US soft tissue";
        run(&[
            (
                "clinical_change = false",
                request(us, "lipoma follow-up"),
                Holds,
            ),
            (
                "clinical_change = false",
                request(us, "lipoma, increased in size"),
                Fails,
            ),
            (
                "clinical_change = true",
                request(us, "lipoma, increased in size"),
                Holds,
            ),
            (
                "clinical_change = true",
                request(us, "lipoma follow-up"),
                Fails,
            ),
        ]);
    }
}
