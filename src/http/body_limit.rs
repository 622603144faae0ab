//! The request body limit, and an answer every client can read when a body is refused.
//!
//! A server that answers `413` and closes the connection while the client is still sending
//! leaves unread bytes in its socket: the kernel then resets the connection, and a client that
//! writes the whole body before it reads (Python's `urllib`, several integration engines) gets a
//! broken pipe or a reset instead of the OperationOutcome. So a body that is refused is read to
//! its end and thrown away first — at most [`DRAIN_MAX_BYTES`], within the body timeout — and
//! only then answered (the lingering close of other HTTP servers). A body is refused:
//! - at once, when its `Content-Length` is over the limit;
//! - when reading it passes the limit (chunked, or a wrong `Content-Length`): the handler gets
//!   http-body-util's `LengthLimitError` (axum's extractors make it a 413), and what it left
//!   unread is drained after it answers. The same holds for any answer given without reading
//!   the body (a 415, say).
//!
//! A client that sent `Expect: 100-continue` has not sent its body: it is answered at once.

use super::error::ApiError;
use super::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, EXPECT};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The most of a refused body that is read and thrown away before answering. Past it the
/// connection is closed with the body unread (bounded work for a hostile client).
pub const DRAIN_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The body-limit layer (see the module documentation).
pub async fn limit_body(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.max_body_bytes;
    let expects_continue = req
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        if !expects_continue {
            drain(req.into_body(), state.body_timeout).await;
        }
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    let unread = Arc::new(Mutex::new(None));
    let req = req.map(|body| {
        Body::new(Limited::new(
            KeepUnread {
                inner: body,
                unread: unread.clone(),
            },
            limit,
        ))
    });
    let res = next.run(req).await;
    let left = unread.lock().ok().and_then(|mut slot| slot.take());
    if let Some(body) = left {
        if !expects_continue {
            drain(body, state.body_timeout).await;
        }
    }
    res
}

/// Reads `body` to its end and throws it away, within `time` and [`DRAIN_MAX_BYTES`].
async fn drain(mut body: Body, time: Duration) {
    let reading = async {
        let mut seen: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DRAIN_MAX_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(time, reading).await;
}

/// A request body that, dropped before its end, leaves the rest where the layer finds it.
struct KeepUnread {
    inner: Body,
    unread: Arc<Mutex<Option<Body>>>,
}

impl http_body::Body for KeepUnread {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for KeepUnread {
    fn drop(&mut self) {
        if !http_body::Body::is_end_stream(&self.inner) {
            let rest = std::mem::take(&mut self.inner);
            if let Ok(mut slot) = self.unread.lock() {
                *slot = Some(rest);
            }
        }
    }
}
