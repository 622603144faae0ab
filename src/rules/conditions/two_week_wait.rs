//! `two_week_wait`: `true`, the request carries a 2WW / urgent suspected cancer marker
//! (terminology `markers.toml`); `false`, it does not.

use super::{holds, Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "two_week_wait",
    needs: Needs::Request,
    reads_reason: false,
    example: "two_week_wait = true",
    doc: &["a 2WW / urgent suspected cancer marker is present"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct TwoWeekWait(bool);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    w.boolean(cx)
        .map(|b| Arc::new(TwoWeekWait(b)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for TwoWeekWait {
    fn check(&self, f: &Facts<'_>) -> Check {
        match (&f.mapped.two_week_wait, self.0) {
            (Some((p, what)), true) => holds(format!("2WW marker {what} at {p}"), Some(p.clone())),
            (None, false) => Check::Holds(None, None),
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
                "two_week_wait = true",
                request("Chest X-ray", "2WW suspected lung cancer"),
                Holds,
            ),
            (
                "two_week_wait = true",
                request("Chest X-ray", "cough"),
                Fails,
            ),
            (
                "two_week_wait = false",
                request("Chest X-ray", "cough"),
                Holds,
            ),
            (
                "two_week_wait = false",
                request("Chest X-ray", "2WW suspected lung cancer"),
                Fails,
            ),
        ]);
    }
}
