//! One request head of the inline path: parsed, and judged servable here or left to hyper.
//!
//! Owns: parsing a head the `guard` has already validated (httparse) into where its target and
//! fields lie in the read buffer (nothing is copied), and the rule for what the inline path
//! serves: `GET` over HTTP/1.1 with an origin-form target, no `Content-Length`,
//! `Transfer-Encoding`, `Expect` or `Upgrade` (no body, nothing to negotiate), and a
//! `Connection` field, if any, of `keep-alive` and `close` only. Must not touch: validation
//! (anything this parser does not take is left to hyper, which answers it as it always has),
//! routing, or the app.

use std::mem::MaybeUninit;

use crate::python::FieldSpan;

/// Header lines a head may have for the inline path (the guard's own limit may be higher:
/// a head with more is left to hyper).
const MAX_HEADERS: usize = 100;

/// What the start of the read buffer holds.
pub enum Head {
    /// A whole head the inline path serves; its fields are in the caller's span list.
    Inline(InlineHead),
    /// A whole head (or bytes) left to hyper from here on.
    Other,
    /// The head has not fully arrived.
    Partial,
}

/// A head the inline path serves: offsets into the buffer it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct InlineHead {
    /// The request target (origin form).
    pub target: (usize, usize),
    /// Its length in bytes.
    pub len: usize,
    /// The client asked to close the connection after the response (`Connection: close`).
    pub close: bool,
}

impl InlineHead {
    pub fn target<'b>(&self, buf: &'b [u8]) -> &'b str {
        buf.get(self.target.0..self.target.1)
            .and_then(|target| std::str::from_utf8(target).ok())
            .unwrap_or("/")
    }
}

/// Parses the head at the start of `buf`, putting where its fields lie into `fields`.
pub fn parse(buf: &[u8], fields: &mut Vec<FieldSpan>) -> Head {
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
    let Some(target) = request.path.filter(|target| plain_origin_form(target)) else {
        return Head::Other;
    };
    fields.clear();
    let Some(close) = spans(buf, request.headers, fields) else {
        return Head::Other;
    };
    let start = offset(buf, target.as_bytes());
    Head::Inline(InlineHead {
        target: (start, start + target.len()),
        len,
        close,
    })
}

/// An origin-form target the `http` crate's URI parser (hyper's path) takes as it is: no
/// fragment and none of the bytes it refuses, so a target means the same on both paths.
fn plain_origin_form(target: &str) -> bool {
    target.starts_with('/')
        && !target
            .bytes()
            .any(|b| matches!(b, b'#' | b'<' | b'>' | b'`') || !b.is_ascii_graphic())
}

/// Where `part` (a slice of `buf`) starts in `buf`.
fn offset(buf: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize)
}

fn span(buf: &[u8], part: &[u8]) -> (u32, u32) {
    let start = offset(buf, part);
    // A head is far smaller than 4 GiB (the guard bounds it).
    (start as u32, (start + part.len()) as u32)
}

/// Records each field's place and says whether `Connection` asks to close; `None` when a field
/// means the request is not the inline path's.
fn spans(buf: &[u8], lines: &[httparse::Header<'_>], fields: &mut Vec<FieldSpan>) -> Option<bool> {
    let mut close = false;
    for line in lines {
        let name = line.name.as_bytes();
        let negotiates = [
            &b"content-length"[..],
            b"transfer-encoding",
            b"expect",
            b"upgrade",
        ]
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field));
        if negotiates {
            return None;
        }
        if name.eq_ignore_ascii_case(b"connection") {
            close |= connection_says_close(line.value)?;
        }
        fields.push(FieldSpan {
            name: span(buf, name),
            value: span(buf, line.value),
        });
    }
    Some(close)
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

    fn inline(head: &[u8]) -> Option<InlineHead> {
        match parse(head, &mut Vec::new()) {
            Head::Inline(head) => Some(head),
            _ => None,
        }
    }

    #[test]
    fn a_plain_get_is_served_inline() {
        let head = b"GET /users/7?q=a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nGET /next";
        let mut fields = Vec::new();
        let Head::Inline(inline_head) = parse(head, &mut fields) else {
            panic!("not inline");
        };
        assert_eq!(inline_head.len, head.len() - b"GET /next".len());
        assert_eq!(inline_head.target(head), "/users/7?q=a");
        let pairs: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|span| (span.name(head), span.value(head)))
            .collect();
        assert_eq!(pairs, [(&b"Host"[..], &b"x"[..]), (b"Accept", b"*/*")]);
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
            b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /a<b> HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x-hop\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert!(
                matches!(parse(head, &mut Vec::new()), Head::Other),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn an_accept_encoding_stays_inline() {
        // The inline path compresses as hyper's does (`inline_h1::answer`).
        for head in [
            &b"GET / HTTP/1.1\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nAccept-Encoding: identity, gzip;q=0\r\n\r\n",
        ] {
            assert!(inline(head).is_some());
        }
    }

    #[test]
    fn a_head_in_progress_is_partial() {
        let partial = |head: &[u8]| matches!(parse(head, &mut Vec::new()), Head::Partial);
        assert!(partial(b"GET / HTTP/1.1\r\nHost:"));
        assert!(partial(b""));
    }
}
