//! The HTTP client of every outbound FHIR call: the upstream (contract §7) and the CDS Hooks
//! clients' `fhirServer`s (the prefetch fallback). Its own module so that both use it without
//! depending on each other.

use std::time::Duration;

/// Pooled keep-alive connections, no Nagle delay, and no redirects followed (a server must not
/// send the gateway, and the token it carries, somewhere else).
pub fn pooled_client(connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
}
