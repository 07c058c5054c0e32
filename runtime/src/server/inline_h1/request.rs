//! One request head of the inline path: split into its parts, and judged servable here or
//! left to hyper.
//!
//! Owns: splitting a head the `guard` has already validated into where its target and fields
//! lie in the read buffer (nothing is copied), and the rule for what the inline path serves:
//! `GET` over HTTP/1.1 with an origin-form target, no `Content-Length`, `Transfer-Encoding`,
//! `Expect` or `Upgrade` (no body, nothing to negotiate), and a `Connection` field, if any, of
//! `keep-alive` and `close` only. Must not touch: validation (the guard's grammar is the one
//! check; a line that does not split as the guard's would is left to hyper, which answers it
//! as it always has), routing, or the app.
//!
//! Why not httparse: the guard has already found every line and checked its grammar, so a
//! second general parser was ~5% of the server's own instructions on a Flask request (issue
//! 12); splitting lines it knows to be well formed takes a fraction of that. The tests check
//! the split against httparse's on the same heads.

use memchr::memchr;

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
    /// The request target (origin form, visible ASCII).
    pub target: (usize, usize),
    /// Its length in bytes.
    pub len: usize,
    /// The client asked to close the connection after the response (`Connection: close`).
    pub close: bool,
    /// Which field is `Host` (the guard admits at most one), found while splitting: every
    /// request reads it.
    pub host: Option<u16>,
    /// Which field is the first `Accept-Encoding`.
    pub accept_encoding: Option<u16>,
}

impl InlineHead {
    pub fn target<'b>(&self, buf: &'b [u8]) -> &'b str {
        buf.get(self.target.0..self.target.1)
            .and_then(ascii_str)
            .unwrap_or("/")
    }
}

/// `bytes` as a `str` when they are all ASCII. For the short target and Host of every
/// request, `str::from_utf8` (~120 instructions for a 12-byte target, by callgrind) costs
/// several times the word-at-a-time ASCII check.
pub fn ascii_str(bytes: &[u8]) -> Option<&str> {
    // SAFETY: ASCII bytes are valid UTF-8.
    bytes
        .is_ascii()
        .then(|| unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// What the fields of a head said, beyond their places.
#[derive(Default)]
struct FieldFacts {
    /// A field means the request is not the inline path's.
    not_inline: bool,
    close: bool,
    host: Option<u16>,
    accept_encoding: Option<u16>,
}

/// Splits the head at the start of `buf`, putting where its fields lie into `fields`.
pub fn parse(buf: &[u8], fields: &mut Vec<FieldSpan>) -> Head {
    let Some((request_line, mut at)) = next_line(buf, 0) else {
        return Head::Partial;
    };
    let mut facts = FieldFacts {
        not_inline: buf.get(request_line.1) != Some(&b'\r'),
        ..FieldFacts::default()
    };
    fields.clear();
    loop {
        let Some((line, next)) = next_line(buf, at) else {
            return Head::Partial;
        };
        if line.0 == line.1 {
            at = next;
            break;
        }
        if !facts.not_inline {
            if fields.len() == MAX_HEADERS {
                facts.not_inline = true;
            } else if !field(buf, line, fields, &mut facts) {
                return Head::Other; // not a line the guard passes: hyper's to answer
            }
        }
        at = next;
    }
    if facts.not_inline {
        return Head::Other;
    }
    let Some(target) = get_target(buf, request_line) else {
        return Head::Other;
    };
    Head::Inline(InlineHead {
        target,
        len: at,
        close: facts.close,
        host: facts.host,
        accept_encoding: facts.accept_encoding,
    })
}

/// The line starting at `at` (without its CRLF) and where the next one starts; `None` while
/// its end has not arrived. A line ending in a bare LF (which the guard never passes) is
/// returned with its CR-less end, and its field split fails.
fn next_line(buf: &[u8], at: usize) -> Option<((usize, usize), usize)> {
    let lf = at + memchr(b'\n', buf.get(at..)?)?;
    let end = if lf > at && buf.get(lf - 1) == Some(&b'\r') {
        lf - 1
    } else {
        lf
    };
    Some(((at, end), lf + 1))
}

/// The origin-form target of a `GET ... HTTP/1.1` request-line; `None` for any other.
fn get_target(buf: &[u8], (start, end): (usize, usize)) -> Option<(usize, usize)> {
    let line = buf.get(start..end)?;
    let rest = line.strip_prefix(b"GET ")?;
    let target = rest.strip_suffix(b" HTTP/1.1")?;
    plain_origin_form(target).then(|| {
        let from = start + 4;
        (from, from + target.len())
    })
}

/// An origin-form target the `http` crate's URI parser (hyper's path) takes as it is: no
/// fragment and none of the bytes it refuses, so a target means the same on both paths.
fn plain_origin_form(target: &[u8]) -> bool {
    target.first() == Some(&b'/')
        && !target
            .iter()
            .any(|&b| matches!(b, b'#' | b'<' | b'>' | b'`') || !b.is_ascii_graphic())
}

/// Records one field line's place and what it says; `false` if it has no colon, or a name or
/// line end the guard would not have passed.
fn field(
    buf: &[u8],
    (start, end): (usize, usize),
    fields: &mut Vec<FieldSpan>,
    facts: &mut FieldFacts,
) -> bool {
    let Some(line) = buf.get(start..end) else {
        return false;
    };
    if buf.get(end) != Some(&b'\r') {
        return false;
    }
    let Some(colon) = memchr(b':', line) else {
        return false;
    };
    let (name, raw_value) = line.split_at(colon);
    let raw_value = raw_value.get(1..).unwrap_or_default();
    if name.is_empty() || name.iter().any(|&b| matches!(b, b' ' | b'\t')) {
        return false;
    }
    let (skip, value) = trim_ows(raw_value);
    // `parse` keeps the field count under MAX_HEADERS, far below u16::MAX.
    let index = Some(fields.len() as u16);
    match name.len() {
        4 if name.eq_ignore_ascii_case(b"host") => facts.host = index,
        6 if name.eq_ignore_ascii_case(b"expect") => facts.not_inline = true,
        7 if name.eq_ignore_ascii_case(b"upgrade") => facts.not_inline = true,
        10 if name.eq_ignore_ascii_case(b"connection") => match connection_says_close(value) {
            Some(close) => facts.close |= close,
            None => facts.not_inline = true,
        },
        14 if name.eq_ignore_ascii_case(b"content-length") => facts.not_inline = true,
        15 if name.eq_ignore_ascii_case(b"accept-encoding") => {
            facts.accept_encoding = facts.accept_encoding.or(index);
        }
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => facts.not_inline = true,
        _ => {}
    }
    // A head is far smaller than 4 GiB (the guard bounds it).
    let value_start = start + colon + 1 + skip;
    fields.push(FieldSpan {
        name: (start as u32, (start + name.len()) as u32),
        value: (value_start as u32, (value_start + value.len()) as u32),
    });
    true
}

/// `value` without leading and trailing spaces and tabs, and how many bytes it lost in front.
fn trim_ows(value: &[u8]) -> (usize, &[u8]) {
    let ows = |b: &u8| matches!(b, b' ' | b'\t');
    let skip = value.iter().take_while(|b| ows(b)).count();
    let rest = value.get(skip..).unwrap_or_default();
    let keep = rest.len() - rest.iter().rev().take_while(|b| ows(b)).count();
    (skip, rest.get(..keep).unwrap_or_default())
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

    fn assert_left_to_hyper(heads: &[&[u8]]) {
        for head in heads {
            let split = parse(head, &mut Vec::new());
            assert!(
                matches!(split, Head::Other),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn bodies_negotiation_and_other_methods_go_to_hyper() {
        assert_left_to_hyper(&[
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
        ]);
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

    /// A head's target, its fields (name, value) and its length.
    type Reading = (String, Vec<(Vec<u8>, Vec<u8>)>, usize);

    /// httparse's reading of a whole head.
    fn httparse_reading(head: &[u8]) -> Reading {
        let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut lines);
        let Ok(httparse::Status::Complete(len)) = request.parse(head) else {
            panic!(
                "httparse: not a whole head: {}",
                String::from_utf8_lossy(head)
            );
        };
        let fields = request.headers.iter();
        let fields = fields.map(|f| (f.name.as_bytes().to_vec(), f.value.to_vec()));
        (request.path.unwrap_or("").to_owned(), fields.collect(), len)
    }

    /// Heads the guard passes, with what the split must find as httparse finds it.
    const GUARDED_HEADS: [&[u8]; 7] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /users/7?q=a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\r\n",
        b"GET /a%20b HTTP/1.1\r\nHost:x\r\nX-Empty:\r\nX-Ows: \t v \t \r\nX-Spaces:   \r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: x\r\nACCEPT-ENCODING: gzip\r\nAccept-Encoding: br\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: a b  c\r\nX-Latin: caf\xe9\r\n\r\n",
        b"GET /?a=b:c HTTP/1.1\r\nHost: [::1]:80\r\nX-Time: 12:00:01\r\nCookie: a=1; b=2\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\nX-Hostile: host\r\n\r\n",
    ];

    #[test]
    fn the_split_finds_what_httparse_finds_at_every_cut() {
        for head in GUARDED_HEADS {
            let (target, expected, len) = httparse_reading(head);
            let mut buf = head.to_vec();
            buf.extend_from_slice(b"GET /next HTTP/1.1\r\n"); // a pipelined head, in part
            for cut in 0..=buf.len() {
                let mut fields = Vec::new();
                let shown = String::from_utf8_lossy(&buf[..cut]).into_owned();
                let found = match parse(&buf[..cut], &mut fields) {
                    Head::Partial if cut < len => continue,
                    Head::Inline(found) if cut >= len => found,
                    _ => panic!("wrong kind of head at cut {cut}: {shown}"),
                };
                let buf = &buf[..cut];
                assert_eq!(found.len, len, "{shown}");
                assert_eq!(found.target(buf), target, "{shown}");
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = fields
                    .iter()
                    .map(|span| (span.name(buf).to_vec(), span.value(buf).to_vec()))
                    .collect();
                assert_eq!(pairs, expected, "{shown}");
                let first = |name: &[u8]| {
                    let mut values = expected
                        .iter()
                        .filter(|(n, _)| n.eq_ignore_ascii_case(name));
                    values.next().map(|(_, value)| value.clone())
                };
                let at = |index: Option<u16>| Some(fields[usize::from(index?)].value(buf).to_vec());
                assert_eq!(at(found.host), first(b"host"), "{shown}");
                assert_eq!(at(found.accept_encoding), first(b"accept-encoding"));
            }
        }
    }

    #[test]
    fn lines_the_guard_never_passes_are_left_to_hyper() {
        let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_left_to_hyper(&[
            &many[..],
            b"GET / HTTP/1.1\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\n: empty name\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        ]);
    }

    #[test]
    fn ascii_str_takes_ascii_only() {
        assert_eq!(ascii_str(b"/users/7?q=a"), Some("/users/7?q=a"));
        assert_eq!(ascii_str(b""), Some(""));
        assert_eq!(ascii_str("/caf\u{e9}".as_bytes()), None);
        assert_eq!(ascii_str(b"/\xff"), None);
    }

    #[test]
    fn a_head_in_progress_is_partial() {
        let partial = |head: &[u8]| matches!(parse(head, &mut Vec::new()), Head::Partial);
        assert!(partial(b"GET / HTTP/1.1\r\nHost:"));
        assert!(partial(b""));
    }
}
