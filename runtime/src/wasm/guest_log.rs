//! A guest's stdout and stderr, into the server log, one event per line, tagged with the route.
//!
//! Owns: `GuestLog`, the `StdoutStream` given to every instance: bytes are split into lines
//! (a partial line is kept until its newline or until the stream is dropped), each line is
//! logged at info (stdout) or warn (stderr) with the route and handler. Lines are capped so a
//! guest cannot make one log event arbitrarily large. Must not touch: anything but logging.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::route_info::RouteInfo;

/// The longest line logged as is; the rest of a longer line is dropped with a marker.
const MAX_LINE: usize = 4096;

#[derive(Clone, Copy)]
enum Which {
    Stdout,
    Stderr,
}

/// Stdout or stderr of the instances of one route.
pub struct GuestLog {
    route: Arc<RouteInfo>,
    which: Which,
}

impl GuestLog {
    pub fn stdout(route: Arc<RouteInfo>) -> GuestLog {
        GuestLog {
            route,
            which: Which::Stdout,
        }
    }

    pub fn stderr(route: Arc<RouteInfo>) -> GuestLog {
        GuestLog {
            route,
            which: Which::Stderr,
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            route: self.route.clone(),
            which: self.which,
            pending: Vec::new(),
        })
    }
}

struct LineWriter {
    route: Arc<RouteInfo>,
    which: Which,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let label = self.route.label();
        match self.which {
            Which::Stdout => tracing::info!(target: "wsrun::guest", "{label} stdout: {text}"),
            Which::Stderr => tracing::warn!(target: "wsrun::guest", "{label} stderr: {text}"),
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(newline);
            if self.pending.is_empty() {
                self.emit(line);
            } else {
                self.keep(line);
                let whole = std::mem::take(&mut self.pending);
                self.emit(&whole);
            }
            rest = &tail[1..];
        }
        self.keep(rest);
    }

    /// Keeps part of a line, up to `MAX_LINE` bytes.
    fn keep(&mut self, part: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&part[..part.len().min(room)]);
        if part.len() > room && !self.pending.ends_with(b" [...]") {
            self.pending.extend_from_slice(b" [...]");
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }
}
