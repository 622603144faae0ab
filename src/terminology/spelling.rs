//! Spelling tolerance for clinical words in free text.
//!
//! Two steps, both data (`[spelling]` in `rules/terminology/spelling.toml`):
//! 1. a curated list of misspellings and variants, word for word ("heamaturia" → "haematuria");
//! 2. a bounded edit distance (optimal string alignment: insertions, deletions, substitutions
//!    and transpositions of neighbours) from a word to the listed long clinical words, only for
//!    words of at least `min_length` letters (never an abbreviation), only when exactly one
//!    vocabulary word is nearest, and never between the pairs of `never_merge` (ileum / ilium:
//!    different words a letter apart).
//!
//! Corrections are kept with their place in the corrected text, so that a finding can show the
//! word as written and what it was read as.

use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// The `[spelling]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpellingDef {
    /// Words shorter than this are never corrected by edit distance.
    pub min_length: usize,
    /// The largest edit distance for a word of `min_length` letters or more.
    pub max_distance: usize,
    /// Words of at least this many letters may be `long_max_distance` away.
    pub long_length: usize,
    pub long_max_distance: usize,
    /// Long clinical words that misspellings are corrected towards.
    pub vocabulary: Vec<String>,
    /// Pairs (or groups) of real words that differ by a letter or two and mean different
    /// things: never corrected into one another, and never corrected at all.
    pub never_merge: Vec<Vec<String>>,
    /// Misspelling or variant → the word it is read as.
    pub corrections: HashMap<String, String>,
}

/// One word read as another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// Where the corrected word is in the corrected text.
    pub start: usize,
    pub end: usize,
    /// The word as written.
    pub written: String,
}

/// The compiled spelling data.
#[derive(Debug, Clone, Default)]
pub struct Speller {
    min_length: usize,
    max_distance: usize,
    long_length: usize,
    long_max_distance: usize,
    vocabulary: Vec<String>,
    known: HashSet<String>,
    protected: HashSet<String>,
    never: HashSet<(String, String)>,
    corrections: HashMap<String, String>,
}

/// Optimal string alignment distance between `a` and `b`, or `None` when it exceeds `limit`.
fn distance(a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > limit {
            return None;
        }
    }
    let v = d[a.len() * w + b.len()];
    (v <= limit).then_some(v)
}

impl Speller {
    pub fn compile(def: &SpellingDef) -> Result<Self, String> {
        let mut s = Speller {
            min_length: def.min_length.max(5),
            max_distance: def.max_distance,
            long_length: def.long_length.max(def.min_length),
            long_max_distance: def.long_max_distance,
            ..Speller::default()
        };
        for (wrong, right) in &def.corrections {
            let (w, r) = (wrong.to_lowercase(), right.to_lowercase());
            if w.contains(' ') || w.is_empty() {
                return Err(format!(
                    "[spelling] corrections: '{wrong}' is not one word (write phrases as concept patterns)"
                ));
            }
            s.corrections.insert(w, r);
        }
        for group in &def.never_merge {
            if group.len() < 2 {
                return Err(format!(
                    "[spelling] never_merge: {group:?} needs at least two words"
                ));
            }
            for a in group {
                s.protected.insert(a.to_lowercase());
                for b in group.iter().filter(|b| *b != a) {
                    s.never.insert((a.to_lowercase(), b.to_lowercase()));
                }
            }
        }
        for v in &def.vocabulary {
            let v = v.to_lowercase();
            if !v.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(format!(
                    "[spelling] vocabulary: '{v}' must be one word of letters a-z"
                ));
            }
            if s.known.insert(v.clone()) {
                s.vocabulary.push(v);
            }
        }
        Ok(s)
    }

    /// The word `word` is always read as, by the table of corrections.
    pub fn corrected(&self, word: &str) -> Option<&str> {
        self.corrections.get(word).map(String::as_str)
    }

    /// What `word` (lower case letters) is read as, if it is read as another word.
    fn correct_word(&self, word: &str) -> Option<String> {
        if let Some(right) = self.corrections.get(word) {
            return Some(right.clone());
        }
        if word.len() < self.min_length
            || self.known.contains(word)
            || self.protected.contains(word)
        {
            return None;
        }
        let limit = if word.len() >= self.long_length {
            self.long_max_distance
        } else {
            self.max_distance
        };
        if limit == 0 {
            return None;
        }
        let mut best: Option<(usize, &str)> = None;
        let mut tied = false;
        for v in &self.vocabulary {
            // A plural or singular of a listed word is that word, not a misspelling.
            if word.strip_suffix('s') == Some(v.as_str()) || v.strip_suffix('s') == Some(word) {
                return None;
            }
            let Some(d) = distance(word.as_bytes(), v.as_bytes(), limit) else {
                continue;
            };
            match best {
                Some((b, _)) if d > b => {}
                Some((b, _)) if d == b => tied = true,
                _ => {
                    best = Some((d, v));
                    tied = false;
                }
            }
        }
        match best {
            Some((_, v)) if !tied && !self.never.contains(&(word.to_string(), v.to_string())) => {
                Some(v.to_string())
            }
            _ => None,
        }
    }

    /// Corrects the normalised `text`: the corrected text and each correction made.
    pub fn correct(&self, text: &str) -> (String, Vec<Correction>) {
        if self.corrections.is_empty() && self.vocabulary.is_empty() {
            return (text.to_string(), Vec::new());
        }
        let mut out = String::with_capacity(text.len());
        let mut corrections = Vec::new();
        let mut memo: HashMap<&str, Option<String>> = HashMap::new();
        let mut rest = text;
        while let Some(i) = rest.find(|c: char| c.is_ascii_lowercase()) {
            out.push_str(&rest[..i]);
            let word_len = rest[i..]
                .find(|c: char| !c.is_ascii_lowercase())
                .unwrap_or(rest.len() - i);
            let word = &rest[i..i + word_len];
            let fixed = memo
                .entry(word)
                .or_insert_with(|| self.correct_word(word))
                .clone();
            match fixed {
                Some(right) => {
                    let start = out.len();
                    out.push_str(&right);
                    corrections.push(Correction {
                        start,
                        end: out.len(),
                        written: word.to_string(),
                    });
                }
                None => out.push_str(word),
            }
            rest = &rest[i + word_len..];
        }
        out.push_str(rest);
        (out, corrections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static SPELLER: LazyLock<Speller> = LazyLock::new(|| {
        #[derive(Deserialize)]
        struct File {
            spelling: SpellingDef,
        }
        let text = include_str!("../../rules/terminology/spelling.toml");
        let file: File = toml::from_str(text).expect("spelling.toml parses");
        Speller::compile(&file.spelling).expect("spelling.toml compiles")
    });

    fn read(text: &str) -> String {
        SPELLER.correct(text).0
    }

    #[test]
    fn distances() {
        assert_eq!(distance(b"haematuria", b"heamaturia", 2), Some(1));
        assert_eq!(distance(b"haematuria", b"hematuria", 2), Some(1));
        assert_eq!(distance(b"dysphagia", b"dysphasia", 2), Some(1));
        assert_eq!(distance(b"abc", b"xyz", 1), None);
    }

    #[test]
    fn corrects_long_clinical_words() {
        assert_eq!(read("visible heamaturia"), "visible haematuria");
        assert_eq!(read("lymphadenopthy"), "lymphadenopathy");
        assert_eq!(read("coccydinia"), "coccydynia");
        assert_eq!(read("?pnuemothorax"), "?pneumothorax");
        let (t, c) = SPELLER.correct("painless swellling");
        assert_eq!(t, "painless swelling");
        assert_eq!(c[0].written, "swellling");
        assert_eq!(&t[c[0].start..c[0].end], "swelling");
    }

    #[test]
    fn never_merges_or_touches_short_words() {
        // Different words a letter apart.
        for w in [
            "ilium",
            "ileum",
            "peroneal",
            "perineal",
            "ureter",
            "urethra",
            "dysphasia",
        ] {
            assert_eq!(read(w), w);
        }
        // Abbreviations and short words are never corrected by distance.
        for w in ["lbp", "sob", "uss", "nvh", "mass", "lumps", "hip"] {
            assert_eq!(read(w), w);
        }
        // Plurals of listed words are left alone.
        assert_eq!(read("fractures"), "fractures");
    }

    #[test]
    fn long_text_is_linear() {
        let text = "swellling ".repeat(100_000);
        let started = std::time::Instant::now();
        let (_, c) = SPELLER.correct(&text);
        assert_eq!(c.len(), 100_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
