//! Questionnaires pasted into a request: online consultations and triage forms ("Q: Any blood
//! in your urine? A: No", "Has it changed? [x] No [ ] Yes", a numbered question with its answer
//! on the next line, "Weight loss: Don't know").
//!
//! Such a form is written back as a form's fields answered, one to a line and each ending its
//! sentence ("any blood in your urine: no."), so that the reader takes a "No" as it takes
//! "Haematuria: none": it negates what the question named. What the form did not ask the patient
//! to confirm says nothing: an unticked box's label, and a question left blank or answered
//! "don't know", are left out. The patient's own answers are read as written.
//!
//! The form's shape (boxes, "Q:" and "A:" labels, numbers) is code; its words (how a question
//! opens, which answers make a field, which say nothing) are data: `[forms]` in
//! `rules/terminology/context.toml`, compiled once into [`Forms`]. The form's own headings ("What
//! is the problem?") are in `rules/terminology/not-findings.toml`.

use regex::Regex;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::LazyLock;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("forms: {e}"))
}

/// A box left unticked and its label, up to the next box, field or line's end: the patient did
/// not choose it, however many spaces follow the box ("[ ]  weight loss", blind set 409). A box
/// with no label ("Differential: [ ]") is a blank field, and stays.
static UNTICKED: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\[ ?\]|☐) *[^\[\]☐☑☒|\n\s][^\[\]☐☑☒|\n]*"));

/// A box, ticked or not ("[ ]", "[x]"); a bracketed placeholder ("[free text]") is none.
static BOX: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\[ ?[x✓✔v*]? ?\]|[☐☑☒]"));

/// A ticked box: its label is the answer.
static TICKED: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)(?:\[ ?[x✓✔v*] ?\]|☑|☒) ?"));

/// The options a form offers after its question ("Yes / No", "(Y/N)"): no answer of the
/// patient's.
static OPTIONS: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^[(\[]?(?:yes|y) ?/ ?(?:no|n)(?: ?/ ?(?:not sure|don'?t know|unsure|n/?a))?[)\]]?\s*")
});

/// A mark that sets an answer off from its question ("? - no", "?: yes"), with the space after it.
static ANSWER_MARK: LazyLock<Regex> = LazyLock::new(|| re(r"^[-–—:=]\s+"));

/// An answer's own label ("A:", "Answer 2:").
static ANSWER_LABEL: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^(?:a|answer) ?\d{0,2}: ?"));

/// A question's number or label ("2.", "Q3:", "Q:").
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^(?:(?:q|question) ?\d{0,2}|\d{1,2})[.):] ?"));

/// An answer with nothing in it ("", "()", "[ ]", "."): what answers nothing when no words are
/// listed.
static BLANK: LazyLock<Regex> = LazyLock::new(|| re(r"^[(\[]?\s*[)\]]?[.!]?$"));

/// A form's question and answer labels on one line ("Q: ... A: ...", "Question 2: ... Answer
/// 2: ..."): the question, its own mark, and where the answer starts. The options the form
/// offered ("Q: Weight loss? Yes / No  A: No") are no answer. An answer on the next line ("A:
/// No") is read with its question in form mode ([`Forms::answered`]); outside it the question
/// mark ends the sentence, so a heading before it ("Current medication:") reaches no further.
static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?im)(^|[.!] )(?:q|question) ?\d{0,2}: ?([^\n]*?) *([?.:])? *(?:[(\[]?(?:yes|y) ?/ ?(?:no|n)(?: ?/ ?(?:not sure|don'?t know|unsure|n/?a))?[)\]]? *)?\b(?:a|answer) ?\d{0,2}:(?: |$)",
    )
});

/// The `[forms]` table as written: lists of regular expressions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormsDef {
    /// Words a form's question opens with, after any number ("any", "have", "what").
    pub asking_words: Vec<String>,
    /// Answers after a question mark that make it a form's question ("No", "nope").
    pub short_answers: Vec<String>,
    /// Answers that make a "Label: answer" line a form's field ("Yes", "N").
    pub field_answers: Vec<String>,
    /// Answers that answer nothing ("left blank", "don't know").
    pub no_answers: Vec<String>,
}

/// The form's words, compiled; a list left empty matches nothing.
#[derive(Debug, Clone, Default)]
pub struct Forms {
    /// A question as forms ask it: opening with a number or an asking word. A GP's "RUQ pain?
    /// gallstones" opens with neither, so its question mark stays a query.
    asks: Option<Regex>,
    /// A yes or a no after a question mark ("Blood in your poo? No"): an answer, not a query.
    short_answer: Option<Regex>,
    /// A field answered yes, no or nothing ("Pain: Yes", "Weight loss: Don't know").
    field: Option<Regex>,
    /// An answer that answers nothing (`None`: only a blank one, [`BLANK`]).
    no_answer: Option<Regex>,
}

/// `template` with `{}` replaced by the alternation of `words`, compiled case-insensitively;
/// `None` for no words.
fn alternation(name: &str, words: &[String], template: &str) -> Result<Option<Regex>, String> {
    if words.is_empty() {
        return Ok(None);
    }
    let words = words.join("|");
    Regex::new(&format!("(?i){}", template.replace("{}", &words)))
        .map(Some)
        .map_err(|e| format!("[forms] {name}: {e}"))
}

impl Forms {
    pub fn compile(def: &FormsDef) -> Result<Self, String> {
        let no_answers = def.no_answers.join("|");
        let mut fields = def.field_answers.clone();
        if !def.no_answers.is_empty() {
            fields.push(format!(r"[(\[]?(?:{no_answers})[)\]]?"));
        }
        Ok(Forms {
            asks: alternation(
                "asking_words",
                &def.asking_words,
                r"^(?:(?:q ?)?\d{1,2}[.):] ?)?(?:{})\b",
            )?,
            short_answer: alternation("short_answers", &def.short_answers, r"^(?:{})\b")?,
            field: alternation("field_answers", &fields, r"^[^:]{1,40}: ?(?:{})\.?$")?,
            no_answer: alternation(
                "no_answers",
                &def.no_answers,
                r"^[(\[]?\s*(?:{})?\s*[)\]]?[.!]?$",
            )?,
        })
    }

    fn asks(&self, line: &str) -> bool {
        self.asks.as_ref().is_some_and(|re| re.is_match(line))
    }

    fn is_short_answer(&self, answer: &str) -> bool {
        self.short_answer
            .as_ref()
            .is_some_and(|re| re.is_match(answer))
    }

    fn is_field(&self, field: &str) -> bool {
        self.field.as_ref().is_some_and(|re| re.is_match(field))
    }

    fn answers_nothing(&self, answer: &str) -> bool {
        self.no_answer.as_ref().unwrap_or(&BLANK).is_match(answer)
    }

    /// Writes a pasted questionnaire as fields answered; any other text is returned as it is.
    /// A text is a form when it holds at least two questions (a line ending in a question mark
    /// or asking one, a box, a "Q:" label, or a field answered yes, no or nothing): a GP's
    /// single "Is this a DVT?" stays a question.
    pub fn answered<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let text = columns_answered(text);
        if !text.contains(['?', '[', '☐', '☑', '☒', ':']) {
            return text;
        }
        let (text, labelled) = match labels_answered(&text) {
            (Cow::Owned(written), labelled) => (Cow::Owned(written), labelled),
            (Cow::Borrowed(_), labelled) => (text, labelled),
        };
        let lines: Vec<&str> = text.split('\n').collect();
        // A checklist's row, a box before each label, asks as many questions as it has boxes:
        // "[x] Pain [ ] Swelling [ ] Lump" alone is a form, whose unticked labels say nothing
        // (blind set 303). Boxes after labels may be blank fields ("Clinical details: [ ]
        // Question: ?pneumonia", blind set 150) and count once.
        let questions = labelled
            + lines
                .iter()
                .map(|l| match BOX.find(l.trim_start()) {
                    Some(first) if first.start() == 0 => BOX.find_iter(l).count(),
                    _ => usize::from(self.is_question(l) || BOX.is_match(l)),
                })
                .sum::<usize>()
            + lines
                .iter()
                .flat_map(|l| l.split('|'))
                .filter(|f| self.is_field(f.trim()))
                .count();
        if questions < 2 {
            return text;
        }
        let mut out: Vec<String> = Vec::with_capacity(lines.len());
        let mut i = 0;
        while i < lines.len() {
            let boxed = BOX.is_match(lines[i]);
            let line = ticked(lines[i]);
            let line = line.trim();
            i += 1;
            if let Some(field) = self.question_answered(
                line,
                boxed,
                lines.get(i).map(|l| (ticked(l), BOX.is_match(l))),
            ) {
                if field.answer_on_next_line {
                    i += 1;
                }
                out.extend(field.text);
                continue;
            }
            if line.is_empty() {
                out.push(String::new());
                continue;
            }
            if self.answers_nothing(line) {
                // "(left blank)" under a numbered item: the item asked, and nothing was said.
                if out.last().is_some_and(|l| is_item(l)) {
                    out.pop();
                }
                continue;
            }
            // A field on its own ("Weight loss: Don't know | Blood in stools: (blank)").
            let fields: Vec<Cow<str>> = line
                .split('|')
                .map(str::trim)
                .filter(|f| !f.is_empty() && !self.unanswered_field(f))
                .map(|f| {
                    f.split_once(':')
                        .and_then(|(label, answer)| answered_each(label, answer))
                        .map_or(Cow::Borrowed(f), Cow::Owned)
                })
                .collect();
            if !fields.is_empty() {
                // Each field ends its sentence, so that the next line's words are not its answer.
                let mut line = fields.join(" | ");
                if !line.ends_with(['.', '!', '?', ';', ':']) {
                    line.push('.');
                }
                out.push(line);
            }
        }
        Cow::Owned(out.join("\n"))
    }

    /// Reads `line` as a form's question: answered on the line ("Has it changed? no"), on the
    /// next line ("2. Any trouble breathing?⏎No"), or not at all. `boxed`: the line had boxes,
    /// so what follows its question mark is the box chosen.
    fn question_answered(
        &self,
        line: &str,
        boxed: bool,
        next: Option<(Cow<'_, str>, bool)>,
    ) -> Option<Field> {
        let Question {
            text: question,
            rest,
            offered,
        } = self.split_question(line, boxed)?;
        let (answer, answer_on_next_line, answer_boxed) = if !rest.is_empty() || boxed {
            (rest.to_string(), false, boxed)
        } else {
            match next {
                // Options offered and none taken on the line: only a labelled answer below
                // ("A: No") answers them; else the question was left unanswered.
                Some((n, _)) if offered && !ANSWER_LABEL.is_match(n.trim()) => {
                    return Some(Field {
                        text: None,
                        answer_on_next_line: false,
                    });
                }
                Some((n, next_boxed))
                    if !self.is_question(n.trim())
                        && !is_item(n.trim())
                        && !is_heading(n.trim()) =>
                {
                    // An answer's label left empty ("Q1. What is the main problem?⏎A:") is a
                    // question left blank, like boxes none of them ticked (blind set 113).
                    let blank = ANSWER_LABEL.is_match(n.trim()) && unlabelled(n.trim()).is_empty();
                    (unlabelled(n.trim()).to_string(), true, next_boxed || blank)
                }
                _ if offered => {
                    return Some(Field {
                        text: None,
                        answer_on_next_line: false,
                    });
                }
                _ => (String::new(), false, false),
            }
        };
        // Nothing after the question at all: it may be the GP's own query ("Q: lipoma?"), so it
        // stays as written. A blank or "don't know" answer, or boxes none of them ticked, say
        // nothing.
        let text = if answer.is_empty() && !answer_boxed {
            Some(line.to_string())
        } else if answer.is_empty() || self.answers_nothing(&answer) {
            None
        } else {
            let end = if answer.ends_with(['.', '!', '?']) {
                ""
            } else {
                "."
            };
            Some(
                answered_each(question, &answer)
                    .unwrap_or_else(|| format!("{question}: {answer}{end}")),
            )
        };
        Some(Field {
            text,
            answer_on_next_line,
        })
    }

    /// The question of a line that asks one, without its number and mark, and what follows the
    /// mark, without the options offered and the answer's label. A question answered on its own
    /// line must be asked as forms ask (an asking word), by a box or with a yes or a no.
    fn split_question<'l>(&self, line: &'l str, boxed: bool) -> Option<Question<'l>> {
        // A line of fields ("Size: 25mm | Q: lipoma?") is read field by field.
        if line.contains('|') {
            return None;
        }
        let mark = line.find('?')?;
        // An answer set off by a dash or a colon ("Weight loss? - no", blind set 396) is the
        // answer itself; "-ve" is a word and keeps its sign.
        let rest = line[mark + 1..].trim();
        let rest = ANSWER_MARK.find(rest).map_or(rest, |m| &rest[m.end()..]);
        let offered = OPTIONS.find(rest).is_some_and(|m| !m.as_str().is_empty());
        // The options offered, then the one taken after a colon or a dash ("Could the patient
        // be pregnant? Y / N : N", blind set 317).
        let rest = unlabelled(OPTIONS.find(rest).map_or(rest, |m| {
            rest[m.end()..].trim_start_matches([':', '-', '=', ' '])
        }));
        if !rest.is_empty() && !boxed && !self.asks(line) && !self.is_short_answer(rest) {
            return None;
        }
        let question = line[..mark].trim();
        let question = NUMBER
            .find(question)
            .map_or(question, |m| &question[m.end()..]);
        Some(Question {
            text: question.trim(),
            rest,
            offered,
        })
    }

    fn is_question(&self, line: &str) -> bool {
        line.ends_with('?') || self.split_question(line, false).is_some()
    }

    /// A field answered with nothing ("Blood in stools: (blank)", "Weight loss: Don't know",
    /// "What would you like help with today:" and no more).
    fn unanswered_field(&self, field: &str) -> bool {
        field.split_once(':').is_some_and(|(label, answer)| {
            !label.trim().is_empty() && self.answers_nothing(answer.trim())
        })
    }
}

/// A line's question: its words, what follows its mark, and whether the form offered options
/// there ("Yes / No").
struct Question<'l> {
    text: &'l str,
    rest: &'l str,
    offered: bool,
}

/// An answer without its label ("A: No" as "No").
fn unlabelled(answer: &str) -> &str {
    ANSWER_LABEL
        .find(answer)
        .map_or(answer, |m| &answer[m.end()..])
        .trim()
}

/// A question with its answer, written as one field, or nothing when it was not answered.
struct Field {
    text: Option<String>,
    answer_on_next_line: bool,
}

/// A question of several things answered one by one ("Any weight loss / bleeding? no / no") as
/// a field each ("Any weight loss: no. bleeding: no."), so that each answer reaches its own
/// thing; None when the question and its answer do not pair up.
fn answered_each(question: &str, answer: &str) -> Option<String> {
    let asked: Vec<&str> = question.split('/').map(str::trim).collect();
    let said: Vec<&str> = answer
        .trim_end_matches(['.', '!'])
        .split('/')
        .map(str::trim)
        .collect();
    if asked.len() < 2
        || asked.len() != said.len()
        || asked.iter().chain(&said).any(|p| p.is_empty())
    {
        return None;
    }
    Some(
        asked
            .iter()
            .zip(&said)
            .map(|(q, a)| format!("{q}: {a}."))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A numbered item ("1. Please describe your problem").
fn is_item(line: &str) -> bool {
    let line = line.trim_start();
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    (1..=2).contains(&digits) && line[digits..].starts_with(['.', ')'])
}

/// A heading that opens the GP's own line ("GP: ...", "GP line: see form").
fn is_heading(line: &str) -> bool {
    line.split_once(':').is_some_and(|(label, _)| {
        label.split_whitespace().count() <= 3 && label.to_lowercase().starts_with("gp")
    })
}

/// The line with each unticked box and its label left out, and each ticked box's label kept.
fn ticked(line: &str) -> Cow<'_, str> {
    if !BOX.is_match(line) {
        return Cow::Borrowed(line);
    }
    if let Some(kept) = ticked_after_labels(line) {
        return Cow::Owned(kept);
    }
    let line = UNTICKED.replace_all(line, "");
    let line = TICKED.replace_all(&line, "").into_owned();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    Cow::Owned(labelled_answer(&line).unwrap_or(line))
}

/// A label with no mark of its own before the yes or no chosen in its boxes ("Weight loss
/// [ ] Yes [x] No", blind set 369), written as the field it is ("Weight loss: No").
fn labelled_answer(line: &str) -> Option<String> {
    let (label, answer) = line.rsplit_once(' ')?;
    let yes_no = ["y", "n", "yes", "no"]
        .iter()
        .any(|w| answer.eq_ignore_ascii_case(w));
    (yes_no && !label.ends_with(['?', ':', '-']) && !label.is_empty())
        .then(|| format!("{label}: {answer}"))
}

/// A row of labels each followed by its box ("bloating [x]   pain [ ]   weight loss [ ]"): the
/// labels of the ticked boxes, or None when the line is not such a row. Only a row of two or
/// more boxes that ends with a box is read so: a single "Pregnant? [ ]" may be a blank field.
fn ticked_after_labels(line: &str) -> Option<String> {
    let boxes: Vec<regex::Match> = BOX.find_iter(line).collect();
    // Every box needs its label before it; the loop below checks that, the first one included.
    let last = boxes.last()?;
    if boxes.len() < 2 || last.end() != line.trim_end().len() {
        return None;
    }
    let mut kept = Vec::new();
    let mut from = 0;
    // A question before the first option's label is kept before the option chosen
    // ("Growing?    Y [ ] N [x]" is "Growing? N", blind set 369).
    let mut question = "";
    for b in &boxes {
        let mut label = line[from..b.start()].trim();
        if from == 0 {
            if let Some((asked, option)) = label.rsplit_once(['?', ':']) {
                question = &label[..=asked.len()];
                label = option.trim();
            }
        }
        if label.is_empty() {
            return None;
        }
        if TICKED.is_match(b.as_str()) {
            kept.push(label);
        }
        from = b.end();
    }
    let chosen = kept.join(", ");
    // (nothing ticked says nothing: the question is not asked of the reader)
    Some(if question.is_empty() || chosen.is_empty() {
        chosen
    } else {
        format!("{question} {chosen}")
    })
}

/// A template's table: a label and its yes or no in a column after two spaces or more
/// ("Jaundice  N", "2WW referral made  N", blind set 116), written as the field it is
/// ("2WW referral made: N").
/// Fields side by side on one line, each answered yes or no and set apart by two spaces or more
/// ("Changing? NO   Hard? NO   Fixed? NO", blind set 125), are written one to a line.
fn columns_answered(text: &str) -> Cow<'_, str> {
    static COLUMN: LazyLock<Regex> =
        LazyLock::new(|| re(r"(?im)^([^:?\n]{1,40}?[^\s:?]) {2,}(y|n|yes|no)\.? *$"));
    static SIDE_BY_SIDE: LazyLock<Regex> =
        LazyLock::new(|| re(r"(?i)([?:] ?(?:yes|no|y|n)\.?) {2,}"));
    let text = SIDE_BY_SIDE.replace_all(text, "$1\n");
    let text = match COLUMN.replace_all(&text, "$1: $2") {
        Cow::Owned(written) => Cow::Owned(written),
        Cow::Borrowed(_) => text,
    };
    match slashed_answered(&text) {
        Cow::Owned(written) => Cow::Owned(written),
        Cow::Borrowed(_) => text,
    }
}

/// A template's yes/no items in a list set apart by slashes, two or more ("Red flags: weight
/// loss N / fever N / night pain N", blind set 178), each written as the field it is ("weight
/// loss: N"), so that each answer reaches its own label. An item with no yes or no among them
/// is left as written ("Back pain Y / Duration 2 wks / Trauma N", blind set 378): it neither
/// breaks the list nor takes an answer.
fn slashed_answered(text: &str) -> Cow<'_, str> {
    static RUN: LazyLock<Regex> =
        LazyLock::new(|| re(r"(?i)(?:[^/:\n.;?]{1,40}? / )+[^/:\n.;?]{1,40}"));
    static ITEM: LazyLock<Regex> =
        LazyLock::new(|| re(r"(?i)^([^/:\n.;?]*?[^\s/:]) (y|n|yes|no)( *)$"));
    // The last item runs on to the list's end: its answer is its first yes or no.
    static LAST: LazyLock<Regex> =
        LazyLock::new(|| re(r"(?i)^([^/:\n.;?]*?[^\s/:]) (y|n|yes|no)\b"));
    RUN.replace_all(text, |run: &regex::Captures| {
        let items: Vec<&str> = run[0].split(" / ").collect();
        let last = items.len() - 1;
        let pattern = |i: usize| if i == last { &*LAST } else { &*ITEM };
        let answered = (0..items.len())
            .filter(|&i| pattern(i).is_match(items[i]))
            .count();
        if answered < 2 {
            return run[0].to_string();
        }
        (0..items.len())
            .map(|i| pattern(i).replace(items[i], "$1: $2$3"))
            .collect::<Vec<_>>()
            .join(" / ")
    })
}

/// "Q: Any blood in your urine? A: No" as "Any blood in your urine: No", and how many such
/// labelled questions there were: the labels are no words of their own. A question ending in a
/// full stop keeps it ("Describe the problem. A: ..."): its answer is a sentence of its own.
fn labels_answered(text: &str) -> (Cow<'_, str>, usize) {
    let mut labelled = 0;
    let text = LABELLED.replace_all(text, |c: &regex::Captures| {
        labelled += 1;
        // Answered after a colon, as a field is: "? my shoulder hurts" would read as a query.
        let mark = c
            .get(3)
            .map_or(":", |m| if m.as_str() == "?" { ":" } else { m.as_str() });
        format!("{}{}{mark} ", &c[1], &c[2])
    });
    (text, labelled)
}

/// The form's words as the repository writes them (for tests here and in the reader's).
#[cfg(test)]
pub(super) static SHIPPED: LazyLock<Forms> = LazyLock::new(|| {
    #[derive(Deserialize)]
    struct File {
        forms: FormsDef,
    }
    let text = include_str!("../../rules/terminology/context.toml");
    let file: File = toml::from_str(text).expect("context.toml parses");
    Forms::compile(&file.forms).expect("[forms] compiles")
});

#[cfg(test)]
mod tests {
    use super::SHIPPED as FORMS;
    use std::borrow::Cow;

    fn answered(text: &str) -> Cow<'_, str> {
        FORMS.answered(text)
    }

    #[test]
    fn slashed_yes_no_items_are_written_as_fields() {
        // (as pasted, as written)
        for (text, written) in [
            (
                "Red flags: weight loss N / fever N / cancer hx N.",
                "Red flags: weight loss: N / fever: N / cancer hx: N.",
            ),
            ("trauma yes / night pain no", "trauma: yes / night pain: no"),
            // an item that is no yes or no keeps its place
            (
                "Nurse triage: Back pain Y / Duration 2 wks / Trauma N / Wt loss N",
                "Nurse triage: Back pain: Y / Duration 2 wks / Trauma: N / Wt loss: N",
            ),
            ("Duration 2 wks / Trauma N", "Duration 2 wks / Trauma N"),
            // one item, or slashes in a word's shorthand, are no list of answers
            ("weight loss N", "weight loss N"),
            ("N/V and pain 3/7, no fever", "N/V and pain 3/7, no fever"),
        ] {
            assert_eq!(super::slashed_answered(text), written, "{text}");
        }
    }

    #[test]
    fn a_form_is_written_as_fields_answered() {
        // (as pasted, as read)
        for (text, read) in [
            // answered on the line, by a label, by a box, on the next line
            (
                "Q: Any blood in your urine? A: No\nQ: How long? A: about 3 weeks",
                "Any blood in your urine: No.\nHow long: about 3 weeks.",
            ),
            (
                "Has it changed? [x] No [ ] Yes\nDoes it hurt? [ ] No [x] Yes",
                "Has it changed: No.\nDoes it hurt: Yes.",
            ),
            (
                "1. What happened?\nFell off a ladder\n2. Any trouble breathing?\nNo",
                "What happened: Fell off a ladder.\nAny trouble breathing: No.",
            ),
            // a label with no mark before its boxes; the options' labels before their boxes
            // (blind set 369)
            (
                "Weight loss   [ ] Yes  [x] No\nFever [ ] Yes [x] No",
                "Weight loss: No.\nFever: No.",
            ),
            (
                "Growing?    Y [ ] N [x]\nHard?       Y [ ] N [x]",
                "Growing: N.\nHard: N.",
            ),
            // an answer set off by a dash (blind set 396)
            (
                "Where is the pain? - lower back\nWeight loss? - no\nProblems with bladder or bowels? - no",
                "Where is the pain: lower back.\nWeight loss: no.\nProblems with bladder or bowels: no.",
            ),
            // not answered: the question says nothing
            (
                "Weakness? [ ] No [ ] Yes (not answered)\nInjury? [x] No [ ] Yes",
                "Injury: No.",
            ),
            (
                "1. Please describe your problem\n(left blank)\n2. When did it start?\nDon't know\n3. Any pain?\nNo\nGP: see form",
                "Any pain: No.\nGP: see form.",
            ),
            (
                "What is your main symptom?\n[ ] Pain [ ] Lump [ ] Other\nAnything else?\n(no answer)",
                "",
            ),
            // one row of boxes is a form of its own (blind set 303)
            (
                "[x] Chest wall pain   [x] Trauma   [ ] SOB   [ ] Fever\nDetails: fell off a ladder",
                "Chest wall pain Trauma.\nDetails: fell off a ladder.",
            ),
            // a box left unticked with more than one space after it (blind set 409)
            (
                "[x] Abdominal pain  [ ]  Weight loss  [ ]  Vomiting\nDetails: 3 months",
                "Abdominal pain.\nDetails: 3 months.",
            ),
            // fields side by side, each answered (blind set 125)
            (
                "Lump? YES   Site: R forearm\nChanging? NO   Hard? NO   Tender? NO",
                "Lump: YES.\nSite: R forearm.\nChanging: NO.\nHard: NO.\nTender: NO.",
            ),
            // a template's table, each yes or no in a column (blind set 116)
            (
                "Jaundice  N\nWeight loss  N\n2WW referral made  N",
                "Jaundice: N.\nWeight loss: N.\n2WW referral made: N.",
            ),
            // an answer's label left empty: the question was left blank (blind set 113)
            (
                "Q1. What is the main problem?\nA:\nQ2. How long?\nA:\nQ3. What would you like us to do?\nA: scan",
                "What would you like us to do: scan.",
            ),
            // nothing after a question at all: the GP's own query, kept
            (
                "Mobile: yes\nTender: no\nQ: lipoma?",
                "Mobile: yes.\nTender: no.\nQ: lipoma?",
            ),
            // the options a form offered are no answer; the answer below its label is
            (
                "Q: Weight loss? Yes / No  A: No\nQ: Do you have a cough? Yes / No\nA: No\nBreathless? (Y/N) A: Yes",
                "Weight loss: No.\nDo you have a cough: No.\nBreathless: Yes.",
            ),
            // the option taken after a colon, beside the options offered (blind set 317)
            (
                "Could the patient be pregnant? Y / N : N\nPacemaker / implant? Y / N : N",
                "Could the patient be pregnant: N.\nPacemaker / implant: N.",
            ),
            (
                "Q: Reason for your request?\nA: my knee hurts\nPregnant? Y/N\nAllergies: none",
                "Reason for your request: my knee hurts.\nAllergies: none.",
            ),
            // labels before their boxes: the ticked ones kept
            (
                "Symptoms (tick):\n  bloating [x]   pain [ ]   weight loss [ ]\n  change in bowel habit [ ]   PR bleeding [ ]\nComments: bloated for ages",
                "bloating.\n\nComments: bloated for ages.",
            ),
            // a question of two things answered one by one: each answer its own thing
            (
                "Q: Any other symptoms?  A: no\nQ: Any weight loss / bleeding?  A: no / yes",
                "Any other symptoms: no.\nAny weight loss: no. bleeding: yes.",
            ),
            (
                "Q: Pain / swelling? A: yes\nQ: Fever? A: no",
                "Pain / swelling: yes.\nFever: no.",
            ),
            // fields: a box chosen among several, and one not answered
            (
                "Size: [x] under 5cm [ ] 5cm or more\nPain: Yes | Weight loss: Don't know | Fever: (blank)\nAny lumps? No",
                "Size: under 5cm.\nPain: Yes.\nAny lumps: No.",
            ),
        ] {
            assert_eq!(answered(text), read, "{text}");
        }
        // Fields answered yes or no make a form too.
        assert_eq!(
            answered("Pain: Yes | Vomiting: No | Weight loss: Don't know\nGP: LIF pain"),
            "Pain: Yes | Vomiting: No.\nGP: LIF pain."
        );
        // Not a form: a GP's own question marks stay queries.
        for text in [
            "RUQ pain? gallstones",
            "Is this a DVT?\nCalf swollen since Tuesday",
            "Lump L forearm. Has it grown? Pt unsure.",
        ] {
            assert_eq!(answered(text), text, "{text}");
        }
    }
}
