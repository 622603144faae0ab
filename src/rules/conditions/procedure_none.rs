//! `procedure_none`: the examination asked for is none of these procedure concepts or
//! modalities. A tip about a kind of patient can be meant for some examinations only: a later
//! pregnancy concern goes to MB1 ward, but a pregnant patient's wrist (carpal tunnel) or
//! forearm lump is scanned as anyone's would be (blind set 24).

use super::procedure::{selectors, ProcedureSel};
use super::{Check, Condition, Cx, Facts, Kind, Needs, Written};
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "procedure_none",
    needs: Needs::Request,
    reads_reason: false,
    example: r#"procedure_none = ["us-msk", "us-breast"]"#,
    doc: &[r#"none of these procedure ids (or "modality:US")"#],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct ProcedureNone(Vec<ProcedureSel>);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    let sels = selectors(w, cx);
    if sels.is_empty() {
        return Vec::new();
    }
    vec![Arc::new(ProcedureNone(sels))]
}

impl Condition for ProcedureNone {
    fn check(&self, f: &Facts<'_>) -> Check {
        if f.mapped
            .procedures
            .iter()
            .any(|m| self.0.iter().any(|s| s.matches(f.terms, m)))
        {
            return Check::Fails;
        }
        // Said nothing when it holds: the explanation names what the request is, not what it
        // is not.
        Check::Holds(None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile_errors, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let none = r#"procedure_none = ["us-msk", "us-breast"]"#;
        run(&[
            (none, request("US abdomen", ""), Holds),
            (none, request("US both wrists", ""), Fails),
            (none, request("US L breast", ""), Fails),
            (
                r#"procedure_none = ["modality:XR"]"#,
                request("US pelvis", ""),
                Holds,
            ),
            (
                r#"procedure_none = ["modality:XR"]"#,
                request("Chest X-ray", ""),
                Fails,
            ),
        ]);
    }

    #[test]
    fn unknown_ids_are_errors() {
        assert!(!compile_errors(r#"procedure_none = ["us-nowhere"]"#).is_empty());
    }
}
