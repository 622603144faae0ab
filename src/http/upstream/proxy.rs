//! Reads and updates passed through to the upstream (contract §7): `GET /{type}/{id}`,
//! `GET /{type}/{id}/_history[/{vid}]`, `GET /{type}?...` for the types site data lists, and
//! `PUT` / `PATCH /ServiceRequest/{id}` (e.g. `status` `revoked` to cancel an order). Links in
//! the answers are rewritten onto the gateway's base.

use super::client::{Call, Upstream};
use super::rewrite::{location, rewrite_links};
use crate::http::negotiate::Reply;
use crate::site::Site;
use axum::body::Bytes;
use axum::http::header::{ETAG, LAST_MODIFIED, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};

/// Request headers a passed-through call carries on to the upstream.
const FORWARDED_HEADERS: [&str; 6] = [
    "content-type",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-none-exist",
    "prefer",
];

/// The one type whose orders may be updated through the gateway.
const UPDATABLE: &str = "ServiceRequest";

/// What a pass-through did, for the consult record of an update (contract §7).
#[derive(Debug, Clone)]
pub struct PassedThrough {
    pub method: String,
    pub resource_type: String,
    pub id: Option<String>,
    pub status: Option<u16>,
    pub fault: Option<String>,
}

/// Whether `method` on `path` is a pass-through, and of which type and id.
fn route<'a>(method: &Method, path: &'a str, site: &Site) -> Option<(&'a str, Option<&'a str>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ty = *segments.first()?;
    if !site.upstream.read_types.iter().any(|t| t == ty) {
        return None;
    }
    let valid_id = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    let id = segments.get(1).copied();
    if id.is_some_and(|i| !valid_id(i)) {
        return None;
    }
    let read = *method == Method::GET;
    let ok = match segments.as_slice() {
        [_] => read,
        [_, _] => read || (ty == UPDATABLE && (*method == Method::PUT || *method == Method::PATCH)),
        [_, _, "_history"] => read,
        [_, _, "_history", vid] => read && valid_id(vid),
        _ => false,
    };
    ok.then_some((ty, id))
}

/// The query without the gateway's own formatting parameters (the upstream is always asked
/// for JSON; the gateway writes what the caller asked for).
fn upstream_query(query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            key != "_format" && key != "_pretty"
        })
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// Passes the request through when it is one; `None` when it is not a pass-through.
pub async fn pass(
    up: &Upstream,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    site: &Site,
) -> Option<Response> {
    let (ty, id) = route(method, uri.path(), site)?;
    let path = format!("{}{}", uri.path(), upstream_query(uri.query()));
    let call = Call {
        method: method.clone(),
        path: &path,
        headers: FORWARDED_HEADERS
            .iter()
            .filter_map(|h| {
                headers
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (*h, v.to_string()))
            })
            .collect(),
        body: (!body.is_empty()).then_some(body),
        // PUT is idempotent (the same body twice is one update); PATCH need not be.
        idempotent: *method == Method::GET || *method == Method::PUT,
    };
    let gateway_base = up.gateway_base(headers);
    let mut record = PassedThrough {
        method: method.to_string(),
        resource_type: ty.to_string(),
        id: id.map(str::to_string),
        status: None,
        fault: None,
    };
    let answered = up.send(call).await;
    let a = match answered.and_then(|a| a.json().map(|b| (a, b))) {
        Ok(ok) => ok,
        Err(fault) => {
            record.fault = Some(fault.reason());
            let what = if *method == Method::GET {
                "Nothing was read; try again later."
            } else {
                "The update may or may not have reached the upstream; read the order back before sending it again."
            };
            let mut res = fault.answer(what);
            res.extensions_mut().insert(record);
            return Some(res);
        }
    };
    let (a, body) = a;
    record.status = Some(a.status.as_u16());
    let mut res = match body {
        Some(mut body) => {
            rewrite_links(&mut body, up.base(), &gateway_base);
            Reply {
                status: a.status,
                body,
            }
            .into_response()
        }
        None => a.status.into_response(),
    };
    if let Some(loc) = a.header("location") {
        if let Ok(v) = HeaderValue::from_str(&location(loc, up.base(), &gateway_base)) {
            res.headers_mut().insert(LOCATION, v);
        }
    }
    for name in [ETAG, LAST_MODIFIED] {
        if let Some(v) = a.headers.get(&name) {
            res.headers_mut().insert(name, v.clone());
        }
    }
    res.extensions_mut().insert(record);
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_requests_pass_through() {
        let rules = crate::rules::RuleSet::load(&crate::load::default_rules_dir()).expect("rules");
        let site = &rules.site;
        let get = Method::GET;
        assert_eq!(
            route(&get, "/ServiceRequest", site),
            Some(("ServiceRequest", None))
        );
        assert_eq!(
            route(&get, "/ServiceRequest/a-1", site),
            Some(("ServiceRequest", Some("a-1")))
        );
        assert!(route(&get, "/ServiceRequest/a-1/_history", site).is_some());
        assert!(route(&get, "/ServiceRequest/a-1/_history/2", site).is_some());
        assert!(route(&Method::PUT, "/ServiceRequest/a-1", site).is_some());
        assert!(route(&Method::PATCH, "/ServiceRequest/a-1", site).is_some());
        assert!(route(&Method::DELETE, "/ServiceRequest/a-1", site).is_none());
        assert!(route(&get, "/ServiceRequest/a-1/_history/2/x", site).is_none());
        assert!(route(&get, "/ServiceRequest/..%2F", site).is_none());
        assert!(route(&get, "/Unlisted/1", site).is_none());
    }

    #[test]
    fn formatting_parameters_stay_with_the_gateway() {
        assert_eq!(
            upstream_query(Some("_format=xml&status=active&_pretty=true")),
            "?status=active"
        );
        assert_eq!(upstream_query(None), "");
    }
}
