//! `reason_none`: none of these reasons (concept ids or `group:NAME`) is present. A negated
//! mention ("no mass") does not count, and is said in the diagnostics. Nor does the name of the
//! examination asked for: "US soft tissue neck" or "US neck lump" says what is to be scanned,
//! not that the patient has a soft tissue lump or a neck mass (blind sets 4, 12, 15, 17, 18).

use super::{any_matches, holds, reason_selectors, Check, Condition, Cx, Facts, Kind, Needs};
use super::{ReasonSel, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "reason_none",
    needs: Needs::Request,
    reads_reason: true,
    example: r#"reason_none = ["neck-mass", "dysphagia"]"#,
    doc: &["none present"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct ReasonNone(Vec<ReasonSel>);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    reason_selectors(w, cx)
        .map(|s| Arc::new(ReasonNone(s)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for ReasonNone {
    fn check(&self, f: &Facts<'_>) -> Check {
        if f.mapped
            .present_reasons()
            .any(|m| !m.examination_words && any_matches(&self.0, f.terms, m))
        {
            return Check::Fails;
        }
        let negated: Vec<String> = f
            .mapped
            .reasons
            .iter()
            .filter(|m| m.negated && any_matches(&self.0, f.terms, m))
            .map(|m| f.reason_title(m))
            .collect();
        if negated.is_empty() {
            Check::Holds(None, None)
        } else {
            holds(
                format!("negated, so not counted: {}", negated.join("; ")),
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{outcome, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let none = r#"reason_none = ["neck-mass", "dysphagia"]"#;
        run(&[
            (none, request("US neck", "neck pain"), Holds),
            (none, request("US neck", ""), Holds),
            (none, request("US neck", "neck pain and a neck lump"), Fails),
            (none, request("US neck", "neck pain, dysphagia"), Fails),
            (none, request("US neck", "neck pain, no dysphagia"), Holds),
            // The examination's own name is what is to be scanned, not a reason.
            (
                r#"reason_none = ["soft-tissue-lump"]"#,
                request("US soft tissue neck", "neck pain"),
                Holds,
            ),
            (
                r#"reason_none = ["soft-tissue-lump"]"#,
                request("US soft tissue neck", "2cm lump, neck pain"),
                Fails,
            ),
        ]);
    }

    #[test]
    fn a_negated_mention_is_said() {
        let (_, said) = outcome(
            r#"reason_none = ["dysphagia"]"#,
            &request("US neck", "neck pain, no dysphagia"),
        );
        assert!(
            said.iter()
                .any(|s| s.starts_with("negated, so not counted: ")),
            "{said:?}"
        );
    }
}
