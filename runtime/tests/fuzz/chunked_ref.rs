//! A reference decoder for the chunked transfer coding (RFC 9112 section 7.1), written
//! straight from the grammar and independent of the guard's code, plus an encoder for valid
//! bodies. The fuzz targets compare the guard against it.
//!
//! Owns: the grammar only (chunk-size, chunk-ext with BWS, chunk data, last-chunk, trailer
//! field lines). Must not touch: wsrun's limits and policies (line lengths, digit counts,
//! forbidden trailers): the targets account for those.

use crate::driver::Rng;

/// How far a byte string gets as a chunked body.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole body: the data, and how many bytes it used.
    Complete(Vec<u8>, usize),
    /// A valid beginning that needs more bytes.
    Partial,
    /// Not a chunked body: the offset and why.
    Invalid(usize, &'static str),
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// One line up to CRLF: `Ok(Some((line, next)))`, `Ok(None)` when incomplete.
fn line(data: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, &'static str> {
    let rest = &data[at..];
    match rest.iter().position(|&b| b == b'\n') {
        None => Ok(None),
        Some(0) => Err("bare LF"),
        Some(i) if rest[i - 1] != b'\r' => Err("bare LF"),
        Some(i) => {
            let line = &rest[..i - 1];
            if line.contains(&b'\r') {
                return Err("bare CR");
            }
            Ok(Some((line, at + i + 1)))
        }
    }
}

fn skip(s: &[u8], pred: impl Fn(u8) -> bool) -> &[u8] {
    let n = s.iter().take_while(|&&b| pred(b)).count();
    &s[n..]
}

/// `quoted-string` after its opening DQUOTE: qdtext or quoted-pair, then DQUOTE.
fn quoted(mut s: &[u8]) -> Option<&[u8]> {
    loop {
        match s {
            [b'"', rest @ ..] => return Some(rest),
            [b'\\', b, rest @ ..]
                if *b == b'\t' || *b == b' ' || (0x21..=0x7e).contains(b) || *b >= 0x80 =>
            {
                s = rest
            }
            [b, rest @ ..]
                if *b == b'\t'
                    || *b == b' '
                    || *b == 0x21
                    || (0x23..=0x5b).contains(b)
                    || (0x5d..=0x7e).contains(b)
                    || *b >= 0x80 =>
            {
                s = rest
            }
            _ => return None,
        }
    }
}

fn token(s: &[u8]) -> Option<&[u8]> {
    let rest = skip(s, is_tchar);
    (rest.len() < s.len()).then_some(rest)
}

/// `chunk-size [ chunk-ext ]` -> the size (`None` when the size does not fit in u64).
fn chunk_line(l: &[u8]) -> Result<Option<u64>, &'static str> {
    let digits = l.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err("no chunk size");
    }
    let hex = std::str::from_utf8(&l[..digits]).map_err(|_| "size")?;
    let size = u64::from_str_radix(hex, 16).ok();
    let mut rest = &l[digits..];
    while !rest.is_empty() {
        rest = skip(rest, is_ows)
            .strip_prefix(b";")
            .ok_or("bad chunk-ext")?;
        rest = token(skip(rest, is_ows)).ok_or("bad chunk-ext name")?;
        let after = skip(rest, is_ows);
        if let Some(value) = after.strip_prefix(b"=") {
            let value = skip(value, is_ows);
            rest = match value.strip_prefix(b"\"") {
                Some(q) => quoted(q).ok_or("bad chunk-ext quoted value")?,
                None => token(value).ok_or("bad chunk-ext value")?,
            };
        }
    }
    Ok(size)
}

/// `field-name ":" OWS field-value OWS`, the value of visible bytes, SP and HTAB.
fn field_line(l: &[u8]) -> Result<(), &'static str> {
    let colon = l
        .iter()
        .position(|&b| b == b':')
        .ok_or("field without colon")?;
    let name = &l[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err("bad field name");
    }
    let value = &l[colon + 1..];
    if !value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
    {
        return Err("bad field value");
    }
    Ok(())
}

/// Decodes `data` as a chunked body (from the first chunk-size line).
pub fn decode(data: &[u8]) -> Decoded {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let (l, next) = match line(data, at) {
            Ok(Some(found)) => found,
            Ok(None) => return Decoded::Partial,
            Err(why) => return Decoded::Invalid(at, why),
        };
        let size = match chunk_line(l) {
            Ok(Some(size)) => size,
            Ok(None) => return Decoded::Invalid(at, "chunk size overflows"),
            Err(why) => return Decoded::Invalid(at, why),
        };
        at = next;
        if size == 0 {
            return trailers(data, at, body);
        }
        let Some(end) = usize::try_from(size).ok().and_then(|n| at.checked_add(n)) else {
            return Decoded::Partial;
        };
        if end > data.len() {
            return Decoded::Partial;
        }
        body.extend_from_slice(&data[at..end]);
        match &data[end..] {
            [] | [b'\r'] => return Decoded::Partial,
            [b'\r', b'\n', ..] => at = end + 2,
            _ => return Decoded::Invalid(end, "chunk data not followed by CRLF"),
        }
    }
}

fn trailers(data: &[u8], mut at: usize, body: Vec<u8>) -> Decoded {
    loop {
        match line(data, at) {
            Ok(None) => return Decoded::Partial,
            Err(why) => return Decoded::Invalid(at, why),
            Ok(Some(([], next))) => return Decoded::Complete(body, next),
            Ok(Some((l, next))) => {
                if let Err(why) = field_line(l) {
                    return Decoded::Invalid(at, why);
                }
                at = next;
            }
        }
    }
}

/// A valid chunked encoding of `data`: random chunk sizes, hex case, extensions and trailers.
pub fn encode(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(data.len() - at)).min(1 + rng.below(300));
        let size = if rng.chance(2) {
            format!("{n:x}")
        } else {
            format!("{n:X}")
        };
        let zeros = if rng.chance(6) { "00" } else { "" };
        out.extend_from_slice(format!("{zeros}{size}{}\r\n", extension(rng)).as_bytes());
        out.extend_from_slice(&data[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
    }
    out.extend_from_slice(format!("0{}\r\n", extension(rng)).as_bytes());
    for _ in 0..rng.below(3) {
        let name = rng.pick(&["X-Digest", "Server-Timing", "x-a", "X-Checksum"]);
        out.extend_from_slice(format!("{name}: v{} w\r\n", rng.below(1000)).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Chunk extensions, in the grammar's corners (BWS, quoted pairs, several in a row).
const EXTENSIONS: &[&str] = &[
    ";a",
    ";name=value",
    " ; q=\"quoted \\\" str\"",
    ";a;b=1",
    "\t;x = y",
];

fn extension(rng: &mut Rng) -> &'static str {
    if !rng.chance(4) {
        return "";
    }
    let ext = rng.pick(EXTENSIONS);
    ext
}
