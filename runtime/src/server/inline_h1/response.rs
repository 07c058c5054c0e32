//! The bytes of one inline-path response: its head as hyper would write it, and its body
//! framed by length or chunked.
//!
//! Owns: the status line (a custom reason phrase when the app gave one), the app's fields in
//! order, the framing field hyper would add (`content-length` from the body's exact size or
//! the app's own, else `transfer-encoding: chunked`), `connection: close` when the connection
//! ends after it, a cached `date`, and the `Framing` that encodes body chunks. Must not touch:
//! sockets (everything goes into the caller's buffer), the request, or the app.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{CONNECTION, CONTENT_LENGTH, DATE};
use http::{HeaderName, Response, StatusCode};
use http_body::Body;

use crate::body::ResponseBody;
use crate::server::guard::parse_decimal;

/// How the body's bytes go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (what is left of them).
    Length(u64),
    Chunked,
    /// No body may follow (204, 304, 1xx).
    Bodiless,
}

/// What a response head is written from.
pub struct HeadParts<'a, F> {
    pub status: StatusCode,
    /// The app's own reason phrase, when it is not the canonical one.
    pub reason: Option<&'a [u8]>,
    /// The fields, in order.
    pub fields: F,
    /// The body's exact size, when it is known before it is sent.
    pub exact: Option<u64>,
}

/// Appends `response`'s head to `out` (see `write_head`).
pub fn write_response_head(
    out: &mut Vec<u8>,
    response: &Response<ResponseBody>,
    closing: bool,
) -> Framing {
    let head = HeadParts {
        status: response.status(),
        reason: response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|reason| reason.as_bytes()),
        fields: response
            .headers()
            .iter()
            .map(|(name, value)| (name, value.as_bytes())),
        exact: response.body().size_hint().exact(),
    };
    write_head(out, head, closing)
}

/// Appends a response head to `out`; `closing` adds `connection: close` unless the app set a
/// `Connection` field itself.
pub fn write_head<'a>(
    out: &mut Vec<u8>,
    head: HeadParts<'a, impl Iterator<Item = (&'a HeaderName, &'a [u8])>>,
    closing: bool,
) -> Framing {
    let status = head.status;
    if status == StatusCode::OK && head.reason.is_none() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        match head.reason {
            Some(reason) => out.extend_from_slice(reason),
            None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    let (mut app_length, mut has_date, mut has_connection) = (None, false, false);
    for (name, value) in head.fields {
        if name == CONTENT_LENGTH {
            app_length = app_length.or_else(|| parse_length(value));
        }
        has_date |= name == DATE;
        has_connection |= name == CONNECTION;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let framing = framing(out, status, head.exact, app_length);
    if closing && !has_connection {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        append_date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    framing
}

/// The body's framing, writing the field that announces it when the app did not.
fn framing(
    out: &mut Vec<u8>,
    status: StatusCode,
    exact: Option<u64>,
    app_length: Option<u64>,
) -> Framing {
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if bodiless {
        return Framing::Bodiless;
    }
    match (exact, app_length) {
        // As hyper: a body that knows its size is trusted over the app's field.
        (Some(len), Some(_)) => Framing::Length(len),
        (None, Some(len)) => Framing::Length(len),
        (Some(len), None) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            out.extend_from_slice(b"\r\n");
            Framing::Length(len)
        }
        (None, None) => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            Framing::Chunked
        }
    }
}

/// A `Content-Length` the app set (`start_response` refuses one that is not decimal digits).
fn parse_length(value: &[u8]) -> Option<u64> {
    parse_decimal(value.trim_ascii())
}

impl Framing {
    /// Appends `data` as this framing puts it on the wire. `false`: the body has more bytes
    /// than its length allows (the extra are not written, and the connection must end).
    pub fn append(&mut self, out: &mut Vec<u8>, data: &[u8]) -> bool {
        match self {
            Framing::Bodiless => true,
            Framing::Length(left) => {
                let fits = (data.len() as u64).min(*left) as usize;
                out.extend_from_slice(&data[..fits]);
                *left -= fits as u64;
                fits == data.len()
            }
            Framing::Chunked => {
                if !data.is_empty() {
                    let mut size = [0u8; 16];
                    out.extend_from_slice(hex(data.len(), &mut size));
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\n");
                }
                true
            }
        }
    }

    /// Counts `n` bytes of a `Length` body that went to the socket without `out` (sendfile).
    pub fn sent_directly(&mut self, n: u64) {
        if let Framing::Length(left) = self {
            *left = left.saturating_sub(n);
        }
    }

    /// Appends the end of the body; `false` when the body ended short of its length.
    pub fn finish(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Framing::Bodiless => true,
            Framing::Length(left) => *left == 0,
            Framing::Chunked => {
                out.extend_from_slice(b"0\r\n\r\n");
                true
            }
        }
    }
}

/// `n` in lower-case hex, written into `buf`.
fn hex(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            return &buf[at..];
        }
    }
}

thread_local! {
    /// The `date` value of the current second (formatted once a second per thread).
    static CACHED_DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn append_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED_DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == 29 {
                cached.1.copy_from_slice(text.as_bytes());
                cached.0 = second;
            } else {
                out.extend_from_slice(text.as_bytes());
                return;
            }
        }
        out.extend_from_slice(&cached.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(response: &Response<ResponseBody>, closing: bool) -> (String, Framing) {
        let mut out = Vec::new();
        let framing = write_response_head(&mut out, response, closing);
        (String::from_utf8(out).expect("ascii"), framing)
    }

    #[test]
    fn a_full_body_gets_its_length_and_a_date() {
        let mut response = Response::new(ResponseBody::full("hello"));
        let ct = HeaderValue::from_static("text/plain");
        response.headers_mut().insert("content-type", ct);
        let (text, framing) = head(&response, false);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"));
        assert!(text.contains("content-length: 5\r\ndate: "), "{text}");
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        assert_eq!(framing, Framing::Length(5));
    }

    #[test]
    fn reasons_closing_and_bodiless_statuses() {
        let mut response = Response::new(ResponseBody::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        let (text, framing) = head(&response, true);
        assert!(text.starts_with("HTTP/1.1 304 Not Modified\r\nconnection: close\r\n"));
        assert!(!text.contains("content-length"));
        assert_eq!(framing, Framing::Bodiless);
        *response.status_mut() = StatusCode::from_u16(299).expect("status");
        let (text, framing) = head(&response, false);
        assert!(text.starts_with("HTTP/1.1 299 <none>\r\ncontent-length: 0\r\n"));
        assert_eq!(framing, Framing::Length(0));
    }

    #[test]
    fn chunks_and_lengths_frame_the_body() {
        let mut out = Vec::new();
        let mut chunked = Framing::Chunked;
        assert!(chunked.append(&mut out, &[b'x'; 26]));
        assert!(chunked.finish(&mut out));
        assert_eq!(
            out,
            [&b"1a\r\n"[..], &[b'x'; 26], b"\r\n0\r\n\r\n"].concat()
        );
        let mut out = Vec::new();
        let mut length = Framing::Length(3);
        assert!(!length.append(&mut out, b"abcd"));
        assert_eq!(out, b"abc");
        assert!(Framing::Length(0).finish(&mut out));
        assert!(!Framing::Length(1).finish(&mut out));
    }
}
