//! Signing in to the console (contract §9, issue 17) against the real OpenID Connect provider
//! of tests/support/oidc: authorization code + PKCE, driven here as a browser would, by
//! following the redirects and submitting the provider's own sign-in and consent forms (its
//! development pages: any login and password). The session cookie, the CSRF checks on
//! state-changing requests and the callback's defences are checked against the gateway.

mod common;

use common::oidc::{node_or_skip, Provider};
use common::server::Server;
use reqwest::blocking::{Client, Response};
use std::collections::BTreeMap;

const AUDIENCE: &str = "https://gateway.test/fhir";
const CONSOLE_CLIENT: &str = "rg-console";

/// Cookies of one site (name → value), as a browser keeps them.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Takes the `Set-Cookie`s of a response (an empty value or `Max-Age=0` deletes).
    fn take(&mut self, res: &Response) -> Vec<String> {
        let mut raw = Vec::new();
        for v in res.headers().get_all("set-cookie") {
            let line = v.to_str().expect("ascii").to_string();
            let pair = line.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                if val.is_empty() || line.contains("Max-Age=0") {
                    self.0.remove(k.trim());
                } else {
                    self.0.insert(k.trim().to_string(), val.to_string());
                }
            }
            raw.push(line);
        }
        raw
    }
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

fn location(res: &Response) -> String {
    let loc = res
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", res.status()))
        .to_str()
        .expect("ascii")
        .to_string();
    if loc.starts_with('/') {
        let u = res.url();
        format!("{}://{}{loc}", u.scheme(), u.authority())
    } else {
        loc
    }
}

/// The value of `attr="..."` in the first tag of `html` that has it after `after`.
fn attr(html: &str, after: &str, attr: &str) -> Option<String> {
    let from = html.find(after)?;
    let rest = &html[from..];
    let start = rest.find(&format!("{attr}=\""))? + attr.len() + 2;
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}

/// At the provider: follows its redirects and submits its sign-in and consent forms until it
/// sends the browser back to the gateway; returns that callback URL.
fn sign_in_at_provider(http: &Client, first: &str, login: &str) -> String {
    let mut jar = Jar::default();
    let mut res = http.get(first).send().expect("GET authorize");
    for _ in 0..12 {
        jar.take(&res);
        if res.status().is_redirection() {
            let next = location(&res);
            if next.contains("/console/callback") {
                return next;
            }
            res = http
                .get(&next)
                .header("cookie", jar.header())
                .send()
                .expect("GET");
            continue;
        }
        let base = res.url().clone();
        let html = res.text().expect("page");
        let action = attr(&html, "<form", "action")
            .unwrap_or_else(|| panic!("no form on the provider's page:\n{html}"));
        let prompt = attr(&html, "name=\"prompt\"", "value").expect("prompt");
        let mut form = vec![("prompt", prompt.clone())];
        if prompt == "login" {
            form.push(("login", login.to_string()));
            form.push(("password", "any password".to_string()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect::<Vec<_>>()
            .join("&");
        res = http
            .post(base.join(&action).expect("action URL"))
            .header("cookie", jar.header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .expect("POST form");
    }
    panic!("the provider never sent the browser back");
}

struct Setup {
    _idp: Provider,
    gateway: Server,
    http: Client,
}

impl Setup {
    fn start() -> Self {
        Self::start_granting(None)
    }

    /// With the provider granting only `granted` of the resource scopes asked for.
    fn start_granting(granted: Option<&str>) -> Self {
        let idp = Provider::start_with_console(
            AUDIENCE,
            &[],
            &[(CONSOLE_CLIENT, "openid system/AuditEvent.rs", granted)],
        );
        let gateway = Server::start(&[
            "--auth-issuer",
            &idp.issuer,
            "--auth-audience",
            AUDIENCE,
            "--console-client-id",
            CONSOLE_CLIENT,
        ]);
        Self {
            _idp: idp,
            gateway,
            http: client(),
        }
    }

    fn get(&self, path: &str, jar: &Jar) -> Response {
        self.http
            .get(self.gateway.url(path))
            .header("cookie", jar.header())
            .send()
            .expect("GET")
    }

    /// Signs in from `path`: the gateway's redirect, the provider, the callback. Returns the
    /// browser's gateway cookies, the callback URL, and the callback's answer.
    fn sign_in(&self, path: &str) -> (Jar, String, Response) {
        let mut jar = Jar::default();
        let res = self.get(path, &jar);
        assert_eq!(res.status(), 302, "an unsigned browser is sent to sign in");
        let cookies = jar.take(&res);
        let login = cookies
            .iter()
            .find(|c| c.starts_with("rg_console_login="))
            .expect("the sign-in cookie");
        for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/console"] {
            assert!(login.contains(flag), "{login}");
        }
        let authorize = location(&res);
        for part in [
            "response_type=code",
            "code_challenge_method=S256",
            "code_challenge=",
            "state=",
            "nonce=",
        ] {
            assert!(authorize.contains(part), "{authorize}");
        }
        let callback = sign_in_at_provider(&self.http, &authorize, "radiologist-1");
        assert!(callback.starts_with(&self.gateway.base), "{callback}");
        let res = self
            .http
            .get(&callback)
            .header("cookie", jar.header())
            .send()
            .expect("callback");
        jar.take(&res);
        (jar, callback, res)
    }
}

#[test]
fn a_user_signs_in_with_code_and_pkce_and_the_session_is_a_safe_cookie() {
    if !node_or_skip("a_user_signs_in_with_code_and_pkce_and_the_session_is_a_safe_cookie") {
        return;
    }
    let s = Setup::start();
    let (jar, callback, res) = s.sign_in("/console/consults");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), s.gateway.url("/console/consults"));
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .find(|c| c.starts_with("rg_console="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/console"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(jar.0.contains_key("rg_console"));
    assert!(!jar.0.contains_key("rg_console_login"), "cleared once used");

    // Signed in: the consults (the token has system/AuditEvent.rs) and the catalogue.
    for path in ["/console/consults", "/console", "/console/dashboard"] {
        let res = s.get(path, &jar);
        assert_eq!(res.status(), 200, "{path}");
    }
    // A callback is good once: the same code and state again are refused.
    let res = s
        .http
        .get(&callback)
        .header("cookie", "rg_console_login=whatever")
        .send()
        .expect("replayed callback");
    assert_eq!(res.status(), 400);

    // State-changing requests: only from the console's own pages.
    let playground = s.gateway.url("/console/playground");
    let post = |origin: Option<&str>, cookies: &str| {
        let mut req = s
            .http
            .post(&playground)
            .header("cookie", cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("body=");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().expect("POST").status().as_u16()
    };
    assert_eq!(post(None, &jar.header()), 403, "no Origin: refused");
    assert_eq!(
        post(Some("https://evil.example"), &jar.header()),
        403,
        "another site: refused"
    );
    assert_eq!(post(Some(&s.gateway.base), &jar.header()), 200);
    assert_eq!(post(Some(&s.gateway.base), ""), 401, "no session");
    let metrics = s
        .http
        .get(s.gateway.url("/metrics"))
        .send()
        .expect("metrics");
    // /metrics is not the console: the session does not open it.
    assert_eq!(metrics.status(), 401);

    // Signing out ends the session: the next visit is sent to sign in again.
    let res = s
        .http
        .post(s.gateway.url("/console/logout"))
        .header("cookie", jar.header())
        .header("origin", &s.gateway.base)
        .send()
        .expect("logout");
    assert_eq!(res.status(), 200);
    assert_eq!(s.get("/console/consults", &jar).status(), 302);
}

#[test]
fn a_callback_not_started_by_this_browser_is_refused() {
    if !node_or_skip("a_callback_not_started_by_this_browser_is_refused") {
        return;
    }
    let s = Setup::start();
    // The victim's browser is sent to a callback of a sign-in the attacker started: its
    // state does not match the victim's cookie (login CSRF).
    let mut attacker = Jar::default();
    let res = s.get("/console", &attacker);
    attacker.take(&res);
    let callback = sign_in_at_provider(&s.http, &location(&res), "attacker");
    let res = s.http.get(&callback).send().expect("callback");
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("set-cookie").is_none());
    // Made-up and missing parameters.
    for query in ["", "?state=x&code=y", "?error=access_denied&state=x"] {
        let res = s
            .http
            .get(s.gateway.url(&format!("/console/callback{query}")))
            .header("cookie", "rg_console_login=x")
            .send()
            .expect("callback");
        assert_eq!(res.status(), 400, "{query}");
    }
    // A made-up session cookie is no session.
    let mut forged = Jar::default();
    forged.0.insert("rg_console".into(), "0".repeat(64));
    assert_eq!(s.get("/console/consults", &forged).status(), 302);
}

/// A user whose sign-in did not get `system/AuditEvent.rs` sees the rule catalogue but not the
/// consults or the dashboard (contract §9: the same scope as the FHIR reads).
#[test]
fn reading_consults_needs_the_consult_scope() {
    if !node_or_skip("reading_consults_needs_the_consult_scope") {
        return;
    }
    let s = Setup::start_granting(Some("system/ServiceRequest.r"));
    let (jar, _, res) = s.sign_in("/console");
    assert_eq!(res.status(), 303);
    assert_eq!(s.get("/console", &jar).status(), 200);
    for path in ["/console/consults", "/console/dashboard"] {
        let res = s.get(path, &jar);
        assert_eq!(res.status(), 403, "{path}");
        assert!(res.text().expect("page").contains("system/AuditEvent.rs"));
    }
}
