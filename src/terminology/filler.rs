//! What counts as a finding: the words of a clinical text that say nothing about the patient's
//! condition (courtesies, administrative remarks, durations, sides, the examination asked for).
//!
//! A text's words are *explained* when a concept, a context trigger or one of these phrases
//! covers them, or they are in the list of words that carry no finding. What is left is clinical
//! text the gateway could not read: it counts as clinical information (so GEN01 does not fire)
//! and as a possible other symptom (so the "pain as the only symptom" rules do not fire). The
//! lists are data: `[not_findings]` in `rules/terminology/not-findings.toml`.

use super::text::{ascii_only, bounded, compile_patterns};
use regex::Regex;
use serde::Deserialize;

/// The `[not_findings]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotFindingsDef {
    /// Phrases (regular expressions) that carry no finding: "as discussed", "patient keen".
    pub phrases: Vec<String>,
    /// Single words that carry no finding: "left", "weeks", "please".
    pub words: Vec<String>,
    /// Everyday English words with no clinical sense, from a general word list reviewed word by
    /// word ("welder", "ferry", "kitchen"): `terminology/common-words.toml`. Matched whole only:
    /// a word cut off at a field's end is read against `words` alone, as a common word's start
    /// ("lum" of "lumber") could be a clinical word's too.
    pub common_words: Vec<String>,
}

impl NotFindingsDef {
    /// Adds another file's lists to these: the terminology folder may split them.
    pub fn extend(&mut self, other: &NotFindingsDef) {
        self.phrases.extend(other.phrases.iter().cloned());
        self.words.extend(other.words.iter().cloned());
        self.common_words.extend(other.common_words.iter().cloned());
    }
}

/// The compiled lists.
#[derive(Debug, Clone, Default)]
pub struct NotFindings {
    phrases: Option<Phrases>,
    /// Sorted and without repeats: looked up by binary search, and a cut-off word's candidates
    /// ("sca" for "scan") are the words right after it.
    words: Vec<String>,
    /// The common words, sorted and without repeats; looked up whole only.
    common: Vec<String>,
}

/// The shortest cut-off word read as the word it begins ("sca" for "scan").
const CUT_OFF_MIN: usize = 3;

/// The phrases, compiled so that each covers all it matches, whatever the others match.
///
/// One alternation alone is leftmost-first: where two phrases match at the same place the
/// earlier one wins and the other's words are left unexplained ("pt" taking the start of "pt
/// keen for scan"). So each phrase also covers its own matches; the alternation's matches are
/// kept too, so that nothing covers less than it did.
///
/// Each phrase is searched on its own. An overlapping `RegexSet` of the ~340 phrases said which
/// to search, but its lazy DFA tracks every phrase at once: its states blew the cache and it fell
/// back to the PikeVM, 61% of a corpus report (BENCHMARKS.md, session 32). One phrase's search is
/// a literal prefilter or a small DFA, and the spans are the same.
///
/// The alternation is compiled twice. Its Unicode form (case folding, word boundaries) makes a
/// lazy DFA too large for its cache, which then falls back to the PikeVM; on an ASCII text
/// (nearly every referral) an ASCII-only form, with a larger cache, finds the same matches.
///
/// The ASCII forms leave out of classes the characters that are not ASCII ([`ascii_only`]): when
/// a curly quote in one phrase's class (`[\x27‘“]`, sets 148–150 on) turned the ASCII forms off
/// for all, a 900 kB note took 28 s in release and passed the hostile suite's minute in debug (CI
/// of session 48's stop). A phrase that still needs Unicode (`\p{L}`) keeps its Unicode form and
/// is left out of the ASCII alternation; the others keep their ASCII forms.
#[derive(Debug, Clone)]
struct Phrases {
    all: Regex,
    /// The alternation of the phrases that compile ASCII-only (`None` if none do).
    all_ascii: Option<regex::bytes::Regex>,
    each: Vec<Regex>,
    /// Each phrase compiled ASCII-only, for ASCII texts, or `None` for one that needs Unicode
    /// (searched with its form in `each`): a third of the size, and the same matches on such a
    /// text (session 34).
    each_ascii: Vec<Option<regex::bytes::Regex>>,
}

/// The ASCII alternation's lazy DFA cache, as for the concepts' prefilter.
const ASCII_DFA_CACHE: usize = 32 << 20;

impl Phrases {
    fn compile(patterns: &[String]) -> Result<Self, String> {
        // Each phrase bounded once; `(?i)` is added where one is compiled alone.
        let alternatives: Vec<String> = patterns.iter().map(|p| bounded(p)).collect();
        let each = alternatives
            .iter()
            .map(|a| Regex::new(&format!("(?i){a}")).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let each_ascii: Vec<Option<regex::bytes::Regex>> = alternatives
            .iter()
            .map(|a| ascii_only(&format!("(?i){a}"), None))
            .collect();
        let all = compile_patterns(patterns)?;
        // A phrase with no ASCII form is searched on its own (`each`).
        let ascii_alternatives: Vec<&str> = alternatives
            .iter()
            .zip(&each_ascii)
            .filter(|(_, re)| re.is_some())
            .map(|(a, _)| a.as_str())
            .collect();
        let all_ascii = (!ascii_alternatives.is_empty())
            .then(|| {
                ascii_only(
                    &format!("(?i){}", ascii_alternatives.join("|")),
                    Some(ASCII_DFA_CACHE),
                )
            })
            .flatten();
        Ok(Phrases {
            all,
            all_ascii,
            each,
            each_ascii,
        })
    }

    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let ascii = text.is_ascii();
        let mut spans: Vec<(usize, usize)> = match &self.all_ascii {
            Some(all) if ascii => all
                .find_iter(text.as_bytes())
                .map(|m| (m.start(), m.end()))
                .collect(),
            _ => self
                .all
                .find_iter(text)
                .map(|m| (m.start(), m.end()))
                .collect(),
        };
        for (unicode, ascii_form) in self.each.iter().zip(&self.each_ascii) {
            match ascii_form {
                Some(re) if ascii => {
                    spans.extend(re.find_iter(text.as_bytes()).map(|m| (m.start(), m.end())))
                }
                _ => spans.extend(unicode.find_iter(text).map(|m| (m.start(), m.end()))),
            }
        }
        spans
    }
}

/// A word list lower-cased, sorted and without repeats; an entry that is not one word is an
/// error naming the list.
fn one_word_each(list: &str, entries: &[String]) -> Result<Vec<String>, String> {
    let mut words = Vec::with_capacity(entries.len());
    for w in entries {
        let w = w.to_lowercase();
        if w.is_empty() || !w.chars().all(char::is_alphanumeric) {
            return Err(format!(
                "[not_findings] {list}: '{w}' is not one word (write phrases in `phrases`)"
            ));
        }
        words.push(w);
    }
    words.sort_unstable();
    words.dedup();
    Ok(words)
}

/// Merges overlapping spans, sorted by start.
fn merged(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.0 <= last.1 => last.1 = last.1.max(s.1),
            _ => out.push(s),
        }
    }
    out
}

impl NotFindings {
    pub fn compile(def: &NotFindingsDef) -> Result<Self, String> {
        let phrases = if def.phrases.is_empty() {
            None
        } else {
            Some(
                Phrases::compile(&def.phrases)
                    .map_err(|e| format!("[not_findings] phrases: {e}"))?,
            )
        };
        Ok(NotFindings {
            phrases,
            words: one_word_each("words", &def.words)?,
            common: one_word_each("common_words", &def.common_words)?,
        })
    }

    /// Whether `token` is a word of either list.
    fn is_listed(&self, token: &str) -> bool {
        [&self.words, &self.common]
            .into_iter()
            .any(|list| list.binary_search_by(|w| w.as_str().cmp(token)).is_ok())
    }

    /// Whether `token` (of [`CUT_OFF_MIN`] letters or more) is the start of a longer word of the
    /// list.
    fn begins_a_word(&self, token: &str) -> bool {
        if token.len() < CUT_OFF_MIN {
            return false;
        }
        let at = self.words.partition_point(|w| w.as_str() <= token);
        self.words.get(at).is_some_and(|w| w.starts_with(token))
    }

    /// The words of the normalised `text` that nothing in `covered` explains and that may carry
    /// a finding, in order.
    pub fn unexplained(&self, text: &str, covered: Vec<(usize, usize)>) -> Vec<String> {
        let mut covered = covered;
        if let Some(p) = &self.phrases {
            covered.extend(p.spans(text));
        }
        let covered = merged(covered);
        let mut next = 0;
        let mut out = Vec::new();
        let mut at = 0;
        for token in text.split(|c: char| !c.is_alphanumeric()) {
            let (start, end) = (at, at + token.len());
            at = end + text[end..].chars().next().map_or(0, char::len_utf8);
            if token.is_empty() {
                continue;
            }
            while next < covered.len() && covered[next].1 <= start {
                next += 1;
            }
            if next < covered.len() && covered[next].0 < end {
                continue;
            }
            if token.chars().any(|c| c.is_ascii_digit()) || self.is_listed(token) {
                continue;
            }
            // An order-comms interface cuts a field at its length: the last word of a text or
            // line that begins a word carrying no finding is that word ("PT REQUESTS SCA",
            // "AS PER LETT").
            let last = text[end..].chars().next().is_none_or(|c| c == '\n');
            if last && self.begins_a_word(token) {
                continue;
            }
            out.push(token.to_string());
        }
        out
    }
}

/// The words `raw` writes as names of people and places ("Ring daughter Roisin", "goes home to
/// Leeds", "Dispensed by Shona"), lower-cased: every time the word is written it is
/// capitalised, inside a sentence (not first in a sentence, a line, a field or a quotation), not
/// in capitals throughout and not possessive ("Crohn's" names a disease). A word nothing else
/// places that is written so is no finding (blind sets 107-114). A text that capitalises most of
/// its words ("Lump In Left Breast") names nothing this way.
pub fn names(raw: &str) -> std::collections::HashSet<String> {
    use std::collections::HashMap;
    let mut seen: HashMap<String, bool> = HashMap::new();
    let (mut words, mut capitalised) = (0usize, 0usize);
    let mut previous: Option<char> = None;
    let chars: Vec<(usize, char)> = raw.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if !c.is_alphabetic() {
            if c != ' ' && c != '\t' {
                previous = Some(c);
            }
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && chars[j].1.is_alphabetic() {
            j += 1;
        }
        let end = chars.get(j).map_or(raw.len(), |&(e, _)| e);
        let word = &raw[start..end];
        let first_upper = word.chars().next().is_some_and(char::is_uppercase);
        // "St" of a place or church is a name when a capitalised word follows ("St Just").
        let saint = word == "St"
            && chars.get(j).is_some_and(|&(_, c)| c == ' ')
            && chars.get(j + 1).is_some_and(|&(_, c)| c.is_uppercase());
        let rest_lower =
            word.chars().skip(1).all(char::is_lowercase) && (word.chars().count() > 2 || saint);
        let possessive = matches!(chars.get(j).map(|&(_, c)| c), Some('\'' | '’'))
            && matches!(chars.get(j + 1).map(|&(_, c)| c), Some('s' | 'S'));
        let inside = previous.is_some_and(|p| {
            !matches!(
                p,
                '.' | '!' | '?' | ':' | ';' | '\n' | '"' | '\'' | '‘' | '“' | '-' | '*' | '•'
            )
        });
        let name =
            first_upper && rest_lower && !possessive && (inside || after_initial(raw, start));
        words += 1;
        capitalised += usize::from(first_upper);
        let entry = seen.entry(word.to_lowercase()).or_insert(true);
        *entry = *entry && name;
        previous = chars.get(j.saturating_sub(1)).map(|&(_, c)| c);
        i = j;
    }
    if capitalised * 2 > words {
        return std::collections::HashSet::new();
    }
    seen.into_iter()
        .filter(|(_, name)| *name)
        .map(|(w, _)| w)
        .collect()
}

/// Whether the word at `start` follows a person's initial, itself after a title, inside a list
/// or after a role in brackets: "Dr R. Buchan", "(practice pharmacist, P. Mistry)" (blind sets
/// 135-136), "APP (advanced paramedic practitioner) G. Pugh" (blind set 144). Not "Vit D.
/// Haemoptysis", where the letter ends a sentence.
fn after_initial(raw: &str, start: usize) -> bool {
    let Some(before) = raw[..start].trim_end().strip_suffix('.') else {
        return false;
    };
    let mut letters = before.chars().rev();
    let initial = letters.next().is_some_and(|c| c.is_ascii_uppercase());
    let lone = letters.next().is_none_or(|c| c == ' ' || c == '(');
    if !initial || !lone {
        return false;
    }
    let lead = before[..before.len() - 1].trim_end();
    let titled = |title: &str| {
        lead.strip_suffix(title)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with([' ', '(', ',']))
    };
    lead.ends_with([',', '(', ')', ':'])
        || ["Dr", "Mr", "Mrs", "Ms", "Miss", "Prof", "Nurse", "Sister"]
            .into_iter()
            .any(titled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_capitalised_inside_a_sentence_every_time() {
        let found = names(
            "Ring daughter Roisin first. Dispensed by Shona (dispensary), goes to Leeds and on to a caravan near St Ives.",
        );
        for name in ["roisin", "shona", "leeds", "st", "ives"] {
            assert!(found.contains(name), "{name}");
        }
        // first in a sentence, possessive, in capitals, or also written in lower case: no name
        let found = names(
            "Fatigue. Known Crohn's. NKDA, seen in clinic. Pain in Clinic and clinic, St elevation",
        );
        assert!(found.is_empty(), "{found:?}");
        // a text that capitalises most of its words names nothing
        assert!(names("Lump In Left Breast Getting Bigger").is_empty());
        // a surname after an initial, itself after a title or a comma; not a word after a
        // letter that ends a sentence
        let found = names(
            "Reviewed today by the practice pharmacist for her tablets, P. Mistry, and countersigned by Dr R. Buchan.",
        );
        assert!(
            found.contains("mistry") && found.contains("buchan"),
            "{found:?}"
        );
        assert!(names("Low vit D. Haemoptysis for a week").is_empty());
        let found = names("Requested by APP (advanced paramedic practitioner) G. Pugh today");
        assert!(found.contains("pugh"), "{found:?}");
    }

    fn lists() -> NotFindings {
        #[derive(Deserialize)]
        struct File {
            not_findings: NotFindingsDef,
        }
        let text = include_str!("../../rules/terminology/not-findings.toml");
        let file: File = toml::from_str(text).expect("not-findings.toml parses");
        NotFindings::compile(&file.not_findings).expect("compiles")
    }

    #[test]
    fn courtesy_and_administration_explain_nothing_clinical() {
        let l = lists();
        for text in [
            "as discussed, many thanks",
            "patient keen for scan, please arrange",
            "for 3/12, left side, routine",
        ] {
            assert!(l.unexplained(text, Vec::new()).is_empty(), "{text}");
        }
        assert_eq!(
            l.unexplained("tiredness for 3 weeks", Vec::new()),
            vec!["tiredness".to_string()]
        );
        // Covered words are explained.
        assert!(l.unexplained("neck pain", vec![(0, 9)]).is_empty());
        assert_eq!(
            l.unexplained("neck pain and palpitations", vec![(0, 9)]),
            vec!["palpitations".to_string()]
        );
    }

    #[test]
    fn a_phrase_covers_its_words_though_an_earlier_one_matches_at_the_same_place() {
        let def = NotFindingsDef {
            phrases: vec!["pt".into(), "pt keen for scan".into(), "for".into()],
            words: Vec::new(),
            common_words: Vec::new(),
        };
        let l = NotFindings::compile(&def).expect("compiles");
        assert!(l.unexplained("pt keen for scan", Vec::new()).is_empty());
        // Each phrase still covers only what it matches.
        assert_eq!(
            l.unexplained("pt keen for a scan", Vec::new()),
            vec!["keen".to_string(), "a".to_string(), "scan".to_string()]
        );
    }

    #[test]
    fn a_word_cut_off_at_the_end_of_a_field_is_the_word_it_begins() {
        let def = NotFindingsDef {
            phrases: Vec::new(),
            words: vec!["patient".into(), "requests".into(), "scan".into()],
            common_words: vec!["lumber".into()],
        };
        let l = NotFindings::compile(&def).expect("compiles");
        // (text, unexplained)
        let table: &[(&str, &[&str])] = &[
            ("patient requests sca", &[]),
            ("requests sca\npatient", &[]),
            // only at the end of a text or line: "sca" inside is no cut
            ("sca requests", &["sca"]),
            // too short to say which word it was, or the start of no listed word
            ("patient requests sc", &["sc"]),
            ("patient requests tiredn", &["tiredn"]),
            // a common word is read whole, never as the word a cut-off one begins ("lum" may be
            // a lump's)
            ("patient requests lumber", &[]),
            ("patient requests lum", &["lum"]),
        ];
        for (text, unexplained) in table {
            assert_eq!(l.unexplained(text, Vec::new()), *unexplained, "{text}");
        }
    }

    /// Not-findings of phrases alone.
    fn phrases_only(phrases: &[&str]) -> NotFindings {
        let def = NotFindingsDef {
            phrases: phrases.iter().map(|p| p.to_string()).collect(),
            words: Vec::new(),
            common_words: Vec::new(),
        };
        NotFindings::compile(&def).expect("compiles")
    }

    #[test]
    fn the_ascii_alternation_covers_what_the_unicode_one_does() {
        let l = phrases_only(&["dr\\.? [^\\W\\d_]+", "as discussed"]);
        assert!(l
            .phrases
            .as_ref()
            .is_some_and(|p| p.all_ascii.is_some() && p.each_ascii.iter().all(Option::is_some)));
        assert!(l
            .unexplained("as discussed dr smith", Vec::new())
            .is_empty());
        // a text that is not ASCII is read by the Unicode form
        assert!(l
            .unexplained("as discussed dr wójcik", Vec::new())
            .is_empty());
    }

    #[test]
    fn a_phrase_that_needs_unicode_leaves_the_others_ascii() {
        // A class of Greek letters cannot be compiled ASCII-only; the other phrases keep their
        // ASCII forms (one such phrase once turned them off for all, and long notes were read
        // by the PikeVM).
        let l = phrases_only(&["felt \\p{Greek}+ ok", "as discussed"]);
        let p = l.phrases.as_ref().expect("phrases");
        assert!(p.all_ascii.is_some());
        assert!(p.each_ascii[0].is_none() && p.each_ascii[1].is_some());
        for text in ["as discussed", "as discussed felt αβ ok"] {
            assert!(l.unexplained(text, Vec::new()).is_empty(), "{text}");
        }
    }
}
