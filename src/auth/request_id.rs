//! The caller's `X-Request-Id` is echoed and logged only when it is short and plain: at most
//! [`MAX_LEN`] visible ASCII characters. Anything else is dropped before the request id layer
//! runs, which then makes the gateway's own id (a 10,000-character id would otherwise be
//! echoed, and written into every log line of the request).

use axum::extract::Request;

pub const MAX_LEN: usize = 128;

/// Whether a caller's request id is kept.
pub fn acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

/// Removes a caller's `X-Request-Id` that is too long, has anything but visible ASCII, or is
/// sent more than once.
pub fn bound(mut req: Request) -> Request {
    let headers = req.headers_mut();
    let ids: Vec<_> = headers.get_all("x-request-id").iter().collect();
    let keep = matches!(ids.as_slice(), [one] if acceptable(one.as_bytes()));
    if !keep && !ids.is_empty() {
        headers.remove("x-request-id");
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        assert!(acceptable(b"abc-123_X.Y:z"));
        assert!(acceptable(&[b'a'; MAX_LEN]));
        assert!(!acceptable(&[b'a'; MAX_LEN + 1]));
        assert!(!acceptable(b"with space"));
        assert!(!acceptable(b"tab\there"));
        assert!(!acceptable("caf\u{e9}".as_bytes()));
        assert!(!acceptable(b""));
    }
}
