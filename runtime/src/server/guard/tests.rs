//! Tests for the request-stream guard: valid streams pass unchanged under every delivery
//! pattern, bad heads are rejected with the right status after earlier requests are released,
//! and the harness every guard test uses (`Feed`, a client delivering its bytes in steps, and
//! `outcomes`, which reads a stream under every delivery pattern). Bodies, trailers, the end of
//! the stream and the guard's buffering: `tests/bodies.rs`.

mod bodies;

use super::*;
use std::task::Waker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMITS: GuardLimits = GuardLimits {
    max_header_size: 16 * 1024,
    max_headers: 100,
};

/// In-memory client: yields at most `step` bytes per read; when its data runs out it reports
/// EOF if `closed`, otherwise `Pending`. Records the largest read buffer it was offered.
struct Feed {
    data: Vec<u8>,
    at: usize,
    step: usize,
    closed: bool,
    largest_read: usize,
    written: Vec<u8>,
}

impl Feed {
    fn new(data: &[u8], step: usize) -> Self {
        Feed {
            data: data.to_vec(),
            at: 0,
            step,
            closed: true,
            largest_read: 0,
            written: Vec::new(),
        }
    }
}

impl AsyncRead for Feed {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.largest_read = this.largest_read.max(buf.remaining());
        let left = this.data.len() - this.at;
        if left == 0 && !this.closed {
            return Poll::Pending;
        }
        let n = left.min(this.step).min(buf.remaining());
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Feed {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().written.extend_from_slice(b);
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[derive(Debug)]
struct Outcome {
    out: Vec<u8>,
    err: Option<io::ErrorKind>,
    rejection: Option<Rejection>,
}

/// Reads the guarded stream to its end (EOF or error) and checks the end is sticky.
async fn drive(input: &[u8], step: usize, read_size: usize, limits: GuardLimits) -> Outcome {
    let mut guard = GuardedIo::new(Feed::new(input, step), limits);
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    let err = loop {
        match guard.read(&mut buf).await {
            Ok(0) => break None,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e.kind()),
        }
    };
    let again = guard.read(&mut buf).await.map_err(|e| e.kind());
    match err {
        None => assert_eq!(again, Ok(0), "EOF must be sticky"),
        Some(kind) => assert_eq!(again, Err(kind), "errors must be sticky"),
    }
    let rejection = guard.take_rejection();
    assert_eq!(guard.take_rejection(), None, "rejection is taken once");
    Outcome {
        out,
        err,
        rejection,
    }
}

/// Every delivery pattern: 1 byte per client read up to everything at once, and reader
/// buffers from 1 byte to 64 KiB. All must agree.
async fn outcomes(input: &[u8], limits: GuardLimits) -> Outcome {
    let first = drive(input, usize::MAX, 64 * 1024, limits).await;
    for (step, read_size) in [
        (1, 1),
        (1, 4096),
        (3, 7),
        (64, 5),
        (usize::MAX, 1),
        (997, 333),
    ] {
        let other = drive(input, step, read_size, limits).await;
        assert_eq!(other.out, first.out, "step {step}, read {read_size}");
        assert_eq!(other.err, first.err, "step {step}, read {read_size}");
        assert_eq!(
            other.rejection, first.rejection,
            "step {step}, read {read_size}"
        );
    }
    first
}

async fn accept(input: &[u8]) {
    let o = outcomes(input, LIMITS).await;
    assert_eq!(
        (o.err, o.rejection),
        (None, None),
        "{}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(o.out, input);
}

async fn reject_with(input: &[u8], released: usize, status: u16, limits: GuardLimits) {
    let o = outcomes(input, limits).await;
    let shown = String::from_utf8_lossy(&input[..input.len().min(200)]);
    assert_eq!(o.err, None, "{shown}");
    assert_eq!(o.rejection.map(|r| r.status), Some(status), "{shown}");
    assert_eq!(o.out, &input[..released], "{shown}");
}

async fn reject(input: &[u8], status: u16) {
    reject_with(input, 0, status, LIMITS).await;
}

async fn body_error(input: &[u8], released: usize) {
    let o = outcomes(input, LIMITS).await;
    let shown = String::from_utf8_lossy(input);
    assert_eq!(o.err, Some(io::ErrorKind::InvalidData), "{shown}");
    assert_eq!(o.rejection, None, "{shown}");
    assert_eq!(o.out, &input[..released], "{shown}");
}

fn get_with(header: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: example.com\r\n{header}\r\n\r\n").into_bytes()
}

fn chunked(body: &str) -> Vec<u8> {
    format!("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}").into_bytes()
}

const HEAD_LEN: usize = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".len();

#[tokio::test]
async fn valid_requests_pass_unchanged() {
    accept(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n").await;
    accept(b"GET /a?b=c HTTP/1.0\r\n\r\n").await;
    accept(b"OPTIONS * HTTP/1.1\r\nHost: a:80\r\n\r\n").await;
    accept(b"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n").await;
    accept(b"get / HTTP/1.1\r\nHost: [::1]:8080\r\nX-Obs: caf\xc3\xa9\xff\r\nX-E:\r\n\r\n").await;
    accept(b"GET / HTTP/1.1\r\nhOsT: 10.0.0.1\r\nX: a\tb  \r\n\r\n").await;
    accept(b"GET / HTTP/1.1\r\nHost: ex%41mple_~-.com\r\nContent-Length: 0\r\n\r\n").await;
    accept(b"GET / HTTP/1.1\r\nHost: [v7.a:b]\r\n\r\n").await;
}

#[tokio::test]
async fn pipelined_requests_with_bodies() {
    let mut input = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    input.extend_from_slice(
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello\r\n\r\nGE",
    );
    input.extend_from_slice(&chunked(
        "5;a=b;c=\"q\\\"d\" ; e\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    ));
    input.extend_from_slice(
        b"POST /4 HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n\x00\r\n\xff\n\r\n",
    );
    input.extend_from_slice(b"GET /5 HTTP/1.0\r\n\r\n");
    accept(&input).await;
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers() {
    accept(&chunked("0\r\n\r\n")).await;
    accept(&chunked(
        "A\r\n0123456789\r\n0000000000000001\r\nx\r\n0\r\n\r\n",
    ))
    .await;
    accept(&chunked(
        "3 ;x\t=\t\"a b\\\tc\\é\"\r\nabc\r\n0;last\r\nA: 1\r\nB-2:\r\n\r\n",
    ))
    .await;
    let mut te_mixed =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD \r\n\r\n".to_vec();
    te_mixed.extend_from_slice(b"1\r\n\r\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    accept(&te_mixed).await;
}

#[tokio::test]
async fn leading_empty_lines_are_dropped() {
    let o = outcomes(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", LIMITS).await;
    assert_eq!(o.out, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((o.err, o.rejection), (None, None));
    let mut input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab".to_vec();
    let first = input.len();
    input.extend_from_slice(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let o = outcomes(&input, LIMITS).await;
    assert_eq!(&o.out[..first], &input[..first]);
    assert_eq!(&o.out[first..], &input[first + 2..]);
    reject(
        b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
    )
    .await;
    reject(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400).await;
    reject(b" \r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400).await;
}

#[tokio::test]
async fn bad_head_after_valid_requests_releases_them_first() {
    let good = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nGET ";
    let mut input = good.to_vec();
    input.extend_from_slice(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    reject_with(&input, good.len(), 400, LIMITS).await;
    let mut input = chunked("2\r\nab\r\n0\r\n\r\n");
    let released = input.len();
    input.extend_from_slice(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n");
    reject_with(&input, released, 405, LIMITS).await;
}

#[tokio::test]
async fn framing_conflicts() {
    let cases: &[(&str, u16)] = &[
        ("Transfer-Encoding: chunked\r\nContent-Length: 5", 400),
        ("Content-Length: 5\r\nTransfer-Encoding: chunked", 400),
        ("Content-Length: 5\r\nContent-Length: 5", 400),
        ("Content-Length: 5, 5", 400),
        ("Content-Length: +5", 400),
        ("Content-Length: 5 5", 400),
        ("Content-Length: -1", 400),
        ("Content-Length: 0x5", 400),
        ("Content-Length:", 400),
        ("Content-Length: 18446744073709551616", 400),
        ("Transfer-Encoding: gzip, chunked", 501),
        ("Transfer-Encoding: chunked, gzip", 501),
        ("Transfer-Encoding: identity", 501),
        ("Transfer-Encoding: chunked, chunked", 400),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            400,
        ),
        ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 501),
        ("Transfer-Encoding: chunked,", 400),
        ("Transfer-Encoding: chunked;q=1", 400),
        ("Transfer-Encoding: \"chunked\"", 400),
        ("Transfer-Encoding:", 400),
    ];
    for (header, status) in cases {
        reject(&get_with(header), *status).await;
    }
    reject(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    )
    .await;
    accept(&get_with("Content-Length:  18446744073709551615 ")).await;
}

#[tokio::test]
async fn host_rules() {
    reject(b"GET / HTTP/1.1\r\n\r\n", 400).await;
    reject(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400).await;
    reject(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400).await;
    accept(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n").await;
    for host in [
        "", " ", "a b", "a/b", "a:", ":80", "a:99999", "a:8x", "a:123456", "[::1", "[zz]",
        "[::1]x", "[]", "ex%4mple", "a@b", "[v.a]", "[v1.]",
    ] {
        let input = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        reject(input.as_bytes(), 400).await;
    }
}

#[tokio::test]
async fn request_line_rules() {
    let cases: &[(&[u8], u16)] = &[
        (b"CONNECT example.com:443 HTTP/1.1", 405),
        (b"GET / HTTP/2.0", 505),
        (b"GET / HTTP/1.2", 505),
        (b"GET / HTTP/0.9", 505),
        (b"GET / HTTP/1.10", 400),
        (b"GET / http/1.1", 400),
        (b"GET / HTTP/1.1 ", 400),
        (b"GET /", 400),
        (b"GET  / HTTP/1.1", 400),
        (b" GET / HTTP/1.1", 400),
        (b"G@T / HTTP/1.1", 400),
        (b"GET * HTTP/1.1", 400),
        (b"GET example.com:80 HTTP/1.1", 400),
        (b"GET 1http://a/ HTTP/1.1", 400),
        (b"GET http:/a HTTP/1.1", 400),
        (b"GET /\x80 HTTP/1.1", 400),
        (b"GET /\t HTTP/1.1", 400),
        (b"GET /\x7f HTTP/1.1", 400),
        (b"GET / HTTP/1.1\r", 400),
    ];
    for (line, status) in cases {
        let mut input = line.to_vec();
        input.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        reject(&input, *status).await;
    }
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(8191));
    accept(long.as_bytes()).await;
    let too_long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(8192));
    reject(too_long.as_bytes(), 414).await;
}

#[tokio::test]
async fn header_line_rules() {
    for header in [
        &b"Host: a\nX: 1"[..],
        b"X: 1\rY: 2",
        b"X: a\x00b",
        b"X: a\x7fb",
        b"X: a\x01b",
        b" X: folded",
        b"\tX: folded",
        b"X : 1",
        b"X\t: 1",
        b"NoColon",
        b": empty-name",
        b"X(y): 1",
    ] {
        let mut input = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        input.extend_from_slice(header);
        input.extend_from_slice(b"\r\n\r\n");
        reject(&input, 400).await;
    }
    reject(b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400).await;
    reject(b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400).await;
    let o = outcomes(b"GET / HTTP/1.1\r\nHost: a\r\n\r", LIMITS).await;
    assert_eq!((o.out.len(), o.err, o.rejection), (0, None, None));
}

#[tokio::test]
async fn rejection_reasons() {
    for (input, reason) in [
        (get_with(" X: 1"), "obsolete line folding"),
        (get_with("X : 1"), "invalid header field name"),
        (get_with("X: \x01"), "invalid header field value"),
        (
            get_with("Content-Length: 1\r\nTransfer-Encoding: chunked"),
            "conflicting Content-Length and Transfer-Encoding",
        ),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "missing Host header"),
        (
            b"GET / HTTP/1.1\nHost: a\r\n\r\n".to_vec(),
            "bare LF in request head",
        ),
        (
            b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n".to_vec(),
            "CONNECT is not supported",
        ),
    ] {
        let o = outcomes(&input, LIMITS).await;
        assert_eq!(o.rejection.map(|r| r.reason), Some(reason));
    }
}

#[tokio::test]
async fn size_limits() {
    let head = |n: usize| format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(n));
    let exact = head(100);
    let limits = GuardLimits {
        max_header_size: exact.len(),
        max_headers: 2,
    };
    let o = outcomes(exact.as_bytes(), limits).await;
    assert_eq!(
        (o.out.as_slice(), o.err, o.rejection),
        (exact.as_bytes(), None, None)
    );
    reject_with(head(101).as_bytes(), 0, 431, limits).await;
    for len in [exact.len() + 1, 500] {
        let endless = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(len));
        reject_with(&endless.as_bytes()[..len], 0, 431, limits).await;
    }
    reject_with(
        b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
        0,
        431,
        limits,
    )
    .await;
    let mut two = exact.clone().into_bytes();
    two.extend_from_slice(head(101).as_bytes());
    reject_with(&two, exact.len(), 431, limits).await;
}

#[test]
fn the_byte_tables_are_tchar_and_rfc_3986_unreserved_and_sub_delims() {
    for b in 0..=255u8 {
        let expected = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b);
        assert_eq!(is_host_byte(b), expected, "byte {b:#04x}");
        let tchar = b.is_ascii_alphanumeric() || matches!(b, b'!' | b'#'..=b'\'' | b'*' | b'+');
        let tchar = tchar || matches!(b, b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        assert_eq!(is_tchar(b), tchar, "byte {b:#04x}");
    }
    assert!(is_valid_host(b"127.0.0.1:8080") && is_valid_host(b"ex%41mple.org"));
    assert!(!is_valid_host(b"ex%4mple.org") && !is_valid_host(b"a b"));
}
