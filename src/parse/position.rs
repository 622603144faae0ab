//! Line and column of an element in the submitted text.
//!
//! Only needed when something is wrong, so the text is re-read here on the error path and the
//! hot path pays nothing. JSON positions come from `jsonc-parser`'s AST, XML positions from
//! `roxmltree`.

use crate::fhirpath::Step;
use jsonc_parser::ast::{ObjectPropName, Value as Ast};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

/// Finds 1-based (line, column) of elements in a JSON text.
pub struct JsonPositions<'a> {
    text: &'a str,
    ast: Option<Ast<'a>>,
    /// Byte offsets where lines start, built at the first position asked for: counting the
    /// lines from the start of the text for every finding made a large Bundle with a finding
    /// in each entry quadratic.
    lines: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> JsonPositions<'a> {
    pub fn new(text: &'a str) -> Self {
        let strict = ParseOptions {
            allow_comments: false,
            allow_loose_object_property_names: false,
            allow_trailing_commas: false,
        };
        let ast = jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &strict)
            .ok()
            .and_then(|r| r.value);
        Self {
            text,
            ast,
            lines: std::cell::OnceCell::new(),
        }
    }

    /// The position of the element at `steps` (from the document root), or of the deepest
    /// ancestor that exists.
    pub fn find(&self, steps: &[Step]) -> Option<(usize, usize)> {
        let mut node = self.ast.as_ref()?;
        let mut offset = node.range().start;
        for step in steps {
            match (step, node) {
                (Step::Field(name), Ast::Object(obj)) => {
                    let Some(prop) = obj.properties.iter().find(|p| prop_name(&p.name) == name)
                    else {
                        break;
                    };
                    offset = prop.range.start;
                    node = &prop.value;
                }
                (Step::Index(i), Ast::Array(arr)) => {
                    let Some(el) = arr.elements.get(*i) else {
                        break;
                    };
                    offset = el.range().start;
                    node = el;
                }
                _ => break,
            }
        }
        let lines = self.lines.get_or_init(|| line_starts(self.text));
        Some(line_col_indexed(self.text, lines, offset))
    }
}

/// Byte offsets of the starts of lines.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// [`line_col`] with the starts of lines known.
fn line_col_indexed(text: &str, lines: &[usize], offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // The last line start at or before the offset.
    let line = lines.partition_point(|&start| start <= offset).max(1);
    let start = lines[line - 1];
    let col = text
        .get(start..offset)
        .map_or(offset - start, |s| s.chars().count())
        + 1;
    (line, col)
}

fn prop_name<'b>(name: &'b ObjectPropName<'_>) -> &'b str {
    match name {
        ObjectPropName::String(s) => &s.value,
        ObjectPropName::Word(w) => w.value,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Finds 1-based (line, column) of elements in a FHIR XML text, following the JSON steps:
/// an element name is a child element, an index the n-th child of that name, and a nested
/// resource (`entry.resource`, `contained`) has one more element named after its type.
pub struct XmlPositions<'a> {
    doc: Option<roxmltree::Document<'a>>,
}

impl<'a> XmlPositions<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            doc: roxmltree::Document::parse(text).ok(),
        }
    }

    pub fn find(&self, steps: &[Step]) -> Option<(usize, usize)> {
        let doc = self.doc.as_ref()?;
        let mut node = doc.root_element();
        let mut i = 0;
        while i < steps.len() {
            let Step::Field(name) = &steps[i] else { break };
            let name = name.strip_prefix('_').unwrap_or(name);
            let nth = match steps.get(i + 1) {
                Some(Step::Index(n)) => {
                    i += 1;
                    *n
                }
                _ => 0,
            };
            let Some(child) = node
                .children()
                .filter(|c| c.is_element() && c.tag_name().name() == name)
                .nth(nth)
            else {
                break;
            };
            node = child;
            // `<resource><ServiceRequest>`: step over the element named after the type.
            if matches!(name, "resource" | "contained" | "outcome") {
                if let Some(inner) = node.children().find(|c| c.is_element()) {
                    node = inner;
                }
            }
            i += 1;
        }
        let pos = doc.text_pos_at(node.range().start);
        Some((pos.row as usize, pos.col as usize))
    }
}

impl XmlPositions<'_> {
    /// The first element named `name` (for fhirbolt's "unknown field" errors, which carry no
    /// place): its FHIRPath-like location and its position.
    pub fn find_named(&self, name: &str) -> Option<(crate::fhirpath::FhirPath, (usize, usize))> {
        let doc = self.doc.as_ref()?;
        let node = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == name)?;
        let mut chain: Vec<roxmltree::Node<'_, '_>> =
            node.ancestors().filter(|n| n.is_element()).collect();
        chain.reverse();
        let root = chain.first()?;
        let mut path = crate::fhirpath::FhirPath::root(root.tag_name().name());
        let mut skip_next = false;
        for n in chain.iter().skip(1) {
            if skip_next {
                // The element named after a nested resource's type adds no step.
                skip_next = false;
                continue;
            }
            let tag = n.tag_name().name();
            path = path.field(tag);
            let same: Vec<_> = n
                .parent()
                .into_iter()
                .flat_map(|p| p.children())
                .filter(|c| c.is_element() && c.tag_name().name() == tag)
                .collect();
            if same.len() > 1 {
                if let Some(i) = same.iter().position(|c| c == n) {
                    path = path.index(i);
                }
            }
            skip_next = matches!(tag, "resource" | "contained");
        }
        let pos = doc.text_pos_at(node.range().start);
        Some((path, (pos.row as usize, pos.col as usize)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_json_positions() {
        let text = "{\n  \"a\": [\n    {\"b\": 1},\n    {\"c\": 2}\n  ]\n}";
        let p = JsonPositions::new(text);
        let steps = [
            Step::Field("a".into()),
            Step::Index(1),
            Step::Field("c".into()),
        ];
        assert_eq!(p.find(&steps), Some((4, 6)));
        assert_eq!(p.find(&[]), Some((1, 1)));
    }

    #[test]
    fn indexed_lines_agree_with_counting() {
        let text = "{\n  \"ä\": \"é\u{1F600}x\",\n\n  \"b\": [1,\n 2]\n}\n";
        let lines = line_starts(text);
        for (offset, _) in text.char_indices().chain([(text.len(), ' ')]) {
            assert_eq!(
                line_col_indexed(text, &lines, offset),
                line_col(text, offset),
                "{offset}"
            );
        }
    }

    #[test]
    fn finds_xml_positions() {
        let text = "<Bundle xmlns=\"http://hl7.org/fhir\">\n <entry>\n  <resource>\n   <ServiceRequest>\n    <status value=\"x\"/>\n   </ServiceRequest>\n  </resource>\n </entry>\n</Bundle>";
        let p = XmlPositions::new(text);
        let steps = [
            Step::Field("entry".into()),
            Step::Index(0),
            Step::Field("resource".into()),
            Step::Field("status".into()),
        ];
        assert_eq!(p.find(&steps), Some((5, 5)));
    }
}
