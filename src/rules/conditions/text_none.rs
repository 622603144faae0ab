//! `text_none`: no clinical text of the request mentions any of these patterns currently (a
//! negated or past mention does not count).

use super::{text_patterns, Check, Condition, Cx, Facts, Kind, Needs, Written};
use regex::Regex;
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "text_none",
    needs: Needs::Request,
    reads_reason: false,
    example: "text_none = ['regex']",
    doc: &["no clinical text matches"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct TextNone(Regex);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    text_patterns(w, cx)
        .map(|re| Arc::new(TextNone(re)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for TextNone {
    fn check(&self, f: &Facts<'_>) -> Check {
        if f.mapped.texts.iter().any(|(_, t)| {
            f.terms
                .reader
                .mentions(&self.0, t, f.mapped.as_of)
                .iter()
                .any(|x| x.is_current())
        }) {
            Check::Fails
        } else {
            Check::Holds(None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let none = "text_none = ['night sweats?']";
        run(&[
            (none, request("Chest X-ray", "cough"), Holds),
            (none, request("Chest X-ray", ""), Holds),
            (
                none,
                request("Chest X-ray", "cough, no night sweats"),
                Holds,
            ),
            (
                none,
                request("Chest X-ray", "cough and night sweats"),
                Fails,
            ),
        ]);
    }
}
