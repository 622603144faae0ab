//! `age_at_least`: the patient's age in whole years on the day the request was written
//! (`authoredOn`) is at least this. A partial birth date that leaves the age either side of the
//! limit is missing context, not a guess.

use super::{age_check, Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "age_at_least",
    needs: Needs::Context("the patient's birth date"),
    reads_reason: false,
    example: "age_at_least = 45",
    doc: &["age in whole years at authoredOn >= 45"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct AgeAtLeast(i64);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    w.integer(cx)
        .map(|n| Arc::new(AgeAtLeast(n)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for AgeAtLeast {
    fn check(&self, f: &Facts<'_>) -> Check {
        age_check(f, self.0, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{born, request, run, with, Want::*};
    use serde_json::json;

    #[test]
    fn holds_and_fails() {
        let sr = request("US urinary tract", "visible haematuria");
        // Written 2026-06-15.
        run(&[
            ("age_at_least = 45", born(sr.clone(), "1981-06-15"), Holds),
            ("age_at_least = 45", born(sr.clone(), "1981-06-16"), Fails),
            ("age_at_least = 45", born(sr.clone(), "1970"), Holds),
            ("age_at_least = 45", born(sr.clone(), "1990-01"), Fails),
            // 44 or 45: not guessed
            ("age_at_least = 45", born(sr.clone(), "1981"), Unknown),
            (
                "age_at_least = 45",
                with(
                    sr,
                    json!({"subject": {"display": "a patient"}, "contained": null}),
                ),
                Unknown,
            ),
        ]);
    }
}
