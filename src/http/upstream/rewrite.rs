//! The upstream's URLs rewritten onto the gateway's public base, so that a client follows
//! `Location`, `fullUrl` and paging links back through the gateway, never around it.

use serde_json::Value;

/// `url` with the upstream base `from` replaced by `to`; `None` when it is not under `from`.
fn under(url: &str, from: &str, to: &str) -> Option<String> {
    let rest = url.strip_prefix(from)?;
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
        Some(format!("{to}{rest}"))
    } else {
        None
    }
}

/// Every string of `value` that is a URL under the upstream base is rewritten (links,
/// `fullUrl`, `response.location`); nothing else changes.
pub fn rewrite_links(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) => {
            if let Some(new) = under(s, from, to) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_links(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_links(v, from, to)),
        _ => {}
    }
}

/// A `Location` header of the upstream on the gateway's base: an absolute URL under the
/// upstream base is moved; a relative one (`ServiceRequest/1/_history/1`) is made absolute.
pub fn location(loc: &str, from: &str, to: &str) -> String {
    if let Some(new) = under(loc, from, to) {
        return new;
    }
    if loc.contains("://") {
        // Somewhere else entirely: the caller is better told the truth.
        return loc.to_string();
    }
    format!("{to}/{}", loc.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_under_the_upstream_base_move() {
        let mut b = json!({
            "link": [{"relation": "next", "url": "http://up:9/fhir/ServiceRequest?_offset=2"}],
            "entry": [{"fullUrl": "http://up:9/fhir/ServiceRequest/1", "resource": {"note": [{"text": "see http://up:9/fhirx"}]}}],
            "other": "http://up:9/fhirish/x"
        });
        rewrite_links(&mut b, "http://up:9/fhir", "https://gw.example/fhir");
        assert_eq!(
            b["link"][0]["url"],
            "https://gw.example/fhir/ServiceRequest?_offset=2"
        );
        assert_eq!(
            b["entry"][0]["fullUrl"],
            "https://gw.example/fhir/ServiceRequest/1"
        );
        assert_eq!(b["other"], "http://up:9/fhirish/x");
        assert_eq!(
            b["entry"][0]["resource"]["note"][0]["text"],
            "see http://up:9/fhirx"
        );
    }

    #[test]
    fn locations() {
        let (from, to) = ("http://up:9", "http://gw:1");
        assert_eq!(
            location("http://up:9/ServiceRequest/1/_history/2", from, to),
            "http://gw:1/ServiceRequest/1/_history/2"
        );
        assert_eq!(
            location("ServiceRequest/1/_history/2", from, to),
            "http://gw:1/ServiceRequest/1/_history/2"
        );
        assert_eq!(location("http://else/x", from, to), "http://else/x");
    }
}
