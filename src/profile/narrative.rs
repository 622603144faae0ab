//! The narrative rules of FHIR R4 (Narrative.div, invariants txt-1 and txt-2).
//!
//! txt-1: the XHTML holds only the basic formatting elements and attributes of HTML 4.0
//! (chapters 7-11 and 15: text, lists, tables, images), `<a>` with `name` or `href`, and
//! internal `style` attributes; no head or body, scripts, forms, frames, objects, base, link or
//! event attributes. txt-2: it has some non-whitespace content. FHIR XHTML is XML: only the
//! five XML entities and character references, never HTML entities such as `&nbsp;`.
//!
//! A downstream viewer may render the narrative, so anything active in it is an error.

use crate::fhirpath::FhirPath;
use crate::finding::{Finding, FindingId, IssueType, Severity};

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The elements txt-1 allows (HTML 4.0 chapters 7-11 and 15, with `a` and `img`).
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "area",
    "b",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "map",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "ul",
    "var",
];

/// Attributes allowed on any of those elements.
const COMMON_ATTRIBUTES: &[&str] = &[
    "title",
    "style",
    "class",
    "id",
    "lang",
    "dir",
    "accesskey",
    "tabindex",
    // tables (HTML 4.0 chapter 11)
    "span",
    "width",
    "height",
    "align",
    "valign",
    "char",
    "charoff",
    "abbr",
    "axis",
    "headers",
    "scope",
    "rowspan",
    "colspan",
    "border",
    "summary",
    "frame",
    "rules",
    "cellspacing",
    "cellpadding",
    "bgcolor",
    "nowrap",
    // lists and text
    "type",
    "start",
    "value",
    "compact",
    "cite",
    "datetime",
    "clear",
    "size",
    "noshade",
];

/// Attributes allowed on one element only.
fn element_attribute(element: &str, attribute: &str) -> bool {
    match element {
        "a" => matches!(
            attribute,
            "href" | "name" | "rel" | "rev" | "hreflang" | "shape" | "coords"
        ),
        "img" => matches!(
            attribute,
            "src" | "alt" | "longdesc" | "usemap" | "ismap" | "hspace" | "vspace"
        ),
        "area" => matches!(attribute, "href" | "shape" | "coords" | "alt" | "nohref"),
        "map" => attribute == "name",
        _ => false,
    }
}

/// Elements that make narrative active or pull content in from elsewhere: named in the message.
const ACTIVE: &[&str] = &[
    "script", "noscript", "form", "input", "button", "select", "option", "textarea", "iframe",
    "frame", "frameset", "object", "embed", "applet", "param", "base", "link", "meta", "style",
    "head", "body", "html", "svg", "math",
];

fn invariant(id: FindingId, key: &str, text: String, at: &FhirPath) -> Finding {
    Finding::new(
        id,
        Severity::Error,
        IssueType::Invariant,
        format!("{text} (FHIR invariant {key})"),
    )
    .at(at.clone())
    .with_diagnostics(format!("Narrative.div {key}"))
}

/// Whether a URL would run code or fetch something when followed or shown.
fn active_url(value: &str) -> bool {
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    v.starts_with("javascript:") || v.starts_with("vbscript:") || v.starts_with("data:text/html")
}

/// Whether a hyperlink can be followed by whoever reads the narrative: `urn:` (urn:uuid: of a
/// Bundle entry, urn:oid:) and `cid:` name things without saying where they are. The HL7
/// validator refuses these schemes in narrative links for the same reason.
fn followable(href: &str) -> bool {
    let scheme = href
        .split_once(':')
        .map(|(s, _)| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    !matches!(scheme.as_str(), "urn" | "cid")
}

/// Checks the XHTML of one `Narrative.div` found at `at`.
pub fn check(div: &str, at: &FhirPath, out: &mut Vec<Finding>) {
    let doc = match roxmltree::Document::parse(div) {
        Ok(d) => d,
        Err(e) => {
            let why = if matches!(e, roxmltree::Error::DtdDetected) {
                "it has a document type declaration".to_string()
            } else {
                e.to_string()
            };
            out.push(invariant(
                FindingId::NarrativeNotWellFormed, "txt-1",
                format!("The narrative is not well-formed XHTML: {why}. FHIR narrative is XML: use character references (&#160;) instead of HTML entities such as &nbsp;"),
                at,
            ));
            return;
        }
    };
    let root = doc.root_element();
    if root.tag_name().name() != "div" || root.tag_name().namespace() != Some(XHTML_NS) {
        out.push(invariant(
            FindingId::NarrativeNotOneDiv, "txt-1",
            format!(
                "The narrative must be one <div> element in the XHTML namespace ({XHTML_NS}), not <{}>",
                root.tag_name().name()
            ),
            at,
        ));
        return;
    }
    let mut has_content = false;
    let mut problems: Vec<String> = Vec::new();
    let mut dead_links: Vec<String> = Vec::new();
    for node in root.descendants() {
        if node.is_text() {
            has_content |= node.text().is_some_and(|t| !t.trim().is_empty());
            continue;
        }
        if node.is_pi() {
            problems.push("a processing instruction".into());
            continue;
        }
        if !node.is_element() {
            continue;
        }
        let name = node.tag_name().name();
        if node.tag_name().namespace() != Some(XHTML_NS) {
            problems.push(format!(
                "the element <{name}> in the namespace '{}'",
                node.tag_name().namespace().unwrap_or("")
            ));
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if ACTIVE.contains(&lower.as_str()) {
            problems.push(format!("the element <{name}>"));
            continue;
        }
        if !ELEMENTS.contains(&name) {
            problems.push(format!(
                "the element <{name}>, which is not basic HTML formatting"
            ));
            continue;
        }
        has_content |= name == "img";
        for attr in node.attributes() {
            let a = attr.name();
            let allowed = match attr.namespace() {
                None => COMMON_ATTRIBUTES.contains(&a) || element_attribute(name, a),
                // xml:space only says how whitespace is kept.
                Some(XML_NS) => matches!(a, "lang" | "space"),
                Some(_) => false,
            };
            if a.to_ascii_lowercase().starts_with("on") && attr.namespace().is_none() {
                problems.push(format!("the event attribute '{a}' on <{name}>"));
            } else if !allowed {
                let shown = match attr.namespace() {
                    Some(XML_NS) => format!("xml:{a}"),
                    Some(ns) => format!("{{{ns}}}{a}"),
                    None => a.to_string(),
                };
                problems.push(format!("the attribute '{shown}' on <{name}>"));
            } else if matches!(a, "href" | "src" | "longdesc" | "cite" | "usemap")
                && active_url(attr.value())
            {
                problems.push(format!("a script URL in '{a}' on <{name}>"));
            } else if name == "a"
                && a == "href"
                && !followable(attr.value())
                && !dead_links.iter().any(|l| l == attr.value())
            {
                dead_links.push(attr.value().to_string());
            } else if a == "style" {
                let s = attr.value().to_ascii_lowercase();
                if s.contains("expression(") || s.contains("javascript:") || s.contains("url(") {
                    problems.push(format!(
                        "a style on <{name}> that loads or runs something (url(), expression())"
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        problems.dedup();
        out.push(invariant(
            FindingId::NarrativeNotBasicHtml, "txt-1",
            format!(
                "The narrative holds {}: FHIR narrative allows only basic HTML formatting, with no scripts, event attributes, forms, frames or objects",
                problems.join(", ")
            ),
            at,
        ));
    }
    if !dead_links.is_empty() {
        out.push(
            Finding::new(
                FindingId::NarrativeDeadLink,
                Severity::Error,
                IssueType::Invalid,
                format!(
                    "The narrative links to {}: a urn: or cid: URI names something but is no address a reader's browser can follow; link to an http(s) URL or a #fragment of the resource, or leave the name as text.",
                    dead_links.iter().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(", ")
                ),
            )
            .at(at.clone()),
        );
    }
    if !has_content {
        out.push(invariant(
            FindingId::NarrativeEmpty,
            "txt-2",
            "The narrative has no content: it must hold some non-whitespace text".into(),
            at,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(div: &str) -> Vec<String> {
        let mut out = Vec::new();
        check(
            div,
            &FhirPath::root("ServiceRequest").field("text").field("div"),
            &mut out,
        );
        out.into_iter().map(|f| f.text).collect()
    }

    const NS: &str = r#"xmlns="http://www.w3.org/1999/xhtml""#;

    #[test]
    fn safe_narrative_passes() {
        for body in [
            "<p>Chest X-ray</p>",
            r#"<p class="x" style="color: red" xml:lang="en-GB" lang="en">A &amp; B &#160;&lt;</p>"#,
            r##"<table border="1"><thead><tr><th scope="col">a</th></tr></thead><tbody><tr><td colspan="2">b</td></tr></tbody></table><a href="https://example.org/x" name="n">link</a><a href="#local">here</a>"##,
            r#"<ul><li>one</li></ul><ol start="2"><li>two</li></ol><dl><dt>t</dt><dd>d</dd></dl><pre>x</pre><br/><hr/>"#,
            r##"<img src="#pic" alt="picture"/>"##,
        ] {
            let f = findings(&format!("<div {NS}>{body}</div>"));
            assert!(f.is_empty(), "{body}: {f:?}");
        }
        let f = findings(&format!(
            r#"<div {NS} xml:lang="en-GB"><div>nested</div></div>"#
        ));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn active_content_is_an_error() {
        for (body, expect) in [
            ("<p>x</p><script>alert(1)</script>", "<script>"),
            (
                r#"<img src="x" onerror="alert(1)"/>"#,
                "event attribute 'onerror'",
            ),
            (r#"<p onClick="x()">x</p>"#, "event attribute 'onClick'"),
            (r#"<form action="x"><input name="a"/></form>x"#, "<form>"),
            (r#"<iframe src="https://example.org"/>x"#, "<iframe>"),
            (r#"<object data="x">x</object>"#, "<object>"),
            (r#"<a href="javascript:alert(1)">x</a>"#, "script URL"),
            (r#"<a href=" JaVaScRiPt:alert(1)">x</a>"#, "script URL"),
            (
                r#"<p style="background: url(https://tracker.example/x.png)">x</p>"#,
                "style",
            ),
            (r#"<blink>x</blink>"#, "<blink>, which is not basic"),
            (r#"<p data-x="1">x</p>"#, "'data-x'"),
            (
                r#"<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>x"#,
                "namespace 'http://www.w3.org/2000/svg'",
            ),
        ] {
            let f = findings(&format!("<div {NS}>{body}</div>"));
            assert_eq!(f.len(), 1, "{body}: {f:?}");
            assert!(f[0].contains(expect), "{body}: {f:?}");
            assert!(f[0].contains("txt-1"), "{f:?}");
        }
    }

    #[test]
    fn entities_and_shape() {
        let f = findings(&format!("<div {NS}>a&nbsp;b</div>"));
        assert!(
            f[0].contains("not well-formed") && f[0].contains("&#160;"),
            "{f:?}"
        );
        let f = findings("<div>x</div>");
        assert!(f[0].contains("XHTML namespace"), "{f:?}");
        let f = findings(&format!("<p {NS}>x</p>"));
        assert!(f[0].contains("not <p>"), "{f:?}");
        let f = findings("Just text");
        assert!(f[0].contains("not well-formed"), "{f:?}");
    }

    #[test]
    fn links_must_be_followable() {
        let f = findings(&format!(
            r#"<div {NS}><p><a href="urn:uuid:7221aa91-d9e1-44fa-8b90-c5a8c7caeade">Endpoint</a> <a href="cid:part1@x">att</a></p></div>"#
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].contains("'urn:uuid:7221aa91-d9e1-44fa-8b90-c5a8c7caeade', 'cid:part1@x'"),
            "{f:?}"
        );
        for href in [
            "https://example.org/x",
            "#local",
            "mailto:gp@example.org",
            "tel:+441234",
            "Patient/1",
        ] {
            let f = findings(&format!(r#"<div {NS}><a href="{href}">x</a></div>"#));
            assert!(f.is_empty(), "{href}: {f:?}");
        }
        // An anchor's name is no link.
        let f = findings(&format!(r#"<div {NS}><a name="urn:x">x</a></div>"#));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn empty_narrative_breaks_txt_2() {
        let f = findings(&format!("<div {NS}>  <p> </p></div>"));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("txt-2"), "{f:?}");
        assert!(findings(&format!(r#"<div {NS}><img src="a.png" alt=""/></div>"#)).is_empty());
    }
}
