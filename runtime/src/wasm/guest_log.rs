//! A guest's stdout and stderr, into the server log, one event per line, tagged with the route.
//!
//! Owns: `GuestLog`, the `StdoutStream` given to every instance: bytes are split into lines
//! (a partial line is kept until its newline or until the stream is dropped), each line is
//! logged at info (stdout) or warn (stderr) with the route and handler. Lines are capped so a
//! guest cannot make one log event arbitrarily large, and counted (empty ones too) against the
//! instance's `log_lines`/`log_bytes` (shared by its stdout and stderr) and the route's
//! `log_rate` (`log_budget`): the excess is dropped and counted, with one line when an instance
//! first hits a limit, a summary when it ends, and a report of the route's rate drops at most
//! once a second. Must not touch: anything but logging.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::log_budget::{LogBudget, Over};
use super::route_info::RouteInfo;

/// The longest line logged as is; the rest of a longer line is dropped with a marker.
const MAX_LINE: usize = 4096;

#[derive(Clone, Copy)]
enum Which {
    Stdout,
    Stderr,
}

/// Stdout or stderr of one instance.
pub struct GuestLog {
    log: Arc<InstanceLog>,
    which: Which,
}

impl GuestLog {
    /// The stdout and stderr of one instance of `route`, sharing its log budget.
    pub fn pair(route: &Arc<RouteInfo>) -> (GuestLog, GuestLog) {
        let log = Arc::new(InstanceLog {
            route: route.clone(),
            budget: Mutex::new(LogBudget::default()),
        });
        let stdout = GuestLog {
            log: log.clone(),
            which: Which::Stdout,
        };
        (
            stdout,
            GuestLog {
                log,
                which: Which::Stderr,
            },
        )
    }
}

/// What one instance's stdout and stderr share: its route and its log budget. Dropped with
/// the instance, when it reports what was dropped.
struct InstanceLog {
    route: Arc<RouteInfo>,
    budget: Mutex<LogBudget>,
}

impl InstanceLog {
    /// May a line of `len` bytes be logged? Counts it, and reports a limit hit.
    fn admit(&self, len: usize) -> bool {
        let limits = &self.route.limits;
        let mut report = None;
        let rate = || {
            let (allowed, due) = self.route.log_rate.admit(limits.log_rate, len);
            report = due;
            allowed
        };
        let verdict = self.budget.lock().unwrap_or_else(|e| e.into_inner()).take(
            len,
            limits.log_lines,
            limits.log_bytes,
            rate,
        );
        if let Some((lines, bytes, over)) = report {
            tracing::warn!(
                "{}: guest log over its log_rate of {}/s: dropped {lines} lines / {bytes} bytes in the last {}",
                self.route.label(),
                limits.log_rate,
                seconds(over)
            );
        }
        match verdict {
            None => true,
            Some((why, first)) => {
                self.report_first(why, first);
                false
            }
        }
    }

    /// The one line an instance gets when it first runs out of its own budget.
    fn report_first(&self, why: Over, first: bool) {
        if first && why != Over::Rate {
            tracing::warn!(
                "{}: guest log over its {} for this request; dropping the rest",
                self.route.label(),
                self.limit(why)
            );
        }
    }

    /// Has this instance written all it may? (Then the rest goes to `drop_bulk`.)
    fn spent(&self) -> bool {
        let limits = &self.route.limits;
        self.budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spent(limits.log_lines, limits.log_bytes)
    }

    /// Drops `bytes` (a spent budget's writes) with one count of their lines.
    fn drop_bulk(&self, bytes: &[u8]) {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let (why, first) = self
            .budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drop_bulk(
                lines,
                bytes.len() as u64 - lines,
                self.route.limits.log_lines,
            );
        self.report_first(why, first);
    }

    /// `log_lines 1000`, `log_bytes 65536`, `log_rate 100/s`.
    fn limit(&self, why: Over) -> String {
        let limits = &self.route.limits;
        match why {
            Over::Lines => format!("log_lines of {}", limits.log_lines),
            Over::Bytes => format!("log_bytes of {}", limits.log_bytes),
            Over::Rate => format!("log_rate of {}/s", limits.log_rate),
        }
    }
}

impl Drop for InstanceLog {
    fn drop(&mut self) {
        let budget = std::mem::take(self.budget.get_mut().unwrap_or_else(|e| e.into_inner()));
        if budget.dropped_lines == 0 {
            return;
        }
        let limits: Vec<String> = budget.hit.iter().map(|why| self.limit(*why)).collect();
        tracing::warn!(
            "{}: guest log: dropped {} lines / {} bytes of this request ({})",
            self.route.label(),
            budget.dropped_lines,
            budget.dropped_bytes,
            limits.join(", ")
        );
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            log: self.log.clone(),
            which: self.which,
            pending: Vec::new(),
        })
    }
}

struct LineWriter {
    log: Arc<InstanceLog>,
    which: Which,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        if !self.log.admit(line.len()) {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let label = self.log.route.label();
        match self.which {
            Which::Stdout => tracing::info!(target: "wsrun::guest", "{label} stdout: {text}"),
            Which::Stderr => tracing::warn!(target: "wsrun::guest", "{label} stderr: {text}"),
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            if self.log.spent() {
                self.pending.clear();
                self.log.drop_bulk(rest);
                return;
            }
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
