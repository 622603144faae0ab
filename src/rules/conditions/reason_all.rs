//! `reason_all`: every one of these reasons (concept ids or `group:NAME`) is present.

use super::Written;
use super::{holds, reason_selectors, Check, Condition, Cx, Facts, Kind, Needs, ReasonSel};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "reason_all",
    needs: Needs::Request,
    reads_reason: true,
    example: "reason_all = []",
    doc: &["all present"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct ReasonAll(Vec<ReasonSel>);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    reason_selectors(w, cx)
        .map(|s| Arc::new(ReasonAll(s)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for ReasonAll {
    fn check(&self, f: &Facts<'_>) -> Check {
        let mut found = Vec::new();
        for sel in &self.0 {
            match f.mapped.present_reasons().find(|m| sel.matches(f.terms, m)) {
                Some(m) => found.push(m),
                None => return Check::Fails,
            }
        }
        let text = found
            .iter()
            .map(|m| f.reason_title(m))
            .collect::<Vec<_>>()
            .join("; ");
        holds(
            format!("reasons {text}"),
            found.first().map(|m| m.path.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let both = r#"reason_all = ["soft-tissue-lump", "benign-lump-features"]"#;
        run(&[
            (
                both,
                request("US forearm", "soft lump, mobile, present for years"),
                Holds,
            ),
            (both, request("US forearm", "lump on forearm"), Fails),
            (both, request("US forearm", ""), Fails),
        ]);
    }

    #[test]
    fn an_empty_list_is_no_condition() {
        assert!(compile("reason_all = []\n")
            .expect("compiles")
            .conditions
            .is_empty());
    }
}
