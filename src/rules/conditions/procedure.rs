//! `procedure`: the examination asked for is one of these procedure concepts, a modality, or
//! any imaging examination the gateway recognises.

use super::{holds, Check, Condition, Cx, Facts, Kind, Needs, Written};
use crate::terminology::mapping::ConceptMatch;
use crate::terminology::{Table, Terminology};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "procedure",
    needs: Needs::Request,
    reads_reason: false,
    example: r#"procedure = ["us-neck"]"#,
    doc: &[
        r#"any of these procedure ids, or "modality:US","#,
        r#"or "modality:*" (any recognised imaging procedure)"#,
    ],
    compile,
    shown: super::shown,
};

/// A selector of procedure concepts: one concept or a modality.
#[derive(Debug, Clone)]
pub enum ProcedureSel {
    Concept(usize),
    Modality(String),
    /// `modality:*`: any recognised imaging procedure.
    AnyImaging,
}

impl ProcedureSel {
    pub(super) fn matches(&self, terms: &Terminology, m: &ConceptMatch) -> bool {
        match self {
            ProcedureSel::Concept(i) => m.concept == *i,
            ProcedureSel::Modality(x) => {
                terms.procedures[m.concept].modality.as_deref() == Some(x.as_str())
            }
            ProcedureSel::AnyImaging => true,
        }
    }
}

#[derive(Debug)]
struct Procedure(Vec<ProcedureSel>);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    let sels = selectors(w, cx);
    if sels.is_empty() {
        return Vec::new();
    }
    vec![Arc::new(Procedure(sels))]
}

/// The procedure ids and modalities written, each checked against the terminology (shared with
/// `procedure_none`).
pub(super) fn selectors(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<ProcedureSel> {
    let mut sels = Vec::new();
    for name in w.strings(cx) {
        if name == "modality:*" {
            sels.push(ProcedureSel::AnyImaging);
        } else if let Some(m) = name.strip_prefix("modality:") {
            if cx
                .terms
                .procedures
                .iter()
                .any(|c| c.modality.as_deref() == Some(m))
            {
                sels.push(ProcedureSel::Modality(m.to_string()));
            } else {
                cx.error(
                    w,
                    Some(&name),
                    format!("no procedure concept has modality '{m}'"),
                );
            }
        } else if let Some(i) = cx.terms.find(Table::Procedure, &name) {
            sels.push(ProcedureSel::Concept(i));
        } else {
            cx.error(
                w,
                Some(&name),
                format!("unknown procedure concept '{name}'"),
            );
        }
    }
    sels
}

impl Condition for Procedure {
    fn check(&self, f: &Facts<'_>) -> Check {
        match f
            .mapped
            .procedures
            .iter()
            .find(|m| self.0.iter().any(|s| s.matches(f.terms, m)))
        {
            Some(m) => holds(
                format!(
                    "procedure {} ({} at {})",
                    f.terms.procedures[m.concept].title, m.evidence, m.path
                ),
                Some(m.path.clone()),
            ),
            None => Check::Fails,
        }
    }

    fn selects_procedure(&self, terms: &Terminology, m: &ConceptMatch) -> Option<bool> {
        Some(self.0.iter().any(|s| s.matches(terms, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile_errors, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        run(&[
            (r#"procedure = ["us-neck"]"#, request("US neck", ""), Holds),
            (
                r#"procedure = ["us-neck"]"#,
                request("Chest X-ray", ""),
                Fails,
            ),
            (
                r#"procedure = ["modality:US"]"#,
                request("US neck", ""),
                Holds,
            ),
            (
                r#"procedure = ["modality:US"]"#,
                request("Chest X-ray", ""),
                Fails,
            ),
            (
                r#"procedure = ["modality:*"]"#,
                request("Chest X-ray", ""),
                Holds,
            ),
            (
                r#"procedure = ["modality:*"]"#,
                request("physiotherapy", ""),
                Fails,
            ),
            (
                r#"procedure = ["xr-chest", "us-neck"]"#,
                request("US neck", ""),
                Holds,
            ),
        ]);
    }

    #[test]
    fn compile_errors_name_the_line() {
        let e = compile_errors("procedure = [\"us-nothing\", \"modality:ZZ\"]\n");
        let got: Vec<_> = e.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(2), "unknown procedure concept 'us-nothing'"),
                (Some(2), "no procedure concept has modality 'ZZ'")
            ]
        );
    }
}
