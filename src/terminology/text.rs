//! Free text as GPs write it: abbreviations, negation on either side of the term ("no palpable
//! mass", "DVT excluded"), history ("previous DVT", "PMH: ..."), hypotheses ("if it grows"),
//! family history, misspellings, and the difference between a symptom and a clinical question
//! ("?gallstones", "suspected", "r/o").
//!
//! The approach is ConText-like (NegEx with historical, hypothetical and family context): a
//! mention's context is decided by trigger phrases in its clause, before or after it, and
//! pseudo-triggers ("not only", "cannot exclude", "3 month history of") stop a trigger from
//! counting. Every trigger list is data (`rules/terminology/context.toml`), compiled once into
//! a [`Reader`]; spelling tolerance is in [`super::spelling`].

use regex::Regex;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::LazyLock;
use time::Date;

/// Lower-cases and folds runs of white space to one space. An en or em dash standing alone
/// ("Lump – soft") becomes a hyphen, so it opens a heading as a spaced hyphen does
/// ([`HEADING_DASH`]); a joined one ("2–3 cm") is kept.
///
/// A line break before a form's field ("Fast-track: No⏎Clinical question: ?node") is kept as
/// one line break, which ends the sentence before it: the field's answer ends there and no
/// negation reaches the next field. Any other line break is a space: dictated letters wrap
/// their lines in the middle of sentences.
///
/// A questionnaire pasted in (an online consultation's "Q: ... A: ...", boxes ticked) is
/// written as a form's fields answered first, with the form's words of `forms`
/// ([`super::forms`]).
///
/// Text that came through an HL7 v2 interface keeps its separators ("NTE|1||PAIN ONLY",
/// "XR^SKULL", "REASON: | SYMPTOMS:"): a segment's header is dropped, a component separator
/// (`^`) is a space and a field separator (`|`) is a line break that ends the field's sentence.
pub fn normalise(s: &str, forms: &super::forms::Forms) -> String {
    static SEGMENT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(?:NTE|OBR|OBX|ORC|DG1|PID|PV1|MSH)\|\d*\|[A-Z]{0,2}\|?")
            .unwrap_or_else(|e| panic!("HL7 segment headers: {e}"))
    });
    let s: std::borrow::Cow<str> = if s.contains(['|', '^']) {
        SEGMENT.replace_all(s, "\n").replace('^', " ").into()
    } else {
        s.into()
    };
    // A dropped g written with its apostrophe is the word ("bleedin' since Sat'dy", "ackin'
    // wrist", blind set 115).
    static DROPPED_G: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b([A-Za-z][a-z]*[a-z]in)['’](\s|[.,;:!?)]|$)")
            .unwrap_or_else(|e| panic!("dropped g: {e}"))
    });
    // Not the quote that closes a quotation: "'Mi back's gone again' - bad backs" (blind set 139).
    let replaced = DROPPED_G.replace_all(&s, |c: &regex::Captures| {
        let whole = c.get(0).map_or(0..0, |m| m.range());
        if in_quotation(&s, whole.start) {
            s[whole].to_string()
        } else {
            format!("{}g{}", &c[1], &c[2])
        }
    });
    let s = match replaced {
        std::borrow::Cow::Owned(changed) => std::borrow::Cow::Owned(changed),
        std::borrow::Cow::Borrowed(_) => s,
    };
    // A single word in quotes is the word: the patient's own, told through a relative ("L knee
    // 'dard' going upstairs", blind set 119), reads as the words around it do.
    static QUOTED_WORD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(^|[\s(])['‘]([A-Za-z]+)['’](\s|[.,;:!?)]|$)")
            .unwrap_or_else(|e| panic!("quoted word: {e}"))
    });
    let s = rewritten(s, &QUOTED_WORD, "${1}${2}${3}");
    // A blank left for an answer ("Pain? ____   Injury? ____") ends its field, as a line break
    // would: the next field's words are not its answer (blind set 139). A blank at a line's end
    // keeps its line break, read below as a field's end ("Red flags? ____⏎Form from HR
    // attached"): the next line is a form's next question, not a field of this one ("Pregnant?
    // [ ] Yes [ ] No  LMP: ____" then "Interpreter needed? [x] Yes", blind set 303).
    static BLANK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"_{2,}[ \t]+").unwrap_or_else(|e| panic!("blank: {e}")));
    let s = rewritten(s, &BLANK, "__|");
    let s = forms.answered(&s);
    let mut out = String::with_capacity(s.len());
    let mut after_quotation = false;
    let mut after_blank = false;
    for (i, line) in s.split('\n').enumerate() {
        for (k, field) in line.split('|').enumerate() {
            let mut words = field.split_whitespace().peekable();
            if words.peek().is_none() {
                continue;
            }
            if !out.is_empty() {
                out.push(
                    if k > 0 || (i > 0 && (after_quotation || after_blank || starts_field(line))) {
                        '\n'
                    } else {
                        ' '
                    },
                );
            }
            push_words(&mut out, words);
        }
        if !line.trim().is_empty() {
            after_quotation = ends_quotation(line);
            after_blank = line.trim_end().ends_with("__");
        }
    }
    spoken_to_written(latin_abbreviations(out))
}

/// Latin abbreviations of a formal letter, whose full stops would end a sentence in the middle
/// ("a vague, grumbling ache, s. any other symptom", "a nodule c. 18 mm, s. any change in size",
/// "viz. a computed tomogram", blind set 336): "s." (sine) is "without", so that it negates what
/// follows as "without" does; "c." (circa) before a number, in digits or words, is "about";
/// "viz." is "namely". Only a letter standing alone before its full stop is read so, never the
/// end of a word.
fn latin_abbreviations(text: String) -> String {
    static LATIN: LazyLock<[(Regex, &str); 3]> = LazyLock::new(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("latin abbreviations: {e}"));
        [
            (re(r"(^|[ (,])s\. ([a-z])"), "${1}without ${2}"),
            (
                re(
                    r"(^|[ (,~])c\. ?(\d|(?:the|one|two|three|four|five|six|seven|eight|nine|ten|twelve|a few|several) )",
                ),
                "${1}about ${2}",
            ),
            (re(r"(^|[ (,])viz\.,? "), "${1}namely "),
        ]
    });
    if !text.contains(". ") && !text.contains(".,") {
        return text;
    }
    LATIN
        .iter()
        .fold(text, |t, (re, with)| re.replace_all(&t, *with).into_owned())
}

/// Whether a line ends by closing a quotation: a patient's message pasted above the GP's own
/// lines ("\"... I'm on the pill if that matters\"" then "?DVT L leg") is said in full, so the
/// next line opens a sentence of its own (blind set 263), though it has no full stop. Only
/// double quotes count: a single one may be an apostrophe.
fn ends_quotation(line: &str) -> bool {
    let line = line.trim_end();
    line.ends_with('”') || (line.ends_with('"') && line.matches('"').count().is_multiple_of(2))
}

/// Appends `words` to `out`, lower-cased and one space apart.
fn push_words<'w>(out: &mut String, words: impl Iterator<Item = &'w str>) {
    for (j, word) in words.enumerate() {
        if j > 0 {
            out.push(' ');
        }
        if matches!(word, "–" | "—") {
            out.push('-');
        } else {
            out.extend(word.chars().flat_map(char::to_lowercase));
        }
    }
}

/// Words written with their first letters dropped and an apostrophe before them ("'Er's
/// expectin' a babby", "Can we 'ave a scan"): the apostrophe opens no quotation.
const ELISIONS: &[&str] = &[
    "er", "im", "is", "e", "ave", "ad", "as", "ome", "ead", "urt", "urts", "ere", "em", "cause",
    "cos", "til", "bout", "alf", "ow", "appen", "ospital", "eart", "ip", "and",
];

/// Whether `at` is inside a quotation opened earlier on its line: more opening quotes (after a
/// space, a bracket or the line's start, before a letter) than closing ones (after a letter,
/// before no letter) since the line began.
fn in_quotation(text: &str, at: usize) -> bool {
    let line = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let chars: Vec<char> = text[line..at].chars().collect();
    let mut open = 0i32;
    for (i, &c) in chars.iter().enumerate() {
        if !matches!(c, '\'' | '‘' | '’') {
            continue;
        }
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let elided = || {
            let word: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_alphabetic())
                .flat_map(|c| c.to_lowercase())
                .collect();
            ELISIONS.contains(&word.as_str())
        };
        if before.is_none_or(|b| b.is_whitespace() || b == '(')
            && after.is_some_and(char::is_alphabetic)
            && !elided()
        {
            open += 1;
        } else if before.is_some_and(char::is_alphabetic) && !after.is_some_and(char::is_alphabetic)
        {
            open -= 1;
        }
    }
    open > 0
}

/// `text` with every match of `re` replaced by `with`, copied only when something matched.
fn rewritten<'t>(
    text: std::borrow::Cow<'t, str>,
    re: &Regex,
    with: &str,
) -> std::borrow::Cow<'t, str> {
    match re.replace_all(&text, with) {
        std::borrow::Cow::Owned(changed) => changed.into(),
        std::borrow::Cow::Borrowed(_) => text,
    }
}

/// Dictation sent uncorrected says its punctuation and years in words ("no breast lumps full
/// stop real issue is RUQ pain question mark gallstones", "miscarriage in twenty twenty one"):
/// written back as marks and digits, so that a negation ends at its sentence and a year dates
/// what it follows. Only words with no clinical sense are read so ("colon" and "period" are not).
fn spoken_to_written(text: String) -> String {
    // One pass says whether any spoken mark or year word is there at all: most notes have none,
    // and a plain `contains("new ")` would send every "new lump" through every pass below.
    static ANY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(?:comma|full stop|new line|new paragraph|next line|question mark|twenty|nineteen|thirty|forty)\b")
            .unwrap_or_else(|e| panic!("spoken words: {e}"))
    });
    static SPOKEN: LazyLock<[(Regex, &str); 4]> = LazyLock::new(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("spoken punctuation: {e}"));
        [
            (re(r" ?\bcomma\b"), ","),
            (re(r" ?\bfull stop\b"), "."),
            (re(r" ?\b(?:new line|new paragraph|next line)\b ?"), "\n"),
            (re(r"\bquestion mark\b ?"), "?"),
        ]
    });
    static YEAR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(twenty|nineteen) (ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?: (one|two|three|four|five|six|seven|eight|nine))?\b")
            .unwrap_or_else(|e| panic!("spoken years: {e}"))
    });
    const DECADES: [(&str, u32); 18] = [
        ("ten", 10),
        ("eleven", 11),
        ("twelve", 12),
        ("thirteen", 13),
        ("fourteen", 14),
        ("fifteen", 15),
        ("sixteen", 16),
        ("seventeen", 17),
        ("eighteen", 18),
        ("nineteen", 19),
        ("twenty", 20),
        ("thirty", 30),
        ("forty", 40),
        ("fifty", 50),
        ("sixty", 60),
        ("seventy", 70),
        ("eighty", 80),
        ("ninety", 90),
    ];
    const UNITS: [(&str, u32); 9] = [
        ("one", 1),
        ("two", 2),
        ("three", 3),
        ("four", 4),
        ("five", 5),
        ("six", 6),
        ("seven", 7),
        ("eight", 8),
        ("nine", 9),
    ];
    if !ANY.is_match(&text) {
        return text;
    }
    let mut out = text;
    for (re, mark) in SPOKEN.iter() {
        if let std::borrow::Cow::Owned(changed) = re.replace_all(&out, *mark) {
            out = changed;
        }
    }
    let number = |table: &[(&str, u32)], word: &str| {
        table
            .iter()
            .find(|(w, _)| *w == word)
            .map_or(0, |(_, n)| *n)
    };
    let out = YEAR
        .replace_all(&out, |c: &regex::Captures<'_>| {
            let century = if &c[1] == "twenty" { 20 } else { 19 };
            let decade = number(&DECADES, &c[2]);
            let unit = c.get(3).map_or(0, |u| number(&UNITS, u.as_str()));
            // "twenty twenty" + "one" is 2021; "nineteen ninety" + "eight" is 1998; a unit after a
            // teen ("twenty eighteen one") is not a year's.
            if decade < 20 && unit > 0 {
                return c[0].to_string();
            }
            format!("{}", century * 100 + decade + unit)
        })
        .into_owned();
    // A spoken number of weeks, months or years that is no year: "twenty four weeks pregnant"
    // is 24 weeks, not four (blind set 122).
    static TENS_AND_UNITS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(twenty|thirty|forty) (one|two|three|four|five|six|seven|eight|nine)\b")
            .unwrap_or_else(|e| panic!("spoken numbers: {e}"))
    });
    TENS_AND_UNITS
        .replace_all(&out, |c: &regex::Captures<'_>| {
            format!("{}", number(&DECADES, &c[1]) + number(&UNITS, &c[2]))
        })
        .into_owned()
}

/// Whether a line opens with a form's field label: a few words, then a colon ("Red flags:",
/// "O/E:", "Pregnancy status:"), a label and a question mark ("Pregnant? N"), or a label and a
/// spaced dash ("Wt loss - N").
fn starts_field(line: &str) -> bool {
    let line = line.trim_start();
    // A rule drawn before the label ("--- Duty GP:", "=== GP note:", blind set 365); a single
    // dash is a list's bullet, which a field does not start with (a long dash, three bytes,
    // is a rule on its own).
    let rule = line.len()
        - line
            .trim_start_matches(['-', '=', '*', '#', '_', '~', '—'])
            .len();
    if rule >= 2 && line[rule..].starts_with(' ') && !line[rule..].trim().is_empty() {
        // a heading after a rule opens its own line, with or without a colon ("=== Dr
        // Fairclough", blind set 368)
        return true;
    }
    // A label ends at a colon, a question mark or a spaced dash ("Wt loss - N", blind set 237).
    let Some(end) = [line.find([':', '?']), line.find(" - "), line.find(" – ")]
        .into_iter()
        .flatten()
        .min()
    else {
        return false;
    };
    let label = &line[..end];
    !label.is_empty()
        && label.chars().next().is_some_and(char::is_alphabetic)
        && label.split_whitespace().count() <= 4
        && label.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, ' ' | '/' | '&' | '(' | ')' | '-' | '\'' | '.')
        })
}

pub(super) fn bounded(p: &str) -> String {
    let starts_word = p
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '(' || c == '[')
        && first_alternatives_start_words(p);
    let start = if starts_word {
        word_boundary(p.chars().next())
    } else {
        ""
    };
    // A pattern that ends in a space (so that no boundary is added after its punctuation) ends
    // at a form's line break as well ([`normalise`]): "Differential: ?" then the next field.
    match p.strip_suffix(' ') {
        Some(rest) if !rest.ends_with('\\') => {
            format!("{start}(?:{}[ \n])", ascii_boundaries(rest))
        }
        _ => format!(
            "{start}{}",
            end_bounded(&format!("(?:{})", ascii_boundaries(p)), 0)
        ),
    }
}

/// The word boundary to write beside `edge`, a pattern's first or last character.
fn word_boundary(edge: Option<char>) -> &'static str {
    if edge.is_some_and(|c| !c.is_ascii()) {
        r"\b"
    } else {
        ASCII_BOUNDARY
    }
}

/// Whether a pattern ends in a word, where a word boundary can follow it: a letter or a digit,
/// a class that may hold one, a group, or a repetition of one of them. An escaped sign ends no
/// word: `gallstones\?` at the end of a text, `son \([a-z]+\)` before a space ("Next of kin:
/// son (Davy) consent obtained", blind set 111), `homans \+` before "calf warm".
fn ends_word(p: &str) -> bool {
    let Some(last) = p.chars().last() else {
        return false;
    };
    let backslashes = p[..p.len() - last.len_utf8()]
        .chars()
        .rev()
        .take_while(|&c| c == '\\')
        .count();
    if backslashes % 2 == 1 {
        return last.is_alphanumeric();
    }
    match last {
        ']' => !ends_with_class_of_signs(p),
        ')' | '?' | '*' | '+' | '}' => true,
        c => c.is_alphanumeric(),
    }
}

/// Whether a pattern ends with a class of signs only ("[,;]", "[ .,;]"), after which no word
/// boundary can follow a space or the end of the text. A class that may hold a letter or a
/// digit (`[a-z]`, `[^.;]`, `[\w.]`) ends a word.
fn ends_with_class_of_signs(p: &str) -> bool {
    let Some(body) = p.strip_suffix(']') else {
        return false;
    };
    let Some(open) = body.rfind('[') else {
        return false;
    };
    let class = &body[open + 1..];
    if class.starts_with('^') || body[..open].ends_with('\\') {
        return false;
    }
    // An escaped letter names a sign (`\.`, `\s`), unless it names letters or digits (`\w`).
    let mut chars = class.chars();
    while let Some(c) = chars.next() {
        let holds_word = if c == '\\' {
            chars
                .next()
                .is_some_and(|e| matches!(e, 'w' | 'd' | 'W' | 'D' | 'p' | 'P'))
        } else {
            c.is_alphanumeric()
        };
        if holds_word {
            return false;
        }
    }
    true
}

/// `pattern` followed by a word boundary wherever it ends in a word. A pattern that ends with a
/// group takes the boundary into each alternative of the group that ends in a word, and none
/// after one that ends in a sign: "skull (?:fracture|#)" finds "skull # ?depressed", which a
/// boundary after the group never did, there being no word after the "#" (twenty-five patterns
/// of the terminology ended so, found by reading them all in session 51).
fn end_bounded(pattern: &str, depth: usize) -> String {
    // An optional group ending the pattern ("... breast unit(?: \([^()]{0,60}\))?") is read as
    // its alternatives or nothing: each alternative takes its own boundary, and the nothing takes
    // the one the words before the group would (blind set 305: the boundary after the group
    // kept the parenthesis out of the match).
    if let Some(optional) = pattern
        .strip_suffix(")?")
        // (not an escaped bracket made optional, `\)?`)
        .filter(|p| !p.ends_with('\\'))
        .map(|p| &pattern[..p.len() + 1])
    {
        if let Some((head, alternatives)) =
            final_group(optional).filter(|(_, alternatives)| !alternatives.contains(&""))
        {
            let before = &head[..head.rfind('(').unwrap_or(0)];
            let absent = if ends_word(before) {
                word_boundary(before.chars().last())
            } else {
                ""
            };
            return format!("{head}{}|{absent})", bounded_each(alternatives, depth));
        }
    }
    // An empty alternative ("pains?(?:|,)") ends where the group's head does: the boundary
    // stays after the group.
    let Some((head, alternatives)) =
        final_group(pattern).filter(|(_, alternatives)| !alternatives.contains(&""))
    else {
        let last = pattern.chars().last();
        // Inside a pattern's own group (depth 2: the pattern is itself an alternative of the
        // group `bounded` wraps it in), a word ending in a letter that is not ASCII ("rosé",
        // "bolał") takes no boundary: a Unicode one would make its whole concept's search fall
        // back to the slow engine on every text that is not ASCII (2.5 s became 3.7 s for a
        // 900 kB note with one curly quote), and the ASCII one never holds after such a letter.
        return if depth >= 2 && last.is_some_and(|c| !c.is_ascii()) {
            pattern.to_string()
        } else if ends_word(pattern) {
            format!("{pattern}{}", word_boundary(last))
        } else {
            pattern.to_string()
        };
    };
    format!("{head}{})", bounded_each(alternatives, depth))
}

/// A group's alternatives, each with its own end boundary, joined again.
fn bounded_each(alternatives: Vec<&str>, depth: usize) -> String {
    alternatives
        .into_iter()
        .map(|a| end_bounded(a, depth + 1))
        .collect::<Vec<_>>()
        .join("|")
}

/// The pattern's text up to and including the opening of the group it ends with (with its
/// `?:`), and that group's top-level alternatives; `None` when it does not end by closing a
/// group.
fn final_group(pattern: &str) -> Option<(&str, Vec<&str>)> {
    let inner_end = pattern.strip_suffix(')')?.len();
    let (mut opens, mut escaped, mut in_class, mut last_open) = (Vec::new(), false, false, None);
    for (i, c) in pattern.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => opens.push(i),
            ')' if !in_class => {
                let open = opens.pop()?;
                if i == inner_end {
                    last_open = Some(open);
                }
            }
            _ => {}
        }
    }
    let open = last_open?;
    let inner_start = match &pattern[open + 1..inner_end] {
        inner if inner.starts_with("?:") => open + 3,
        // A look-around or a named group is left whole.
        inner if inner.starts_with('?') => return None,
        _ => open + 1,
    };
    let inner = &pattern[inner_start..inner_end];
    let (mut alternatives, mut start, mut depth) = (Vec::new(), 0, 0usize);
    let (mut escaped, mut in_class) = (false, false);
    for (i, c) in inner.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth -= 1,
            '|' if !in_class && depth == 0 => {
                alternatives.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    alternatives.push(&inner[start..]);
    Some((&pattern[..inner_start], alternatives))
}

/// A word boundary of ASCII words. The lazy DFA cannot run a Unicode `\b` over a text that is
/// not ASCII (the search falls back to the PikeVM: 80 s in release for a 900 kB note with one
/// curly quote in it, 0.3 s for a 2 kB one), and it can run this. The two differ only where an
/// ASCII letter meets one that is not (é, ł, ŵ), which this one takes for a word's end; a
/// pattern whose own edge is such a letter keeps the Unicode boundary there. (A pattern ending
/// in a class of such letters, `[^\W\d_]+`, then ends before a last letter that is not ASCII:
/// four patterns of names, where that changes nothing.)
const ASCII_BOUNDARY: &str = r"(?-u:\b)";

/// `pattern` with its word boundaries (`\b`) written as ASCII ones ([`ASCII_BOUNDARY`]), but
/// where a letter that is not ASCII is written beside one.
fn ascii_boundaries(pattern: &str) -> String {
    if !pattern.contains(r"\b") {
        return pattern.to_string();
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            previous = Some(c);
            continue;
        }
        match chars.next() {
            Some('b')
                if previous.is_none_or(|p| p.is_ascii())
                    && chars.peek().is_none_or(|n| n.is_ascii()) =>
            {
                out.push_str(ASCII_BOUNDARY);
            }
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => out.push('\\'),
        }
        // An escape is no letter beside a boundary.
        previous = Some('\\');
    }
    out
}

/// Whether a pattern that opens with a group opens with a word in every alternative of that
/// group: "(?:,| -) does not meet" starts at a comma or a dash, and a word boundary before it
/// would fail after a parenthesis ("(interpreting) - does not meet criteria").
fn first_alternatives_start_words(p: &str) -> bool {
    let Some(group) = p.strip_prefix("(?:") else {
        return true;
    };
    let mut depth = 0usize;
    let mut alternative_start = true;
    let mut escaped = false;
    for c in group.chars() {
        if alternative_start {
            alternative_start = false;
            let word = c.is_alphanumeric() || c == '(' || c == '[' || c == '\\';
            if !word {
                return false;
            }
        }
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' if depth == 0 => return true,
            ')' => depth -= 1,
            '|' if depth == 0 => alternative_start = true,
            _ => {}
        }
    }
    true
}

/// Compiles a concept's patterns into one case-insensitive regex, each alternative bounded by
/// word boundaries where it begins or ends with a word character.
pub fn compile_patterns(patterns: &[String]) -> Result<Regex, String> {
    let alternatives: Vec<String> = patterns.iter().map(|p| bounded(p)).collect();
    regex::RegexBuilder::new(&format!("(?i){}", alternatives.join("|")))
        .dfa_size_limit(UNICODE_DFA_CACHE)
        .build()
        .map_err(|e| e.to_string())
}

/// The lazy DFA cache of a concept's or a trigger list's Unicode regex, twice the crate's
/// default: a Unicode class repeated (`[^.;]{0,12}` in a pattern of rib fractures) filled the
/// default cache on a long text that is not ASCII, and the search fell back to the PikeVM
/// (2.6 s of a 900 kB note; 2 ms with this). A cache grows only as its regex needs it.
const UNICODE_DFA_CACHE: usize = 4 << 20;

/// A compiled pattern's ASCII-only form, for texts that are all ASCII (nearly every referral):
/// word boundaries, classes and case folding then mean what they do in the Unicode form, at a
/// fraction of the size, and a lazy DFA that does not give up (a Unicode class such as `[^.;]`
/// or a Unicode word boundary sends long texts to the PikeVM: seconds for a long note).
///
/// Characters that are not ASCII can never match such a text, so they are dropped from
/// character classes (`[\x27‘“]` is `[\x27]`; a class left empty matches no ASCII byte), which an
/// ASCII-only regex does not accept; outside a class they stay, as literals no ASCII text holds.
/// `None` when the pattern needs Unicode anyway (`\p{L}`). `dfa_size_limit`: the lazy DFA's
/// cache, for a large alternation.
pub fn ascii_only(source: &str, dfa_size_limit: Option<usize>) -> Option<regex::bytes::Regex> {
    let mut builder = regex::bytes::RegexBuilder::new(&without_unicode_class_members(source));
    builder.unicode(false);
    if let Some(limit) = dfa_size_limit {
        builder.dfa_size_limit(limit);
    }
    builder.build().ok()
}

/// `source` with the characters that are not ASCII left out of its character classes (and the
/// ranges they bound).
fn without_unicode_class_members(source: &str) -> String {
    if source.is_ascii() {
        return source.to_string();
    }
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    // Inside a class: its members as written, and whether it is negated.
    let mut class: Option<(String, bool)> = None;
    while let Some(c) = chars.next() {
        let Some((members, negated)) = class.as_mut() else {
            out.push(c);
            if c == '\\' {
                out.extend(chars.next());
            } else if c == '[' {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut members = String::new();
                // A `]` first in a class is a member.
                members.extend(chars.next_if_eq(&']'));
                class = Some((members, negated));
            }
            continue;
        };
        match c {
            '\\' => {
                members.push(c);
                members.extend(chars.next());
            }
            ']' => {
                let (members, negated) = (std::mem::take(members), *negated);
                class = None;
                // A class with no ASCII member matches no ASCII byte (or, negated, any).
                let members = if members.is_empty() {
                    r"\x80-\xFF".to_string()
                } else {
                    members
                };
                if negated {
                    out.push('^');
                }
                out.push_str(&members);
                out.push(']');
            }
            c if !c.is_ascii() => {
                if members.len() > 1 && members.ends_with('-') && !members.ends_with("\\-") {
                    // A range from ASCII keeps its ASCII part ("a-ÿ" is "a-\x7F").
                    members.push_str(r"\x7F");
                } else if chars.next_if_eq(&'-').is_some() {
                    // A range from a character that is not ASCII has no ASCII part ("à-ÿ").
                    chars.next();
                }
            }
            c => members.push(c),
        }
    }
    out
}

/// The trigger lists of `[context]` in a terminology file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextDef {
    /// Before the term, in its clause: "no", "denies", "without".
    pub negation_before: Vec<String>,
    /// After the term, in its comma-bounded piece: "excluded", "ruled out", "unlikely".
    pub negation_after: Vec<String>,
    /// Answers to a heading, after a colon, a dash or a question mark and ending its piece:
    /// "Haematuria: none", "Wt loss - no", "Previous cancer? No.". Only there do they negate
    /// ("pain no better" is no answer).
    pub negation_answers: Vec<String>,
    /// Negation words that, written apart, negate only the next word, as a joined prefix does:
    /// "non" in "non tender, 6 cm across". Each must also be a `negation_before` word. Any
    /// negation word joined by a hyphen ("non-tender") is a prefix without being listed.
    pub negation_prefixes: Vec<String>,
    /// Headings that make the rest of their sentence absent: "Symptoms denied: blood in urine,
    /// fever", a symptom checker's list of what the patient said no to.
    pub negation_headings: Vec<String>,
    /// Cues that what follows corrects what was said before: a supervisor's "Discussed -
    /// amended:", a GP's "on direct questioning" after a symptom checker's answers. After one, a
    /// plain present negation of a concept replaces what the text said of it before the cue
    /// ("Red flags screened: saddle anaesthesia - YES ... on direct questioning no saddle
    /// numbness"), as an answer closes a question.
    pub corrections: Vec<String>,
    /// Phrases that hold a negation word but do not negate: "not only", "cannot exclude",
    /// "not ruled out", "no improvement".
    pub pseudo_negation: Vec<String>,
    /// Question cues before the term: "?", "query", "suspected", "r/o".
    pub question_before: Vec<String>,
    /// Phrases that hold a question cue but ask nothing specific: "?cause", "?why". A question
    /// cue inside one of them is ignored (the tips ask for a specific question).
    pub pseudo_question: Vec<String>,
    /// Before the term, in its comma-bounded piece: "previous", "history of", "h/o".
    pub historical_before: Vec<String>,
    /// After the term, in its comma-bounded piece: "in 2019", "last year".
    pub historical_after: Vec<String>,
    /// Phrases that hold a historical word but speak of now: "3 month history of".
    pub pseudo_historical: Vec<String>,
    /// Headings that make the rest of their sentence history: "PMH:", "past history:".
    pub historical_headings: Vec<String>,
    /// Headings of an earlier document quoted in the request, dated or called earlier: "EPU
    /// letter 2024:", "US neck 02/2026 report:", "Previous referral (returned):". What the
    /// document said is of its time: a quotation ('...') is past to its closing mark, an
    /// unquoted one to the end of its sentence. A heading opens its sentence or line, and its
    /// pattern ends with its colon.
    pub document_headings: Vec<String>,
    /// Headings of a dated entry of a record pasted into the request: "[2024]", "--- entry
    /// 14/02/2024 ---". An entry dated months before the request is past, to the next entry's
    /// heading (or, for the last, to the end of its sentence).
    pub entry_headings: Vec<String>,
    /// Headings of context that is neither the presenting complaint nor only the past: "Background:",
    /// "Meds:", "SH:". What follows them is read as it says (a pregnancy, a 2WW referral sent
    /// this morning), but its other words add no finding to the complaint.
    pub background_headings: Vec<String>,
    /// Before a list of conditions the patient is known to have, not the complaint: "k/c/o",
    /// "known", "background of". Like a background heading, it leaves its mentions present
    /// ("known lipoma" is a lipoma), but the other words of its list add no finding ("k/c/o
    /// HTN, hypothyroidism" is no symptom). It reaches over short list items.
    pub background_before: Vec<String>,
    /// Words that end such a list: an item that reports a change or a complaint is the present,
    /// not the background ("Known Paget's disease, hat size increasing, headaches").
    pub background_ends: Vec<String>,
    /// Long-term conditions that, opening an item of a numbered problem list pasted into the
    /// request ("1. HTN - ramipril 5mg 2. T2DM - metformin 3. OA knees"), are the patient's
    /// background, not the question: the condition is read as known (no present finding), and
    /// the item's other words (its treatment, a result) add none. See [`problem_items`].
    pub long_term_conditions: Vec<String>,
    /// Cues that a problem is not what this request asks about: "(not for scan)", "not for
    /// this scan", "referred to the breast unit". A cue reaches back to the start of its
    /// sentence or list item ("1) Knee swelling ?Baker's. 2) Low back pain (not for scan)"), or,
    /// when it opens its sentence ("... breast lump. Not for this scan."), over the sentence
    /// before. What it reaches is not the request's: its mentions do not count and its words
    /// add no finding.
    pub not_this_request: Vec<String>,
    /// Headings that open the patient's own message pasted into the request (an e-consultation
    /// or an online form: "Patient message:", "Online form:", "Pt's words:"), at the start of a
    /// line (a quoted one may open any sentence). The message reaches to the next
    /// `clinician_headings` heading that opens a line or a sentence, or to the text's end. It is
    /// the patient's: a "fast track" asked for there is no 2WW referral made, a question asked
    /// there is not the clinical question, and what the patient read or was told "could be" is
    /// an idea to the end of its clause. When a clinician's note follows, the message's words
    /// add no finding of their own (the clinician's note says what was found) and the note
    /// corrects it, as a `corrections` cue does. Its symptoms and findings the reader knows are
    /// read as they are written. See [`patient_messages`].
    pub patient_messages: Vec<String>,
    /// A bare label that may open the patient's message ("Patient:", "Pt:"), at the start of a
    /// line: it does so only when a `clinician_headings` heading opens a later line ("Patient:
    /// pain in my tummy ... ⏎ --- GP: weight stable", blind set 365). Without that note it is the
    /// clinician's own label ("Pt: 62F, 2WW referral made").
    pub patient_labels: Vec<String>,
    /// Headings that hand a request back to the clinician after a patient's message: "GP
    /// note:", "GP:", "ANP:", "E-consult triage template".
    pub clinician_headings: Vec<String>,
    /// Before the term, in its comma-bounded piece: "if", "should she develop".
    pub hypothetical_before: Vec<String>,
    /// After the term, in its comma-bounded piece: a condition on a result that has not come
    /// ("will 2WW if >4mm", "refer if abnormal"). Conditions of a symptom ("pain if kneeling")
    /// are not listed: the pain is there.
    pub hypothetical_after: Vec<String>,
    /// Phrases that hold a hypothetical word and are no hypothesis: "as if", "as though"
    /// ("feels as if being strangled, pressure in neck" states both).
    pub pseudo_hypothetical: Vec<String>,
    /// Headings of what the patient thinks, fears or expects (an ICE section: "Ideas:",
    /// "Concerns:", "C:"): what follows them in their sentence is not a finding.
    pub hypothetical_headings: Vec<String>,
    /// Before the term, in its comma-bounded piece: "family history of", "mother had".
    pub family_before: Vec<String>,
    /// After the term, in its comma-bounded piece: "kidney stones run in the family".
    pub family_after: Vec<String>,
    /// Headings that make the rest of their sentence family history: "FH:".
    pub family_headings: Vec<String>,
    /// Phrases that hold a family cue and speak of the patient: a relative quoted about the
    /// patient ("Daughter: 'Dad has been more confused since ...'").
    pub pseudo_family: Vec<String>,
    /// Words that end a clause (a cue before them does not reach past them): "but", "now".
    pub clause_ends: Vec<String>,
    /// Words that say a finding was looked for on examination: "O/E", "on examination",
    /// "palpable". A question the examination answers no ("?effusion ... O/E no effusion") is
    /// closed.
    pub examination_cues: Vec<String>,
}

/// The compiled trigger lists.
#[derive(Debug, Clone)]
pub struct Reader {
    negation_before: Option<Regex>,
    negation_after: Option<Regex>,
    negation_answer: Option<Regex>,
    negation_prefix: Option<Regex>,
    pseudo_negation: Option<Regex>,
    negation_headings: Option<Regex>,
    corrections: Option<Regex>,
    question: Option<Regex>,
    pseudo_question: Option<Regex>,
    historical_before: Option<Regex>,
    historical_after: Option<Regex>,
    pseudo_historical: Option<Regex>,
    historical_headings: Option<Regex>,
    document_headings: Option<Regex>,
    entry_headings: Option<Regex>,
    background_headings: Option<Regex>,
    background_before: Option<Regex>,
    background_end: Option<Regex>,
    long_term_conditions: Option<Regex>,
    not_this_request: Option<Regex>,
    patient_messages: Option<Regex>,
    patient_labels: Option<Regex>,
    clinician_headings: Option<Regex>,
    hypothetical_before: Option<Regex>,
    hypothetical_after: Option<Regex>,
    pseudo_hypothetical: Option<Regex>,
    hypothetical_headings: Option<Regex>,
    family_before: Option<Regex>,
    family_after: Option<Regex>,
    family_headings: Option<Regex>,
    pseudo_family: Option<Regex>,
    examination: Option<Regex>,
    clause_end: Regex,
}

impl Default for Reader {
    fn default() -> Self {
        Self::compile(&ContextDef::default()).unwrap_or_else(|_| unreachable!())
    }
}

fn optional(name: &str, patterns: &[String]) -> Result<Option<Regex>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    compile_patterns(patterns)
        .map(Some)
        .map_err(|e| format!("[context] {name}: {e}"))
}

/// Trigger matches of `re` in `text[from..to]`, as absolute ranges.
fn spans(re: &Option<Regex>, text: &str, from: usize, to: usize) -> Vec<(usize, usize)> {
    match re {
        Some(re) if from < to => re
            .find_iter(&text[from..to])
            .map(|m| (from + m.start(), from + m.end()))
            .collect(),
        _ => Vec::new(),
    }
}

fn overlaps(a: (usize, usize), spans: &[(usize, usize)]) -> bool {
    spans.iter().any(|s| a.0 < s.1 && s.0 < a.1)
}

/// How a mention is meant, as the reader understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
    pub negated: bool,
    pub questioned: bool,
    /// Said of the past: "previous DVT", "PMH: ...", "lump excised in 2019".
    pub historical: bool,
    /// Said of what may happen: "if it grows", "should she develop".
    pub hypothetical: bool,
    /// Said of someone else: "family history of", "mother had".
    pub family: bool,
    /// Said of a problem this request does not ask about: "2) Low back pain (not for scan)",
    /// "breast lump: referred to the breast unit".
    pub elsewhere: bool,
    /// Written in the patient's own message pasted into the request ("Patient message: ... please
    /// fast track me"): what it asks for is the patient's wish, not the clinician's act.
    pub patients_message: bool,
    /// Told only in a patient's (or a care navigator's) message that a clinician's note answers,
    /// when that note finds something of its own and not this: the patient's report, which the
    /// clinician did not take up ("Nav: blood in her wee. Dr: not urinary - PV bleeding"). Set
    /// by the mapping, which sees every concept of the text.
    pub unconfirmed: bool,
}

impl Mention {
    /// Whether the mention says the patient has this now.
    pub fn is_current(&self) -> bool {
        !self.negated && self.is_of_the_present()
    }

    /// Whether the mention speaks of the patient now, whether it affirms or denies it: not
    /// past, supposed, a relative's, elsewhere or only the patient's report.
    pub fn is_of_the_present(&self) -> bool {
        !self.historical
            && !self.hypothetical
            && !self.family
            && !self.elsewhere
            && !self.unconfirmed
    }

    /// The context that keeps the mention from counting, for diagnostics.
    pub fn context(&self) -> Option<&'static str> {
        if self.negated {
            Some("negated")
        } else if self.family {
            Some("family history")
        } else if self.hypothetical {
            Some("hypothetical")
        } else if self.historical {
            Some("past")
        } else if self.elsewhere {
            Some("not for this request")
        } else if self.unconfirmed {
            Some("the patient's report, not taken up by the clinician's note")
        } else {
            None
        }
    }
}

/// How far before and after a mention its cues are looked for, in bytes. Cues reach within a
/// clause of a few words; without a bound every mention rescanned all the text before and after
/// it, and a long text without punctuation took minutes (100 kB of "lump lump ...": 70 s).
const REACH: usize = 256;

/// How far after a mention a post-trigger may start and still be read as said of it, in bytes
/// ("DVT excluded", "lump on the back not palpable today"): a few words.
const AFTER_REACH: usize = 48;

/// How far a form's list of items asked about together may reach before its answer, in bytes.
const LIST_REACH: usize = 100;

/// The text up to `REACH` bytes before `end`, starting at a word (never inside a character).
fn before(text: &str, end: usize) -> usize {
    if end <= REACH {
        return 0;
    }
    let mut from = end - REACH;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    // A cut word is not a cue ("cannot" cut to "not").
    match text[from..end].find(' ') {
        Some(space) => from + space + 1,
        None => end,
    }
}

/// The end of the text `REACH` bytes after `start` (never inside a character).
fn after(text: &str, start: usize) -> usize {
    let mut to = (start + REACH).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    to
}

/// A spaced dash opens a new heading ("soft and mobile - growth none"): no negation reaches
/// across it, before or after.
const HEADING_DASH: &str = " - ";

/// A spaced slash parts the items of a note written with slashes ("haem+ on dip x3 / MSU neg /
/// BP ok", "nose deviated / epistaxis settled / -> XR", blind set 300) as a clause word does: no
/// cue reaches across it. One slash alone is more often an "or" ("No chest / breast changes",
/// blind set 254), so a text needs two at least.
const SLASH: &str = " / ";

/// The spaced slashes of a text written with them (see [`SLASH`]).
fn parting_slashes(text: &str) -> Vec<(usize, usize)> {
    let slashes: Vec<(usize, usize)> = text
        .match_indices(SLASH)
        .map(|(i, s)| (i, i + s.len()))
        .collect();
    if slashes.len() < 2 {
        return Vec::new();
    }
    slashes
}

/// The spaced dashes that open another field or piece of a template after an answer or a
/// mention ("Hard? No - soft", "calf swelling - DVT: no", "Steroid use: No -- Duration: 3 wks").
const FIELD_DASHES: [&str; 3] = [" - ", " – ", " --"];

/// Where the first spaced dash after `from` starts, within a cue's reach (the text's end if
/// none there: an unbounded search per cue was quadratic on a long text without dashes).
fn dash_after(text: &str, from: usize) -> usize {
    let to = after(text, from);
    FIELD_DASHES
        .iter()
        .filter_map(|d| text[from..to].find(d))
        .min()
        .map_or(text.len(), |i| from + i)
}

/// The parenthesis still open at `at` that opened after `from`, if any. A cue inside one
/// speaks of what the parenthesis is attached to, not of everything before it: in "new nodule
/// in the scar of a melanoma excision (2022)" the year dates the excision, not the nodule.
fn open_parenthesis(text: &str, from: usize, at: usize) -> Option<usize> {
    let open = from + text[from..at].rfind('(')?;
    (!text[open..at].contains(')')).then_some(open)
}

/// Whether the cue at `at` opens a piece: it starts with its comma, semicolon or spaced dash,
/// or follows one.
fn opens_piece(text: &str, at: usize) -> bool {
    let rest = &text[at..];
    rest.starts_with([',', ';'])
        || rest.starts_with(" -")
        || text[..at].trim_end().ends_with([',', ';', '-', '–'])
}

/// The end of a parenthesis that opens right after `end` and closes before `to`.
fn parenthesis_after(text: &str, end: usize, to: usize) -> Option<usize> {
    let rest = &text[end..to];
    let open = end + (rest.len() - rest.trim_start().len());
    if !text[open..to].starts_with('(') {
        return None;
    }
    text[open..to].find(')').map(|i| open + i + 1)
}

/// Whether a heading match is a word of its own: one that follows a slash is the end of an
/// abbreviation ("O/E:" is an examination, not the "E:" of an ICE section).
fn is_heading_word(text: &str, heading: (usize, usize)) -> bool {
    !text[..heading.0].ends_with('/')
}

/// Where the piece that ends at `at` starts, for a cue after a term: after the last comma or
/// clause mark, and at most `AFTER_REACH` bytes back ("haematemesis excluded").
fn piece_before(text: &str, at: usize) -> usize {
    let from = before(text, at);
    let piece = &text[from..at];
    let mark = piece
        .rfind([',', '.', ';', ':', '!', '?', '\n'])
        .map(|i| from + i + 1);
    // A spaced double dash parts a template's title from its fields ("Back pain template --
    // Age <20 or >50: No", blind set 177).
    let dashes = piece.rfind(" --").map(|i| from + i + 3);
    // (never inside a character: the piece's start may be sliced from)
    let mut reach = at.saturating_sub(AFTER_REACH);
    while !text.is_char_boundary(reach) {
        reach += 1;
    }
    mark.max(dashes).unwrap_or(from).max(reach)
}

/// Where the sentence holding `at` starts, within reach.
/// Whether the words between a question and a second mention of its term answer it: a dash or
/// a colon, then a negation ("?goitre - no goitre", "?DVT: not DVT").
fn answered_at_once(between: &str) -> bool {
    let Some(rest) = between
        .trim_start()
        .strip_prefix(['-', '–', ':', '?'])
        .map(str::trim_start)
    else {
        return false;
    };
    ["no ", "not ", "nil "]
        .iter()
        .any(|cue| rest.starts_with(cue) && rest.len() <= 12)
}

fn sentence_start(text: &str, at: usize) -> usize {
    let from = before(text, at);
    text[from..at]
        .rfind(is_sentence_end)
        .map_or(from, |i| from + i + 1)
}

/// Whether what follows a heading's word makes it a heading: a colon or a dash ("PMH:", "FH -").
fn written_as_heading(rest: &str) -> bool {
    let rest = rest.trim_start();
    // A hyphen joined to the next word makes one word, not a heading: "e-consult" is no "E -"
    // of an ICE section (blind set 118).
    let joined = rest
        .strip_prefix('-')
        .and_then(|r| r.chars().next())
        .is_some_and(char::is_alphanumeric);
    rest.starts_with(':') || (rest.starts_with('-') && !joined)
}

fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | ';' | '!' | '\n')
}

/// A quoted earlier document or a pasted record entry: its heading ("EPU letter 2024:",
/// "[2024]"), whose words name a paper and are no finding, and for one of the past the stretch
/// it reaches, heading and all ("Breast clinic letter 2023 (2WW):" is a past 2WW too).
#[derive(Debug, Clone, Copy)]
struct Document {
    heading: (usize, usize),
    past: Option<(usize, usize)>,
}

/// The quoted documents of `text`: each heading (its pattern ends with its colon) that opens
/// its sentence or line, and what follows it. A quotation mark right
/// after the heading quotes the document to its closing mark (a mark between two letters is an
/// apostrophe: "Baker's cyst"), whatever sentences it holds; otherwise it reaches to the end of
/// its sentence.
fn documents(re: &Option<Regex>, text: &str, as_of: Option<Date>) -> Vec<Document> {
    let Some(re) = re else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut quotations = Quotations::new(text);
    for m in re.find_iter(text) {
        if !opens_sentence(text, m.start()) {
            continue;
        }
        let heading = (m.start(), m.end());
        if is_recent(&text[m.start()..m.end()], as_of) {
            out.push(Document {
                heading,
                past: None,
            });
            continue;
        }
        // The pattern holds the heading's colon or dash; past it, and the space or line break after it.
        let from = m.end() + (text[m.end()..].len() - text[m.end()..].trim_start().len());
        let said = quotations.closing(from).map(|end| (from, end));
        let said = said.unwrap_or_else(|| {
            let end = text[from..]
                .find(is_sentence_end)
                .map_or(text.len(), |i| from + i);
            (from, end)
        });
        out.push(Document {
            heading,
            past: Some((m.start(), said.1)),
        });
    }
    out
}

/// Finds where quotations close in one text. A quotation that does not close is remembered:
/// no later one of its kind closes either, so a text of many unclosed openings ("Pt: ‘...",
/// each curly opening never closed) is read once, not once for each opening.
struct Quotations<'t> {
    text: &'t str,
    /// For each closing mark (' " ’ ”), the earliest opening known to have no close after it.
    unclosed_from: [usize; 4],
}

impl<'t> Quotations<'t> {
    fn new(text: &'t str) -> Self {
        Quotations {
            text,
            unclosed_from: [usize::MAX; 4],
        }
    }

    /// The end of the quotation that opens at `from` (after its closing mark), if a quotation
    /// mark is there and closes. A mark between two letters is an apostrophe ("Baker's cyst"),
    /// not the close.
    fn closing(&mut self, from: usize) -> Option<usize> {
        let text = self.text;
        let q = text[from..].chars().next()?;
        let (close, kind) = match q {
            '\'' => ('\'', 0),
            '"' => ('"', 1),
            '‘' => ('’', 2),
            '“' => ('”', 3),
            _ => return None,
        };
        // (an opening after one that found no close finds none: the scan from it would see the
        // same marks, the opening mark before them being no letter either way)
        if from >= self.unclosed_from[kind] {
            return None;
        }
        let inner = from + q.len_utf8();
        let mut chars = text[inner..].char_indices().peekable();
        let mut prev_letter = false;
        while let Some((i, c)) = chars.next() {
            let next_letter = chars.peek().is_some_and(|(_, n)| n.is_alphabetic());
            if c == close && !(prev_letter && next_letter) {
                return Some(inner + i + c.len_utf8());
            }
            prev_letter = c.is_alphabetic();
        }
        self.unclosed_from[kind] = from;
        None
    }
}

/// An item of a numbered problem list that opens with a long-term condition: the condition's
/// span, and the item's, marker and all.
#[derive(Debug, Clone, Copy)]
struct ProblemItem {
    condition: (usize, usize),
    item: (usize, usize),
}

/// The most words an item may say after its condition and still be background: a treatment
/// and a result ("Asthma - Clenil 100 2 puffs bd, salbutamol prn"). A longer item says more
/// than the condition, and is read as written.
const PROBLEM_ITEM_MAX_WORDS: usize = 10;

/// The items of the numbered problem lists in `text` that open with a long-term condition of
/// `conditions`. A list is a run of markers numbered on from "1." or "1)" ("1. HTN - ramipril
/// 2. T2DM - metformin 3. OA knees."), written on one line or on several; a number out of turn
/// is no marker ("2. CKD 2. Hypertension review"). An item runs to the next marker or to the end
/// of its sentence, whichever comes first, so that the GP's next sentence is never part of it.
fn problem_items(conditions: &Option<Regex>, text: &str) -> Vec<ProblemItem> {
    static MARKER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:^|[\s:;,(])(\d{1,2})[.)] ")
            .unwrap_or_else(|e| panic!("problem-list markers: {e}"))
    });
    let Some(conditions) = conditions else {
        return Vec::new();
    };
    // Each marker: (number's start, marker's end, number).
    let mut lists: Vec<Vec<(usize, usize, u32)>> = Vec::new();
    // Every marker's start, in or out of a list: the last item of a list ends at the next one
    // (to the text's end, for every list of a long text with no full stop, was quadratic).
    let mut starts: Vec<usize> = Vec::new();
    for c in MARKER.captures_iter(text) {
        let (Some(all), Some(number)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let Ok(n) = number.as_str().parse::<u32>() else {
            continue;
        };
        let marker = (number.start(), all.end(), n);
        starts.push(number.start());
        match lists.last_mut() {
            _ if n == 1 => lists.push(vec![marker]),
            Some(list) if list.last().is_some_and(|m| m.2 + 1 == n) => list.push(marker),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for list in lists.iter().filter(|l| l.len() >= 2) {
        for (i, &(start, from, _)) in list.iter().enumerate() {
            let next = list.get(i + 1).map_or_else(
                || {
                    let k = starts.partition_point(|&s| s <= from);
                    starts.get(k).copied().unwrap_or(text.len())
                },
                |m| m.0,
            );
            let sentence = text[from..next]
                .char_indices()
                .find(|&(j, c)| {
                    matches!(c, ';' | '!' | '\n')
                        || (c == '.'
                            && text[from + j + 1..]
                                .chars()
                                .next()
                                .is_none_or(|n| n == ' ' || n == '\n'))
                })
                .map_or(next, |(j, _)| from + j);
            // (searched within the item only: from its start to the text's end for every item
            // was quadratic, 60 s for 900 kB of "1) wt loss 2) pain")
            let Some(m) = conditions.find_at(&text[..sentence], from) else {
                continue;
            };
            if m.start() != from
                || text[m.end()..sentence].split_whitespace().count() > PROBLEM_ITEM_MAX_WORDS
            {
                continue;
            }
            out.push(ProblemItem {
                condition: (m.start(), m.end()),
                item: (start, sentence),
            });
        }
    }
    out
}

/// What the cues of `not_this_request` reach in `text`: each back to the start of its sentence
/// or list item ("2) "), or, when nothing of its sentence comes before it, over the sentence
/// before as well.
fn elsewhere(re: &Option<Regex>, text: &str) -> Vec<(usize, usize)> {
    static ITEM: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:^|[\s(])\d{1,2}[.)] ").unwrap_or_else(|e| panic!("list items: {e}"))
    });
    let Some(re) = re else {
        return Vec::new();
    };
    let cues: Vec<regex::Match> = re.find_iter(text).collect();
    if cues.is_empty() {
        return Vec::new();
    }
    // Where sentences and list items open, found once: looking back from every cue was
    // quadratic on a long text without full stops (70 s for 900 kB of "lump (not for scan)").
    let sentence_starts: Vec<usize> = text
        .char_indices()
        .filter(|&(_, c)| is_sentence_end(c))
        .map(|(i, _)| i + 1)
        .collect();
    let items: Vec<(usize, usize)> = ITEM.find_iter(text).map(|m| (m.start(), m.end())).collect();
    let opening = |at: usize| {
        let k = sentence_starts.partition_point(|&s| s <= at);
        let sentence = if k == 0 { 0 } else { sentence_starts[k - 1] };
        let k = items.partition_point(|&(_, end)| end <= at);
        let item = match k.checked_sub(1).map(|k| items[k]) {
            Some((start, end)) if start >= sentence => end,
            _ => sentence,
        };
        sentence.max(item)
    };
    cues.into_iter()
        .map(|cue| {
            let mut from = opening(cue.start());
            if text[from..cue.start()].trim().is_empty() && from > 0 {
                from = opening(from - 1);
            }
            (from, cue.end())
        })
        .collect()
}

/// A patient's own message pasted into a request (see [`patient_messages`]).
#[derive(Debug, Clone, Copy)]
struct PatientMessage {
    /// The message, heading and all.
    span: (usize, usize),
    /// Whether a clinician's note follows it. Only then do its words add no finding of their
    /// own: a message that is all the request says ("e-consult: twisted my ankle, cant walk on
    /// it", blind set 144) is its clinical content.
    answered: bool,
}

/// The patient's own messages in `text`: each `open` heading that opens a line reaches to the
/// next `close` heading that opens a line or a sentence, or to the text's end; a message quoted
/// after its heading ("Pt message: '...'. Triage: ...") reaches to its closing mark. One pass
/// over the headings of each list.
fn patient_messages(
    open: &Option<Regex>,
    labels: &Option<Regex>,
    close: &Option<Regex>,
    text: &str,
) -> Vec<PatientMessage> {
    if open.is_none() && labels.is_none() {
        return Vec::new();
    }
    let opens_line = |at: usize| before_rule(text, at).is_none_or(|c| c == '\n');
    let closes: Vec<usize> = close.as_ref().map_or_else(Vec::new, |re| {
        re.find_iter(text)
            .map(|m| m.start())
            .filter(|&at| before_rule(text, at).is_none_or(|c| is_sentence_end(c) || c == '('))
            .collect()
    });
    // Headings and bare labels, in order; a label is known by its flag.
    let mut heads: Vec<(usize, usize, bool)> = Vec::new();
    for (re, label) in [(open, false), (labels, true)] {
        if let Some(re) = re {
            heads.extend(re.find_iter(text).map(|m| (m.start(), m.end(), label)));
        }
    }
    heads.sort_unstable();
    let mut out: Vec<PatientMessage> = Vec::new();
    let mut quotations = Quotations::new(text);
    for (start, heading_end, label) in heads {
        if out.last().is_some_and(|last| start < last.span.1) {
            continue;
        }
        if label {
            // a label opens a message only when a clinician's heading opens a later line
            if !opens_line(start) {
                continue;
            }
            let k = closes.partition_point(|&c| c < heading_end);
            let Some(&end) = closes[k..].iter().find(|&&c| opens_line(c)) else {
                continue;
            };
            out.push(PatientMessage {
                span: (start, end),
                answered: true,
            });
            continue;
        }
        // (a heading's pattern may end with the quotation's opening mark: "Pt: '...'")
        let heading = &text[start..heading_end];
        let from = match heading.chars().next_back() {
            Some(q @ ('\'' | '"' | '‘' | '“')) => heading_end - q.len_utf8(),
            _ => heading_end + (text[heading_end..].len() - text[heading_end..].trim_start().len()),
        };
        let end = match quotations.closing(from) {
            // a quoted message may open any sentence
            Some(end) if opens_sentence(text, start) => end,
            _ if !opens_line(start) => continue,
            _ => {
                let k = closes.partition_point(|&c| c < heading_end);
                closes.get(k).copied().unwrap_or(text.len())
            }
        };
        let answered = closes.last().is_some_and(|&c| c >= end);
        out.push(PatientMessage {
            span: (start, end),
            answered,
        });
    }
    out
}

/// The character before `at` once spaces and a rule drawn before a heading are passed over:
/// "--- Duty GP:", "=== GP note:", "** Patient message:" open their line (blind set 365).
fn before_rule(text: &str, at: usize) -> Option<char> {
    text[..at]
        .trim_end_matches([' ', '-', '=', '*', '#', '_', '~', '>', '—', '–'])
        .chars()
        .next_back()
}

/// Whether a cue ending at `end` is a form's label left blank: a colon, then nothing on its
/// line ("Q: ⏎", "DDX:" at the end), or a template's placeholder ("[free text]"). A blank
/// "Differential:" asks nothing.
fn is_empty_label(text: &str, end: usize) -> bool {
    let rest = text[end..].trim_start_matches(' ');
    // The cue's pattern may hold the colon ("ddx:") or not ("ddx").
    let rest = if text[..end].ends_with(':') {
        Some(rest)
    } else {
        rest.strip_prefix(':').map(|r| r.trim_start_matches(' '))
    };
    // A template's placeholder left in is blank too ("Question to be answered: [free text]").
    const PLACEHOLDERS: [&str; 5] = ["[free text]", "[text]", "[ ]", "[]", "__"];
    // So is a field answered that it does not apply, the answer ending its line or sentence
    // ("Ddx: N/A" in a practitioner's template, blind set 374).
    const NOT_APPLICABLE: [&str; 4] = ["n/a", "na", "not applicable", "nil"];
    let not_applicable = |r: &str| {
        NOT_APPLICABLE.iter().any(|a| {
            r.strip_prefix(a).is_some_and(|after| {
                after
                    .trim_start_matches(' ')
                    .chars()
                    .next()
                    .is_none_or(|c| matches!(c, '\n' | '.' | ';'))
            })
        })
    };
    rest.is_some_and(|r| {
        r.is_empty()
            || r.starts_with('\n')
            || PLACEHOLDERS.iter().any(|p| r.starts_with(p))
            || not_applicable(r)
    })
}

/// Whether `at` opens its text, sentence or line (or a parenthesis).
fn opens_sentence(text: &str, at: usize) -> bool {
    text[..at]
        .trim_end_matches(' ')
        .chars()
        .next_back()
        .is_none_or(|c| is_sentence_end(c) || c == '(')
}

/// The pasted record entries of `text` dated months before `as_of`: each heading that opens its
/// sentence, and what follows it up to the next entry's heading, or for the last entry to the
/// end of its sentence ("[2019] renal stone - pasted in error. Mum says ..." leaves the rest).
fn entries(re: &Option<Regex>, text: &str, as_of: Option<Date>) -> Vec<Document> {
    let Some(re) = re else {
        return Vec::new();
    };
    let headings: Vec<(usize, usize)> = re
        .find_iter(text)
        .filter(|m| opens_sentence(text, m.start()))
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut out = Vec::new();
    for (i, &(start, end)) in headings.iter().enumerate() {
        if is_recent(&text[start..end], as_of) {
            out.push(Document {
                heading: (start, end),
                past: None,
            });
            continue;
        }
        let to = headings.get(i + 1).map_or_else(
            || {
                text[end..]
                    .find(is_sentence_end)
                    .map_or(text.len(), |j| end + j)
            },
            |next| next.0,
        );
        out.push(Document {
            heading: (start, end),
            past: Some((start, to)),
        });
    }
    out
}

/// The most words an item of a list may have for one negation or one answer to reach it: "no
/// weight loss, fever or night sweats" negates three items; "no injury, pain worse at night for
/// three weeks" leaves the second piece, a sentence of its own, alone. The forward reach of a
/// negation, a list answered "no" and a negated list's pieces all share this bound.
const LIST_ITEM_WORDS: usize = 4;

/// Whether a comma-bounded piece after a negation is an item of its list: a few words, or two
/// such joined by "or" ("no weight loss, fever or history of cancer"). "And" is left out, as it
/// also opens a new thought ("and he has pain").
fn is_list_item(piece: &str) -> bool {
    piece
        .split(" or ")
        .flat_map(|item| item.split(" nor "))
        .all(|item| item.split_whitespace().count() <= LIST_ITEM_WORDS)
}

/// How long a quoted document stays the present episode: a letter of last month is what the
/// request acts on ("A&E discharge 13/06: GP to arrange Doppler"); one of last year is history.
const RECENT_DAYS: i64 = 92;

/// Whether the document heading `heading` carries a date within [`RECENT_DAYS`] before
/// `as_of` (or after it). A month counts from its last day, a year from its last day; a heading
/// without a date ("previous referral:") is not recent.
fn is_recent(heading: &str, as_of: Option<Date>) -> bool {
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:\b(\d{1,2})[/.])?\b(\d{1,2})[/.]((?:19|20)?\d\d)\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? ((?:19|20)\d\d)\b|\b((?:19|20)\d\d)\b")
            .unwrap_or_else(|e| panic!("document dates: {e}"))
    });
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let Some(as_of) = as_of else {
        return false;
    };
    let Some(c) = DATE.captures_iter(heading).last() else {
        return false;
    };
    let number = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i32>().ok());
    // A day and a month without a year ("28/05", which no month of 2005 can be): the last such
    // day on or before `as_of` (blind set 114: "discharge letter (Care of the Elderly, 28/05)").
    if let (None, Some(day), Some(month)) = (number(1), number(2), number(3)) {
        if day > 12 && (1..=12).contains(&month) {
            let on = |year: i32| {
                let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
                Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
            };
            let last = on(as_of.year())
                .filter(|d| *d <= as_of)
                .or_else(|| on(as_of.year() - 1));
            return last.is_some_and(|d| (as_of - d).whole_days() <= RECENT_DAYS);
        }
    }
    let full_year = |y: i32| if y < 100 { 2000 + y } else { y };
    let (year, month, day) = if let Some(year) = number(3) {
        (full_year(year), number(2), number(1))
    } else if let Some(year) = number(5) {
        let month = c
            .get(4)
            .and_then(|m| MONTHS.iter().position(|n| *n == m.as_str()))
            .and_then(|i| i32::try_from(i + 1).ok());
        (year, month, None)
    } else {
        (number(6).unwrap_or(0), None, None)
    };
    // The last day the date could mean.
    let last_day = match (month.and_then(|m| u8::try_from(m).ok()), day) {
        (Some(m), Some(d)) => time::Month::try_from(m)
            .ok()
            .and_then(|m| Date::from_calendar_date(year, m, u8::try_from(d).ok()?).ok()),
        (Some(m), None) => time::Month::try_from(m)
            .ok()
            .and_then(|m| Date::from_calendar_date(year, m, m.length(year)).ok()),
        _ => Date::from_calendar_date(year, time::Month::December, 31).ok(),
    };
    last_day.is_some_and(|d| (as_of - d).whole_days() <= RECENT_DAYS)
}

/// The answers of `negation_answers`, each after its separator: a colon, a dash (or an en
/// dash) or a question mark ("Previous cancer? No."), with a space either side or not. The
/// options a form printed between its question and the answer are part of the separator
/// ("Is this a 2WW referral? Yes/No: No", blind set 109).
fn answers(patterns: &[String]) -> Result<Option<Regex>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let alternatives: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
    Regex::new(&format!(
        // (a question mark then a dash: "symptoms changed? - no", blind set 336)
        r"(?i) ?[:\-–?] ?(?:[\-–] )?(?:\(?(?:yes|y) ?/ ?(?:no|n)\)?:? ?)?(?:{})\b",
        alternatives.join("|")
    ))
    .map(Some)
    .map_err(|e| format!("[context] negation_answers: {e}"))
}

/// The minus signs of a text that marks findings with signs: "+soft +mobile -tender", "-wt loss
/// -PR bleed -anaemia" (blind set 292). A sign is joined to the word after it and follows a
/// space; a text with one such minus only may be using it as a dash ("lump -growing"), so two
/// signs at least are needed, plus or minus.
fn minus_signs(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let signs: Vec<usize> = (0..bytes.len()).filter(|&i| is_sign_at(bytes, i)).collect();
    if signs.len() < 2 {
        return Vec::new();
    }
    signs
        .into_iter()
        .filter(|&i| bytes[i] == b'-')
        .map(|i| (i, i + 1))
        .collect()
}

/// The crosses of a checklist written with each cross before its item: "✗ wt loss ✗ fever ✗ ca
/// hx" (blind set 331). A cross is read after its item ("wt loss ✗ fever ✗", a negation after,
/// `context.toml`), which leaves the last item of such a list unread; a sentence that opens
/// with a cross is written the other way, so each of its crosses also negates the item after
/// it. The span takes the space before the cross, so that the cross no longer ends the clause
/// it opens (a cue's own clause end is part of the cue, [`Reader::prepare`]).
fn leading_crosses(text: &str) -> Vec<(usize, usize)> {
    const CROSSES: [char; 3] = ['✗', '✘', '❌'];
    let mut found = Vec::new();
    let mut sentence_start = 0;
    for (i, c) in text.char_indices() {
        // (a heading's colon and a question mark open the next item's sentence too)
        if is_sentence_end(c) || matches!(c, ':' | '?') {
            sentence_start = i + 1;
        } else if CROSSES.contains(&c) && text[sentence_start..].trim_start().starts_with(CROSSES) {
            let start = if text[..i].ends_with(' ') { i - 1 } else { i };
            found.push((start, i + c.len_utf8()));
        }
    }
    found
}

/// Whether `bytes[i]` is a plus or minus sign: after a space, joined to the letter after it.
fn is_sign_at(bytes: &[u8], i: usize) -> bool {
    matches!(bytes[i], b'+' | b'-')
        && i > 0
        && bytes[i - 1] == b' '
        && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
}

/// Where the words a sign marks end: at the next sign, or at a mark that ends a piece; `to` at
/// the latest (a bound: a long text without marks was read to its end for every mention).
fn sign_reach(text: &str, from: usize, to: usize) -> usize {
    let bytes = text.as_bytes();
    let to = to.min(bytes.len());
    (from..to)
        .find(|&i| {
            matches!(
                bytes[i],
                b',' | b'.' | b';' | b':' | b'?' | b'!' | b'\n' | b'(' | b')'
            ) || is_sign_at(bytes, i)
        })
        .unwrap_or(to)
}

/// The answers of `re` in `text` that end their piece: what follows is the end of the text, a
/// punctuation mark, a new line or the next item of a numbered list ("Lump: no change in size"
/// answers nothing).
fn answer_spans(re: &Option<Regex>, text: &str) -> Vec<(usize, usize)> {
    let Some(re) = re else {
        return Vec::new();
    };
    re.find_iter(text)
        .filter(|m| {
            text[m.end()..]
                .trim_start_matches(' ')
                .chars()
                .next()
                // or a parenthesis that explains the answer ("criteria not met (no hoarseness)")
                // or a colon before the reasons for it ("DVT? - No: Wells 0", blind set 281)
                .is_none_or(|c| matches!(c, ',' | '.' | ';' | ':' | '!' | '\n' | '/' | ')' | '('))
                // or a spaced dash before what the answer goes on to say ("Hard? No - soft",
                // blind set 109)
                // (or a template's double dash: "Steroid use: No -- Duration: 3 wks")
                || FIELD_DASHES.iter().any(|d| text[m.end()..].starts_with(d))
                // or the next item of a numbered checklist on the same line ("1) wt loss - no
                // 2) vomiting - no", blind set 336)
                || starts_numbered_item(text[m.end()..].trim_start_matches(' '))
        })
        .map(|m| (m.start(), m.end()))
        .collect()
}

/// Whether `rest` opens an item of a numbered list: "2) ...", "3. ...".
fn starts_numbered_item(rest: &str) -> bool {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (1..=2).contains(&digits)
        && (rest[digits..].starts_with(')') || rest[digits..].starts_with(". "))
}

impl Reader {
    pub fn compile(def: &ContextDef) -> Result<Self, String> {
        // A double dash between spaces parts a template's title from its fields ("EMIS Back pain
        // template -- Age <20 or >50: No / ...", blind set 177), as a full stop would.
        // A checklist's tick or cross ends its item as a full stop would: "Knee pain ✓ swelling ✗
        // locking ✗" leaves the pain alone (blind set 274); what the cross says is read by the
        // negation cues (rules/terminology/context.toml).
        let mut ends = vec![r"[.;:!\n✓✔✗✘❌]|\s-{2,}\s".to_string()];
        if !def.clause_ends.is_empty() {
            ends.push(format!(
                "{ASCII_BOUNDARY}(?:{}){ASCII_BOUNDARY}",
                def.clause_ends
                    .iter()
                    .map(|p| format!("(?:{p})"))
                    .collect::<Vec<_>>()
                    .join("|")
            ));
        }
        Ok(Reader {
            negation_before: optional("negation_before", &def.negation_before)?,
            negation_after: optional("negation_after", &def.negation_after)?,
            negation_answer: answers(&def.negation_answers)?,
            negation_prefix: optional("negation_prefixes", &def.negation_prefixes)?,
            negation_headings: optional("negation_headings", &def.negation_headings)?,
            corrections: optional("corrections", &def.corrections)?,
            pseudo_negation: optional("pseudo_negation", &def.pseudo_negation)?,
            question: optional("question_before", &def.question_before)?,
            pseudo_question: optional("pseudo_question", &def.pseudo_question)?,
            historical_before: optional("historical_before", &def.historical_before)?,
            historical_after: optional("historical_after", &def.historical_after)?,
            pseudo_historical: optional("pseudo_historical", &def.pseudo_historical)?,
            historical_headings: optional("historical_headings", &def.historical_headings)?,
            document_headings: optional("document_headings", &def.document_headings)?,
            entry_headings: optional("entry_headings", &def.entry_headings)?,
            background_headings: optional("background_headings", &def.background_headings)?,
            background_before: optional("background_before", &def.background_before)?,
            background_end: optional("background_ends", &def.background_ends)?,
            long_term_conditions: optional("long_term_conditions", &def.long_term_conditions)?,
            not_this_request: optional("not_this_request", &def.not_this_request)?,
            patient_messages: optional("patient_messages", &def.patient_messages)?,
            patient_labels: optional("patient_labels", &def.patient_labels)?,
            clinician_headings: optional("clinician_headings", &def.clinician_headings)?,
            hypothetical_before: optional("hypothetical_before", &def.hypothetical_before)?,
            hypothetical_after: optional("hypothetical_after", &def.hypothetical_after)?,
            pseudo_hypothetical: optional("pseudo_hypothetical", &def.pseudo_hypothetical)?,
            hypothetical_headings: optional("hypothetical_headings", &def.hypothetical_headings)?,
            family_before: optional("family_before", &def.family_before)?,
            family_after: optional("family_after", &def.family_after)?,
            family_headings: optional("family_headings", &def.family_headings)?,
            pseudo_family: optional("pseudo_family", &def.pseudo_family)?,
            examination: optional("examination_cues", &def.examination_cues)?,
            clause_end: Regex::new(&format!("(?i){}", ends.join("|")))
                .map_err(|e| format!("[context] clause_ends: {e}"))?,
        })
    }

    /// Whether the text asks a clinical question on its own terms ("?gallstones", "rule out",
    /// "differential"), whether or not the thing asked about is a known concept.
    pub fn has_question_cue(&self, text: &str) -> bool {
        if self.question.is_none() {
            return false;
        }
        !self.question_spans(text).is_empty()
    }

    /// The question cues of `text`, without those inside a pseudo-question ("?cause").
    fn question_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let cues = spans(&self.question, text, 0, text.len());
        if cues.is_empty() {
            return cues;
        }
        let pseudo = spans(&self.pseudo_question, text, 0, text.len());
        cues.into_iter()
            .filter(|c| !overlaps(*c, &pseudo) && !is_empty_label(text, c.1))
            .collect()
    }

    /// Finds every trigger of `text` once, for reading many mentions of it: each mention then
    /// looks its triggers up near it (scanning the text around every mention with every trigger
    /// list was too slow on long texts).
    ///
    /// `as_of` is the date the request was made: a quoted document dated within a few months
    /// of it is the present episode, an older one is the past (without a date, every dated
    /// document is past).
    pub fn prepare<'a>(&'a self, text: &'a str, as_of: Option<Date>) -> Prepared<'a> {
        let all = |re: &Option<Regex>| Spans(spans(re, text, 0, text.len()));
        let patient_messages = patient_messages(
            &self.patient_messages,
            &self.patient_labels,
            &self.clinician_headings,
            text,
        );
        // The clinician's note after a patient's message corrects it as a correction cue does:
        // "Pt: 'I'm scared it's a DVT'. Clinician: ... DVT excluded" (blind set 347).
        let corrections = {
            let mut cues = spans(&self.corrections, text, 0, text.len());
            let answered = patient_messages.iter().filter(|m| m.answered);
            cues.extend(answered.map(|m| (m.span.1, m.span.1)));
            cues.sort_unstable();
            Spans(cues)
        };
        let mut prepared = Prepared {
            text,
            negation_before: Spans::with(
                spans(&self.negation_before, text, 0, text.len()),
                [minus_signs(text), leading_crosses(text)].concat(),
            ),
            negation_after: all(&self.negation_after),
            negation_answer: Spans(answer_spans(&self.negation_answer, text)),
            negation_prefix: all(&self.negation_prefix),
            pseudo_negation: all(&self.pseudo_negation),
            negation_headings: all(&self.negation_headings),
            corrections,
            question: Spans(self.question_spans(text)),
            pseudo_question: all(&self.pseudo_question),
            historical_before: all(&self.historical_before),
            historical_after: all(&self.historical_after),
            pseudo_historical: all(&self.pseudo_historical),
            historical_headings: all(&self.historical_headings),
            documents: {
                let mut d = documents(&self.document_headings, text, as_of);
                d.extend(entries(&self.entry_headings, text, as_of));
                d
            },
            background_headings: all(&self.background_headings),
            background_before: all(&self.background_before),
            background_end: all(&self.background_end),
            problem_items: problem_items(&self.long_term_conditions, text),
            elsewhere: elsewhere(&self.not_this_request, text),
            patient_messages,
            hypothetical_before: {
                let pseudo = spans(&self.pseudo_hypothetical, text, 0, text.len());
                Spans(
                    spans(&self.hypothetical_before, text, 0, text.len())
                        .into_iter()
                        .filter(|s| !overlaps(*s, &pseudo))
                        .collect(),
                )
            },
            hypothetical_after: all(&self.hypothetical_after),
            hypothetical_headings: all(&self.hypothetical_headings),
            family_before: {
                let pseudo = spans(&self.pseudo_family, text, 0, text.len());
                Spans(
                    spans(&self.family_before, text, 0, text.len())
                        .into_iter()
                        .filter(|s| !overlaps(*s, &pseudo))
                        .collect(),
                )
            },
            family_after: all(&self.family_after),
            family_headings: all(&self.family_headings),
            examination: all(&self.examination),
            clause_end: Spans::with(
                self.clause_end
                    .find_iter(text)
                    .map(|m| (m.start(), m.end()))
                    .collect(),
                parting_slashes(text),
            ),
        };
        // A clause-ending word inside a cue's own words is part of the cue, not a boundary:
        // "ringing gastro today re 2ww" (blind set 127) is one hypothetical cue, 'today' and all;
        // so is a cue that ends with one ("not currently pregnant", blind set 161).
        let cues = [
            &prepared.negation_before,
            &prepared.historical_before,
            &prepared.hypothetical_before,
            &prepared.family_before,
        ];
        prepared.clause_end.0.retain(|end| {
            !cues
                .iter()
                .any(|c| c.0.iter().any(|cue| cue.0 < end.0 && end.1 <= cue.1))
        });
        prepared
    }

    /// Finds the mentions of `pattern` in the normalised `text`.
    pub fn mentions(&self, pattern: &Regex, text: &str, as_of: Option<Date>) -> Vec<Mention> {
        // The triggers are only looked for when there is something to read.
        if !pattern.is_match(text) {
            return Vec::new();
        }
        self.prepare(text, as_of).mentions(pattern)
    }
}

/// Trigger matches of one list in a text, sorted by start.
#[derive(Debug, Clone, Default)]
struct Spans(Vec<(usize, usize)>);

impl Spans {
    /// The matches that lie within `from..to`. The matches of one list never overlap (they are
    /// one regex's `find_iter`), so their ends are sorted too and the answer is one slice: no
    /// allocation for each of the many mentions a text is read for.
    /// `found`'s spans and the `extra` ones the engine finds itself (signs, slashes), which
    /// take the place of any they overlap; in order.
    fn with(mut found: Vec<(usize, usize)>, extra: Vec<(usize, usize)>) -> Self {
        if !extra.is_empty() {
            found.retain(|s| !overlaps(*s, &extra));
            found.extend(extra);
            found.sort_unstable();
        }
        Spans(found)
    }

    /// The spans that start in `from..end` and end past `end`.
    fn reaching_past(&self, from: usize, end: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let lo = self.0.partition_point(|s| s.0 < from);
        let hi = self.0.partition_point(|s| s.0 < end);
        self.0[lo..hi.max(lo)]
            .iter()
            .copied()
            .filter(move |s| s.1 > end)
    }

    fn within(&self, from: usize, to: usize) -> &[(usize, usize)] {
        if from >= to {
            return &[];
        }
        let lo = self.0.partition_point(|s| s.0 < from);
        let hi = self.0.partition_point(|s| s.0 < to && s.1 <= to);
        &self.0[lo..hi.max(lo)]
    }
}

/// A text with its triggers found (see [`Reader::prepare`]).
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    text: &'a str,
    negation_before: Spans,
    negation_after: Spans,
    negation_answer: Spans,
    negation_prefix: Spans,
    pseudo_negation: Spans,
    negation_headings: Spans,
    corrections: Spans,
    question: Spans,
    pseudo_question: Spans,
    historical_before: Spans,
    historical_after: Spans,
    pseudo_historical: Spans,
    historical_headings: Spans,
    /// Quoted earlier documents and pasted record entries of the past: each heading, and the
    /// stretch it reaches.
    documents: Vec<Document>,
    background_headings: Spans,
    background_before: Spans,
    background_end: Spans,
    /// Items of a numbered problem list that name a long-term condition.
    problem_items: Vec<ProblemItem>,
    /// What the `not_this_request` cues reach, cue and all.
    elsewhere: Vec<(usize, usize)>,
    /// The patient's own messages, in order (see [`patient_messages`]).
    patient_messages: Vec<PatientMessage>,
    hypothetical_before: Spans,
    hypothetical_after: Spans,
    hypothetical_headings: Spans,
    family_before: Spans,
    family_after: Spans,
    family_headings: Spans,
    examination: Spans,
    clause_end: Spans,
}

impl Prepared<'_> {
    /// Whether the negation cue at `cue` is the last word of a heading's answer ("Wt loss - no"):
    /// such a cue negates back only. A cue that opens a longer answer ("Examination: no lump
    /// felt") still negates what follows it.
    fn is_answer(&self, cue: (usize, usize)) -> bool {
        // The answers of one regex do not overlap, so their ends are sorted too: one binary
        // search (a scan of every answer for every cue was quadratic on a long numbered
        // checklist, 60 s for 900 kB of "1) wt loss - no 2) pain - yes", once an answer could
        // end at the next item).
        let answers = &self.negation_answer.0;
        let i = answers.partition_point(|a| a.1 < cue.1);
        answers.get(i).is_some_and(|a| a.0 <= cue.0 && a.1 == cue.1)
    }

    /// Whether the negation cue at `cue` is a prefix of the next word: joined to it
    /// ("non-tender") or a word of `negation_prefixes` written apart ("non tender, 6 cm
    /// across"). A prefix negates that word only.
    fn is_prefix(&self, cue: (usize, usize)) -> bool {
        let rest = &self.text[cue.1..];
        rest.starts_with('-')
            || (rest.starts_with(' ') && self.negation_prefix.0.binary_search(&cue).is_ok())
    }

    /// Whether the negation cue at `cue` is a minus sign (see [`minus_signs`]): it negates the
    /// words it marks, up to the next sign or mark.
    fn is_sign(&self, cue: (usize, usize)) -> bool {
        cue.1 == cue.0 + 1 && self.text.as_bytes()[cue.0] == b'-'
    }

    /// The spans of every trigger (negation, question, history, ...): words that say how
    /// something is meant, not what the patient has. A pseudo-history cue is not one of them:
    /// it only stops a history cue it overlaps, and it may reach over a whole sentence ("2WW lung
    /// referral done today - haemoptysis x2"), whose words are read as written.
    pub fn trigger_spans(&self) -> Vec<(usize, usize)> {
        [
            &self.negation_before,
            &self.negation_after,
            &self.negation_answer,
            &self.pseudo_negation,
            &self.negation_headings,
            &self.corrections,
            &self.question,
            &self.pseudo_question,
            &self.historical_before,
            &self.historical_after,
            &self.historical_headings,
            &self.background_headings,
            &self.background_before,
            &self.hypothetical_before,
            &self.hypothetical_after,
            &self.hypothetical_headings,
            &self.family_before,
            &self.family_after,
            &self.family_headings,
        ]
        .into_iter()
        .flat_map(|s| s.0.iter().copied())
        .chain(self.documents.iter().map(|d| d.heading))
        .collect()
    }

    /// The stretches of text a negation reaches: what they say is absent, so their words are
    /// no finding of the patient's (read or not, "no haematemesis or melaena" is no other
    /// symptom). A cue before reaches as it does for a mention (`negated_before`): to the end
    /// of its clause, over a comma only into short list items, not past a question, and a
    /// joined prefix ("non-") only over its own word. A cue after reaches back over its
    /// comma-bounded piece, at most a few words ("haematemesis excluded").
    pub fn negated_spans(&self) -> Vec<(usize, usize)> {
        let text = self.text;
        let pseudo = &self.pseudo_negation.0;
        let mut out = Vec::new();
        for &cue in &self.negation_before.0 {
            if overlaps(cue, pseudo) || self.is_answer(cue) {
                continue;
            }
            let from = cue.1;
            if self.is_sign(cue) {
                out.push((from, sign_reach(text, from, after(text, from))));
                continue;
            }
            if self.is_prefix(cue) {
                let word_end = text[from + 1..]
                    .find(|c: char| !c.is_alphanumeric())
                    .map_or(text.len(), |i| from + 1 + i);
                out.push((from, word_end));
                continue;
            }
            let to = after(text, from);
            let to = text[from..to].find(HEADING_DASH).map_or(to, |i| from + i);
            let clause_end = self.clause_end.within(from, to).first().map_or(to, |c| c.0);
            let question = self.question.within(from, to).first().map_or(to, |q| q.0);
            let stop = clause_end.min(question);
            // The first piece, then list items of a few words each (as a mention in them is
            // read: "no vomiting, rectal bleeding or urinary symptoms", blind set 351).
            let mut end = from;
            for (i, piece) in text[from..stop].split(',').enumerate() {
                if i > 0 && !is_list_item(piece) {
                    break;
                }
                end += piece.len() + usize::from(i > 0);
            }
            out.push((from, end.min(stop)));
        }
        for &cue in &self.negation_after.0 {
            if overlaps(cue, pseudo) {
                continue;
            }
            let from = before(text, cue.0);
            let start = piece_before(text, cue.0).max(
                text[from..cue.0]
                    .rfind(HEADING_DASH)
                    .map_or(from, |i| from + i + HEADING_DASH.len()),
            );
            out.push((start, cue.0));
        }
        // An answer reaches back over its piece: "bladder/bowel sx - nil".
        for &answer in &self.negation_answer.0 {
            out.push((piece_before(text, answer.0), answer.0));
        }
        out
    }

    /// The stretches of text said of the past, of what may happen, or of someone else: what
    /// the history, hypothesis and family-history cues and headings reach, as [`Self::read`]
    /// gives them to a mention. Their words are no present finding of the patient's, read or
    /// not: "PMH: IBS, anxiety" beside abdominal pain leaves the pain alone, and a safety-net
    /// ("if jaundice or weight loss, re-refer") adds no symptom.
    pub fn context_spans(&self) -> Vec<(usize, usize)> {
        let text = self.text;
        let pseudo = &self.pseudo_historical.0;
        let mut out = Vec::new();
        // A cue before reaches forward over its comma-bounded piece.
        let historical = self
            .historical_before
            .0
            .iter()
            .filter(|&&s| !overlaps(s, pseudo));
        for &cue in historical.chain(&self.family_before.0) {
            out.push((cue.1, self.piece_end(cue.1)));
        }
        // A hypothesis, or a list of known conditions, reaches over short list items; a list
        // of known conditions stops where it reports a change or a complaint.
        for &cue in &self.hypothetical_before.0 {
            out.push((cue.1, self.list_reach(cue.1)));
        }
        for &cue in &self.background_before.0 {
            let reach = self.list_reach(cue.1);
            let end = self
                .background_end
                .within(cue.1, reach)
                .first()
                .map_or(reach, |e| {
                    self.text[cue.1..e.0].rfind(',').map_or(e.0, |i| cue.1 + i)
                });
            out.push((cue.1, end));
        }
        // A cue after reaches back over its piece, a few words at most ("cyst removed 2010").
        for &cue in self
            .historical_after
            .0
            .iter()
            .filter(|&&s| !overlaps(s, pseudo))
        {
            let start = piece_before(text, cue.0);
            // Inside a parenthesis, only the word it is attached to.
            let start = match open_parenthesis(text, start, cue.0) {
                Some(open) => text[start..open]
                    .trim_end()
                    .rfind(' ')
                    .map_or(start, |i| start + i + 1),
                None => start,
            };
            out.push((start, cue.0));
            // A parenthesis right after the cue explains the dated term: it is past too.
            let rest = &text[cue.1..];
            if rest.trim_start().starts_with('(') {
                let open = cue.1 + (rest.len() - rest.trim_start().len());
                let to = after(text, open);
                let close = text[open..to].find(')').map_or(to, |i| open + i);
                out.push((open, close));
            }
        }
        // A heading written as one ("PMH:", "FH -", "Background:") reaches to the end of its
        // sentence or to the next heading ("PMH: HTN, T2DM Meds: ..."). A background heading's
        // list runs on over semicolons ("Problem list: Asthma; Migraine").
        let background = self.background_headings.0.iter().map(|&h| (h, true));
        for (heading, over_semicolons) in self
            .historical_headings
            .0
            .iter()
            .chain(&self.family_headings.0)
            .chain(&self.hypothetical_headings.0)
            .chain(&self.negation_headings.0)
            .map(|&h| (h, false))
            .chain(background)
        {
            if !is_heading_word(text, heading) {
                continue;
            }
            let rest = &text[heading.1..];
            if !written_as_heading(rest) {
                continue;
            }
            let from = heading.1 + (rest.len() - rest.trim_start().len()) + 1;
            let to = after(text, from);
            let end = text[from..to]
                .find(|c: char| (is_sentence_end(c) && !(over_semicolons && c == ';')) || c == ':')
                .map_or(to, |i| from + i);
            out.push((from, end));
        }
        out.extend(self.documents.iter().filter_map(|d| d.past));
        out.extend(self.problem_items.iter().map(|p| p.item));
        out.extend(self.elsewhere.iter().copied());
        out
    }

    /// The patient's messages a clinician's note answers: their words are the patient's report
    /// when the note finds something of its own (see the reader's `text_reasons`).
    pub fn answered_message_spans(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.patient_messages
            .iter()
            .filter(|m| m.answered)
            .map(|m| m.span)
    }

    /// Whether the text asks a clinical question on its own terms ("?gallstones", "rule out"),
    /// outside what a quoted document of the past asked ("Gastro letter 2024: 'IBS likely'").
    pub fn has_question_cue(&self) -> bool {
        self.question
            .0
            .iter()
            // (a patient's own "do I need a scan?" is not the clinician's question)
            .any(|&(start, end)| !self.in_document(end) && !self.in_patients_message(start))
    }

    /// Whether the mention ending at `end` is in a quoted document or record entry of the past.
    /// Its end decides: a mention may take in the mark before it ("] visible haematuria" inside
    /// an entry, ".' pain" after a quotation's end).
    fn in_document(&self, end: usize) -> bool {
        self.documents
            .iter()
            .filter_map(|d| d.past)
            .any(|past| past.0 < end && end <= past.1)
    }

    /// Whether the mention `start..end` is inside a parenthesis written right after a dated
    /// term, which it explains: "Total thyroidectomy 2015 (benign multinodular goitre)".
    fn in_dated_parenthesis(&self, from: usize, start: usize, end: usize) -> bool {
        // Only a mention that closes inside it: "(L leg), now new swelling ..." runs out of it.
        !self.text[start..end].contains(')')
            && open_parenthesis(self.text, from, start)
                .is_some_and(|open| self.dated_before(from, open) || self.opens_dated(open, start))
    }

    /// Whether the parenthesis opening at `open` starts with a cue of the past, before the
    /// mention at `start`: "serial growth scans with last baby (2022, SGA)" (blind set 378).
    fn opens_dated(&self, open: usize, start: usize) -> bool {
        self.historical_after
            .within(open, start)
            .first()
            // (a cue may take in the parenthesis itself: it then opens nothing inside it)
            .is_some_and(|c| {
                self.text
                    .get(open + 1..c.0)
                    .is_some_and(|s| s.trim().is_empty())
            })
    }

    /// Whether the mention is inside a parenthesis written about a relative's condition: "Brother
    /// had bladder cancer (presented with blood in urine)" tells how the brother's cancer showed
    /// (blind set 135), though "presented with" ends a clause of its own.
    fn in_family_parenthesis(&self, from: usize, start: usize, end: usize) -> bool {
        !self.text[start..end].contains(')')
            && open_parenthesis(self.text, from, start).is_some_and(|open| {
                let (_, piece_start) = self.clause_and_piece_start(from, open);
                !self.family_before.within(piece_start, open).is_empty()
            })
    }

    /// Where the clause and the comma-bounded piece that reach `at` start, looking back no
    /// further than `from`.
    fn clause_and_piece_start(&self, from: usize, at: usize) -> (usize, usize) {
        let clause_start = self
            .clause_end
            .within(from, at)
            .last()
            .map_or(from, |c| c.1);
        let piece_start = self.text[clause_start..at]
            .rfind(',')
            .map_or(clause_start, |i| clause_start + i + 1);
        (clause_start, piece_start)
    }

    /// Whether a `historical_after` cue ends right before `open` (a year, "removed").
    fn dated_before(&self, from: usize, open: usize) -> bool {
        self.historical_after
            .within(from, open)
            .last()
            .is_some_and(|c| self.text[c.1..open].trim().is_empty())
    }

    /// How far a hypothesis starting at `from` reaches: its piece, then on over commas while
    /// the pieces are short list items (six words at most), to the end of its clause.
    fn list_reach(&self, from: usize) -> usize {
        let mut end = self.piece_end(from);
        while self.text[end..].starts_with(',') {
            let next = self.piece_end(end + 1);
            if next <= end + 1 || self.text[end + 1..next].split_whitespace().count() > 6 {
                break;
            }
            end = next;
        }
        end
    }

    /// The end of the comma-bounded piece that starts at `from`: the next comma, clause mark
    /// or clause-ending word, within reach.
    fn piece_end(&self, from: usize) -> usize {
        let to = after(self.text, from);
        let mark = self.text[from..to]
            .find([',', '.', ';', ':', '!', '\n'])
            .map_or(to, |i| from + i);
        let word = self.clause_end.within(from, to).first().map_or(to, |c| c.0);
        mark.min(word)
    }

    /// Whether the negated mention `m` was found absent on examination: an examination cue
    /// ("O/E", "palpable") earlier in its sentence or inside the mention ("no palpable neck
    /// mass", "O/E: no effusion").
    pub fn examined(&self, m: &Mention) -> bool {
        let from = sentence_start(self.text, m.start);
        !self.examination.within(from, m.end).is_empty()
    }

    /// Whether the heading ending at `end` is answered "no" after its separator, within a few
    /// words and the same piece ("Haematuria: none"; "bladder/bowel sx - nil").
    fn answered_no(&self, end: usize) -> bool {
        let text = self.text;
        self.negation_answer
            .within(end, text.len())
            .first()
            .is_some_and(|a| {
                a.0 <= end + AFTER_REACH
                    && !text[end..a.0].contains([',', '.', ';', ':', '!', '?', '\n'])
                    // a spaced dash opens another field: "Back pain template -- Age <20 or >50:
                    // No", "calf swelling - DVT: no" (blind set 177)
                    && !FIELD_DASHES.iter().any(|d| text[end..a.0].contains(d))
            })
    }

    /// Whether the mention is an item of a list of short items that a form asks about together,
    /// answered "no" at the list's end ("Weight loss, blood in poo, being sick, yellow skin? No",
    /// blind set 251): the answer is said of every item, not only of the last. The list opens its
    /// sentence (or follows "any"); each item is a few words with no number and no negation of
    /// its own, so that "Knee pain 3 months, swelling: no" and "Knee pain, no injury, locking: no"
    /// keep the pain.
    fn list_answered_no(&self, sentence_start: usize, end: usize) -> bool {
        let text = self.text;
        let opening = &text[sentence_start..end];
        let list_start = sentence_start + (opening.len() - opening.trim_start().len());
        let list_start = if text[list_start..end].starts_with("any ") {
            list_start + "any ".len()
        } else {
            list_start
        };
        let Some(&(answer, _)) = self.negation_answer.within(end, text.len()).first() else {
            return false;
        };
        let list = &text[list_start..answer];
        if answer > list_start + LIST_REACH
            || !list.contains(',')
            || list.contains(['.', ';', ':', '!', '?', '\n', '('])
            || FIELD_DASHES.iter().any(|d| list.contains(d))
            || !self.negation_before.within(list_start, answer).is_empty()
        {
            return false;
        }
        // ("skin changes or nipple problems" is two items)
        list.split(',')
            .flat_map(|item| item.split(" or "))
            .flat_map(|item| item.split(" and "))
            .all(|item| {
                let words = item.split_whitespace().count();
                (1..=LIST_ITEM_WORDS).contains(&words)
                    && !item.contains(|c: char| c.is_ascii_digit())
            })
    }

    /// Whether the mention `start..end` is what a yes/no question asks something of, not what
    /// it asks about: "Is the lump bigger than a golf ball? No" says the lump is not bigger,
    /// not that there is no lump (blind set 118). The question opens on the mention, after an
    /// asking verb and its article, and goes on past it.
    fn asked_of(&self, sentence_start: usize, start: usize, end: usize) -> bool {
        static OPENING: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r"^(?:is|are|was|were|has|have|does|did) (?:the|your|this|that|her|his|their|my) (?:(?:left|right|l|r|lt|rt) )?$",
            )
            .unwrap_or_else(|e| panic!("asked of: {e}"))
        });
        let rest = &self.text[end..];
        OPENING.is_match(self.text[sentence_start..start].trim_start())
            && rest.starts_with(' ')
            && rest[1..].starts_with(|c: char| c.is_alphabetic())
    }

    /// The mentions of `pattern`.
    pub fn mentions(&self, pattern: &Regex) -> Vec<Mention> {
        let mut found: Vec<Mention> = pattern
            .find_iter(self.text)
            .filter(|m| !m.as_str().trim().is_empty())
            .map(|m| self.read(m.start(), m.end()))
            .collect();
        // A question answered at once, after a dash, a colon or its own question mark: "?goitre -
        // no goitre or nodes palpable" (blind sets 159, 161), a form's "Lump? No lump felt by pt
        // or on exam" (blind set 224) asks nothing any more.
        for i in 1..found.len() {
            let (asked, answer) = (found[i - 1], found[i]);
            // (the answer may read as asked too: the question's cue reaches over the dash). A
            // form's question mark followed by its answer is no question cue, so the mark itself
            // says it was asked.
            let between = &self.text[asked.end..answer.start];
            if (asked.questioned || between.trim_start().starts_with('?'))
                && !asked.negated
                && answer.negated
                && answered_at_once(between)
            {
                found[i - 1].negated = true;
            }
        }
        // A question the text answers no further on, in the same words: "?DVT vs cellulitis.
        // F2F addendum: DVT not suspected" (blind set 290), a trainer's "Not growing" after a
        // registrar's "growing?" (blind set 266). Only a plain present negation answers it ("no
        // previous DVT" or "FH: no DVT" says nothing of the DVT asked about), and only in the
        // words asked: a concept's other words are other things ("?prepatellar bursitis ...
        // No calf swelling" are both swellings that are not lumps).
        // (From the end, keeping the answers' words seen so far: a long text of questions was
        // quadratic when each question looked through every later mention.)
        let text = self.text;
        let words = |x: &Mention| text[x.start..x.end].trim_matches(|c: char| !c.is_alphanumeric());
        let mut answers: HashSet<&str> = HashSet::new();
        for x in found.iter_mut().rev() {
            if x.questioned && !x.negated && answers.contains(words(x)) {
                x.negated = true;
            } else if x.negated && !x.questioned && !x.historical && !x.family && !x.hypothetical {
                answers.insert(words(x));
            }
        }
        // A correction: after a cue that corrects what came before ("Discussed - amended:", "on
        // direct questioning"), a plain present negation of the concept, in any of its words,
        // replaces every mention of it before the cue: a symptom checker's "saddle anaesthesia -
        // YES" under the GP's "on direct questioning no saddle numbness" (blind set 326), a
        // registrar's "can't exclude a DVT" under the supervisor's "amended: DVT excluded"
        // (blind set 329). Without a cue a later negation is not read so ("breathless on
        // exertion ... not breathless at rest" states both).
        // (with the ends of the patient's messages a clinician's note answers: see `prepare`)
        let corrections = &self.corrections.0;
        if !corrections.is_empty() {
            // (a negation of a question counts: "ignore '?DVT'", blind set 332)
            let plain = |x: &Mention| x.negated && !x.historical && !x.family && !x.hypothetical;
            let mut latest_negation: Option<usize> = None;
            for x in found.iter_mut().rev() {
                if let Some(negation) = latest_negation {
                    let next_cue = corrections.partition_point(|c| c.0 < x.end);
                    if !x.negated && corrections.get(next_cue).is_some_and(|c| c.1 <= negation) {
                        x.negated = true;
                        continue;
                    }
                }
                if latest_negation.is_none() && plain(x) {
                    latest_negation = Some(x.start);
                }
            }
        }
        found
    }

    /// Reads the context of the mention `text[start..end]`.
    pub fn read(&self, start: usize, end: usize) -> Mention {
        let text = self.text;
        // A pattern may take in the mark before its words ("(?:^|[.;:] )pain"): the mention is
        // read from its first word, in its own sentence ("No swelling. Pain only.": the pain is
        // not negated, blind set 365).
        let start = text[start..end]
            .find(|c: char| c.is_alphanumeric())
            .map_or(start, |i| start + i);
        let from = before(text, start);
        let to = after(text, end);
        let sentence_start = sentence_start(text, start);
        // The clause and the comma-bounded piece the mention is in.
        let (clause_start, piece_start) = self.clause_and_piece_start(from, start);
        // A parenthesis right after the mention is part of it, commas and all: "Cosmetic breast
        // implants (Turkey, 2019) - no problems with them" (blind set 117).
        let piece_end = {
            let from = parenthesis_after(text, end, to).unwrap_or(end);
            let comma = text[from..to]
                .find([',', '.', ';', ':', '!', '\n'])
                .map_or(to, |i| from + i);
            let word = self.clause_end.within(from, to).first().map_or(to, |c| c.0);
            comma.min(word)
        };
        // A cue after a spaced dash answers the next heading, not the mention before it.
        let heading_end = text[end..piece_end]
            .find(HEADING_DASH)
            .map_or(piece_end, |i| end + i);
        let pseudo_neg = self.pseudo_negation.within(sentence_start, to);
        let pseudo_hist = self.pseudo_historical.within(sentence_start, to);
        let negated = self.negated_before(clause_start, start, end, to, pseudo_neg)
            // A cue starts in the mention's piece; it may run on past a comma ("2WW discussed,
            // patient declined"). One that starts where the piece ends, at its comma, its
            // heading's dash or its clause word, is written across it ("Offered 2WW - patient
            // declined", "Discussed 2WW, does not meet criteria", "colic now settled"), so it is
            // said of the mention too.
            || self
                .negation_after
                .within(end, to)
                .iter()
                .any(|&s| {
                    s.0 <= end + AFTER_REACH
                        && s.0 <= heading_end
                        && !overlaps(s, pseudo_neg)
                        // A cue inside a parenthesis after words of its own speaks of them:
                        // "thyroid nodule on CT chest done in ED (PE excluded)" (blind set 142);
                        // one that opens it speaks of what is before ("2WW to be decided on the
                        // result (not sent yet)", "DVT (excluded)").
                        && open_parenthesis(text, end, s.0).is_none_or(|open| {
                            text[end..open].trim().is_empty()
                                || text[open + 1..s.0].trim().is_empty()
                        })
                })
            // A cue that starts in the mention's piece and reaches past the mention is said of it:
            // cues that take the words before them ("GP, not sent yet", "offered - declined")
            // are found from inside or before a mention of several words ("Two week wait not
            // made": "wait not made"), and the later "not made" is then never looked for. A
            // mention across commas is negated by its last piece only (below): in "22 weeks,
            // booked late, anomaly scan not yet done" the scan is not done, the weeks stand.
            || (!text[start..end].contains(',')
                && self
                    .negation_after
                    .reaching_past(piece_start.max(sentence_start).saturating_sub(1), end)
                    .any(|s| !overlaps(s, pseudo_neg)))
            || (self.answered_no(end) && !self.asked_of(sentence_start, start, end))
            || self.list_answered_no(sentence_start, end)
            || self.last_piece_negated(start, end, pseudo_neg)
            || self.under_heading(&self.negation_headings, sentence_start, start);
        let questioned = self.questioned(clause_start, start, end, to);
        let historical = self
            .historical_before
            .within(piece_start, start)
            .iter()
            .any(|&s| !overlaps(s, pseudo_hist))
            // As for negation, a cue that starts at the piece's comma or dash is written across
            // it ("Breast lump 2022 - fibroadenoma, discharged from breast unit", blind set 113).
            || self
                .historical_after
                .within(end, to)
                .iter()
                .any(|&s| {
                    s.0 <= end + AFTER_REACH
                        && s.0 <= piece_end
                        // Past the heading's dash, only a cue that opens its own piece: not
                        // "?renal calculus - similar pain 5 yrs ago", whose date is the pain's.
                        && (s.0 <= heading_end || opens_piece(text, s.0))
                        && !overlaps(s, pseudo_hist)
                        && open_parenthesis(text, end, s.0)
                            .is_none_or(|open| text[end..open].trim().is_empty())
                })
            || self.under_heading(&self.historical_headings, sentence_start, start)
            || self.in_dated_parenthesis(sentence_start, start, end)
            || self.in_document(end)
            || self
                .problem_items
                .iter()
                .any(|p| p.condition.0 <= start && start < p.condition.1);
        // A hypothesis reaches over a list of short items: "return if breathless, fever or
        // coughing up green phlegm" makes the fever hypothetical too. It stops at a spaced
        // dash, where the writer goes on to say what is asked: in "she'd like to know if they've
        // grown - would you rescan to monitor them?" the rescan is asked, not supposed (blind
        // set 307).
        let patients_message = self.in_patients_message(start);
        // In the patient's own message, what they read or were told reaches over a list of any
        // length to the end of its clause: "I read it could be a rotator cuff tear, frozen
        // shoulder, bursitis or arthritis" (blind set 344).
        let hypothetical = self
            .hypothetical_before
            .within(clause_start, start)
            .iter()
            .any(|cue| {
                let reach = if patients_message {
                    self.clause_reach(cue.1)
                } else {
                    self.list_reach(cue.1).min(dash_after(text, cue.1))
                };
                reach >= start
            })
            || self
                .hypothetical_after
                .within(end, heading_end)
                .iter()
                .any(|&s| s.0 <= end + AFTER_REACH)
            || self.under_heading(&self.hypothetical_headings, sentence_start, start);
        let family = !self.family_before.within(piece_start, start).is_empty()
            // Only a cue in the mention's own words, with no mark or bracket between: in
            // "?twins (runs in family)" the twins asked after are the patient's own.
            || self
                .family_after
                .within(end, heading_end)
                .iter()
                .any(|&s| {
                    s.0 <= end + AFTER_REACH
                        && !text[end..s.0].contains([',', '.', ';', ':', '?', '!', '(', '\n'])
                })
            || self.under_heading(&self.family_headings, sentence_start, start)
            || self.in_family_parenthesis(sentence_start, start, end);
        Mention {
            start,
            end,
            negated,
            questioned,
            historical,
            hypothetical,
            family,
            elsewhere: self.elsewhere.iter().any(|&(a, b)| a <= start && end <= b),
            patients_message,
            unconfirmed: false,
        }
    }

    /// Whether the text outside the patient's messages that a clinician's note answers holds a
    /// negation ("not urinary", "it is not breast", "DVT excluded"): the note disputes something.
    pub fn negation_outside_answered_messages(&self) -> bool {
        [
            &self.negation_before,
            &self.negation_after,
            &self.negation_prefix,
        ]
        .iter()
        .any(|cues| cues.0.iter().any(|c| !self.in_answered_message(c.0)))
    }

    /// Whether the text holds a patient's message that a clinician's note answers (most texts
    /// hold none, and the mapping then skips the note's reading).
    pub fn has_answered_message(&self) -> bool {
        self.patient_messages.iter().any(|m| m.answered)
    }

    /// Whether `at` is inside a patient's own message that a clinician's note answers.
    pub fn in_answered_message(&self, at: usize) -> bool {
        self.message_at(at).is_some_and(|m| m.answered)
    }

    /// Whether `at` is inside a patient's own message.
    fn in_patients_message(&self, at: usize) -> bool {
        self.message_at(at).is_some()
    }

    /// The patient's message `at` is in, if any (messages are in order and do not overlap).
    fn message_at(&self, at: usize) -> Option<&PatientMessage> {
        let k = self.patient_messages.partition_point(|m| m.span.0 <= at);
        k.checked_sub(1)
            .map(|k| &self.patient_messages[k])
            .filter(|m| at < m.span.1)
    }

    /// The end of the clause that goes on at `from`: a sentence mark, a question mark, a
    /// clause-ending word, or a comma before the writer's own "I" ("I've read it can show as
    /// tiredness, I'm always tired": what follows is what the patient has), within reach.
    fn clause_reach(&self, from: usize) -> usize {
        let to = after(self.text, from);
        let piece = &self.text[from..to];
        let mark = piece
            .find(|c: char| is_sentence_end(c) || c == '?')
            .map_or(to, |i| from + i);
        let word = self.clause_end.within(from, to).first().map_or(to, |c| c.0);
        let speaker = [", i ", ", i'", ", i’", ", and i "]
            .iter()
            .filter_map(|p| piece.find(p))
            .min()
            .map_or(to, |i| from + i);
        mark.min(word).min(speaker)
    }

    /// Whether a mention that spans a comma or a spaced dash ends in a piece opened by a
    /// negation: a pattern that joins a cause to its sign ("fall ... tender ribs") says nothing
    /// of "fall last month, no rib tenderness", where the sign is absent.
    fn last_piece_negated(&self, start: usize, end: usize, pseudo: &[(usize, usize)]) -> bool {
        // The last piece starts after a comma or a spaced dash ("nose fine - no nasal
        // tenderness or deformity", blind set 316).
        let words = &self.text[start..end];
        let comma = words.rfind(',').map(|i| start + i + 1);
        let dash = FIELD_DASHES
            .iter()
            .filter_map(|d| words.rfind(d).map(|i| start + i + d.len()))
            .max();
        let Some(piece) = comma.max(dash) else {
            return false;
        };
        let opens =
            piece + (self.text[piece..end].len() - self.text[piece..end].trim_start().len());
        // Only a short last piece that the negation reaches to the mention's end: "..., not
        // obviously deformed. ?fracture" still asks after the fracture.
        let last = &self.text[opens..end];
        if last.contains(['.', ';', ':', '?', '!', '\n'])
            || last.split_whitespace().count() > 5
            || !self.clause_end.within(opens, end).is_empty()
        {
            return false;
        }
        self.negation_before
            .within(opens, end)
            .first()
            .is_some_and(|&cue| {
                // A sign said absent ("no rib tenderness"), not a sign qualified ("not obviously
                // deformed" still describes the injured nose)
                cue.0 == opens
                    && !overlaps(cue, pseudo)
                    && !self.is_prefix(cue)
                    && ["no ", "nil ", "without ", "denies ", "denied "]
                        .iter()
                        .any(|w| last.starts_with(w))
            })
    }

    /// A question cue among the few words before the mention (after any comma), or a `?`
    /// right after it.
    fn questioned(&self, clause_start: usize, start: usize, end: usize, to: usize) -> bool {
        let suffix = &self.text[end..to];
        let mark = end + (suffix.len() - suffix.trim_start().len());
        // A question mark right after it, unless the mark opens a pseudo-question ("?cause").
        if suffix.trim_start().starts_with('?') && !self.question.within(mark, mark + 1).is_empty()
        {
            return true;
        }
        let prefix = &self.text[clause_start..start];
        let after_comma = prefix.rfind(',').map_or(0, |i| i + 1);
        // The start of the fourth word from the end.
        let mut near = after_comma;
        let mut words = 0;
        let mut in_word = false;
        for (i, c) in prefix[after_comma..].char_indices().rev() {
            if c.is_whitespace() {
                if in_word {
                    words += 1;
                    in_word = false;
                    if words == 4 {
                        near = after_comma + i + 1;
                        break;
                    }
                }
            } else {
                in_word = true;
            }
        }
        !self.question.within(clause_start + near, start).is_empty()
    }

    /// A heading ("PMH:", "FH:") earlier in the sentence, with no other heading after it.
    fn under_heading(&self, heading: &Spans, from: usize, start: usize) -> bool {
        let text = self.text;
        let Some(last) = heading
            .within(from, start)
            .iter()
            .rfind(|h| is_heading_word(text, **h))
            .copied()
        else {
            return false;
        };
        // Only a heading written as one: followed by a colon or a dash.
        if !written_as_heading(&text[last.1..start]) {
            return false;
        }
        // A later heading of the other kind ends this one.
        let others = [
            &self.historical_headings,
            &self.family_headings,
            &self.background_headings,
            &self.hypothetical_headings,
            &self.negation_headings,
        ]
        .into_iter()
        .flat_map(|h| h.within(last.1, start))
        .any(|s| text[s.1..start].trim_start().starts_with(':'));
        !others
    }

    /// A negation cue before the mention in its clause. A comma ends the cue's reach unless the
    /// pieces after it are short list items ("no palpable mass, dysphagia or gurgling").
    fn negated_before(
        &self,
        clause_start: usize,
        start: usize,
        end: usize,
        to: usize,
        pseudo: &[(usize, usize)],
    ) -> bool {
        let text = self.text;
        let Some(cue) = self
            .negation_before
            .within(clause_start, start)
            .iter()
            .copied()
            // A cue that answers a heading ("Wt loss - no, night pain") negates back only.
            .rfind(|s| !overlaps(*s, pseudo) && !self.is_answer(*s))
        else {
            return false;
        };
        let after_cue = &text[cue.1..start];
        // "not mobile - 2cm hard fixed lump" says nothing absent of the lump.
        if after_cue.contains(HEADING_DASH) {
            return false;
        }
        // A negation inside a parenthesis ends with it: "(not at umbilicus, no cough impulse),
        // 2cm, soft and squashy" leaves the lump soft (blind set 386).
        if after_cue.contains(')') && open_parenthesis(text, clause_start, cue.0).is_some() {
            return false;
        }
        // A minus sign negates the words it marks: "-change bowel habit -anaemia".
        if self.is_sign(cue) {
            return sign_reach(text, cue.1, end) >= end;
        }
        // A negating prefix ("non-tender") negates the word it is joined to, nothing further.
        if self.is_prefix(cue) {
            return cue.1 + 1 == start;
        }
        // A question after the negation opens a new thought: "no swelling ?DVT".
        if !self.question.within(cue.1, start).is_empty() {
            return false;
        }
        // So does a mention written as a question after other words ("not tender ?femoral
        // hernia", blind set 178); "no ?DVT" negates the question itself.
        if text[start..end].starts_with('?') && after_cue.chars().any(char::is_alphanumeric) {
            return false;
        }
        if !after_cue.contains(',') {
            return true;
        }
        // The mention's own piece runs on to the next comma or clause end.
        let rest = &text[start..to];
        let tail_end = rest[end - start..]
            .find([',', '.', ';', ':', '\n'])
            .map_or(rest.len(), |i| i + end - start);
        let span = format!("{after_cue}{}", &rest[..tail_end]);
        let mut pieces = span.split(',');
        pieces.next();
        pieces.all(is_list_item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    /// The reader built from the repository's own trigger lists.
    static READER: LazyLock<Reader> = LazyLock::new(|| {
        let text = include_str!("../../rules/terminology/context.toml");
        #[derive(Deserialize)]
        struct File {
            context: ContextDef,
        }
        let file: File = toml::from_str(text).expect("context.toml parses");
        Reader::compile(&file.context).expect("context.toml compiles")
    });

    /// Normalises `s` with the repository's form words.
    fn normalise(s: &str) -> String {
        super::normalise(s, &super::super::forms::SHIPPED)
    }

    #[test]
    fn a_hypothesis_stops_at_a_spaced_dash() {
        // (text, pattern, hypothetical)
        for (text, pattern, hypothetical) in [
            (
                "She'd like to know if they've grown - would you rescan to monitor them?",
                "rescan",
                false,
            ),
            ("She'd like to know if they've grown", "grown", true),
            ("Return if breathless, fever or coughing", "fever", true),
            ("Return if fever - advised paracetamol", "fever", true),
        ] {
            let m = one(&[pattern], text);
            assert_eq!(
                m.first().map(|m| m.hypothetical),
                Some(hypothetical),
                "{pattern} in {text}"
            );
        }
    }

    #[test]
    fn a_pattern_across_a_spaced_dash_is_negated_by_its_last_piece() {
        let pattern = r"nose\b[^.;]{0,50}\bdeformity";
        // (text, negated)
        assert_negated(
            pattern,
            &[
                ("Nose fine - no nasal tenderness or deformity.", true),
                ("Nose fine, no deformity.", true),
                ("Nose swollen - obvious deformity.", false),
                (
                    "Nose bleed stopped, not obviously deformed but deformity on the left.",
                    false,
                ),
            ],
        );
    }

    #[test]
    fn a_negation_heading_says_its_sentence_absent() {
        // (text, negated): a symptom checker's lists (blind set 326)
        assert_negated(
            "fever",
            &[
                ("Symptoms denied: blood in urine, fever", true),
                ("Symptoms denied: weight loss, night sweats, fever.", true),
                ("Symptoms reported: fever, cough", false),
                ("Symptoms denied: pain.\nGP: fever 38.5 today", false),
            ],
        );
    }

    #[test]
    fn latin_abbreviations_are_read_as_words() {
        // (blind set 336, a retired locum's letters)
        assert_negated(
            "other symptoms?|change in size",
            &[
                (
                    "a vague, grumbling ache, s. any other symptom whatsoever",
                    true,
                ),
                (
                    "a nodule c. 18 mm, s. any change in size to palpation",
                    true,
                ),
                ("pains, other symptoms as above", false),
            ],
        );
        assert_eq!(
            normalise("Nodule c. 18 mm; viz. a CT. Mrs. Jones"),
            "nodule about 18 mm; namely a ct. mrs. jones"
        );
    }

    #[test]
    fn a_numbered_checklists_answers_end_at_the_next_item() {
        // (blind set 336) each answer ends at the next item's number, and a question answered
        // after its own mark
        assert_negated(
            "wt loss|tender|changed",
            &[
                ("Abdo pain: 1) wt loss - no 2) vomiting - no", true),
                (
                    "Lump: 3) mobile - yes 4) tender - no 5) change - stable",
                    true,
                ),
                (
                    "Fibroid f/u. 1) symptoms changed? - no 2) heavier? - no",
                    true,
                ),
                ("Lump: 1) tender - yes 2) mobile - no", false),
            ],
        );
    }

    #[test]
    fn a_correction_replaces_what_came_before() {
        // (text, first mention negated): a correction cue, then a plain negation of the
        // concept in any of its words (blind sets 326, 329)
        assert_negated(
            "saddle (?:anaesthesia|numbness)|dvt",
            &[
                (
                    "Red flags screened: saddle anaesthesia - YES\nGP: on direct questioning no \
                     saddle numbness - she misread the question.",
                    true,
                ),
                (
                    "I can't completely exclude a DVT.\nDiscussed - amended: DVT excluded - Wells \
                     -1, D-dimer negative.",
                    true,
                ),
                // the clinician's note after a patient's message corrects it (blind set 347)
                (
                    "Pt: 'I'm scared it's a DVT, my calf went'. Clinician: bruised calf, DVT \
                     excluded.",
                    true,
                ),
                // no cue: both are said
                (
                    "Saddle anaesthesia yesterday. Today no saddle numbness.",
                    false,
                ),
                // the cue corrects something else
                (
                    "?DVT. Discussed - amended: calf not swollen. Wells 2.",
                    false,
                ),
                // what the correction says is past is no answer
                (
                    "Saddle numbness today. Amended: no previous saddle numbness.",
                    false,
                ),
            ],
        );
    }

    #[test]
    fn a_patients_own_message_is_the_patients() {
        // (text, pattern, in the patient's message, hypothetical) (blind set 344)
        let table = [
            // a wish for a pathway, in the message: the patient's
            (
                "PATIENT MESSAGE:\nPlease can you fast track me.\n\nGP NOTE: epigastric pain.",
                "fast track",
                true,
                false,
            ),
            // the clinician's note after it is the clinician's
            (
                "Patient message: worried.\nGP note: fast track referral sent today.",
                "fast track",
                false,
                false,
            ),
            // a bare "Patient:" label opens the message when a clinician's heading opens a
            // later line, and is the clinician's own label without one (blind set 365)
            (
                "Patient: please fast track me.\nGP: epigastric pain.",
                "fast track",
                true,
                false,
            ),
            (
                "Patient: 62F, fast track referral sent today.",
                "fast track",
                false,
                false,
            ),
            // a rule drawn before the clinician's heading still opens its line (blind set 365)
            (
                "Patient form: lump in my thigh.\n--- Duty GP (Dr L):\nFast-tracked to sarcoma.",
                "fast-tracked",
                false,
                false,
            ),
            // a quotation opened inside a line and never closed opens nothing
            (
                "Seen today. Pt: ‘neck pain. GP: fast track referral sent.",
                "fast track",
                false,
                false,
            ),
            // a heading inside a line opens nothing
            (
                "Pt reports patient message: fast track me",
                "fast track",
                false,
                false,
            ),
            // what the patient read reaches over a list of any length to its clause's end
            (
                "Online form: shoulder pain 2 months. I read it could be a rotator cuff tear, \
                 frozen shoulder, bursitis or arthritis.\nGP: full ROM.",
                "arthritis",
                true,
                true,
            ),
            // and no further than its clause
            (
                "Online form: I read it could be a cyst but my lump is hard.\nGP: 3cm lump.",
                "lump",
                true,
                false,
            ),
            // the patient's own "I" after a comma opens a clause of what they have
            (
                "eConsult: 'I've read bowel cancer can show as tiredness, I'm always tired'. \
                 Triage: FIT 8.",
                "always tired",
                true,
                false,
            ),
            // outside a message the list reach is as before: short items only
            (
                "I read it could be a cuff tear, frozen shoulder, bursitis or arthritis, or \
                 something more serious such as a bone tumour.",
                "bone tumour",
                false,
                false,
            ),
            (
                "Patient's words: I read it could be a cuff tear, frozen shoulder, bursitis or \
                 arthritis, or something more serious such as a bone tumour.",
                "bone tumour",
                true,
                true,
            ),
        ];
        for (text, pattern, patients, hypothetical) in table {
            let m = one(&[pattern], text);
            let m = m
                .first()
                .unwrap_or_else(|| panic!("'{pattern}' not in '{text}'"));
            assert_eq!(
                (m.patients_message, m.hypothetical),
                (patients, hypothetical),
                "{pattern} in {text}"
            );
        }
    }

    #[test]
    fn a_timelines_dated_line_is_past_unless_recent() {
        assert_past_on_june_15(&[
            (
                "2019: L ectopic, salpingectomy.\nToday: pelvic pain",
                "ectopic",
                true,
            ),
            (
                "2019: L ectopic, salpingectomy.\nToday: pelvic pain",
                "pelvic pain",
                false,
            ),
            ("Jan 2024: knee ache.\nToday: knee swollen", "ache", true),
            ("Jun 2026: knee ache, worse this week", "ache", false),
        ]);
    }

    #[test]
    fn a_yes_no_question_answered_no_negates_what_it_asks_not_what_it_asks_it_of() {
        // (text, negated)
        assert_negated(
            "lump",
            &[
                ("Is the lump bigger than a golf ball? No.", false),
                ("Is your lump painful? No. Is it hard? No.", false),
                ("Lump bigger? No.", true),
                ("Any lump? No.", true),
                ("Is there a lump? No.", true),
                ("Lump: no.", true),
            ],
        );
    }

    #[test]
    fn a_list_asked_together_and_answered_no_negates_each_item() {
        // (text, whether "weight loss" is negated)
        assert_negated(
            "weight loss",
            &[
                (
                    "Weight loss, blood in poo, being sick, yellow skin? No",
                    true,
                ),
                (
                    "Tummy pain on and off. Weight loss, PR bleeding, vomiting: no",
                    true,
                ),
                ("Any weight loss, night sweats or fever? No.", true),
                ("Weight loss, tired all the time. Fever: no", false),
                ("Weight loss 3 months, sweats, fever: no", false),
                ("Weight loss, no fever, sweats: no", false),
            ],
        );
        // an item in the middle of the list too
        assert_negated(
            "pr bleeding",
            &[
                ("Weight loss, PR bleeding, vomiting: no", true),
                ("Any weight loss, PR bleeding or fever? No.", true),
                ("Any breast lumps, PR bleeding or nipple problems? No", true),
                ("Knee pain 3 months, PR bleeding, vomiting: no", false),
            ],
        );
    }

    #[test]
    fn a_parenthesis_after_a_relatives_condition_is_about_the_relative() {
        // (text, family)
        for (text, family) in [
            (
                "Brother had bladder cancer (presented with blood in urine).",
                true,
            ),
            (
                "Brother had bladder cancer. Pt (aged 63) presented with blood in urine.",
                false,
            ),
            (
                "Brother had bladder cancer, pt has (visible) blood in urine.",
                false,
            ),
            ("Blood in urine (presented with it twice).", false),
        ] {
            let m = one(&["blood in urine"], text);
            assert_eq!(m.first().map(|m| m.family), Some(family), "{text}");
        }
    }

    #[test]
    fn a_clause_ending_word_inside_a_cue_is_part_of_the_cue() {
        // (text, hypothetical): 'today' ends a clause, except inside a cue's own words
        for (text, hypothetical) in [
            ("Ringing gastro today re 2ww.", true),
            ("Will ring urology tomorrow re 2ww.", true),
            ("Spoke to gastro yesterday. Today 2ww made.", false),
            ("Was going to ring gastro but today 2ww made.", false),
        ] {
            let m = one(&["2ww"], text);
            assert_eq!(
                m.first().map(|m| m.hypothetical),
                Some(hypothetical),
                "{text}"
            );
        }
        // (text, negated): a negation cue that ends with such a word
        assert_negated(
            "pregnant",
            &[
                ("Not currently pregnant.", true),
                ("Not sure of dates, currently pregnant.", false),
            ],
        );
    }

    /// Each (text, pattern, negated) row: whether the first mention of `pattern` is negated.
    fn assert_first_negated(table: &[(&str, &str, bool)]) {
        for &(text, pattern, negated) in table {
            let m = one(&[pattern], text);
            assert_eq!(m[0].negated, negated, "{pattern} in {text}: {m:?}");
        }
    }

    #[test]
    fn negated_stretches_are_cut_at_character_boundaries() {
        // A cue after a term reaches back a few bytes at most; with ticks before it, that many
        // bytes back fell inside a tick (a ✗ is three bytes) and slicing there panicked.
        let text = normalise(
            "lump r shoulder. size ~3cm ✓<5cm soft ✓ mobile ✓ tender ✗ growing ✗ skin change ✗. ?lipoma. pt wants it checking.",
        );
        let spans = READER.prepare(&text, None).negated_spans();
        assert!(!spans.is_empty(), "{text}");
        for (a, b) in spans {
            assert!(
                text.is_char_boundary(a) && text.is_char_boundary(b),
                "{a}..{b} of {text}"
            );
        }
    }

    #[test]
    fn a_spaced_slash_parts_what_a_negation_reaches() {
        // (text, pattern, the first mention negated)
        assert_first_negated(&[
            ("haem+ on dip x3 / MSU neg / BP ok", "haem\\+ on dip", false),
            (
                "nose deviated / epistaxis settled / XR nasal bones?",
                "nose deviated",
                false,
            ),
            ("no swelling / pain on gripping / pls US", "pain", false),
            ("epistaxis settled / nose deviated / XR?", "epistaxis", true),
            // one slash alone is an "or", which the negation reaches over
            ("No chest / breast changes", "breast changes", true),
            // an unspaced slash joins a list, which the negation reaches
            ("no swelling/clicking", "clicking", true),
            // a cue inside a parenthesis speaks of what is in it (blind set 142)
            (
                "1.8cm thyroid nodule on CT chest done in ED (PE excluded)",
                "thyroid nodule",
                false,
            ),
            ("DVT (excluded)", "dvt", true),
            (
                "2WW to be decided on the result (not sent yet)",
                "2ww",
                true,
            ),
        ]);
    }

    #[test]
    fn minus_signs_negate_the_words_they_mark() {
        // (text, pattern, the first mention negated)
        assert_first_negated(&[
            (
                "lump L scapula 2cm +soft +mobile -tender, there yrs",
                "tender",
                true,
            ),
            (
                "lump L scapula 2cm +soft +mobile -tender, there yrs",
                "mobile",
                false,
            ),
            (
                "lump L scapula 2cm +soft +mobile -tender, there yrs",
                "lump",
                false,
            ),
            (
                "bloated ++ after meals. -wt loss -PR bleed -change bowel habit -anaemia",
                "change bowel habit",
                true,
            ),
            (
                "bloated ++ after meals. -wt loss -PR bleed -change bowel habit -anaemia",
                "bloated",
                false,
            ),
            ("pain only, -swelling -lump", "lump", true),
            // one minus alone may be a dash: "lump -growing" says it grows
            ("neck lump -growing over 2 months", "growing", false),
            // a sign reaches to the next sign only
            ("-tender +growing", "growing", false),
        ]);
    }

    #[test]
    fn a_question_answered_further_on_in_its_own_words_asks_nothing() {
        // (text, pattern, the first mention negated)
        assert_first_negated(&[
            (
                "?DVT vs cellulitis. F2F addendum: DVT not suspected - calf soft",
                "dvt",
                true,
            ),
            (
                "Registrar: lump L forearm, growing?\nTrainer: same size. Not growing.",
                "growing",
                true,
            ),
            // a past or someone else's negation answers nothing
            ("?DVT L calf. No previous DVT.", "dvt", false),
            ("?DVT L calf. FH: no DVT.", "dvt", false),
            // another of the concept's words is another thing
            (
                "?prepatellar bursitis ?infected. No calf swelling.",
                "prepatellar bursitis|calf swelling",
                false,
            ),
            // a question asked again is still asked
            ("?DVT. Calf swollen, ?DVT again", "dvt", false),
        ]);
    }

    #[test]
    fn a_question_answered_at_once_asks_nothing() {
        // (text, the question negated)
        assert_negated(
            "goitre",
            &[
                ("Dysphagia ?goitre - no goitre or nodes palpable", true),
                ("?goitre: no goitre felt", true),
                // further on, a plain negation in the question's own words answers it too
                // (`a_question_answered_further_on_in_its_own_words_asks_nothing`)
                ("?goitre, no goitre felt", true),
                ("?goitre - examined, no goitre felt", true),
                ("?goitre", false),
            ],
        );
        // A form's question mark, then its answer (blind set 224).
        assert_negated(
            "lump",
            &[
                ("Neck pain. Lump? No lump felt by pt or on exam.", true),
                ("Lump? Yes, lump felt above the clavicle.", false),
            ],
        );
    }

    #[test]
    fn a_family_cue_after_the_term_makes_it_the_familys() {
        // (text, family): the cue in the term's own words, with no mark or bracket between
        for (text, family) in [
            (
                "Mam worried as kidney stones run in the family (dad and uncle).",
                true,
            ),
            ("Kidney stones in the family.", true),
            ("Kidney stones, runs in the family.", false),
            ("?kidney stones (runs in family)", false),
            ("Kidney stones on CT last week.", false),
        ] {
            let m = one(&["kidney stones"], text);
            assert_eq!(m.first().map(|m| m.family), Some(family), "{text}");
        }
    }

    #[test]
    fn a_negation_inside_a_parenthesis_ends_with_it() {
        // (text, pattern, negated)
        for (text, pattern, negated) in [
            (
                "Small lump R flank (not at umbilicus, no cough impulse), 2cm, soft, mobile",
                "soft",
                false,
            ),
            (
                "Small lump R flank (no cough impulse, not soft)",
                "soft",
                true,
            ),
            ("no cough impulse, soft", "soft", true),
        ] {
            let m = one(&[pattern], text);
            assert_eq!(m.first().map(|m| m.negated), Some(negated), "{text}");
        }
    }

    fn one(patterns: &[&str], text: &str) -> Vec<Mention> {
        let re = compile_patterns(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("compiles");
        READER.mentions(&re, &normalise(text), None)
    }

    /// A mention of `pattern` in `text` read on the date `as_of` (year, month, day).
    fn on(pattern: &str, text: &str, as_of: (i32, u8, u8)) -> Mention {
        let re = compile_patterns(&[pattern.to_string()]).expect("compiles");
        let date = time::Month::try_from(as_of.1)
            .ok()
            .and_then(|m| Date::from_calendar_date(as_of.0, m, as_of.2).ok());
        *READER
            .mentions(&re, &normalise(text), date)
            .first()
            .unwrap_or_else(|| panic!("'{pattern}' not found in '{text}'"))
    }

    /// Each (text, negated) row: whether the first mention of `pattern` in it is negated.
    fn assert_negated(pattern: &str, table: &[(&str, bool)]) {
        for (text, negated) in table {
            let m = one(&[pattern], text);
            assert_eq!(m.first().map(|m| m.negated), Some(*negated), "{text}");
        }
    }

    /// Each (text, pattern, past) row: whether the mention is read as past on 2026-06-15.
    fn assert_past_on_june_15(table: &[(&str, &str, bool)]) {
        for (text, pattern, past) in table {
            assert_eq!(
                on(pattern, text, (2026, 6, 15)).historical,
                *past,
                "{pattern} in {text}"
            );
        }
    }

    #[test]
    fn a_parenthesis_dated_before_or_at_its_opening_is_past() {
        assert_past_on_june_15(&[
            (
                "Had serial growth scans with last baby (2022, SGA). Not pregnant.",
                "sga",
                true,
            ),
            (
                "Fibroadenoma 2019 (L breast, discharged). New lump R breast.",
                "l breast",
                true,
            ),
            // a parenthesis with no date is the present
            (
                "Breast lump (now 3cm, ?fibroadenoma)",
                "fibroadenoma",
                false,
            ),
            // a cue that takes in the opening mark itself (it once sliced the text backwards)
            (
                "R hip pain ?OA. (old coccyx injury 2012, no current coccyx pain.)",
                "coccyx pain",
                false,
            ),
        ]);
    }

    #[test]
    fn a_long_term_condition_opening_a_numbered_problem_list_item_is_background() {
        // (text, pattern, past): the condition of such an item is known, not the question
        let table: &[(&str, &str, bool)] = &[
            ("1. HTN - ramipril 5mg 2. T2DM - metformin 3. OA knees. Right knee pain 2 months.", "oa knees", true),
            ("1. HTN - ramipril 5mg 2. T2DM - metformin 3. OA knees. Right knee pain 2 months.", "knee pain", false),
            ("1. IBS - mebeverine 2. Anxiety - sertraline. Bloating for 6 months.", "ibs", true),
            // one per line, the complaint first
            ("1. L hip pain 2 months.\n2. CKD 3a.\nObs stable.", "ckd", true),
            ("1. L hip pain 2 months.\n2. CKD 3a.\nObs stable.", "hip pain", false),
            // not a list: a lone "1." numbers nothing, and a condition written in a sentence stands
            ("1. IBS, now bloating", "ibs", false),
            ("CKD 3b with eGFR falling, ?obstruction", "ckd", false),
            // a number out of turn is no marker: "CKD 2." is a stage
            ("1. HTN - amlodipine 2. CKD 2. Hypertension review: blood on dipstick.", "blood on dipstick", false),
            // an item that says more than its treatment is read as written
            ("1. T2DM - new painful swelling of the right foot since the weekend with redness spreading 2. HTN", "t2dm", false),
        ];
        assert_past_on_june_15(table);
    }

    #[test]
    fn a_problem_the_request_says_it_does_not_ask_about_does_not_count() {
        // (text, pattern, counts)
        let table: &[(&str, &str, bool)] = &[
            (
                "1) Abdominal bloating. 2) L knee pain, seeing physio (not for scan).",
                "knee pain",
                false,
            ),
            (
                "1) Abdominal bloating. 2) L knee pain, seeing physio (not for scan).",
                "bloating",
                true,
            ),
            // the cue opens its sentence: the sentence before is what it says is not for the scan
            (
                "Popliteal swelling ?Baker's. Mentioned a L breast lump. Not for this scan.",
                "breast lump",
                false,
            ),
            (
                "Popliteal swelling ?Baker's. Mentioned a L breast lump. Not for this scan.",
                "popliteal swelling",
                true,
            ),
            (
                "Ankle pain. Lump L breast today, referred to the breast unit via choose and book.",
                "lump l breast",
                false,
            ),
            ("Lump L breast today, for US please.", "lump l breast", true),
        ];
        for (text, pattern, counts) in table {
            assert_eq!(
                on(pattern, text, (2026, 6, 15)).is_current(),
                *counts,
                "{pattern} in {text}"
            );
        }
    }

    #[test]
    fn hl7_separators_are_read_as_fields() {
        assert_eq!(
            normalise("NTE|1||PAIN ONLY. FULL ROM"),
            "pain only. full rom"
        );
        assert_eq!(normalise("OBR|1||US^PELVIS^L"), "us pelvis l");
        // a dropped g written with its apostrophe (blind set 115)
        assert_eq!(
            normalise("Ackin' wrist, bleedin' since Sat'dy."),
            "acking wrist, bleeding since sat'dy."
        );
        // a blank ends its field (blind set 139)
        assert_eq!(
            normalise("Pain? ____   Injury? ____   Red flags? ____"),
            "pain? __\ninjury? __\nred flags? ____"
        );
        // a blank at a line's end keeps the line's break: the boxes of "Pregnant?", none ticked,
        // answer nothing, and the next line is no field of it (blind set 303)
        let read = normalise(
            "Red flags: [ ] weight loss [ ] PMB\nPregnant?  [ ] Yes  [ ] No   LMP: ____\nInterpreter needed?  [x] Yes - Slovak",
        );
        assert!(!read.contains("pregnant"), "{read}");
        assert!(read.contains("slovak"), "{read}");
        // an elided word opens no quotation (blind set 115)
        assert_eq!(
            normalise("'Er's expectin' a babby, bleedin' since Sat'dy."),
            "'er's expecting a babby, bleeding since sat'dy."
        );
        // not the quote that closes a quotation (blind set 139)
        assert_eq!(
            normalise("'Mi back's gone again' - bad backs on & off"),
            "'mi back's gone again' - bad backs on & off"
        );
        assert_eq!(
            normalise("REASON FOR REQUEST: | SYMPTOMS: | DURATION:"),
            "reason for request:\nsymptoms:\nduration:"
        );
        // no separator: the text as before
        assert_eq!(
            normalise("Knee pain\nworse on stairs"),
            "knee pain worse on stairs"
        );
        // a quotation closed at the end of its line ends the sentence there (blind set 263)
        assert_eq!(
            normalise("\"leg aching, on the pill if that matters\"\n?DVT L leg"),
            "\"leg aching, on the pill if that matters\"\n?dvt l leg"
        );
        assert_eq!(
            normalise("Pt says \"knee hurts\" and\nworse on stairs"),
            "pt says \"knee hurts\" and worse on stairs"
        );
        // a field labelled with a spaced dash keeps its line (blind set 237)
        assert_eq!(
            normalise("Red flags:\n Wt loss - N\n Fever - N"),
            "red flags:\nwt loss - n\nfever - n"
        );
        // a field after a rule keeps its line (blind set 365); a bulleted line does not
        assert_eq!(
            normalise("Patient: sore wrist\n--- Duty GP: no swelling\n- full ROM: yes"),
            "patient: sore wrist\n--- duty gp: no swelling - full rom: yes"
        );
        assert_eq!(
            normalise("Nav: pt called back\n=== Dr Fairclough\nFIT 186"),
            "nav: pt called back\n=== dr fairclough fit 186"
        );
    }

    #[test]
    fn what_a_form_denies_is_negated_and_what_it_affirms_is_not() {
        // (the forms are written as fields by `forms::answered`)
        let m = one(
            &["blood in your urine", "weight loss", "shoulder hurts"],
            "Q: Any blood in your urine? A: No\nWeight loss? [ ] No [x] Yes\nQ: What is the problem? A: my shoulder hurts",
        );
        assert!(m[0].negated, "{m:?}");
        assert!(m[1].is_current() && m[2].is_current(), "{m:?}");
        let m = one(
            &["weight loss", "fever"],
            "1. Lost weight?\nNo\n2. Fever?\nDon't know\n3. Any weight loss at all?\nNo",
        );
        // the fever question was not answered: it is left out
        assert!(m.iter().all(|x| x.negated), "{m:?}");
    }

    #[test]
    fn a_blank_question_label_asks_nothing() {
        for (text, asks) in [
            ("lower abdo pain\nq:\nddx:", false),
            ("lower abdo pain. ddx:", false),
            ("lower abdo pain. ddx: ovarian cyst", true),
            (
                "lower abdo pain. question to be answered: [free text]",
                false,
            ),
            ("lower abdo pain ?ovarian cyst", true),
            // a field answered that it does not apply, to its line's or sentence's end
            ("H: lower pelvic ache\nddx: n/a\np: tvus", false),
            ("lower abdo pain. ddx: nil.", false),
            ("lower abdo pain. ddx: na", false),
            ("lower abdo pain. ddx: nil specific ?ovarian cyst", true),
        ] {
            assert_eq!(READER.has_question_cue(text), asks, "{text}");
        }
    }

    #[test]
    fn a_quoted_document_of_the_past_is_past_to_its_closing_mark() {
        // (text, pattern, past)
        let table: &[(&str, &str, bool)] = &[
            // dated long before the request: past, every sentence of the quotation
            ("EPU letter 2024: 'Missed miscarriage at 9 weeks. Discharged.' Now: heavy periods.", "miscarriage", true),
            ("Gynae-oncology letter 09/2024: '2WW clinic - CA125 normal, cancer excluded.'\nNow: ?fibroids", "2ww", true),
            ("Breast clinic letter 03/2025 (2WW): 'Benign fibroadenoma. Discharged.'", "2ww", true),
            ("Previous letter (colorectal, 2023): perianal haematoma, resolved, discharged.", "perianal haematoma", true),
            ("US 02/2026 report: 'No Baker's cyst. Reactive nodes.' Still aching neck.", "reactive nodes", true),
            ("Previous referral (returned): 'bloating ?cause'. Still bloated.", "bloating", true),
            // after the closing mark, or after an unquoted document's sentence: the present
            ("EPU letter 2024: 'Missed miscarriage, discharged.' Now bleeding at 7 weeks, miscarriage?", "bleeding", false),
            ("A&E note 2024: nasal fracture, discharged. Punched on the cheek, ?zygoma", "zygoma", false),
            // dated within three months of the request: the present episode, read as written
            ("A&E discharge 13/06/2026: 'Swollen right calf. GP to arrange Doppler to exclude DVT.'", "swollen right calf", false),
            ("ENT clinic letter 05/2026: 'Likely left submandibular sialolithiasis.'", "sialolithiasis", false),
            // a heading inside a sentence is no document's: "lump in neck, US 2024: normal"
            ("Lump in neck, US 2024: reactive node", "reactive node", false),
            // a dated term with no heading is as before
            ("Knee pain, no injury", "knee pain", false),
        ];
        assert_past_on_june_15(table);
    }

    #[test]
    fn a_mention_ending_in_a_piece_said_absent_is_negated() {
        let sign = &[r"fall[^.;]{0,40}rib tenderness"];
        assert!(one(sign, "Fall last month, no rib tenderness. Cough 3 weeks")[0].negated);
        assert!(!one(sign, "Fall last month, rib tenderness")[0].negated);
        // a sign qualified is still the sign; a longer piece is not the negation's alone
        let deformed = &[r"nose sore[^.;]{0,40}deformed"];
        assert!(!one(deformed, "nose sore and bruised, not obviously deformed")[0].negated);
        assert!(!one(sign, "Fall last month, no bruise but rib tenderness")[0].negated);
    }

    #[test]
    fn a_relative_quoted_about_the_patient_speaks_of_the_patient() {
        let head = &["banged his head"];
        let quoted = "Daughter: 'Dad has been more confused since he banged his head last week.'";
        assert!(!one(head, quoted)[0].family);
        assert!(one(head, "Dad had a stroke after he banged his head")[0].family);
    }

    #[test]
    fn a_pasted_record_entry_of_the_past_is_past_to_the_next_entry() {
        let table: &[(&str, &str, bool)] = &[
            ("[2024] Miscarriage at 8 weeks, resolved. [2026] Heavy periods for 6 months.", "miscarriage", true),
            ("[2024] Miscarriage at 8 weeks, resolved. [2026] Heavy periods for 6 months.", "heavy periods", false),
            ("[03/09/2021] Bartholin's abscess L, resolved. [11/06/2026] R iliac fossa pain.", "bartholin", true),
            ("--- entry 14/02/2024 --- 2WW colorectal - normal. --- entry 12/06/2026 --- LIF pain", "2ww", true),
            ("--- old entry 2009 (pasted in error) --- 8/40 pregnant. --- 10/06/2026 --- PMB", "pregnant", true),
            ("--- old entry 2009 (pasted in error) --- 8/40 pregnant. --- 10/06/2026 --- PMB", "pmb", false),
            // the last entry of the past reaches to the end of its sentence only
            ("[2019] renal stone - pasted in error. Swallowed a coin, ?passed", "coin", false),
            ("[2019] renal stone - pasted in error. Swallowed a coin, ?passed", "renal stone", true),
        ];
        assert_past_on_june_15(table);
        // Without the request's date no dated entry can be the present one: each is past.
        let re = compile_patterns(&["heavy periods".to_string()]).expect("compiles");
        let undated = READER.mentions(&re, &normalise("[2024] x. [2026] Heavy periods."), None);
        assert!(undated.iter().all(|m| m.historical));
    }

    #[test]
    fn a_question_quoted_from_a_past_document_asks_nothing_now() {
        let t = normalise(
            "Gastro clinic letter 2024: 'FIT negative. IBS likely ?coeliac.' Still bloated.",
        );
        let date = Date::from_calendar_date(2026, time::Month::June, 15).ok();
        assert!(!READER.prepare(&t, date).has_question_cue());
        let t = normalise("Gastro clinic letter 2024: 'FIT negative.' Still bloated ?coeliac.");
        assert!(READER.prepare(&t, date).has_question_cue());
    }

    #[test]
    fn dictated_punctuation_and_years_are_written_back() {
        assert_eq!(
            normalise("no breast lumps full stop real issue is RUQ pain question mark gallstones"),
            "no breast lumps. real issue is ruq pain ?gallstones"
        );
        assert_eq!(
            normalise("DVT twenty eighteen treated comma now varicose veins new line ?reflux"),
            "dvt 2018 treated, now varicose veins\n?reflux"
        );
        assert_eq!(
            normalise("miscarriage in twenty twenty one"),
            "miscarriage in 2021"
        );
        assert_eq!(normalise("born nineteen ninety eight"), "born 1998");
        // Not a year: a number, so that "four weeks" is not read inside "twenty four weeks".
        assert_eq!(
            normalise("twenty eight weeks pregnant"),
            "28 weeks pregnant"
        );
        assert_eq!(
            normalise("twenty four weeks pregnant comma fundus large"),
            "24 weeks pregnant, fundus large"
        );
        assert_eq!(
            normalise("colon cancer, period pain"),
            "colon cancer, period pain"
        );
        // A negation ends at the spoken full stop.
        let m = one(&["pain"], "no lumps full stop pain in RUQ");
        assert!(!m.is_empty() && m.iter().all(|x| !x.negated), "{m:?}");
    }

    #[test]
    fn a_line_break_before_a_field_ends_its_sentence() {
        assert_eq!(
            normalise("Fast-track: No\nClinical question: ?node"),
            "fast-track: no\nclinical question: ?node"
        );
        assert_eq!(
            normalise("Pregnant? N\r\n  Allergies: NKDA"),
            "pregnant? n\nallergies: nkda"
        );
        // A dictated letter wraps its lines mid-sentence: those breaks are spaces.
        assert_eq!(
            normalise("discomfort on and off\nfor some months now.\n\nMany thanks,\nDr A"),
            "discomfort on and off for some months now. many thanks, dr a"
        );
        // A field answered "no" ends at its line: the answer negates the field, not the next.
        let text = "Fast-track: No\nClinical question: ?reactive node";
        let m = one(&["fast-track"], text);
        assert!(!m.is_empty() && m.iter().all(|x| x.negated), "{m:?}");
        let m = one(&["node"], text);
        assert!(!m.is_empty() && m.iter().all(|x| !x.negated), "{m:?}");
    }

    #[test]
    fn negation_and_lists() {
        let m = one(
            &["palpable mass", "dysphagia", "gurgling"],
            "Neck pain. No palpable mass, dysphagia or gurgling",
        );
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|m| m.negated), "{m:?}");
        let m = one(
            &["neck pain"],
            "Denies trauma, has had neck pain for three weeks",
        );
        assert!(!m[0].negated);
        // Two short items joined by "or" in the last piece (blind set 101)
        let m = one(
            &["weight loss", "fever", "history of cancer"],
            "no bladder upset, no weight loss, fever or history of cancer, and he has never had a fracture",
        );
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|m| m.negated), "{m:?}");
        let m = one(&["mass"], "neck pain but no mass");
        assert!(m[0].negated);
        let m = one(&["neck pain"], "neck pain but no mass");
        assert!(!m[0].negated);
    }

    #[test]
    fn context_spans_cover_history_hypotheses_and_family() {
        let t = normalise(
            "Abdo pain 3/12. PMH: IBS, anxiety, HTN. Safety net: if jaundice, re-refer. \
             Mother had zzyzx. Ovarian cyst removed 2010. 6 week history of qqq. \
             New hard nodule in scar of melanoma excision (2022). \
             Total thyroidectomy 2015 (benign multinodular goitre)",
        );
        let prepared = READER.prepare(&t, None);
        let spans = prepared.context_spans();
        let covered = |w: &str| {
            let i = t.find(w).unwrap_or_else(|| panic!("{w}"));
            spans.iter().any(|s| s.0 <= i && i + w.len() <= s.1)
        };
        for w in [
            "ibs",
            "anxiety",
            "htn",
            "jaundice",
            "zzyzx",
            "ovarian",
            "excision",
            "multinodular",
        ] {
            assert!(covered(w), "{w}: {spans:?}");
        }
        // The presenting complaint and a duration before
        // "history" (the present) are not covered.
        // ... nor what comes before the word a dated parenthesis is attached to.
        for w in ["abdo pain", "qqq", "nodule", "melanoma"] {
            assert!(!covered(w), "{w}: {spans:?}");
        }
    }

    #[test]
    fn a_plan_on_a_result_to_come_is_hypothetical_and_a_declined_referral_absent() {
        let m = one(&["2ww"], "PMB once, will 2ww if >4mm");
        assert!(m[0].hypothetical && !m[0].is_current(), "{m:?}");
        let m = one(&["2ww"], "2WW discussed, patient declined referral");
        assert!(m[0].negated, "{m:?}");
        // A condition of the symptom itself leaves it present; a plain 2WW is made.
        let m = one(&["knee pain"], "knee pain if kneeling");
        assert!(m[0].is_current(), "{m:?}");
        let m = one(&["2ww"], "2WW referral sent, patient agreed");
        assert!(m[0].is_current(), "{m:?}");
    }

    #[test]
    fn a_simile_is_no_hypothesis() {
        let m = one(
            &["pressure in neck"],
            "feels as if being strangled, pressure in neck",
        );
        assert!(m[0].is_current(), "{m:?}");
        let m = one(
            &["pressure in neck"],
            "return if strangled, pressure in neck",
        );
        assert!(m[0].hypothetical, "{m:?}");
    }

    #[test]
    fn known_conditions_add_no_finding_and_stay_present() {
        let t = normalise("k/c/o HTN, zzyzx, qqq on ramipril. Knee pain 3/12. Known lipoma back");
        let prepared = READER.prepare(&t, None);
        let spans = prepared.context_spans();
        let covered = |w: &str| {
            let i = t.find(w).unwrap_or_else(|| panic!("{w}"));
            spans.iter().any(|s| s.0 <= i && i + w.len() <= s.1)
        };
        for w in ["htn", "zzyzx", "ramipril", "lipoma"] {
            assert!(covered(w), "{w}: {spans:?}");
        }
        // The sentence after the list is the complaint.
        assert!(!covered("knee pain"), "{spans:?}");
        // A known condition is still the patient's: "known lipoma" is a lipoma now.
        let m = one(&["lipoma"], "Knee pain. Known lipoma back");
        assert_eq!(m.len(), 1);
        assert!(
            !m[0].historical && !m[0].negated && !m[0].hypothetical,
            "{m:?}"
        );
    }

    #[test]
    fn negation_after_the_term() {
        for text in [
            "DVT excluded",
            "DVT ruled out by D-dimer",
            "DVT unlikely",
            "seen in clinic last year, DVT excluded",
            "neck lump resolved",
            "2WW criteria not met",
            // a cue written across a heading's dash, or starting at the comma
            "Offered 2WW - patient declined for now",
            "Discussed 2WW, does not meet criteria",
            // a cue that starts inside the mention's words (blind set 287)
            "Fast track not made yet - awaiting repeat bloods",
            "Two week wait not made",
            "Fast track offered - declined",
        ] {
            let m = one(
                &["dvt", "neck lump", "2ww", "fast track", "two week wait"],
                text,
            );
            assert!(m[0].negated && !m[0].is_current(), "{text}: {m:?}");
        }
        // Near misses: the post-trigger belongs to another piece, or is pseudo-negation.
        let m = one(&["calf swelling", "dvt"], "calf swelling, DVT ruled out");
        assert!(m[0].is_current() && m[1].negated, "{m:?}");
        // A cue after the dash that does not start at it answers the next heading.
        let m = one(&["lump"], "Soft mobile lump - growth none");
        assert!(m[0].is_current(), "{m:?}");
        // A negation before a spaced dash does not reach past it.
        let m = one(
            &["mobile", "lump"],
            "Not soft, not mobile - 2cm hard fixed lump",
        );
        assert!(m[0].negated && m[1].is_current(), "{m:?}");
        // "non" written apart is a prefix too: it negates its own word only.
        let m = one(
            &["tender", "6 cm"],
            "soft mobile lump, non tender, 6 cm across",
        );
        assert!(m[0].negated && m[1].is_current(), "{m:?}");
        // A spaced en dash is a heading break as a spaced hyphen is.
        let m = one(
            &["mobile", "lump"],
            "Not soft, not mobile – 2cm hard fixed lump",
        );
        assert!(m[0].negated && m[1].is_current(), "{m:?}");
        // ... or answers a heading after a spaced dash.
        let m = one(
            &["lump", "growth"],
            "lump 4cm soft and mobile - growth none",
        );
        assert!(m[0].is_current() && m[1].negated, "{m:?}");
        for text in [
            "DVT not excluded",
            "DVT not ruled out",
            "cannot exclude DVT",
        ] {
            let m = one(&["dvt"], text);
            assert!(!m[0].negated, "{text}: {m:?}");
        }
        let m = one(&["neck pain"], "neck pain not resolved with physio");
        assert!(m[0].is_current(), "{m:?}");
    }

    #[test]
    fn a_heading_answered_no_is_negated_and_the_answer_reaches_back_only() {
        for text in [
            "Haematuria: none.",
            "wt loss - no",
            "Wt loss - nil, night pain - no",
            "bladder/bowel sx - nil",
            "SOB - no. Haemoptysis - none",
            "Previous cancer? No. Weight loss? No.",
        ] {
            let m = one(
                &[
                    "haematuria",
                    "wt loss",
                    "night pain",
                    "bladder",
                    "sob",
                    "previous cancer",
                ],
                text,
            );
            assert!(m[0].negated, "{text}: {m:?}");
        }
        // The answer does not reach forward, and what is no answer negates nothing.
        let m = one(&["wt loss", "night pain"], "Wt loss - no, night pain - yes");
        assert!(m[0].negated && m[1].is_current(), "{m:?}");
        for text in [
            "Lump: no change in size",
            "haematuria - normal kidneys on US ?cause",
            "pain no better",
            "haematuria: visible, no clots",
        ] {
            let m = one(&["lump", "haematuria", "pain"], text);
            assert!(m[0].is_current(), "{text}: {m:?}");
        }
        // What an answer negates is no other finding ("bladder/bowel sx - nil").
        assert!(negated_words("back pain. bladder/bowel sx - nil").contains(&"bladder".to_string()));
    }

    #[test]
    fn an_answer_may_give_its_reasons_after_a_colon() {
        // (blind set 281) the question answered no, then why
        let m = one(&["dvt"], "DVT? - No: Wells 0, no swelling, calf soft.");
        assert!(m[0].negated, "{m:?}");
        // Near miss: a label with its value is no answer
        let m = one(&["dvt"], "?DVT: Wells 2, calf swollen.");
        assert!(!m[0].negated, "{m:?}");
    }

    #[test]
    fn a_spaced_dash_parts_a_template_title_from_its_fields() {
        // (blind set 177) The title stays present; each field's answer reaches its own label.
        for text in [
            "EMIS Back pain template -- Age <20 or >50: No",
            "Back pain for 3 weeks - fever: no",
            "Back pain template -- Fever: No / Steroid use: No -- Duration: 3 wks",
        ] {
            let m = one(&["back pain"], text);
            assert!(m[0].is_current(), "{text}: {m:?}");
        }
        let m = one(
            &["steroid use"],
            "Fever: No / Steroid use: No -- Duration: 3 wks",
        );
        assert!(m[0].negated, "{m:?}");
        // Near miss: the heading's own answer still negates it.
        let m = one(&["back pain"], "Back pain: No");
        assert!(m[0].negated, "{m:?}");
    }

    #[test]
    fn a_question_after_the_negated_words_is_a_new_one() {
        // (blind set 178) "not" reaches "tender", not the hernia asked after it; "no ?DVT"
        // negates the question itself.
        let m = one(
            &["tender", r"\? ?femoral hernia"],
            "irreducible but not tender ?femoral hernia",
        );
        assert!(m[0].negated && m[1].is_current(), "{m:?}");
        let m = one(&["dvt"], "no ?DVT");
        assert!(m[0].negated, "{m:?}");
    }

    /// The words a negation reaches, read or not ("no haematemesis or melaena").
    fn negated_words(text: &str) -> Vec<String> {
        let t = normalise(text);
        let p = READER.prepare(&t, None);
        let spans = p.negated_spans();
        let mut out = Vec::new();
        let mut at = 0;
        for w in t.split(|c: char| !c.is_alphanumeric()) {
            let (s, e) = (at, at + w.len());
            at = e + 1;
            if !w.is_empty() && spans.iter().any(|x| x.0 <= s && e <= x.1) {
                out.push(w.to_string());
            }
        }
        out
    }

    #[test]
    fn what_a_negation_reaches() {
        assert_eq!(
            negated_words("abdominal pain, no haematemesis or melaena"),
            ["haematemesis", "or", "melaena"]
        );
        // Short list items after a comma; not past a clause end, a question or a long piece.
        assert_eq!(
            negated_words("no locking, giving way or swelling. Knee pain"),
            ["locking", "giving", "way", "or", "swelling"]
        );
        // an item may join two short ones with "or", as for a mention (blind set 351)
        assert_eq!(
            negated_words("no vomiting, rectal bleeding or urinary symptoms"),
            ["vomiting", "rectal", "bleeding", "or", "urinary", "symptoms"]
        );
        assert_eq!(negated_words("no swelling ?tendinopathy"), ["swelling"]);
        assert_eq!(
            negated_words("no trauma, has had pain in the hip for three weeks"),
            ["trauma"]
        );
        assert_eq!(negated_words("no trauma but hip clicks"), ["trauma"]);
        // After the term, within its piece and a few words.
        assert_eq!(negated_words("hip pain, gout excluded"), ["gout"]);
        // A joined prefix reaches its own word only.
        assert_eq!(negated_words("non-tender swelling"), ["tender"]);
        // Near misses: a negation word that states a finding reaches nothing.
        for text in [
            "knee pain, not able to weight bear",
            "shoulder pain, no power in the arm",
            "no appetite",
            "not weight bearing",
            "pain not improving despite physio",
        ] {
            assert!(
                negated_words(text).is_empty(),
                "{text}: {:?}",
                negated_words(text)
            );
        }
    }

    #[test]
    fn pseudo_negation() {
        let m = one(&["dysphagia"], "not only neck pain but dysphagia");
        assert!(m[0].is_current(), "{m:?}");
        let m = one(&["neck pain"], "no improvement in neck pain");
        assert!(m[0].is_current(), "{m:?}");
    }

    #[test]
    fn history_hypotheses_and_family() {
        for text in [
            "previous DVT",
            "h/o DVT",
            "PMH: DVT, asthma",
            "DVT in 2019",
            "previously referred under 2WW",
        ] {
            let m = one(&["dvt", "2ww"], text);
            assert!(m[0].historical && !m[0].is_current(), "{text}: {m:?}");
        }
        for text in ["if lump grows re-refer", "should she develop dysphagia"] {
            let m = one(&["lump", "dysphagia"], text);
            assert!(m[0].hypothetical && !m[0].is_current(), "{text}: {m:?}");
        }
        for text in ["family history of DVT", "FH: DVT", "mother had DVT"] {
            let m = one(&["dvt"], text);
            assert!(m[0].family && !m[0].is_current(), "{text}: {m:?}");
        }
        // Near misses: durations are not history, and history does not cross a comma.
        for text in [
            "3 month history of neck pain",
            "6/52 hx of neck pain",
            "previous DVT, now neck pain",
            "h/o asthma, neck pain",
        ] {
            let m = one(&["neck pain"], text);
            assert!(m[0].is_current(), "{text}: {m:?}");
        }
    }

    #[test]
    fn questions() {
        assert!(one(&["dvt"], "swollen calf ?DVT")[0].questioned);
        let m = one(&["dvt"], "calf pain, no swelling ?DVT");
        assert!(m[0].questioned && !m[0].negated, "{m:?}");
        assert!(one(&["dvt"], "swollen calf, r/o DVT")[0].questioned);
        assert!(one(&["gallstones"], "RUQ pain gallstones?")[0].questioned);
        assert!(!one(&["calf swelling"], "calf swelling for 2 days")[0].questioned);
        assert!(READER.has_question_cue(&normalise("USS abdo ?gallstones")));
        assert!(READER.has_question_cue("exclude appendicitis"));
        assert!(!READER.has_question_cue("bloating for 3 months"));
        // A question mark that asks nothing specific is no question; a differential is.
        for text in [
            "wrist pain ?cause",
            "knee pain ? cause of pain",
            "hip pain ?why",
        ] {
            assert!(!READER.has_question_cue(&normalise(text)), "{text}");
            assert!(
                !one(&["wrist pain", "knee pain", "hip pain"], text)[0].questioned,
                "{text}"
            );
        }
        assert!(READER.has_question_cue("wrist pain ?ganglion"));
        // A question mark on the pain itself asks nothing either (blind sets 287 and 300: "pelvic
        // pain ?? / no other sx", "heel pain?? walking on tiptoe"); joined to the next word it
        // asks (above).
        assert!(!one(&["wrist pain"], "wrist pain ?")[0].questioned);
        assert!(!READER.has_question_cue(&normalise("pelvic pain ?? / no other sx / exam NAD")));
        // nor does one left alone at its line's end (blind set 376)
        assert!(
            !READER.has_question_cue(&normalise("Wean greetin wi sore tummy on and off 3 wks ?"))
        );
        assert!(READER.has_question_cue(&normalise("sore tummy on and off 3 wks ?appendix")));
    }

    #[test]
    fn an_ascii_form_leaves_out_only_what_no_ascii_text_holds() {
        let table: &[(&str, &str)] = &[
            (r#"felt it [\x27"‘“]?go"#, r#"felt it [\x27"]?go"#),
            (r"gl[uùú]in", r"gl[u]in"),
            (r#"[^\x27"’”]{1,40}"#, r#"[^\x27"]{1,40}"#),
            ("[‘“]x", r"[\x80-\xFF]x"),
            ("[^‘]x", r"[^\x80-\xFF]x"),
            ("[a-ÿ]", r"[a-\x7F]"),
            ("[à-ÿz]", "[z]"),
            (r"[\]‘]", r"[\]]"),
            (r"caf\é [é]", r"caf\é [\x80-\xFF]"),
            ("naïve", "naïve"),
        ];
        for (source, ascii) in table {
            assert_eq!(without_unicode_class_members(source), *ascii, "{source}");
        }
        // The same matches on ASCII texts as the Unicode form.
        let source = format!(
            "(?i){}",
            bounded(r#"felt (?:it|something) [\x27"‘“]?(?:go|give)"#)
        );
        let unicode = Regex::new(&source).expect("unicode");
        let ascii = ascii_only(&source, None).expect("ascii");
        for text in [
            "felt it 'go",
            "felt it \"give",
            "felt it go",
            "felt itgo",
            "felt it xgo",
        ] {
            assert_eq!(
                unicode.is_match(text),
                ascii.is_match(text.as_bytes()),
                "{text}"
            );
        }
        assert!(ascii_only(r"\p{Greek}", None).is_none());
    }

    #[test]
    fn a_checklist_tick_or_cross_ends_its_item() {
        // (blind set 274) a cross negates the item it follows, not the ticked one before it
        let m = one(
            &["knee pain", "swelling", "locking"],
            "Knee pain ✓ swelling ✗ locking ✗",
        );
        assert!(!m[0].negated, "{m:?}");
        assert!(m[1].negated && m[2].negated, "{m:?}");
        let m = one(&["bloated", "wt loss"], "Bloated ✓ pain ✓ wt loss ✗");
        assert!(!m[0].negated && m[1].negated, "{m:?}");
        // (blind set 331) a sentence that opens with a cross puts each cross before its item:
        // the last item is negated too, and a ticked item after the list is not
        let m = one(
            &["wt loss", "fever", "ca hx", "lbp"],
            "✗ wt loss ✗ fever ✗ ca hx. LBP ✓",
        );
        assert!(m[..3].iter().all(|m| m.negated), "{m:?}");
        assert!(!m[3].negated, "{m:?}");
    }

    /// Each mention reads a bounded window, which is what keeps a long text without
    /// punctuation linear (it took minutes when each mention rescanned the whole text). The
    /// window is asserted here, not a time: speed lives in the benchmarks, and a timed test
    /// fails on a loaded machine.
    #[test]
    fn each_mention_reads_a_bounded_window() {
        let text = normalise(&"lump ".repeat(20_000));
        let m = one(&["lump"], &text);
        assert_eq!(m.len(), 20_000);
        // Cues still reach within the window, and only within it.
        let far = format!("no {}lump", "word ".repeat(100));
        assert!(!one(&["lump"], &far)[0].negated);
        assert!(one(&["lump"], "no tender lump")[0].negated);
        // The window starts inside "cannot": its "not" is no cue.
        let cut = format!("cannot {} lump", "y".repeat(REACH - 5));
        assert_eq!(before(&cut, cut.len() - 4), 7);
        assert!(!one(&["lump"], &cut)[0].negated);
    }

    #[test]
    fn a_day_and_a_month_without_a_year_is_the_last_such_day() {
        let as_of = Date::from_calendar_date(2026, time::Month::June, 15).ok();
        assert!(is_recent(
            "discharge letter (care of the elderly, 28/05):",
            as_of
        ));
        // 28 November 2025, more than three months before.
        assert!(!is_recent("clinic letter 28/11:", as_of));
    }

    #[test]
    fn a_pattern_closing_with_a_literal_bracket_takes_no_boundary_after() {
        let re = compile_patterns(&[r"son \([a-z]+\)".to_string()]).expect("compiles");
        assert!(re.is_match("next of kin: son (davy) consent obtained"));
        // A closing group still takes one: "knee" is no "kneel".
        let re = compile_patterns(&["(?:left|right) knee".to_string()]).expect("compiles");
        assert!(!re.is_match("right kneeling"));
    }

    #[test]
    fn a_group_ending_a_pattern_takes_a_boundary_only_after_its_words() {
        // (pattern, text, matches)
        let table = [
            ("skull (?:#|fracture)", "fell, ?skull # no LOC", true),
            ("skull (?:#|fracture)", "skull fracture suspected", true),
            ("skull (?:#|fracture)", "skull fractures", false),
            (
                "homans.? (?:sign )?(?:positive|\\+ve|\\+)",
                "homans + calf warm",
                true,
            ),
            (
                "blood \\(?(?:[1-4] ?\\+|trace)",
                "urine dip: blood 2+ protein neg",
                true,
            ),
            ("blood \\(?(?:[1-4] ?\\+|trace)", "blood traces", false),
            // Nested groups, and the group of one alternative with a sign in it.
            ("(?:rib|ribs) (?:(?:#|fx)|crack(?:ed)?)", "ribs # x2", true),
            (
                "(?:rib|ribs) (?:(?:#|fx)|crack(?:ed)?)",
                "rib cracker",
                false,
            ),
            // An empty alternative leaves the boundary after the group.
            ("pain(?:|s)", "painful knee", false),
            ("pain(?:|s)", "pains in knee", true),
            // A word of a group ending in a letter that is not ASCII takes no boundary.
            (
                "(?:blood|ros\u{e9}) wine|(?:ros\u{e9}|pink)",
                "urine like ros\u{e9}, no pain",
                true,
            ),
            // An optional group: the words before it keep their boundary.
            ("breast unit(?: \\([a-z]+\\))?", "breast units", false),
            ("knee(?: pain)?", "kneeling", false),
            // A class of signs ends no word; a class of letters does.
            ("not yet[,;]", "not yet, awaiting bloods", true),
            ("knee[a-z]", "kneels", false),
            // A bracket in a class opens no group.
            ("sign (?:\\+|[(]x)", "sign + here", true),
            ("sign (?:\\+|[(]x)", "sign (xy", false),
        ];
        for (pattern, text, matches) in table {
            let re = compile_patterns(&[pattern.to_string()]).expect("compiles");
            assert_eq!(re.is_match(text), matches, "{pattern} in {text:?}");
        }
        // An optional group ending in a sign is taken when it is there.
        let re = compile_patterns(&[r"breast unit(?: \([a-z]+\))?".to_string()]).expect("compiles");
        assert_eq!(
            re.find("seen at the breast unit (normal). next")
                .map(|m| m.as_str()),
            Some("breast unit (normal)")
        );
    }

    #[test]
    fn a_pattern_opening_with_punctuation_in_a_group_takes_no_boundary_before() {
        assert!(bounded("(?:,| -) does not meet").starts_with("(?:"));
        assert!(bounded("(?:left|right) knee").starts_with(ASCII_BOUNDARY));
        assert!(bounded("(?:^|[.;] )pain").starts_with("(?:"));
        let re =
            compile_patterns(&["(?:,| -) does not meet criteria".to_string()]).expect("compiles");
        assert!(re.is_match("discussed 2ww (with son) - does not meet criteria: age 38"));
    }

    #[test]
    fn word_boundaries() {
        assert!(one(&["us"], "focus on back").is_empty());
        assert_eq!(one(&["uss"], "USS abdo").len(), 1);
        assert_eq!(one(&["u ?& ?e"], "recent U&E normal").len(), 1);
    }

    #[test]
    fn word_boundaries_are_ascii_but_beside_a_letter_that_is_not() {
        let table: &[(&str, &str)] = &[
            (
                r"neck\b[^.;]{0,5}\bpain",
                r"neck(?-u:\b)[^.;]{0,5}(?-u:\b)pain",
            ),
            (r"caf\bé", r"caf\bé"),
            (r"é\bx", r"é\bx"),
            (r"\\b", r"\\b"),
            ("no boundary", "no boundary"),
        ];
        for (pattern, written) in table {
            assert_eq!(ascii_boundaries(pattern), *written, "{pattern}");
        }
        assert_eq!(bounded("knee pain"), r"(?-u:\b)(?:knee pain(?-u:\b))");
        assert_eq!(bounded("glùin"), r"(?-u:\b)(?:glùin(?-u:\b))");
        assert_eq!(bounded("bolą"), r"(?-u:\b)(?:bolą\b)");
        // The same mentions in a text that is not ASCII: the boundary holds at a space, a curly
        // quote or a dash, and a word ending in such a letter still ends at a space.
        assert_eq!(one(&["knee pain"], "‘knee pain’ – café").len(), 1);
        assert_eq!(one(&["bolą"], "mnie bolą plecy").len(), 1);
        assert!(one(&["us"], "focus – café").is_empty());
    }
}
