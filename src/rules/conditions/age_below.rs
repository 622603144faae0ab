//! `age_below`: the patient's age in whole years on the day the request was written
//! (`authoredOn`) is below this. A partial birth date that leaves the age either side of the
//! limit is missing context, not a guess.

use super::{age_check, Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "age_below",
    needs: Needs::Context("the patient's birth date"),
    reads_reason: false,
    example: "age_below = 45",
    doc: &["age < 45"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct AgeBelow(i64);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    w.integer(cx)
        .map(|n| Arc::new(AgeBelow(n)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for AgeBelow {
    fn check(&self, f: &Facts<'_>) -> Check {
        age_check(f, self.0, false)
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{born, compile_errors, outcome, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let sr = request("US urinary tract", "visible haematuria");
        // Written 2026-06-15.
        run(&[
            ("age_below = 45", born(sr.clone(), "1981-06-16"), Holds),
            ("age_below = 45", born(sr.clone(), "1981-06-15"), Fails),
            ("age_below = 45", born(sr.clone(), "1981"), Unknown),
        ]);
    }

    #[test]
    fn a_partial_birth_date_says_the_range() {
        let sr = born(request("US urinary tract", "visible haematuria"), "1981");
        let (_, said) = outcome("age_below = 45", &sr);
        assert_eq!(
            said,
            ["missing exact patient age: the birth date is partial: the age could be 44 to 45, either side of 45"]
        );
    }

    #[test]
    fn the_limit_is_a_whole_number() {
        let e = compile_errors("age_below = \"45\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].message, "age_below is a whole number");
    }
}
