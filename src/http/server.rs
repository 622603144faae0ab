//! Accepting connections: hyper with a deadline for the request head, over TCP or TLS.
//!
//! `axum::serve` runs hyper without a timer, and without one hyper's header read timeout never
//! fires: a client that sends its headers a byte a second (or never finishes them) holds a
//! connection and a task for as long as it likes, and enough of them exhaust the server's file
//! descriptors. The body has its own deadline ([`super::negotiate::FhirBody`]), the handling
//! its own timeout ([`super::routes`]). Each request carries the peer's address
//! (`ConnectInfo<SocketAddr>`) for the security layer ([`crate::auth`]).

use crate::auth::tls::Tls;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `app` on `listener` (with TLS when `tls` is given) until `shutdown` completes, then
/// finishes the requests in flight. A connection that has not sent a whole request head (or
/// finished its TLS handshake) within `header_timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    // HTTP/1 only, as axum is built here: the auto builder would otherwise first read the
    // bytes of an HTTP/2 preface itself, with no deadline ("P" and nothing more held it open).
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, for instance: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let builder = builder.clone();
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            },
        ));
        let watcher = graceful.watcher();
        let tls = tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            // hyper starts the head's clock only once bytes arrive: a connection that sends
            // nothing at all is closed here instead of being held open. (Readiness alone can be
            // reported before any byte: wait for one.)
            let mut first = [0u8; 1];
            if tokio::time::timeout(header_timeout, stream.peek(&mut first))
                .await
                .is_err()
            {
                return;
            }
            let outcome = match tls {
                None => {
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            // A client certificate from another CA, say: the reason only.
                            tracing::info!(peer = %peer.ip(), error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
