//! The terminal report of `check --format text`: the console of people who live in a shell.
//!
//! Wrapped to the terminal width, each finding's details indented under it, multi-line guidance
//! kept inside its indentation, colour on a terminal only (`anstream` strips it when stdout is
//! not a terminal or `NO_COLOR` is set), and each contact said once per request: the guidance,
//! the advice, the pathway and the duty radiologist sentence often carry the same extension.
//! The wording comes from the engine and the rules; this module only lays it out.

use crate::engine::{Checked, EntryResult, RequestResult};
use crate::finding::{Decision, Finding, Severity};
use crate::parse::Unusable;
use crate::rules::rule::{Action, Rule};
use crate::rules::RuleSet;
use anstyle::{AnsiColor, Style};

/// How wide to wrap: `COLUMNS` when set (scripts and tests), else the terminal's width, else 80.
pub fn width() -> usize {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok());
    let from_terminal = || {
        terminal_size::terminal_size_of(std::io::stdout())
            .map(|(terminal_size::Width(w), _)| usize::from(w))
    };
    from_env.or_else(from_terminal).unwrap_or(80).clamp(40, 200)
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn decision_style(d: Decision) -> Style {
    let colour = match d {
        Decision::Accepted => AnsiColor::Green,
        Decision::Rejected => AnsiColor::Red,
        Decision::Redirected => AnsiColor::Yellow,
    };
    Style::new().bold().fg_color(Some(colour.into()))
}

fn severity_style(s: Severity) -> Style {
    let colour = match s {
        Severity::Information => AnsiColor::Blue,
        Severity::Warning => AnsiColor::Yellow,
        Severity::Error | Severity::Fatal => AnsiColor::Red,
    };
    Style::new().bold().fg_color(Some(colour.into()))
}

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// Writes text into a column: every line of `text` (hard line breaks are kept) is wrapped to
/// `width`, the first line after `lead` (already `indent` wide, e.g. a label), the rest
/// indented by `indent` spaces.
struct Layout {
    width: usize,
}

impl Layout {
    fn block(&self, out: &mut String, lead: &str, indent: usize, text: &str) {
        let pad = " ".repeat(indent);
        let room = self.width.saturating_sub(indent).max(20);
        let mut first = true;
        for line in text.trim().lines() {
            let options = textwrap::Options::new(room)
                .break_words(false)
                .word_splitter(textwrap::WordSplitter::NoHyphenation);
            let wrapped = textwrap::wrap(line.trim(), options);
            if wrapped.is_empty() {
                out.push('\n');
                continue;
            }
            for piece in wrapped {
                if first {
                    out.push_str(lead);
                    first = false;
                } else {
                    out.push_str(&pad);
                }
                out.push_str(&piece);
                out.push('\n');
            }
        }
        if first {
            out.push_str(lead.trim_end());
            out.push('\n');
        }
    }

    /// A labelled detail under a finding: `label` in a fixed column, the text beside it.
    fn detail(&self, out: &mut String, label: &str, text: &str) {
        const COLUMN: usize = 6;
        const LABEL: usize = 9;
        let lead = format!(
            "{}{}{} ",
            " ".repeat(COLUMN),
            paint(DIM, label),
            " ".repeat(LABEL.saturating_sub(label.len()))
        );
        self.block(out, &lead, COLUMN + LABEL + 1, text);
    }
}

/// Says each contact once: the first text that carries a contact keeps it, later texts lose
/// the repeat (`(ext 5378)` after the DVT clinic has been named with it, the duty radiologist
/// sentence after the first rejection).
struct Contacts {
    /// Contacts known to the site: pathway contacts and the duty radiologist's extension.
    known: Vec<String>,
    duty_sentence: String,
    said: Vec<String>,
    duty_said: bool,
}

impl Contacts {
    fn new(rules: &RuleSet) -> Self {
        let site = &rules.site;
        let mut known: Vec<String> = site.pathways.iter().map(|p| p.contact.clone()).collect();
        known.push(format!("ext {}", site.duty_radiologist.extension));
        // Longest first: "ext 5378, weekdays" before "ext 5378".
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
        known.dedup();
        Self {
            known,
            duty_sentence: site.duty_radiologist_advice(),
            said: Vec::new(),
            duty_said: false,
        }
    }

    /// `text` with the contacts already said taken out; the contacts it says are remembered.
    fn once(&mut self, text: &str) -> String {
        let mut out = text.to_string();
        if out.contains(&self.duty_sentence) {
            if self.duty_said {
                out = out.replace(&self.duty_sentence, "");
            }
            self.duty_said = true;
        }
        for contact in &self.known {
            if !out.contains(contact.as_str()) {
                continue;
            }
            if self.said.contains(contact) {
                out = remove_mentions(&out, contact);
            } else {
                self.said.push(contact.clone());
                // The same text may say it twice: "(ext 5378) (ext 5378)".
                out = keep_first_mention(&out, contact);
            }
        }
        tidy(&out)
    }
}

/// Removes every `(contact)` and `(contact, ...)` mention, and a bare `contact` at the end of a
/// phrase; the words around it stay.
fn remove_mentions(text: &str, contact: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(contact) {
        let (before, after) = rest.split_at(i);
        let after = &after[contact.len()..];
        if let Some(head) = before.strip_suffix('(') {
            // "(ext 5378)" or "(ext 8435, Monday to Friday ...)": drop the parenthesis.
            let close = after.find(')').map_or(after.len(), |c| c + 1);
            out.push_str(head.trim_end());
            rest = &after[close..];
        } else {
            out.push_str(before);
            out.push_str(contact);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn keep_first_mention(text: &str, contact: &str) -> String {
    match text.find(contact) {
        Some(i) => {
            let end = i + contact.len();
            let close = if text[..i].ends_with('(') {
                text[end..].find(')').map_or(end, |c| end + c + 1)
            } else {
                end
            };
            let (head, tail) = text.split_at(close.min(text.len()));
            format!("{head}{}", remove_mentions(tail, contact))
        }
        None => text.to_string(),
    }
}

/// Spaces left by removals: no double spaces, no space before punctuation.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if !out.is_empty() {
            out.push('\n');
        }
        let mut line = line
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        for p in [" .", " ,", " ;", " :"] {
            line = line.replace(p, &p[1..]);
        }
        out.push_str(line.trim_end());
    }
    out
}

/// The report of one file's input: one block per ServiceRequest (or the reasons the input is
/// unusable).
pub fn render(
    rules: &RuleSet,
    name: &str,
    outcome: &Result<Checked, Unusable>,
    width: usize,
    explain: bool,
) -> String {
    let layout = Layout { width };
    let mut out = String::new();
    match outcome {
        Err(u) => {
            out.push_str(&format!(
                "{}: {}\n",
                name,
                paint(severity_style(Severity::Fatal), "UNUSABLE INPUT")
            ));
            for f in u.findings() {
                finding_block(&layout, &mut out, rules, None, f, &mut Contacts::new(rules));
            }
        }
        Ok(c) => {
            for e in &c.entries {
                let EntryResult::Request(req) = e else {
                    continue;
                };
                request_block(&layout, &mut out, rules, name, req);
                if explain {
                    explanation(&layout, &mut out, req);
                }
            }
        }
    }
    out
}

/// `check --explain`: the engine's trace under the request's report.
fn explanation(layout: &Layout, out: &mut String, req: &RequestResult) {
    for (level, line) in crate::explain::text(req) {
        let indent = 2 + 2 * level;
        let lead = " ".repeat(indent);
        if level == 0 {
            layout.block(out, &lead, indent, &paint(BOLD, &line));
        } else {
            layout.block(out, &lead, indent + 2, &line);
        }
    }
    out.push('\n');
}

fn request_block(
    layout: &Layout,
    out: &mut String,
    rules: &RuleSet,
    name: &str,
    req: &RequestResult,
) {
    let mut contacts = Contacts::new(rules);
    // The header wraps like the rest; a file name longer than the line stays whole.
    let header = format!(
        "{}: {} — {}",
        name,
        req.path,
        req.decision.code().to_uppercase()
    );
    let mut wrapped = String::new();
    layout.block(&mut wrapped, "", 2, &header);
    let decision = req.decision.code().to_uppercase();
    out.push_str(&wrapped.replacen(name, &paint(BOLD, name), 1).replacen(
        &decision,
        &paint(decision_style(req.decision), &decision),
        1,
    ));
    layout.block(out, "  ", 2, &contacts.once(&req.summary));
    out.push('\n');
    for f in &req.findings {
        if f.severity == Severity::Information && f.rule.is_none() {
            continue;
        }
        finding_block(layout, out, rules, Some(req), f, &mut contacts);
    }
    out.push('\n');
}

/// One finding: severity, rule id and title (or the finding's text) on its first line, the
/// details indented under it.
fn finding_block(
    layout: &Layout,
    out: &mut String,
    rules: &RuleSet,
    req: Option<&RequestResult>,
    f: &Finding,
    contacts: &mut Contacts,
) {
    let severity = paint(
        severity_style(f.severity),
        &format!("{:<8}", f.severity.as_str()),
    );
    // A rule finding that fired is laid out from the rule itself: its title, the guidance it
    // quotes, the advice, the pathway. A rule that lacked context says what is missing in its
    // own text.
    let rule = f
        .rule
        .as_ref()
        .filter(|r| req.is_none_or(|q| !q.needs_context.contains(&r.id)))
        .and_then(|r| rules.rules.iter().find(|x| x.def.id == r.id));
    match rule {
        Some(rule) => {
            let lead = format!("  {severity} {} ", paint(BOLD, &rule.def.id));
            let indent = 2 + 8 + 1 + rule.def.id.len() + 1;
            layout.block(out, &lead, indent, &rule.def.title);
            rule_details(layout, out, rules, rule, contacts);
        }
        None => {
            let lead = format!("  {severity} ");
            let text = match &f.rule {
                Some(r) => format!("{}: {}", r.id, f.text),
                None => f.text.clone(),
            };
            layout.block(out, &lead, 11, &contacts.once(&text));
        }
    }
    if let Some(d) = &f.diagnostics {
        layout.detail(out, "why", &contacts.once(d));
    }
    if let Some(p) = f.expression.first() {
        let pos = f
            .position
            .map(|(l, c)| format!(" (line {l}, column {c})"))
            .unwrap_or_default();
        layout.detail(out, "at", &format!("{p}{pos}"));
    } else if let Some((l, c)) = f.position {
        layout.detail(out, "at", &format!("line {l}, column {c}"));
    }
}

fn rule_details(
    layout: &Layout,
    out: &mut String,
    rules: &RuleSet,
    rule: &Rule,
    contacts: &mut Contacts,
) {
    let def = &rule.def;
    let quote = format!("“{}”", def.guidance.trim());
    layout.detail(out, "guidance", &contacts.once(&quote));
    layout.detail(out, "advice", &contacts.once(&def.advice));
    match def.action {
        Action::Redirect => {
            if let Some(p) = def.pathway.as_deref().and_then(|id| rules.site.pathway(id)) {
                let mut refer = format!("{} — {}", p.name, p.booking);
                if !p.booking.contains(&p.contact) {
                    refer.push_str(&format!(" ({})", p.contact));
                }
                layout.detail(out, "refer to", &contacts.once(&refer));
            }
        }
        Action::Reject => {
            let discuss = contacts.once(&rules.site.duty_radiologist_advice());
            if !discuss.is_empty() {
                layout.detail(out, "discuss", &discuss);
            }
        }
        Action::Warn | Action::Inform => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_repeated_in_one_text_is_said_once() {
        assert_eq!(
            keep_first_mention(
                "Refer to: DVT clinic — Refer directly (ext 5378) (ext 5378).",
                "ext 5378"
            ),
            "Refer to: DVT clinic — Refer directly (ext 5378)."
        );
        assert_eq!(
            tidy(&remove_mentions(
                "refer directly to the DVT clinic (ext 5378).",
                "ext 5378"
            )),
            "refer directly to the DVT clinic."
        );
        // A longer parenthesis goes whole.
        assert_eq!(
            tidy(&remove_mentions(
                "contact the Duty Radiologist (ext 8435, Monday to Friday) now",
                "ext 8435"
            )),
            "contact the Duty Radiologist now"
        );
    }

    #[test]
    fn lines_are_wrapped_and_kept_in_their_column() {
        let layout = Layout { width: 50 };
        let mut out = String::new();
        layout.detail(
            &mut out,
            "guidance",
            "Please do not refer to US\nRefer to the DVT clinic because the clinic does the scan",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() >= 3, "{out}");
        assert!(lines.iter().all(|l| console_width(l) <= 50), "{out}");
        // Every line after the first starts in the text column.
        for l in &lines[1..] {
            assert!(l.starts_with(&" ".repeat(16)), "{l:?}");
            assert!(!l[16..].starts_with(' '), "{l:?}");
        }
        assert!(lines[1].trim_start().starts_with("Refer to"), "{out}");
    }

    fn console_width(s: &str) -> usize {
        let plain = anstream::adapter::strip_str(s).to_string();
        plain.chars().count()
    }
}
