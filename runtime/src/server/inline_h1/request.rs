//! One request head of the inline path: parsed, and judged servable here or left to hyper.
//!
//! Owns: parsing a head the `guard` has already validated (httparse) into `http` parts, and
//! the rule for what the inline path serves: `GET` over HTTP/1.1 with an origin-form target,
//! no `Content-Length`, `Transfer-Encoding`, `Expect` or `Upgrade` (no body, nothing to
//! negotiate), no `Accept-Encoding` that takes a coding wsrun compresses with (hyper's path
//! compresses), and a `Connection` field, if any, of `keep-alive` and `close` only. Must not touch: validation (anything this parser
//! does not take is left to hyper, which answers it as it always has), routing, or the app.

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE,
};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use crate::accept_encoding::{accepts_any, Codec};

/// Header lines a head may have for the inline path (the guard's own limit may be higher:
/// a head with more is left to hyper).
const MAX_HEADERS: usize = 100;

/// What the start of the read buffer holds.
pub enum Head {
    /// A whole head the inline path serves.
    Inline(Box<InlineHead>),
    /// A whole head (or bytes) left to hyper from here on.
    Other,
    /// The head has not fully arrived.
    Partial,
}

/// A head the inline path serves.
pub struct InlineHead {
    pub parts: Parts,
    /// Its length in bytes.
    pub len: usize,
    /// The client asked to close the connection after the response (`Connection: close`).
    pub close: bool,
}

/// Parses the head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Head {
    // Uninitialised storage, as hyper parses: no 100-entry array to zero per request.
    let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut lines) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Other,
    };
    if request.method != Some("GET") || request.version != Some(1) {
        return Head::Other;
    }
    let Some(target) = request.path.filter(|target| target.starts_with('/')) else {
        return Head::Other;
    };
    let Some((headers, close)) = header_map(request.headers) else {
        return Head::Other;
    };
    let Ok(uri) = Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_bytes())) else {
        return Head::Other;
    };
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = Method::GET;
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    Head::Inline(Box::new(InlineHead { parts, len, close }))
}

/// The head's fields and whether `Connection` says `close`; `None` when one of them means the
/// request is not the inline path's.
fn header_map(lines: &[httparse::Header<'_>]) -> Option<(HeaderMap, bool)> {
    let mut headers = HeaderMap::with_capacity(lines.len());
    let mut close = false;
    for line in lines {
        let name = HeaderName::from_bytes(line.name.as_bytes()).ok()?;
        let negotiates = name == CONTENT_LENGTH
            || name == TRANSFER_ENCODING
            || name == EXPECT
            || name == UPGRADE
            || (name == ACCEPT_ENCODING && takes_a_coding(line.value));
        if negotiates {
            return None;
        }
        if name == CONNECTION {
            close |= connection_says_close(line.value)?;
        }
        headers.append(name, HeaderValue::from_bytes(line.value).ok()?);
    }
    Some((headers, close))
}

/// Whether an `Accept-Encoding` value accepts a coding wsrun may compress with.
fn takes_a_coding(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|v| accepts_any(v, &Codec::ALL))
}

/// Whether a `Connection` value asks to close; `None` for any token but `keep-alive` and
/// `close` (hop-by-hop field names and the like are hyper's to honour).
fn connection_says_close(value: &[u8]) -> Option<bool> {
    let mut close = false;
    for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if token.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !token.eq_ignore_ascii_case(b"keep-alive") && !token.is_empty() {
            return None;
        }
    }
    Some(close)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(head: &[u8]) -> Option<Box<InlineHead>> {
        match parse(head) {
            Head::Inline(head) => Some(head),
            _ => None,
        }
    }

    #[test]
    fn a_plain_get_is_served_inline() {
        let head = b"GET /users/7?q=a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nGET /next";
        let inline_head = inline(head).expect("inline");
        assert_eq!(inline_head.len, head.len() - b"GET /next".len());
        let parts = &inline_head.parts;
        assert_eq!(parts.uri.path(), "/users/7");
        assert_eq!(parts.uri.query(), Some("q=a"));
        assert_eq!(
            parts.headers.get("host").map(|v| v.as_bytes()),
            Some(&b"x"[..])
        );
        assert!(!inline_head.close);
    }

    #[test]
    fn keep_alive_and_close_stay_inline() {
        let keep = b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n";
        assert!(!inline(keep).expect("inline").close);
        let close = b"GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n";
        assert!(inline(close).expect("inline").close);
    }

    #[test]
    fn bodies_negotiation_and_other_methods_go_to_hyper() {
        for head in [
            &b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x-hop\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
        ] {
            assert!(
                matches!(parse(head), Head::Other),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn an_accept_encoding_without_a_coding_of_ours_stays_inline() {
        let head = b"GET / HTTP/1.1\r\nAccept-Encoding: identity, gzip;q=0\r\n\r\n";
        assert!(inline(head).is_some());
    }

    #[test]
    fn a_head_in_progress_is_partial() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost:"), Head::Partial));
        assert!(matches!(parse(b""), Head::Partial));
    }
}
