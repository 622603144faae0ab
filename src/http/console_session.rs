//! The HTTP side of console sign-in (contract §9; the sign-in itself is
//! [`crate::auth::console_session`]): the layer over the console's routes that asks for a
//! session (a redirect to the issuer for a page, 401 otherwise), checks state-changing requests
//! for CSRF and consult pages for the scope; `GET /console/callback` and `POST /console/logout`.

use crate::auth::console_session::{
    cookie, reads_consults, same_origin, CallbackParams, Refused, CALLBACK_PATH, LOGIN_COOKIE,
    LOGIN_SECS, LOGOUT_PATH, SESSION_COOKIE,
};
use crate::auth::scope::Need;
use crate::auth::{now_secs, Gate};
use crate::http::extensions::NotFhir;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use std::net::SocketAddr;
use std::sync::Arc;

fn set_cookie(res: &mut Response, name: &str, value: &str, max_age: u64) {
    let cookie =
        format!("{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.extensions_mut().insert(NotFhir);
    res
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    crate::http::console::html(
        status,
        html! {
            (maud::DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { (title) " · referral-gateway console" } }
                body { main { h1 { (title) } p { (text) } } }
            }
        },
    )
}

fn peer(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The public base URL of a request, and the audience access tokens must carry.
fn base_and_audience(
    gate: &Gate,
    peer: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> (String, String) {
    let base = gate
        .proxies
        .base_url(peer, headers, gate.tls.is_some())
        .unwrap_or_default();
    let audience = gate
        .bearer
        .as_ref()
        .and_then(|b| b.audience())
        .map_or_else(|| base.clone(), str::to_string);
    (base, audience)
}

/// The layer over the console's routes (`from_fn_with_state` with the [`Gate`]).
pub async fn require(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !(path == "/console" || path.starts_with("/console/")) {
        return next.run(req).await;
    }
    let peer = peer(&req);
    if gate.bearer.is_none() {
        // No authentication: the console is for this machine only (contract §9).
        if peer.is_some_and(|p| p.is_loopback()) {
            return next.run(req).await;
        }
        return page(
            StatusCode::FORBIDDEN,
            "Console not available",
            "Without authentication the console is served to this machine (loopback) only.",
        );
    }
    let Some(console) = &gate.console else {
        // Authentication without console sign-in: the guard has already asked for a bearer
        // token, as on every other route.
        return next.run(req).await;
    };
    let (base, audience) = base_and_audience(&gate, peer, req.headers());
    let session = cookie(req.headers(), SESSION_COOKIE).and_then(|id| console.session(id));
    let safe = req.method() == Method::GET || req.method() == Method::HEAD;
    let Some(session) = session else {
        if !safe {
            gate.failures.add("console", "no_session");
            return page(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your console session has ended: open the console again to sign in.",
            );
        }
        let back_to = req
            .uri()
            .path_and_query()
            .map_or("/console".to_string(), |p| p.to_string());
        return match console.start(&base, &audience, &back_to).await {
            Ok((location, state)) => {
                let mut res = redirect(StatusCode::FOUND, &location);
                set_cookie(&mut res, LOGIN_COOKIE, &state, LOGIN_SECS);
                res
            }
            Err(e) => {
                tracing::error!(error = %e, "console sign-in cannot start");
                unavailable()
            }
        };
    };
    if !safe && !same_origin(req.headers(), &base) {
        gate.failures.add("console", "csrf");
        tracing::warn!(
            scheme = "console",
            reason = "csrf",
            "request refused: a state-changing console request not from the console's own pages"
        );
        return page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request did not come from the console's own pages.",
        );
    }
    if reads_consults(&path) && !Need::READ_CONSULTS.granted_by(&session.caller.scopes) {
        gate.failures.add("console", "scope");
        return page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!(
                "Reading consults needs the scope {} in your sign-in; ask your identity administrator.",
                Need::READ_CONSULTS.scope()
            ),
        );
    }
    tracing::Span::current().record("client", session.caller.client_id.as_str());
    req.extensions_mut().insert(session.caller);
    next.run(req).await
}

fn unavailable() -> Response {
    let mut res = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        "The identity provider cannot be reached at the moment; try again shortly.",
    );
    res.headers_mut()
        .insert("retry-after", HeaderValue::from_static("10"));
    res
}

/// `GET /console/callback` and `POST /console/logout`.
pub fn router<S: Clone + Send + Sync + 'static>(gate: Arc<Gate>) -> Router<S> {
    Router::new()
        .route(CALLBACK_PATH, get(callback))
        .route(LOGOUT_PATH, post(logout))
        .with_state(gate)
}

async fn callback(
    State(gate): State<Arc<Gate>>,
    Query(params): Query<CallbackParams>,
    req: Request,
) -> Response {
    let Some(console) = &gate.console else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "Console sign-in is not configured.",
        );
    };
    let peer = peer(&req);
    let (_, audience) = base_and_audience(&gate, peer, req.headers());
    let login = cookie(req.headers(), LOGIN_COOKIE);
    match console.finish(&gate, &params, login, &audience).await {
        Ok((id, pending, session)) => {
            tracing::info!(client = %session.caller.client_id, "console sign-in");
            let back = if pending.back_to.starts_with("/console")
                && !pending.back_to.starts_with("/console/callback")
            {
                pending.back_to
            } else {
                "/console".to_string()
            };
            let mut res = redirect(StatusCode::SEE_OTHER, &back);
            let max_age = session.expires.saturating_sub(now_secs());
            set_cookie(&mut res, SESSION_COOKIE, &id, max_age);
            set_cookie(&mut res, LOGIN_COOKIE, "", 0);
            res
        }
        Err(Refused::Unavailable(e)) => {
            tracing::error!(error = %e, "console sign-in failed: the issuer cannot be reached");
            unavailable()
        }
        Err(Refused::Bad(why)) => {
            gate.failures.add("console", "bad_callback");
            tracing::warn!(
                scheme = "console",
                reason = "bad_callback",
                why,
                "console sign-in refused"
            );
            page(StatusCode::BAD_REQUEST, "Sign-in failed", why)
        }
        Err(Refused::Issuer(code)) => {
            gate.failures.add("console", "issuer_refused");
            page(
                StatusCode::UNAUTHORIZED,
                "Sign-in refused",
                &format!("The identity provider refused the sign-in ({code})."),
            )
        }
        Err(Refused::Token(reason)) => {
            gate.failures.add("console", reason);
            tracing::warn!(
                scheme = "console",
                reason,
                "console sign-in refused: a token did not verify"
            );
            page(
                StatusCode::UNAUTHORIZED,
                "Sign-in failed",
                "The identity provider's tokens did not verify.",
            )
        }
    }
}

async fn logout(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    let peer = peer(&req);
    let (base, _) = base_and_audience(&gate, peer, req.headers());
    if gate.console.is_some() && !same_origin(req.headers(), &base) {
        gate.failures.add("console", "csrf");
        return page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request did not come from the console's own pages.",
        );
    }
    if let (Some(console), Some(id)) = (&gate.console, cookie(req.headers(), SESSION_COOKIE)) {
        console.end(id);
    }
    let mut res = page(
        StatusCode::OK,
        "Signed out",
        "You are signed out of the console.",
    );
    set_cookie(&mut res, SESSION_COOKIE, "", 0);
    res
}
