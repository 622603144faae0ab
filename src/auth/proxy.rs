//! Behind a proxy (contract §8): the client's address and the gateway's public base URL.
//! `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the connection comes from
//! one of `--trusted-proxies`; anyone else could write them.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    /// `--public-base-url`, without a trailing slash.
    public_base: Option<String>,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, public_base: Option<&str>) -> Result<Self, String> {
        let public_base = match public_base {
            Some(url) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("--public-base-url {url} is not an http(s) URL"));
                }
                Some(url.trim_end_matches('/').to_string())
            }
            None => None,
        };
        Ok(Self { nets, public_base })
    }

    pub fn public_base(&self) -> Option<&str> {
        self.public_base.as_deref()
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, or — when the peer is a trusted proxy — the last
    /// address in `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_addr(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let mut client = peer;
        for addr in forwarded.into_iter().rev() {
            client = addr;
            if !self.trusted(addr) {
                break;
            }
        }
        Some(client)
    }

    /// The base URL callers reach the gateway at: `--public-base-url`, else from the `Host`
    /// header, with the scheme of the connection (or `X-Forwarded-Proto` from a trusted proxy).
    pub fn base_url(&self, peer: Option<IpAddr>, headers: &HeaderMap, tls: bool) -> Option<String> {
        if let Some(base) = &self.public_base {
            return Some(base.clone());
        }
        let host = headers.get("host")?.to_str().ok()?;
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return None;
        }
        let forwarded_proto = peer
            .filter(|p| self.trusted(*p))
            .and_then(|_| headers.get("x-forwarded-proto"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|p| *p == "https" || *p == "http");
        let scheme = match (tls, forwarded_proto) {
            (true, _) => "https",
            (false, Some(p)) => p,
            (false, None) => "http",
        };
        Some(format!("{scheme}://{host}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let p = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("cidr")], None).expect("ok");
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7, 10.0.0.3"),
            ("x-forwarded-proto", "https"),
            ("host", "gw.example"),
        ]);
        let proxy: IpAddr = "10.0.0.2".parse().expect("ip");
        let stranger: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(
            p.client_addr(Some(proxy), &h),
            Some("198.51.100.7".parse().expect("ip"))
        );
        assert_eq!(p.client_addr(Some(stranger), &h), Some(stranger));
        assert_eq!(
            p.base_url(Some(proxy), &h, false).as_deref(),
            Some("https://gw.example")
        );
        assert_eq!(
            p.base_url(Some(stranger), &h, false).as_deref(),
            Some("http://gw.example")
        );
    }

    #[test]
    fn public_base_url_wins() {
        let p = TrustedProxies::new(vec![], Some("https://gw.example/fhir/")).expect("ok");
        let h = headers(&[("host", "evil.example")]);
        assert_eq!(
            p.base_url(None, &h, false).as_deref(),
            Some("https://gw.example/fhir")
        );
    }
}
