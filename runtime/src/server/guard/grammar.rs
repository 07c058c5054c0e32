//! The byte-level grammar the guard checks: request-line, header fields, Host, chunk-size
//! lines and their extensions (RFC 9110 / RFC 9112 ABNF, strictly).
//!
//! Owns: pure functions over byte slices. Must not touch: I/O or the guard's buffering.

use std::net::Ipv6Addr;

use memchr::memchr;

use super::scan::{bad, fail, Fail, HeadScan, LineErr, State, MAX_CHUNK_DIGITS, MAX_TARGET_LEN};
use crate::field_rules::{repeated_reason, singleton_index};

/// Finds the next CRLF-terminated line in `raw`, resuming the LF search at `*scan`.
/// Returns the line without CRLF and its length with CRLF; `limit` caps that length.
pub(super) fn find_line<'a>(
    raw: &'a [u8],
    scan: &mut usize,
    limit: usize,
) -> Result<Option<(&'a [u8], usize)>, LineErr> {
    let Some(i) = raw.get(*scan..).and_then(|rest| memchr(b'\n', rest)) else {
        *scan = raw.len();
        return (raw.len() <= limit).then_some(None).ok_or(LineErr::TooLong);
    };
    let lf = *scan + i;
    if lf >= limit {
        return Err(LineErr::TooLong);
    }
    match lf.checked_sub(1).and_then(|cr| raw.split_at_checked(cr)) {
        Some((line, [b'\r', ..])) => {
            *scan = 0;
            Ok(Some((line, lf + 1)))
        }
        _ => Err(LineErr::BareLf),
    }
}

/// `request-line = method SP request-target SP HTTP-version`.
pub(super) fn check_request_line(line: &[u8], head: &mut HeadScan) -> Result<(), Fail> {
    let Some((method, rest)) = split_once(line, b' ') else {
        return Err(bad("malformed request-line"));
    };
    let Some((target, version)) = split_once(rest, b' ') else {
        return Err(bad("malformed request-line"));
    };
    if !is_token(method) {
        return Err(bad("invalid method"));
    }
    head.http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(fail(505, "HTTP version not supported"));
        }
        _ => return Err(bad("invalid HTTP version")),
    };
    if method == b"CONNECT" {
        return Err(fail(405, "CONNECT is not supported"));
    }
    if target.len() > MAX_TARGET_LEN {
        return Err(fail(414, "request-target too long"));
    }
    if target.is_empty() || !target.iter().all(|&b| b > b' ' && b < 0x7f) {
        return Err(bad("invalid request-target"));
    }
    match target {
        [b'/', ..] => Ok(()),
        b"*" if method == b"OPTIONS" => Ok(()),
        _ if is_absolute_form(target) => Ok(()),
        _ => Err(bad("invalid request-target form")),
    }
}

/// `scheme "://" 1*char`, scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
pub(super) fn is_absolute_form(target: &[u8]) -> bool {
    let Some((scheme, rest)) = split_once(target, b':') else {
        return false;
    };
    let scheme_char = |b: &u8| b.is_ascii_alphanumeric() || b"+-.".contains(b);
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(scheme_char)
        && rest.len() > 2
        && rest.starts_with(b"//")
}

/// `field-line = field-name ":" OWS field-value OWS`; returns the name and trimmed value.
pub(super) fn parse_field(line: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err("obsolete line folding");
    }
    let Some((name, value)) = split_once(line, b':') else {
        return Err("header line without colon");
    };
    if !is_token(name) {
        return Err("invalid header field name");
    }
    if !value.iter().all(|&b| is_field_byte(b)) {
        return Err("invalid header field value");
    }
    Ok((name, trim_ows(value)))
}

/// Records the framing-relevant header fields of a request head; refuses a repeated
/// singleton (`field_rules`).
pub(super) fn check_header(name: &[u8], value: &[u8], head: &mut HeadScan) -> Result<(), Fail> {
    if let Some(index) = singleton_index(name) {
        let bit = 1u16 << index;
        if head.singletons & bit != 0 {
            return Err(bad(repeated_reason(index)));
        }
        head.singletons |= bit;
    }
    if name.eq_ignore_ascii_case(b"host") {
        head.hosts += 1;
        if head.hosts > 1 {
            return Err(bad("duplicate Host header"));
        }
        if !is_valid_host(value) {
            return Err(bad("invalid Host header"));
        }
    } else if name.eq_ignore_ascii_case(b"content-length") {
        if head.content_length.is_some() {
            return Err(bad("multiple Content-Length headers"));
        }
        head.content_length = Some(parse_decimal(value).ok_or(bad("invalid Content-Length"))?);
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        head.te_seen = true;
        for element in value.split(|&b| b == b',') {
            let (coding, params) = match split_once(element, b';') {
                Some((coding, params)) => (trim_ows(coding), Some(params)),
                None => (trim_ows(element), None),
            };
            if !is_token(coding) {
                head.te_malformed = true;
            } else if !coding.eq_ignore_ascii_case(b"chunked") {
                head.te_other = true;
            } else if params.is_some() {
                head.te_malformed = true;
            } else {
                head.te_chunked += 1;
            }
        }
    }
    Ok(())
}

/// Whole-head checks; returns the body framing that follows the head.
pub(super) fn finish_head(head: &HeadScan) -> Result<State, Fail> {
    if head.http11 && head.hosts == 0 {
        return Err(bad("missing Host header"));
    }
    if head.te_seen {
        if head.content_length.is_some() {
            return Err(bad("conflicting Content-Length and Transfer-Encoding"));
        }
        if !head.http11 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if head.te_malformed {
            return Err(bad("malformed Transfer-Encoding"));
        }
        if head.te_other {
            return Err(fail(501, "unsupported transfer coding"));
        }
        if head.te_chunked != 1 {
            return Err(bad("chunked applied more than once"));
        }
        return Ok(State::ChunkSize);
    }
    Ok(match head.content_length {
        Some(n) if n > 0 => State::Length(n),
        _ => State::Head,
    })
}

/// `uri-host [ ":" port ]` with uri-host = IP-literal / IPv4address / reg-name (non-empty).
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    let (host_ok, port) = if let Some(rest) = value.strip_prefix(b"[") {
        let Some((literal, after)) = split_once(rest, b']') else {
            return false;
        };
        let port = match after {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return false,
        };
        (is_ip_literal(literal), port)
    } else {
        let (host, port) = match split_once(value, b':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        };
        (!host.is_empty() && is_reg_name(host), port)
    };
    host_ok
        && port.is_none_or(|p| {
            (1..=5).contains(&p.len()) && parse_decimal(p).is_some_and(|n| n <= 65535)
        })
}

/// Inside the brackets: IPv6address / IPvFuture.
pub(super) fn is_ip_literal(literal: &[u8]) -> bool {
    if let Some(future) = literal.strip_prefix(b"v").or(literal.strip_prefix(b"V")) {
        let Some((version, rest)) = split_once(future, b'.') else {
            return false;
        };
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest.iter().all(|&b| b == b':' || is_host_byte(b));
    }
    std::str::from_utf8(literal).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (IPv4address is a subset).
pub(super) fn is_reg_name(host: &[u8]) -> bool {
    if host.iter().all(|&b| is_host_byte(b)) {
        return true; // the usual case: no pct-encoded octet
    }
    let mut rest = host;
    while let Some((&b, tail)) = rest.split_first() {
        rest = match (b, tail) {
            (b'%', [h1, h2, tail @ ..]) if h1.is_ascii_hexdigit() && h2.is_ascii_hexdigit() => tail,
            _ if is_host_byte(b) => tail,
            _ => return false,
        };
    }
    true
}

/// `chunk-size [ chunk-ext ]`; returns the size.
pub(super) fn parse_chunk_line(line: &[u8]) -> Result<u64, &'static str> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err("invalid chunk size");
    }
    if digits > MAX_CHUNK_DIGITS {
        return Err("chunk size too large");
    }
    let hex = std::str::from_utf8(line.get(..digits).unwrap_or(&[])).unwrap_or("");
    let size = u64::from_str_radix(hex, 16).map_err(|_| "invalid chunk size")?;
    let mut rest = line.get(digits..).unwrap_or(&[]);
    // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
    while !rest.is_empty() {
        let Some(after_semi) = skip_ows(rest).strip_prefix(b";") else {
            return Err("invalid chunk extension");
        };
        let after_name = skip_token(skip_ows(after_semi)).ok_or("invalid chunk extension name")?;
        rest = match skip_ows(after_name).strip_prefix(b"=") {
            None => after_name,
            Some(value) => {
                let value = skip_ows(value);
                match value.strip_prefix(b"\"") {
                    Some(quoted) => skip_quoted(quoted).ok_or("invalid chunk extension value")?,
                    None => skip_token(value).ok_or("invalid chunk extension value")?,
                }
            }
        };
    }
    Ok(size)
}

/// Skips the rest of a quoted-string (after its opening DQUOTE).
pub(super) fn skip_quoted(mut s: &[u8]) -> Option<&[u8]> {
    loop {
        match s {
            [b'"', rest @ ..] => return Some(rest),
            [b'\\', c, rest @ ..] if is_field_byte(*c) => s = rest,
            [c, rest @ ..] if *c != b'\\' && is_field_byte(*c) => s = rest,
            _ => return None,
        }
    }
}

/// Skips a non-empty token; `None` if there is none.
pub(super) fn skip_token(s: &[u8]) -> Option<&[u8]> {
    let n = s.iter().take_while(|&&b| is_tchar(b)).count();
    if n == 0 {
        None
    } else {
        s.get(n..)
    }
}

pub(super) fn skip_ows(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    s.get(n..).unwrap_or(&[])
}

pub(super) fn trim_ows(s: &[u8]) -> &[u8] {
    let s = skip_ows(s);
    let n = s
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    s.get(..s.len() - n).unwrap_or(&[])
}

/// `1*DIGIT` as a `u64`; `None` if empty, not digits, or too large.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

pub(super) fn split_once(s: &[u8], byte: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr(byte, s)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

pub(super) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// RFC 9110 tchar.
pub(super) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// RFC 9110 `tchar`, as a table: this runs for every byte of every header name.
static TCHAR: [bool; 256] = alnum_and(b"!#$%&'*+-.^_`|~");

/// HTAB / SP / VCHAR / obs-text: what field values and quoted-strings may hold.
pub(super) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

/// RFC 3986 unreserved / sub-delims.
pub(super) fn is_host_byte(b: u8) -> bool {
    HOST_BYTE[b as usize]
}

/// `is_host_byte` by byte: a table, as `TCHAR` (every request's Host goes through it).
static HOST_BYTE: [bool; 256] = alnum_and(b"-._~!$&'()*+,;=");

/// A byte table: ASCII letters and digits, and the bytes of `extra`.
const fn alnum_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}
