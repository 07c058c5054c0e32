//! HTTP/2: how a connection is recognised as HTTP/2 on cleartext (h2c with prior knowledge),
//! and the limits hyper's HTTP/2 server runs with.
//!
//! Owns: the preface check (`preface_in`), the HTTP/2 settings and flood limits
//! (`builder`), and `LocalExec`, which runs hyper's per-stream tasks on the worker's
//! single-threaded `LocalSet` (requests hold `Rc`s). Must not touch: the request path
//! (`service`), the connection's timeouts and drain (`connection`), TLS and ALPN (`tls`).
//!
//! Flood limits (each closes only the abusive connection; the worker serves on):
//! - `MAX_CONCURRENT_STREAMS` = 100, as nginx (`http2_max_concurrent_streams`) and Granian;
//! - rapid reset (CVE-2023-44487): at most `MAX_PENDING_ACCEPT_RESET_STREAMS` streams reset by
//!   the client before they were served, then GOAWAY (`ENHANCE_YOUR_CALM`);
//! - streams the server had to reset for the client's errors (malformed headers, ...): at most
//!   `MAX_LOCAL_ERROR_RESET_STREAMS` per connection, then GOAWAY;
//! - CONTINUATION flood (CVE-2024-27316 and kin): the header list is capped at the server's
//!   `max_header_size` (advertised as SETTINGS_MAX_HEADER_LIST_SIZE), and h2 bounds the number
//!   of CONTINUATION frames by it; past either the connection gets GOAWAY;
//! - PING and SETTINGS floods: h2 answers one at a time and stops reading while an answer is
//!   unsent, so a client that floods without reading is held back by TCP, not by our memory.

use std::future::Future;

use hyper::server::conn::http2;
use hyper_util::rt::TokioTimer;

use crate::config::ServerConfig;

/// Streams one connection may have open at once (nginx's and Granian's default).
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams the client may reset before they are served (rapid reset), h2's default.
pub const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server may reset for a client's protocol errors on one connection.
pub const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;

/// The HTTP/2 connection preface a client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Runs hyper's HTTP/2 stream tasks on the worker's `LocalSet`.
#[derive(Clone, Copy, Debug)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// hyper's HTTP/2 server with wsrun's limits.
pub fn builder(server: &ServerConfig) -> http2::Builder<LocalExec> {
    let mut builder = http2::Builder::new(LocalExec);
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_header_list_size(u32::try_from(server.max_header_size).unwrap_or(u32::MAX));
    builder
}

/// What a cleartext connection's first bytes say of the HTTP/2 preface (h2c with prior
/// knowledge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// The whole preface: HTTP/2.
    Whole,
    /// A strict beginning of it (or nothing yet): wait for more.
    Part,
    /// Anything else: HTTP/1.
    Not,
}

/// Reads the first bytes of a cleartext connection against the preface.
pub fn preface_in(first: &[u8]) -> Preface {
    let n = first.len().min(PREFACE.len());
    if first[..n] != PREFACE[..n] {
        Preface::Not
    } else if n == PREFACE.len() {
        Preface::Whole
    } else {
        Preface::Part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_h2c_from_http1() {
        assert_eq!(preface_in(b""), Preface::Part);
        assert_eq!(preface_in(b"PRI * HTTP/2.0\r\n"), Preface::Part);
        assert_eq!(preface_in(PREFACE), Preface::Whole);
        let mut more = PREFACE.to_vec();
        more.extend_from_slice(b"\0\0\0\x04\0\0\0\0\0"); // and a SETTINGS frame
        assert_eq!(preface_in(&more), Preface::Whole);
        assert_eq!(preface_in(b"GET / HTTP/1.1\r\n"), Preface::Not);
        assert_eq!(preface_in(b"PRI * HTTP/1.1\r\n"), Preface::Not);
        assert_eq!(preface_in(b"P"), Preface::Part);
        assert_eq!(preface_in(b"X"), Preface::Not);
    }
}
