//! The conditions a rule's `[when]` may give, one registered unit per file: its key, what it
//! reads (the request itself, or context the request may lack), how it compiles from the rule
//! file (problems as [`LoadError`]s at the file's line), how it checks, and its own table of
//! requests it holds and fails on.
//!
//! A new condition is one new file here (a [`Kind`] and a [`Condition`]) and one line in
//! [`REGISTRY`]. The `[when]` reference in `rules/README.md` is generated from the registry
//! ([`reference`]; `referral-gateway rules conditions --readme rules/README.md` rewrites it) and
//! a test keeps the two in step.

mod age_at_least;
mod age_below;
mod clinical_change;
mod clinical_question;
mod jsonpath_any;
mod jsonpath_none;
mod no_clinical_information;
mod observation_absent;
mod priority;
mod procedure;
mod procedure_none;
mod reason_all;
mod reason_any;
mod reason_none;
mod reason_only;
mod red_flags;
mod requester_org_in;
mod requester_org_not_in;
mod text_any;
mod text_none;
mod two_week_wait;

use crate::context::{Context, Missing};
use crate::fhirpath::FhirPath;
use crate::load::LoadError;
use crate::site::Site;
use crate::terminology::mapping::{ConceptMatch, Mapped};
use crate::terminology::{ReasonKind, Table, Terminology};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// Every condition, in the order a rule checks them. The conditions on the request itself
/// come first; those on context last, so that a request is never rejected for missing context
/// that no rule would have used (a test holds the registry to this).
pub static REGISTRY: &[&Kind] = &[
    &procedure::KIND,
    &procedure_none::KIND,
    &reason_any::KIND,
    &reason_all::KIND,
    &reason_none::KIND,
    &reason_only::KIND,
    &clinical_question::KIND,
    &no_clinical_information::KIND,
    &red_flags::KIND,
    &clinical_change::KIND,
    &text_any::KIND,
    &text_none::KIND,
    &two_week_wait::KIND,
    &priority::KIND,
    &jsonpath_any::KIND,
    &jsonpath_none::KIND,
    // context
    &age_at_least::KIND,
    &age_below::KIND,
    &requester_org_in::KIND,
    &requester_org_not_in::KIND,
    &observation_absent::KIND,
];

/// Everything known about one request.
pub struct Facts<'a> {
    pub sr: &'a Value,
    pub at: &'a FhirPath,
    pub ctx: &'a Context<'a>,
    pub mapped: &'a Mapped,
    pub terms: &'a Terminology,
    pub site: &'a Site,
}

impl Facts<'_> {
    fn reason_title(&self, m: &ConceptMatch) -> String {
        format!(
            "{} ({} at {})",
            self.terms.reasons[m.concept].title, m.evidence, m.path
        )
    }

    fn present_of_kind(&self, kind: ReasonKind) -> Option<&ConceptMatch> {
        self.mapped
            .present_reasons()
            .find(|r| self.terms.reasons[r.concept].kind == kind)
    }
}

/// The result of one condition on one request.
#[derive(Debug, Clone)]
pub enum Check {
    /// It holds: why (for `diagnostics`, `None` when there is nothing to say) and where.
    Holds(Option<String>, Option<FhirPath>),
    Fails,
    /// It could not be checked: the request lacks this context.
    Unknown(Missing),
}

fn holds(why: impl Into<String>, path: Option<FhirPath>) -> Check {
    Check::Holds(Some(why.into()), path)
}

/// What a condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Only the ServiceRequest and what the terminology reads in it.
    Request,
    /// Context the request may not carry (named): when it is missing the condition is
    /// [`Check::Unknown`], never guessed.
    Context(&'static str),
}

/// One compiled condition.
pub trait Condition: fmt::Debug + Send + Sync {
    fn check(&self, f: &Facts<'_>) -> Check;

    /// Whether it selects the procedure `m` (`Some` only for conditions on the procedure): the
    /// coverage warnings ask which examination tips apply to a request.
    fn selects_procedure(&self, _terms: &Terminology, _m: &ConceptMatch) -> Option<bool> {
        None
    }
}

/// A kind of condition: one key of `[when]`.
pub struct Kind {
    /// The key in `[when]`.
    pub key: &'static str,
    pub needs: Needs,
    /// The condition reads the clinical reason (the coverage warnings name the tips that do
    /// when no reason could be read).
    pub reads_reason: bool,
    /// `key = value` as a rule file writes it, for the reference.
    pub example: &'static str,
    /// What it means, one or more lines, for the reference.
    pub doc: &'static [&'static str],
    /// Compiles the value written; problems go to `cx`. An empty list (`reason_all = []`)
    /// gives no condition.
    pub compile: fn(&Written<'_>, &mut Cx<'_>) -> Vec<Arc<dyn Condition>>,
    /// The value written, as `$explain` shows what the rule wanted.
    pub shown: fn(&toml::Value) -> String,
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key)
    }
}

/// One condition of a compiled rule.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub kind: &'static Kind,
    /// What the rule file asked for (`$explain`: "not met: the rule wants {key} = {asked}").
    pub asked: String,
    pub condition: Arc<dyn Condition>,
}

/// The `[when]` table as written: each key with its value and where they are in the file.
pub type WhenDef = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// One `key = value` of `[when]` as written.
pub struct Written<'a> {
    pub key: &'static str,
    pub value: &'a toml::Value,
    span: Range<usize>,
}

/// What a condition compiles against, and the problems found.
pub struct Cx<'a> {
    pub terms: &'a Terminology,
    pub site: &'a Site,
    /// The rule file (relative to the rules folder) and its text, to place problems.
    file: &'a str,
    text: &'a str,
    pub errors: Vec<LoadError>,
}

impl<'a> Cx<'a> {
    pub fn new(terms: &'a Terminology, site: &'a Site, file: &'a str, text: &'a str) -> Self {
        Self {
            terms,
            site,
            file,
            text,
            errors: Vec::new(),
        }
    }

    /// A problem of the value `w`, placed at the line of `near` (a quoted word of the value,
    /// e.g. one concept id of a list written over several lines) or else where the value starts.
    pub fn error(&mut self, w: &Written<'_>, near: Option<&str>, message: impl Into<String>) {
        let start = near
            .and_then(|n| {
                let value = self.text.get(w.span.clone())?;
                ["\"", "'"]
                    .iter()
                    .find_map(|q| value.find(&format!("{q}{n}{q}")))
                    .map(|i| w.span.start + i)
            })
            .unwrap_or(w.span.start);
        self.errors
            .push(LoadError::new(self.file, message).at_line(Some(line_at(self.text, start))));
    }

    fn error_at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(LoadError::new(self.file, message).at_line(Some(line_at(self.text, span.start))));
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

impl Written<'_> {
    /// A list of strings (`["a", "b"]`).
    pub fn strings(&self, cx: &mut Cx<'_>) -> Vec<String> {
        let list = self.value.as_array().map(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        });
        match list {
            Some(Some(list)) => list,
            _ => {
                cx.error(self, None, format!("{} is a list of strings", self.key));
                Vec::new()
            }
        }
    }

    pub fn boolean(&self, cx: &mut Cx<'_>) -> Option<bool> {
        let b = self.value.as_bool();
        if b.is_none() {
            cx.error(self, None, format!("{} is true or false", self.key));
        }
        b
    }

    pub fn integer(&self, cx: &mut Cx<'_>) -> Option<i64> {
        let n = self.value.as_integer();
        if n.is_none() {
            cx.error(self, None, format!("{} is a whole number", self.key));
        }
        n
    }

    pub fn string(&self, cx: &mut Cx<'_>) -> Option<String> {
        let s = self.value.as_str().map(str::to_string);
        if s.is_none() {
            cx.error(self, None, format!("{} is a string", self.key));
        }
        s
    }
}

/// The value written, as `$explain` shows it: a list joined with ", ", a string as it is.
pub fn shown(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(shown).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The compiled `[when]`: its conditions in [`REGISTRY`] order, all of which must hold.
#[derive(Debug, Clone, Default)]
pub struct When {
    pub conditions: Vec<Compiled>,
}

impl When {
    /// Compiles the `[when]` of a rule file; every problem is in `cx.errors`.
    pub fn compile(def: &WhenDef, cx: &mut Cx<'_>) -> When {
        let mut conditions = Vec::new();
        for key in def.keys() {
            if !REGISTRY.iter().any(|k| k.key == key.get_ref()) {
                let keys: Vec<&str> = REGISTRY.iter().map(|k| k.key).collect();
                cx.error_at(
                    key.span(),
                    format!(
                        "unknown condition `{}` in [when]; the conditions are {} (rules/README.md)",
                        key.get_ref(),
                        keys.join(", ")
                    ),
                );
            }
        }
        for kind in REGISTRY {
            let Some((_, value)) = def.iter().find(|(k, _)| k.get_ref() == kind.key) else {
                continue;
            };
            let written = Written {
                key: kind.key,
                value: value.get_ref(),
                span: value.span(),
            };
            let asked = (kind.shown)(value.get_ref());
            conditions.extend(
                (kind.compile)(&written, cx)
                    .into_iter()
                    .map(|condition| Compiled {
                        kind,
                        asked: asked.clone(),
                        condition,
                    }),
            );
        }
        When { conditions }
    }

    /// Some condition reads the clinical reason.
    pub fn reads_reason(&self) -> bool {
        self.conditions.iter().any(|c| c.kind.reads_reason)
    }

    /// Some condition on the procedure selects `m`.
    pub fn selects_procedure(&self, terms: &Terminology, m: &ConceptMatch) -> bool {
        self.conditions
            .iter()
            .any(|c| c.condition.selects_procedure(terms, m) == Some(true))
    }
}

// Compile helpers shared by families of conditions.

/// A selector of reason concepts: one concept or a group.
#[derive(Debug, Clone)]
enum ReasonSel {
    Concept(usize),
    Group(String),
}

impl ReasonSel {
    fn matches(&self, terms: &Terminology, m: &ConceptMatch) -> bool {
        match self {
            ReasonSel::Concept(i) => m.concept == *i,
            ReasonSel::Group(g) => terms.reasons[m.concept].groups.iter().any(|x| x == g),
        }
    }
}

fn any_matches(sels: &[ReasonSel], terms: &Terminology, m: &ConceptMatch) -> bool {
    sels.iter().any(|s| s.matches(terms, m))
}

/// Reason ids and `group:NAME`s, each known to the terminology. `None` when the list is empty
/// or a name is unknown (the problem is in `cx`).
fn reason_selectors(w: &Written<'_>, cx: &mut Cx<'_>) -> Option<Vec<ReasonSel>> {
    let names = w.strings(cx);
    let mut sels = Vec::new();
    let mut ok = true;
    for name in &names {
        if let Some(g) = name.strip_prefix("group:") {
            if cx
                .terms
                .reasons
                .iter()
                .any(|c| c.groups.iter().any(|x| x == g))
            {
                sels.push(ReasonSel::Group(g.to_string()));
            } else {
                cx.error(
                    w,
                    Some(name),
                    format!("no reason concept is in group '{g}'"),
                );
                ok = false;
            }
        } else if let Some(i) = cx.terms.find(Table::Reason, name) {
            sels.push(ReasonSel::Concept(i));
        } else {
            cx.error(w, Some(name), format!("unknown reason concept '{name}'"));
            ok = false;
        }
    }
    (ok && !sels.is_empty()).then_some(sels)
}

/// The clinical text patterns of `text_any` / `text_none`, as one regex.
fn text_patterns(w: &Written<'_>, cx: &mut Cx<'_>) -> Option<regex::Regex> {
    let list = w.strings(cx);
    if list.is_empty() {
        return None;
    }
    crate::terminology::text::compile_patterns(&list)
        .map_err(|e| cx.error(w, None, format!("text pattern does not compile: {e}")))
        .ok()
}

/// A compiled JSONPath with its source text.
#[derive(Debug, Clone)]
struct JsonPath {
    source: String,
    query: jsonpath_rust::parser::model::JpQuery,
}

impl JsonPath {
    fn selects_any(&self, sr: &Value) -> bool {
        jsonpath_rust::query::js_path_process(&self.query, sr)
            .map(|v| !v.is_empty())
            .unwrap_or(false)
    }
}

fn jsonpaths(w: &Written<'_>, cx: &mut Cx<'_>) -> Vec<JsonPath> {
    w.strings(cx)
        .into_iter()
        .filter_map(|src| match jsonpath_rust::parser::parse_json_path(&src) {
            Ok(query) => Some(JsonPath { source: src, query }),
            Err(e) => {
                cx.error(
                    w,
                    Some(&src),
                    format!("JSONPath '{src}' does not compile: {e}"),
                );
                None
            }
        })
        .collect()
}

/// A site list of `site.toml [site_lists]`, by name.
fn site_list(w: &Written<'_>, cx: &mut Cx<'_>) -> Option<String> {
    let list = w.string(cx)?;
    if cx.site.site_lists.contains_key(&list) {
        Some(list)
    } else {
        cx.error(
            w,
            Some(&list),
            format!("unknown site list '{list}' (site.toml [site_lists])"),
        );
        None
    }
}

/// `red_flags` / `clinical_change`: whether a reason of `kind` is present, as `want` asks.
fn flag_check(f: &Facts<'_>, kind: ReasonKind, name: &str, want: bool) -> Check {
    match (f.present_of_kind(kind), want) {
        (Some(m), true) => holds(
            format!("{name}: {}", f.reason_title(m)),
            Some(m.path.clone()),
        ),
        (None, false) => holds(format!("no {name} is mentioned"), None),
        _ => Check::Fails,
    }
}

/// `age_at_least` / `age_below`: the age range the birth date allows against `limit`.
fn age_check(f: &Facts<'_>, limit: i64, at_least: bool) -> Check {
    match &f.ctx.age {
        Ok(age) => {
            let (sure_yes, sure_no) = if at_least {
                (age.min >= limit, age.max < limit)
            } else {
                (age.max < limit, age.min >= limit)
            };
            let shown = if age.min == age.max {
                format!("{}", age.min)
            } else {
                format!("{} to {}", age.min, age.max)
            };
            let path = f.ctx.patient.as_ref().map(|(_, p)| p.field("birthDate"));
            if sure_yes {
                holds(format!("patient aged {shown} at {}", f.ctx.authored), path)
            } else if sure_no {
                Check::Fails
            } else {
                Check::Unknown(Missing {
                    what: "exact patient age",
                    looked: format!(
                        "the birth date is partial: the age could be {shown}, either side of {limit}"
                    ),
                    at: path.unwrap_or_else(|| f.at.field("subject")),
                })
            }
        }
        Err(m) => Check::Unknown(m.clone()),
    }
}

/// `requester_org_in` / `requester_org_not_in`: whether the requesting organisation is in the
/// site list `list`, as `want_in` asks.
fn org_check(f: &Facts<'_>, list: &str, want_in: bool) -> Check {
    let codes = f
        .site
        .site_lists
        .get(list)
        .map(|l| l.ods_codes.as_slice())
        .unwrap_or(&[]);
    match &f.ctx.organisation_ods {
        Ok(ods) => {
            let is_in = ods
                .iter()
                .any(|o| codes.iter().any(|c| c.eq_ignore_ascii_case(o)));
            if is_in == want_in {
                holds(
                    format!(
                        "requesting organisation {} is {}in the site list '{list}'",
                        ods.join(", "),
                        if is_in { "" } else { "not " }
                    ),
                    Some(f.at.field("requester")),
                )
            } else {
                Check::Fails
            }
        }
        Err(m) => match general_practice(f).filter(|_| !want_in) {
            // A general practice is not an authorised centre: the rule's answer, not
            // a request for the ODS code (which only makes the gateway surer).
            Some(said) => holds(
                format!(
                    "the requester is a general practice ('{said}'), which is not in the site list '{list}'; its ODS code was not given ({}), so the list itself could not be checked",
                    m.looked
                ),
                Some(f.at.field("requester")),
            ),
            None => Check::Unknown(m.clone()),
        },
    }
}

/// The words that say the requester is a general practice (markers `general-practice` and
/// `not-general-practice` of the terminology), if they do.
fn general_practice(f: &Facts<'_>) -> Option<String> {
    let marker = |id: &str| {
        f.terms
            .find(Table::Marker, id)
            .and_then(|i| f.terms.markers[i].pattern.as_ref())
    };
    let gp = marker("general-practice")?;
    let not_gp = marker("not-general-practice");
    let texts: Vec<String> = f
        .ctx
        .requester_descriptions
        .iter()
        .map(|t| crate::terminology::text::normalise(t, &f.terms.forms))
        .collect();
    if texts
        .iter()
        .any(|t| not_gp.is_some_and(|re| re.is_match(t)))
    {
        return None;
    }
    texts.into_iter().find(|t| gp.is_match(t))
}

/// The `[when]` reference of `rules/README.md`, generated from [`REGISTRY`]: a TOML block with
/// every key, an example value and what it means.
pub fn reference() -> String {
    const COLUMN: usize = 42;
    let mut out = String::from("```toml\n");
    let line = |out: &mut String, left: &str, doc: &str| {
        let pad = if left.chars().count() >= COLUMN {
            "  ".to_string()
        } else {
            " ".repeat(COLUMN - left.chars().count())
        };
        out.push_str(&format!("{left}{pad}# {doc}\n"));
    };
    line(&mut out, "[when]", "every condition given must hold");
    for kind in REGISTRY {
        let mut docs: Vec<String> = kind.doc.iter().map(|d| d.to_string()).collect();
        if let Needs::Context(what) = kind.needs {
            docs.push(format!("needs context: {what}"));
        }
        for (i, doc) in docs.iter().enumerate() {
            line(&mut out, if i == 0 { kind.example } else { "" }, doc);
        }
    }
    out.push_str("```\n");
    out
}

/// Where the generated reference sits in `rules/README.md`.
pub const README_BEGIN: &str =
    "<!-- [when] reference: generated from src/rules/conditions/ by `referral-gateway rules conditions --readme rules/README.md`; do not edit -->\n";
pub const README_END: &str = "<!-- end of the generated [when] reference -->\n";

/// `readme` with its generated section replaced by [`reference`]; `None` when the markers are
/// missing.
pub fn readme_with_reference(readme: &str) -> Option<String> {
    let begin = readme.find(README_BEGIN)? + README_BEGIN.len();
    let end = begin + readme[begin..].find(README_END)?;
    Some(format!(
        "{}{}{}",
        &readme[..begin],
        reference(),
        &readme[end..]
    ))
}

#[cfg(test)]
pub(crate) mod table;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_conditions_come_before_context_conditions() {
        let first_context = REGISTRY
            .iter()
            .position(|k| k.needs != Needs::Request)
            .unwrap_or(REGISTRY.len());
        assert!(
            REGISTRY[first_context..]
                .iter()
                .all(|k| k.needs != Needs::Request),
            "a condition on the request comes after one on context"
        );
        assert!(first_context < REGISTRY.len());
    }

    #[test]
    fn keys_are_unique_and_examples_use_them() {
        for (i, k) in REGISTRY.iter().enumerate() {
            assert!(
                REGISTRY[..i].iter().all(|o| o.key != k.key),
                "{} twice",
                k.key
            );
            assert!(
                k.example.starts_with(&format!("{} = ", k.key)),
                "{}: example {}",
                k.key,
                k.example
            );
            // The example compiles against the shipped rules.
            assert!(
                table::compile_errors(k.example).is_empty(),
                "{}: {:?}",
                k.key,
                table::compile_errors(k.example)
            );
        }
    }

    #[test]
    fn the_readme_reference_is_in_step_with_the_registry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/README.md");
        let readme = std::fs::read_to_string(path).expect("rules/README.md");
        let generated = readme_with_reference(&readme).expect("the README has the markers");
        assert!(
            readme == generated,
            "rules/README.md's [when] reference is stale: run `cargo run -- rules conditions --readme rules/README.md`"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_placed_at_their_line() {
        let errors = table::compile_errors("procedure = [\"us-neck\"]\nreason_nay = [\"x\"]\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, Some(3), "{errors:?}");
        assert!(errors[0].message.contains("unknown condition `reason_nay`"));
        let errors = table::compile_errors("red_flags = \"no\"\n");
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.line, e.message.as_str()))
                .collect::<Vec<_>>(),
            [(Some(2), "red_flags is true or false")]
        );
        let errors = table::compile_errors("reason_any = [\n  \"neck-pain\",\n  \"nope\",\n]\n");
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.line, e.message.as_str()))
                .collect::<Vec<_>>(),
            [(Some(4), "unknown reason concept 'nope'")]
        );
    }
}
