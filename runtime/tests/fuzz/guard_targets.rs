//! Fuzz targets for the request-stream guard: request heads (against `httparse` as the
//! reference parser) and chunked bodies (against `chunked_ref`).
//!
//! Owns: the properties. For every input: no panic; the guard releases a prefix of the input,
//! unchanged; the outcome does not depend on how the bytes are split into reads; a head the
//! guard releases in full is one `httparse` parses completely; a chunked body the guard lets
//! through to a clean end is one the reference decoder accepts, and a body the reference
//! accepts is refused only for one of wsrun's documented limits. Must not touch: the driver.

use crate::chunked_ref::{self, Decoded};
use crate::driver::{Rng, Verdict};
use crate::guard_run::{class, drive, Outcome};

/// Releases of the whole head are compared with httparse, allowing this many fields.
const REF_MAX_HEADERS: usize = 256;

/// A read pattern derived from the input, so a verdict is reproducible from the input alone.
fn pattern(input: &[u8]) -> (usize, usize) {
    let h = input
        .iter()
        .fold(7usize, |h, &b| h.wrapping_mul(31).wrapping_add(b as usize));
    (1 + h % 7, 1 + (h / 7) % 97)
}

/// The properties every stream must have, whatever it holds.
fn stream_properties(input: &[u8]) -> Result<Outcome, String> {
    let whole = drive(input, input.len(), 1 << 16);
    let (step, read) = pattern(input);
    let split = drive(input, step, read);
    if whole != split {
        return Err(format!("outcome depends on read sizes (step {step}, read {read}):\n whole {whole:?}\n split {split:?}"));
    }
    if !released_from(input, &whole.out) {
        return Err("released bytes are not the input's (less empty lines before heads)".into());
    }
    if let Some(r) = whole.rejection {
        let response = r.to_http_bytes();
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let parsed = httparse::Response::new(&mut headers).parse(&response);
        if !matches!(parsed, Ok(httparse::Status::Complete(n)) if n < response.len()) {
            return Err(format!("rejection response does not parse: {parsed:?}"));
        }
    }
    Ok(whole)
}

/// `out` is a prefix of `input` from which only CRLF pairs were left out: the guard drops the
/// empty lines a client may send before a request line (RFC 9112 section 2.2), nothing else.
fn released_from(input: &[u8], out: &[u8]) -> bool {
    let (mut i, mut j) = (0, 0);
    while j < out.len() {
        if input.get(i) == Some(&out[j]) {
            (i, j) = (i + 1, j + 1);
        } else if input[i..].starts_with(b"\r\n") {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

/// End of the first head in `out` (after up to 4 leading empty lines), if it is all there.
fn first_head_end(out: &[u8]) -> Option<usize> {
    out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Target `head`: any byte stream a client may send.
pub fn check_head(input: &[u8]) -> Verdict {
    let o = stream_properties(input)?;
    let mut cls = class(&o);
    if let Some(end) = first_head_end(&o.out) {
        let mut headers = vec![httparse::EMPTY_HEADER; REF_MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&o.out[..end]) {
            Ok(httparse::Status::Complete(n)) if n == end => {}
            other => {
                return Err(format!(
                    "guard released a head httparse does not accept: {other:?} (head ends at {end})"
                ))
            }
        }
        cls.push_str(" +head");
    }
    Ok(cls)
}

/// Pieces of origin-form paths (pchar, sub-delims, a query).
const PATH_PIECES: &[&str] = &["a", "b/", "%20", "x.y", "-_~", "q?x=1&y=2", "!$&'()*+,;=:@"];

/// A well-formed request (or a few pipelined), which the guard must pass unchanged.
pub fn valid_requests(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let method = rng.pick(&["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]);
        let mut path = String::from("/");
        for _ in 0..rng.below(5) {
            let piece = rng.pick(PATH_PIECES);
            path.push_str(piece);
        }
        if path.matches('?').count() > 1 {
            path = path.replacen('?', "/", path.matches('?').count() - 1);
        }
        out.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: h{}.example:80\r\n",
                rng.below(9)
            )
            .as_bytes(),
        );
        for i in 0..rng.below(6) {
            let value = rng.pick(&[
                "v",
                "a b\tc",
                "\"q\"",
                "text/plain; charset=utf-8",
                "*/*",
                "",
            ]);
            let ows = rng.pick(&["", " ", "\t", "  "]);
            out.extend_from_slice(
                format!("X-F{i}-{}:{ows}{value}{ows}\r\n", rng.below(99)).as_bytes(),
            );
        }
        let body: Vec<u8> = (0..rng.below(40)).map(|_| rng.below(256) as u8).collect();
        let chunked = !body.is_empty() && rng.chance(2);
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            out.extend_from_slice(&chunked_ref::encode(rng, &body));
        } else {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(&body);
        }
    }
    out
}

/// The head the chunked target's bodies follow.
pub const CHUNKED_HEAD: &[u8] =
    b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Reasons the guard may refuse a body the bare grammar allows: wsrun's documented limits.
const POLICY: &[&str] = &[
    "chunk-size line too long",
    "chunk size too large",
    "trailer section too large",
    "too many trailer fields",
];

fn is_policy(reason: &str) -> bool {
    POLICY.contains(&reason) || reason == wsrun::field_rules::FORBIDDEN_TRAILER_REASON
}

/// Target `chunked`: the input is a chunked body after `CHUNKED_HEAD`.
pub fn check_chunked(body: &[u8]) -> Verdict {
    let mut input = CHUNKED_HEAD.to_vec();
    input.extend_from_slice(body);
    let o = stream_properties(&input)?;
    let released = &o.out[CHUNKED_HEAD.len().min(o.out.len())..];
    let reference = chunked_ref::decode(body);
    let next_message = matches!(reference, Decoded::Complete(_, used) if used < body.len());
    if next_message {
        return Ok(format!("{} +next", class(&o)));
    }
    match (&reference, &o.err, &o.rejection) {
        (_, _, Some(r)) => return Err(format!("a body byte was taken for a head: {r:?}")),
        (Decoded::Invalid(at, why), None, None) => {
            return Err(format!(
                "guard let through a body the reference refuses at {at}: {why}"
            ))
        }
        (Decoded::Complete(..) | Decoded::Partial, Some((_, msg)), None) if !is_policy(msg) => {
            return Err(format!(
                "guard refused ({msg}) a body the reference accepts: {reference:?}"
            ))
        }
        _ => {}
    }
    if let (Decoded::Complete(..), None) = (&reference, &o.err) {
        if released != body {
            return Err("a complete valid body was not released whole".into());
        }
    }
    if let Decoded::Invalid(at, _) = reference {
        // Nothing past the line holding the violation may have been released.
        let line_end = body[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| at + i + 1);
        if released.len() > line_end {
            return Err(format!(
                "released {} body bytes, past the violation at {at}",
                released.len()
            ));
        }
    }
    let shape = match reference {
        Decoded::Complete(..) => "complete",
        Decoded::Partial => "partial",
        Decoded::Invalid(_, why) => why,
    };
    Ok(format!("{} ref {shape}", class(&o)))
}

/// A valid chunked body of random bytes (the reference must decode it back).
pub fn valid_chunked(rng: &mut Rng) -> Vec<u8> {
    let data: Vec<u8> = (0..rng.below(2000)).map(|_| rng.below(256) as u8).collect();
    chunked_ref::encode(rng, &data)
}
