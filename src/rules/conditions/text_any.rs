//! `text_any`: some clinical text of the request (reason, notes) mentions one of these
//! patterns, currently and not negated.

use super::{holds, text_patterns, Check, Condition, Cx, Facts, Kind, Needs, Written};
use regex::Regex;
use std::sync::Arc;

pub static KIND: Kind = Kind {
    key: "text_any",
    needs: Needs::Request,
    reads_reason: false,
    example: "text_any = ['regex']",
    doc: &["some clinical text matches"],
    compile,
    shown: super::shown,
};

#[derive(Debug)]
struct TextAny(Regex);

fn compile(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<Arc<dyn Condition>> {
    text_patterns(w, cx)
        .map(|re| Arc::new(TextAny(re)) as Arc<dyn Condition>)
        .into_iter()
        .collect()
}

impl Condition for TextAny {
    fn check(&self, f: &Facts<'_>) -> Check {
        for (path, t) in &f.mapped.texts {
            if let Some(x) = f
                .terms
                .reader
                .mentions(&self.0, t, f.mapped.as_of)
                .into_iter()
                .find(|x| x.is_current())
            {
                return holds(
                    format!("text '{}' at {path}", &t[x.start..x.end]),
                    Some(path.clone()),
                );
            }
        }
        Check::Fails
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{compile_errors, outcome, request, run, Want::*};

    #[test]
    fn holds_and_fails() {
        let any = "text_any = ['night sweats?']";
        run(&[
            (any, request("Chest X-ray", "cough and night sweats"), Holds),
            (any, request("Chest X-ray", "cough, no night sweats"), Fails),
            (any, request("Chest X-ray", "cough"), Fails),
            (any, request("Chest X-ray", ""), Fails),
        ]);
    }

    #[test]
    fn says_the_words_it_read() {
        let (_, said) = outcome(
            "text_any = ['night sweats?']",
            &request("Chest X-ray", "cough and night sweats"),
        );
        assert_eq!(
            said,
            ["text 'night sweats' at ServiceRequest.reasonCode[0].text"]
        );
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_an_error() {
        let e = compile_errors("text_any = ['(unclosed']\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].message.starts_with("text pattern does not compile"),
            "{e:?}"
        );
        assert_eq!(e[0].line, Some(2));
    }
}
