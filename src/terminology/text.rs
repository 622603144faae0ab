//! Free text as GPs write it: abbreviations, negation ("no palpable mass", "denies") and the
//! difference between a symptom and a clinical question ("?gallstones", "suspected", "r/o").
//!
//! The approach is NegEx-like and deliberately small: a mention is negated when a negation cue
//! stands before it in the same clause, and questioned when a question cue stands just before
//! or a `?` just after it.

use regex::Regex;
use std::sync::LazyLock;

/// Lower-cases and folds runs of white space to one space.
pub fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Compiles a concept's patterns into one case-insensitive regex, each alternative bounded by
/// word boundaries where it begins or ends with a word character.
pub fn compile_patterns(patterns: &[String]) -> Result<Regex, String> {
    let alternatives: Vec<String> = patterns
        .iter()
        .map(|p| {
            let starts_word = p
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '(' || c == '[');
            let ends_word = p.chars().last().is_some_and(|c| {
                c.is_alphanumeric()
                    || c == ')'
                    || c == ']'
                    || c == '?'
                    || c == '*'
                    || c == '+'
                    || c == '}'
            });
            format!(
                "{}(?:{p}){}",
                if starts_word { r"\b" } else { "" },
                if ends_word { r"\b" } else { "" }
            )
        })
        .collect();
    Regex::new(&format!("(?i){}", alternatives.join("|"))).map_err(|e| e.to_string())
}

/// One mention of a concept in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
    pub negated: bool,
    pub questioned: bool,
}

#[allow(clippy::expect_used)]
static NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:no|not|nil|denies|denied|denying|without|negative for|absence of|free of|never|non)\b")
        .expect("constant regex")
});

#[allow(clippy::expect_used)]
static QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\?|\b(?:query|queried|suspected|suspect|suspicion of|possible|possibly|probable|likely|r/o|rule out|rule-out|to exclude|exclude|excluding|ddx|differential|differentials|concern for|concerned about|assess for|evaluate for|look for|investigate for|\?)\b)")
        .expect("constant regex")
});

#[allow(clippy::expect_used)]
static CLAUSE_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[.;:!\n]|\b(?:but|however|although|though|except)\b").expect("constant regex")
});

/// Whether the text asks a clinical question on its own terms ("?gallstones", "rule out",
/// "differential"), whether or not the thing asked about is a known concept.
pub fn has_question_cue(text: &str) -> bool {
    QUESTION.is_match(text)
}

/// How far before and after a mention its cues are looked for, in bytes. Cues reach within a
/// clause of a few words; without a bound every mention rescanned all the text before and after
/// it, and a long text without punctuation took minutes (100 kB of "lump lump ...": 70 s).
const REACH: usize = 256;

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

/// Finds the mentions of `pattern` in the normalised `text`.
pub fn mentions(pattern: &Regex, text: &str) -> Vec<Mention> {
    pattern
        .find_iter(text)
        .filter(|m| !m.as_str().trim().is_empty())
        .map(|m| {
            let from = before(text, m.start());
            let clause_start = CLAUSE_END
                .find_iter(&text[from..m.start()])
                .last()
                .map_or(from, |c| from + c.end());
            let prefix = &text[clause_start..m.start()];
            Mention {
                start: m.start(),
                end: m.end(),
                negated: negated(prefix, &text[m.start()..after(text, m.end())]),
                questioned: questioned(prefix, &text[m.end()..after(text, m.end())]),
            }
        })
        .collect()
}

/// A negation cue before the mention in its clause. A comma ends the cue's reach unless the
/// pieces after it are short list items ("no palpable mass, dysphagia or gurgling").
fn negated(prefix: &str, rest: &str) -> bool {
    let Some(cue) = NEGATION.find_iter(prefix).last() else {
        return false;
    };
    let after_cue = &prefix[cue.end()..];
    // A question after the negation opens a new thought: "no swelling ?DVT".
    if QUESTION.is_match(after_cue) {
        return false;
    }
    if !after_cue.contains(',') {
        return true;
    }
    // The mention's own piece runs on to the next comma or clause end.
    let tail_end = rest.find([',', '.', ';', ':', '\n']).unwrap_or(rest.len());
    let span = format!("{after_cue}{}", &rest[..tail_end]);
    let mut pieces = span.split(',');
    pieces.next();
    pieces.all(|piece| piece.split_whitespace().count() <= 4)
}

/// A question cue among the few words before the mention, or a `?` right after it.
fn questioned(prefix: &str, suffix: &str) -> bool {
    let near: String = {
        let words: Vec<&str> = prefix.split_whitespace().collect();
        let from = words.len().saturating_sub(4);
        words[from..].join(" ")
    };
    let before = near.rsplit(',').next().unwrap_or(&near);
    QUESTION.is_match(before) || suffix.trim_start().starts_with('?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(patterns: &[&str], text: &str) -> Vec<Mention> {
        let re = compile_patterns(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("compiles");
        mentions(&re, &normalise(text))
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
        let m = one(&["mass"], "neck pain but no mass");
        assert!(m[0].negated);
        let m = one(&["neck pain"], "neck pain but no mass");
        assert!(!m[0].negated);
    }

    #[test]
    fn questions() {
        assert!(one(&["dvt"], "swollen calf ?DVT")[0].questioned);
        let m = one(&["dvt"], "calf pain, no swelling ?DVT");
        assert!(m[0].questioned && !m[0].negated, "{m:?}");
        assert!(one(&["dvt"], "swollen calf, r/o DVT")[0].questioned);
        assert!(one(&["gallstones"], "RUQ pain gallstones?")[0].questioned);
        assert!(!one(&["calf swelling"], "calf swelling for 2 days")[0].questioned);
        assert!(has_question_cue(&normalise("USS abdo ?gallstones")));
        assert!(has_question_cue("exclude appendicitis"));
        assert!(!has_question_cue("bloating for 3 months"));
    }

    /// Each mention reads a bounded window: a long text without punctuation is read in linear
    /// time (it took minutes when each mention rescanned the whole text).
    #[test]
    fn long_text_is_linear() {
        let text = normalise(&"lump ".repeat(200_000));
        let started = std::time::Instant::now();
        let m = one(&["lump"], &text);
        assert_eq!(m.len(), 200_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
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
    fn word_boundaries() {
        assert!(one(&["us"], "focus on back").is_empty());
        assert_eq!(one(&["uss"], "USS abdo").len(), 1);
        assert_eq!(one(&["u ?& ?e"], "recent U&E normal").len(), 1);
    }
}
