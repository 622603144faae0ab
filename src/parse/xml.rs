//! FHIR XML as real senders write it, read into FHIR JSON.
//!
//! fhirbolt's XML reader (through `fhir-codec`) knows the R4 model but refuses much that FHIR
//! XML allows: any namespace declaration besides the default one (`xmlns:xsi` with
//! `xsi:schemaLocation`, an unused `xmlns:xhtml`), prefixed elements, an encoding name not
//! written `UTF-8`, and any attribute on the narrative `div` (`xml:lang`). So the document is
//! read here first with `roxmltree` (namespace-aware, no DTD), checked against the rules of
//! FHIR XML (R4 xml.html), and written again in the one form fhirbolt reads: FHIR namespace as
//! the default, no prefixes, no comments, UTF-8. Each narrative `div` is serialised here (so
//! its attributes and the namespaces of its content survive) and put back into the JSON after
//! fhirbolt has read the rest.

use crate::fhirpath::FhirPath;
use crate::finding::{Finding, FindingId, IssueType, Severity};
use roxmltree::{Document, Node, NodeType};
use serde_json::Value;

pub const FHIR_NS: &str = "http://hl7.org/fhir";
pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// What fhirbolt finds in place of narrative number `i`; replaced by the real one afterwards.
fn placeholder(i: usize) -> String {
    format!("fhir-narrative-{i}")
}

/// The document rewritten for fhirbolt, with the narratives it carries.
pub struct Canonical {
    pub xml: String,
    divs: Vec<String>,
}

impl Canonical {
    /// Puts each narrative `div` back into the JSON that fhirbolt made of [`Canonical::xml`].
    pub fn restore_narratives(&self, json: &mut Value) {
        let prefix = format!("<div xmlns=\"{XHTML_NS}\">");
        match json {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if k == "div" {
                        if let Value::String(s) = v {
                            let index = s
                                .strip_prefix(&prefix)
                                .and_then(|r| r.strip_suffix("</div>"))
                                .and_then(|r| r.strip_prefix("fhir-narrative-"))
                                .and_then(|n| n.parse::<usize>().ok());
                            if let Some(div) = index.and_then(|i| self.divs.get(i)) {
                                *s = div.clone();
                            }
                            continue;
                        }
                    }
                    self.restore_narratives(v);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.restore_narratives(v)),
            _ => {}
        }
    }
}

/// The encoding the XML declaration names, if it names one.
fn declared_encoding(text: &str) -> Option<&str> {
    let decl = text.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(&rest[..rest.find(quote)?])
}

fn position(doc: &Document<'_>, node: Node<'_, '_>) -> (usize, usize) {
    let p = doc.text_pos_at(node.range().start);
    (p.row as usize, p.col as usize)
}

fn describe_ns(ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!("the namespace '{ns}'"),
        None => "no namespace".to_string(),
    }
}

struct Writer<'d, 'i> {
    doc: &'d Document<'i>,
    out: String,
    divs: Vec<String>,
    errors: Vec<Finding>,
}

impl Writer<'_, '_> {
    fn error(&mut self, id: FindingId, node: Node<'_, '_>, at: &FhirPath, text: String) {
        let pos = position(self.doc, node);
        self.errors.push(
            Finding::new(id, Severity::Error, IssueType::Structure, text)
                .at(at.clone())
                .with_position(Some(pos)),
        );
    }

    /// A FHIR element (in the FHIR namespace) and everything below it.
    fn fhir_element(&mut self, node: Node<'_, '_>, at: &FhirPath, is_root: bool) {
        let name = node.tag_name().name();
        self.out.push('<');
        self.out.push_str(name);
        if is_root {
            self.out.push_str(" xmlns=\"");
            self.out.push_str(FHIR_NS);
            self.out.push('"');
        }
        for attr in node.attributes() {
            match (attr.namespace(), attr.name()) {
                (None, "value" | "id" | "url") => {
                    self.out.push(' ');
                    self.out.push_str(attr.name());
                    self.out.push_str("=\"");
                    escape_into(&mut self.out, attr.value(), true);
                    self.out.push('"');
                }
                // Schema hints for XML tools: no part of the resource.
                (Some(XSI_NS), "schemaLocation" | "noNamespaceSchemaLocation") => {}
                (ns, local) => {
                    let shown = match ns {
                        Some(XML_NS) => format!("xml:{local}"),
                        Some(ns) => format!("{{{ns}}}{local}"),
                        None => local.to_string(),
                    };
                    self.error(FindingId::XmlAttributeNotAllowed, node, at, format!("Attribute '{shown}' is not allowed on the FHIR element '{name}': FHIR XML carries data only in the attributes 'value', 'id' and 'url'."));
                }
            }
        }
        let children: Vec<Node<'_, '_>> = node.children().collect();
        if children.iter().all(|c| !c.is_element()) {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
        }
        // A resource inside `contained`, `resource` or `outcome` is named after its type and
        // adds no FHIRPath step.
        let wraps_resource = !is_root && matches!(name, "contained" | "resource" | "outcome");
        for child in &children {
            match child.node_type() {
                NodeType::Element => {
                    let child_name = child.tag_name().name();
                    let child_at = if wraps_resource {
                        at.clone()
                    } else {
                        let same = children
                            .iter()
                            .filter(|c| c.is_element() && c.tag_name().name() == child_name)
                            .count();
                        let here = at.field(child_name);
                        if same > 1 {
                            let i = children
                                .iter()
                                .filter(|c| c.is_element() && c.tag_name().name() == child_name)
                                .position(|c| c == child)
                                .unwrap_or(0);
                            here.index(i)
                        } else {
                            here
                        }
                    };
                    match child.tag_name().namespace() {
                        Some(FHIR_NS) if child_name != "div" => {
                            self.fhir_element(*child, &child_at, false)
                        }
                        Some(XHTML_NS) if child_name == "div" => self.narrative(*child),
                        Some(FHIR_NS) => self.error(FindingId::XmlNarrativeNamespace, *child, &child_at, "The narrative 'div' must be in the XHTML namespace (xmlns=\"http://www.w3.org/1999/xhtml\").".to_string()),
                        ns => self.error(FindingId::XmlWrongNamespace, *child, &child_at, format!("Element '{child_name}' is in {}: FHIR elements are in the namespace '{FHIR_NS}' (only the narrative 'div' is XHTML).", describe_ns(ns))),
                    }
                }
                NodeType::Text if !child.text().unwrap_or("").trim().is_empty() => {
                    self.error(FindingId::XmlTextNotAllowed, *child, at, format!("Text is not allowed in the FHIR element '{name}': FHIR XML carries values in the 'value' attribute."));
                }
                NodeType::PI => self.error(
                    FindingId::XmlProcessingInstruction,
                    *child,
                    at,
                    "Processing instructions are not allowed in FHIR XML.".to_string(),
                ),
                // Comments carry no data.
                _ => {}
            }
        }
        if children.iter().any(|c| c.is_element()) {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
    }

    /// A narrative `div`: serialised whole, and a placeholder for fhirbolt.
    fn narrative(&mut self, node: Node<'_, '_>) {
        let mut div = String::new();
        let mut pis = Vec::new();
        xhtml_into(&mut div, node, None, &mut pis);
        for pi in pis {
            let pos = position(self.doc, pi);
            self.errors.push(
                Finding::new(
                    FindingId::XmlProcessingInstruction,
                    Severity::Error,
                    IssueType::Structure,
                    "Processing instructions are not allowed in FHIR XML.",
                )
                .with_position(Some(pos)),
            );
        }
        let i = self.divs.len();
        self.divs.push(div);
        self.out.push_str("<div xmlns=\"");
        self.out.push_str(XHTML_NS);
        self.out.push_str("\">");
        self.out.push_str(&placeholder(i));
        self.out.push_str("</div>");
    }
}

/// Writes an element of a narrative as XHTML text, declaring its namespace where it differs
/// from its parent's (`parent_ns`), attributes in other namespaces with a prefix of their own.
fn xhtml_into<'a, 'i>(
    out: &mut String,
    node: Node<'a, 'i>,
    parent_ns: Option<&str>,
    pis: &mut Vec<Node<'a, 'i>>,
) {
    let ns = node.tag_name().namespace();
    let name = node.tag_name().name();
    out.push('<');
    out.push_str(name);
    if ns != parent_ns {
        out.push_str(" xmlns=\"");
        escape_into(out, ns.unwrap_or(""), true);
        out.push('"');
    }
    let mut prefixes = 0;
    for attr in node.attributes() {
        out.push(' ');
        match attr.namespace() {
            None => {}
            Some(XML_NS) => out.push_str("xml:"),
            Some(other) => {
                prefixes += 1;
                out.push_str(&format!("xmlns:a{prefixes}=\""));
                escape_into(out, other, true);
                out.push_str(&format!("\" a{prefixes}:"));
            }
        }
        out.push_str(attr.name());
        out.push_str("=\"");
        escape_into(out, attr.value(), true);
        out.push('"');
    }
    if !node.has_children() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in node.children() {
        match child.node_type() {
            NodeType::Element => xhtml_into(out, child, ns, pis),
            NodeType::Text => escape_into(out, child.text().unwrap_or(""), false),
            NodeType::PI => pis.push(child),
            _ => {}
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            // Attribute values are normalised by XML readers: these survive only as references.
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            // Text keeps a carriage return only as a reference.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Checks a well-formed document against the rules of FHIR XML and writes it in the form
/// fhirbolt reads. `text` is the document `doc` was parsed from.
pub fn canonicalise(text: &str, doc: &Document<'_>) -> Result<Canonical, Vec<Finding>> {
    let mut errors = Vec::new();
    // Encoding names are case-insensitive (XML 1.0 §4.3.3); FHIR XML is UTF-8.
    if let Some(enc) = declared_encoding(text) {
        if !enc.eq_ignore_ascii_case("UTF-8") {
            errors.push(
                Finding::new(
                    FindingId::XmlEncoding,
                    Severity::Error,
                    IssueType::Structure,
                    format!("The XML declares the encoding '{enc}': FHIR XML is UTF-8."),
                )
                .with_position(Some((1, 1))),
            );
        }
    }
    let root = doc.root_element();
    let mut writer = Writer {
        doc,
        out: String::with_capacity(text.len()),
        divs: Vec::new(),
        errors,
    };
    writer
        .out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    // Processing instructions outside the root element (the declaration is not one).
    for pi in doc
        .root()
        .children()
        .filter(|n| n.node_type() == NodeType::PI)
    {
        let pos = position(doc, pi);
        writer.errors.push(
            Finding::new(
                FindingId::XmlProcessingInstruction,
                Severity::Error,
                IssueType::Structure,
                "Processing instructions are not allowed in FHIR XML.",
            )
            .with_position(Some(pos)),
        );
    }
    let name = root.tag_name().name();
    let at = FhirPath::root(name);
    if root.tag_name().namespace() == Some(FHIR_NS) {
        writer.fhir_element(root, &at, true);
    } else {
        let ns = describe_ns(root.tag_name().namespace());
        writer.error(
            FindingId::XmlRootNamespace, root,
            &at,
            format!("The root element '{name}' is in {ns}: a FHIR resource is in the namespace '{FHIR_NS}' (xmlns=\"{FHIR_NS}\")."),
        );
    }
    if writer.errors.is_empty() {
        Ok(Canonical {
            xml: writer.out,
            divs: writer.divs,
        })
    } else {
        Err(writer.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Result<Canonical, Vec<Finding>> {
        let doc = Document::parse(text).expect("well-formed");
        canonicalise(text, &doc)
    }

    fn errors(text: &str) -> Vec<String> {
        match canon(text) {
            Ok(c) => panic!("expected errors, got {}", c.xml),
            Err(e) => e.into_iter().map(|f| f.text).collect(),
        }
    }

    #[test]
    fn encoding_names_are_case_insensitive() {
        assert_eq!(
            declared_encoding("<?xml version=\"1.0\" encoding='utf-8'?><a/>"),
            Some("utf-8")
        );
        assert_eq!(declared_encoding("<?xml version=\"1.0\"?><a/>"), None);
        assert!(canon(
            r#"<?xml version="1.0" encoding="utf-8"?><Patient xmlns="http://hl7.org/fhir"/>"#
        )
        .is_ok());
        assert!(canon(
            r#"<?xml version="1.0" encoding="Utf-8"?><Patient xmlns="http://hl7.org/fhir"/>"#
        )
        .is_ok());
        let e = errors(
            r#"<?xml version="1.0" encoding="ISO-8859-1"?><Patient xmlns="http://hl7.org/fhir"/>"#,
        );
        assert!(e[0].contains("'ISO-8859-1'"), "{e:?}");
    }

    #[test]
    fn prefixes_and_extra_namespaces_are_rewritten() {
        let c = canon(r#"<f:Patient xmlns:f="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir x.xsd" xmlns:xhtml="http://www.w3.org/1999/xhtml"><!-- c --><f:gender value="a &amp; b&#10;"/></f:Patient>"#)
            .expect("valid");
        assert_eq!(
            c.xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><gender value="a &amp; b&#10;"/></Patient>"#
        );
    }

    #[test]
    fn narrative_keeps_its_attributes_and_content() {
        let text = r#"<Patient xmlns="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml"><text><status value="generated"/><h:div xml:lang="en-GB" lang="en-GB"><h:p class="c">A &amp; <h:b>B</h:b><h:br/></h:p></h:div></text></Patient>"#;
        let c = canon(text).expect("valid");
        assert!(c.xml.contains(">fhir-narrative-0</div>"), "{}", c.xml);
        assert_eq!(
            c.divs[0],
            r#"<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="en-GB" lang="en-GB"><p class="c">A &amp; <b>B</b><br/></p></div>"#
        );
        let mut json = serde_json::json!({"text": {"div": format!("<div xmlns=\"{XHTML_NS}\">fhir-narrative-0</div>")}});
        c.restore_narratives(&mut json);
        assert_eq!(json["text"]["div"], c.divs[0].as_str());
    }

    #[test]
    fn what_fhir_xml_forbids_is_refused() {
        // Wrong or missing namespace on the root.
        assert!(errors(r#"<Patient/>"#)[0].contains("no namespace"));
        assert!(errors(r#"<Patient xmlns="http://hl7.org/fhir/"/>"#)[0]
            .contains("'http://hl7.org/fhir/'"));
        // A foreign element inside a resource.
        let e = errors(
            r#"<Patient xmlns="http://hl7.org/fhir" xmlns:x="urn:x"><x:gender value="male"/></Patient>"#,
        );
        assert!(
            e[0].contains("'gender' is in the namespace 'urn:x'"),
            "{e:?}"
        );
        // Attributes other than value, id and url.
        let e = errors(
            r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male" xml:lang="en"/></Patient>"#,
        );
        assert!(e[0].contains("'xml:lang'"), "{e:?}");
        let e = errors(
            r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male" code="x"/></Patient>"#,
        );
        assert!(e[0].contains("'code'"), "{e:?}");
        // Text content outside the narrative.
        let e = errors(r#"<Patient xmlns="http://hl7.org/fhir"><gender>male</gender></Patient>"#);
        assert!(e[0].contains("Text is not allowed"), "{e:?}");
        // Processing instructions, before the root and inside.
        let e = errors(
            r#"<?xml version="1.0"?><?xml-stylesheet href="a.xsl"?><Patient xmlns="http://hl7.org/fhir"><?pi x?></Patient>"#,
        );
        assert_eq!(e.len(), 2, "{e:?}");
        // The narrative div in the FHIR namespace.
        let e = errors(
            r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div>x</div></text></Patient>"#,
        );
        assert!(e[0].contains("XHTML namespace"), "{e:?}");
    }

    #[test]
    fn errors_carry_fhirpath_and_position() {
        let text = "<Bundle xmlns=\"http://hl7.org/fhir\">\n<entry><resource><Patient><gender value=\"male\"/></Patient></resource></entry>\n<entry><resource><Patient>\n<gender value=\"male\" foo=\"1\"/></Patient></resource></entry></Bundle>";
        let e = canon(text).err().expect("invalid");
        assert_eq!(
            e[0].expression[0].to_string(),
            "Bundle.entry[1].resource.gender"
        );
        assert_eq!(e[0].position, Some((4, 1)));
    }
}
