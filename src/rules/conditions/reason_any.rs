//! `reason_any`: at least one of these reasons (concept ids or `group:NAME`) is present in the
//! request (mentioned, not negated, current).

use super::{any_matches, holds, reason_selectors, Check, Condition, Cx, Facts, Kind, Needs};
use super::{ReasonSel, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "reason_any",
    needs: Needs::Request,
    reads_reason: true,
    example: r#"reason_any = ["neck-pain"]"#,
    doc: &[r#"at least one present (ids or "group:NAME")"#],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct ReasonAny(Vec<ReasonSel>);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    reason_selectors(w, cx)
        .map(|s| Arc::new(ReasonAny(s)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for ReasonAny {
    fn check(&self, f: &Facts<'_>) -> Check {
        match f
            .mapped
            .present_reasons()
            .find(|m| any_matches(&self.0, f.terms, m))
        {
            Some(m) => holds(
                format!("reason {}", f.reason_title(m)),
                Some(m.path.clone()),
            ),
            None => Check::Fails,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile_errors, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        run(&[
            (
                r#"reason_any = ["neck-pain"]"#,
                request("US neck", "neck pain"),
                Holds,
            ),
            (
                r#"reason_any = ["neck-pain"]"#,
                request("US neck", "no neck pain"),
                Fails,
            ),
            (
                r#"reason_any = ["neck-pain"]"#,
                request("US neck", ""),
                Fails,
            ),
            (
                r#"reason_any = ["neck-pain", "dysphagia"]"#,
                request("US neck", "dysphagia"),
                Holds,
            ),
            (
                r#"reason_any = ["group:pain"]"#,
                request("US abdomen", "abdominal pain"),
                Holds,
            ),
            (
                r#"reason_any = ["group:pain"]"#,
                request("US abdomen", "bloating"),
                Fails,
            ),
        ]);
    }

    #[test]
    fn unknown_concepts_and_groups_are_errors() {
        let e = compile_errors("reason_any = [\"nope\", \"group:nope\"]\n");
        let got: Vec<_> = e.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(2), "unknown reason concept 'nope'"),
                (Some(2), "no reason concept is in group 'nope'")
            ]
        );
    }
}
