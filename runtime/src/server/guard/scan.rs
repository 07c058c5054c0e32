//! What the guard and its grammar share: size limits, rejections, and the state of the
//! message being scanned.
//!
//! Owns: the guard's constants, `GuardLimits`, `Rejection` (and its response bytes), `State`,
//! `HeadScan`, `Fail`/`LineErr`. Must not touch: I/O (`mod.rs`) or the grammar's checks
//! (`grammar`); it is the bottom of `guard/`, so both read it without reading each other.

/// Longest accepted request-target, in bytes (longer: 414).
pub(super) const MAX_TARGET_LEN: usize = 8192;
/// Longest accepted chunk-size line including extensions, CRLF excluded.
pub(super) const MAX_CHUNK_LINE: usize = 4096;
/// Most hex digits accepted in a chunk-size (16 always fit in a `u64`).
pub(super) const MAX_CHUNK_DIGITS: usize = 16;
/// Empty lines tolerated (and dropped) before a request-line (RFC 9112 section 2.2).
pub(super) const MAX_LEADING_EMPTY_LINES: usize = 4;
/// Initial size of the read-ahead buffer; it doubles when a head or line needs more. Most
/// heads are well under 1 KiB, and every connection zeroes this buffer when it opens and holds
/// it while idle, so it starts small.
pub(super) const INITIAL_BUF: usize = 4 * 1024;
/// The size the read-ahead buffer doubles to, read after read, while reads fill it (a client
/// sending bodies or pipelining): one read then takes a head and a small body together.
pub(super) const FULL_READ_AHEAD: usize = 16 * 1024;

/// Size limits applied to each request head (trailer fields count toward them too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardLimits {
    /// Largest head in bytes, request-line through the final empty line (larger: 431).
    pub max_header_size: usize,
    /// Most header fields in one head (more: 431).
    pub max_headers: usize,
}

/// Why a request head was refused, and which status to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status code: 400, 405, 414, 431, 501 or 505.
    pub status: u16,
    /// Short human-readable cause, sent as the response body.
    pub reason: &'static str,
}

impl Rejection {
    /// The complete `Connection: close` response for this rejection, ready to write.
    pub fn to_http_bytes(&self) -> Vec<u8> {
        let text = match self.status {
            400 => "Bad Request",
            405 => "Method Not Allowed",
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            _ => "Error",
        };
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}\n",
            self.status,
            text,
            self.reason.len() + 1,
            self.reason
        )
        .into_bytes()
    }
}

/// Where the guard is in the current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkCrlf,
    Trailers,
}

/// Facts gathered from the head being scanned (plain data: resetting it never allocates).
#[derive(Debug, Default)]
pub(super) struct HeadScan {
    /// Offset (from `ready`) of the first byte of the current line.
    pub(super) line_start: usize,
    pub(super) leading_empty: usize,
    pub(super) seen_request_line: bool,
    pub(super) http11: bool,
    /// Header (then trailer) fields seen so far.
    pub(super) fields: usize,
    /// Head size once complete; trailer lines are added to it.
    pub(super) bytes: usize,
    pub(super) hosts: usize,
    /// One bit per `field_rules` singleton already seen in this head.
    pub(super) singletons: u16,
    pub(super) content_length: Option<u64>,
    pub(super) te_seen: bool,
    pub(super) te_chunked: usize,
    pub(super) te_other: bool,
    pub(super) te_malformed: bool,
}

/// Why the guard stopped: reported once every byte before the violation has been released.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fail {
    Head(Rejection),
    Body(&'static str),
}

pub(super) fn fail(status: u16, reason: &'static str) -> Fail {
    Fail::Head(Rejection { status, reason })
}

pub(super) fn bad(reason: &'static str) -> Fail {
    fail(400, reason)
}

pub(super) enum LineErr {
    BareLf,
    TooLong,
}
