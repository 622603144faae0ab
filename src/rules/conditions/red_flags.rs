//! `red_flags`: `true`, a reason of kind `red-flag` is present; `false`, none is.

use super::{flag_check, Check, Condition, Cx, Facts, Kind, Needs, Written};
use crate::terminology::ReasonKind;
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "red_flags",
    needs: Needs::Request,
    reads_reason: false,
    example: "red_flags = false",
    doc: &["false: no reason of kind red-flag present"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct RedFlags(bool);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    w.boolean(cx)
        .map(|b| Arc::new(RedFlags(b)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for RedFlags {
    fn check(&self, f: &Facts<'_>) -> Check {
        flag_check(f, ReasonKind::RedFlag, "red flag", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let lump = "US soft tissue";
        run(&[
            ("red_flags = false", request(lump, "lump on forearm"), Holds),
            (
                "red_flags = false",
                request(lump, "lump on forearm, rapidly growing"),
                Fails,
            ),
            (
                "red_flags = true",
                request(lump, "lump on forearm, rapidly growing"),
                Holds,
            ),
            ("red_flags = true", request(lump, "lump on forearm"), Fails),
        ]);
    }
}
