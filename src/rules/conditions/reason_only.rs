//! `reason_only`: at least one reason is given, every reason recognised is in the set, and
//! every reason item was understood (no other clinical word; the words of
//! `terminology/not-findings.toml` do not count).

use super::{any_matches, holds, reason_selectors, Check, Condition, Cx, Facts, Kind, Needs};
use super::{ReasonSel, Written};
use crate::terminology::mapping::ConceptMatch;
use crate::terminology::ReasonKind;
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "reason_only",
    needs: Needs::Request,
    reads_reason: true,
    example: r#"reason_only = ["group:pain"]"#,
    doc: &[
        ">= 1 reason, and every reason recognised is in the set,",
        "and no other clinical word (not-findings.toml do not count)",
    ],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct ReasonOnly(Vec<ReasonSel>);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    reason_selectors(w, cx)
        .map(|s| Arc::new(ReasonOnly(s)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for ReasonOnly {
    fn check(&self, f: &Facts<'_>) -> Check {
        let present: Vec<&ConceptMatch> = f
            .mapped
            .present_reasons()
            // Context ("follow-up") and qualifiers ("sore", "growing") are no reason of
            // their own: "achy hip, sore" is still pain only.
            .filter(|m| {
                !matches!(
                    f.terms.reasons[m.concept].kind,
                    ReasonKind::Context | ReasonKind::Qualifier
                )
            })
            .collect();
        let all_in =
            !present.is_empty() && present.iter().all(|m| any_matches(&self.0, f.terms, m));
        let all_understood = f.mapped.reason_items.iter().all(|i| i.recognised);
        if all_in && all_understood {
            let list = present
                .iter()
                .map(|m| f.reason_title(m))
                .collect::<Vec<_>>()
                .join("; ");
            holds(
                format!("the only reasons given: {list}"),
                present.first().map(|m| m.path.clone()),
            )
        } else {
            Check::Fails
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let only = r#"reason_only = ["group:pain-or-bloating"]"#;
        run(&[
            (only, request("US abdomen", "abdominal pain"), Holds),
            (only, request("US abdomen", "bloating"), Holds),
            (only, request("US abdomen", ""), Fails),
            (
                only,
                request("US abdomen", "abdominal pain, ?gallstones"),
                Fails,
            ),
            (
                only,
                request("US abdomen", "abdominal pain and weight loss"),
                Fails,
            ),
        ]);
    }
}
