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

/// `InstanceLog::admit`'s answer: may the line be logged, and is the budget spent now (then
/// the writer drops the rest in bulk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Admitted {
    logged: bool,
    spent: bool,
}

/// What one instance's stdout and stderr share: its route and its log budget. Dropped with
/// the instance, when it reports what was dropped.
struct InstanceLog {
    route: Arc<RouteInfo>,
    budget: Mutex<LogBudget>,
}

impl InstanceLog {
    /// May a line of `len` bytes be logged? Counts it, and reports a limit hit. Also says
    /// whether the budget is now spent, from the same look at it (one lock per line).
    fn admit(&self, len: usize) -> Admitted {
        let limits = &self.route.limits;
        let mut report = None;
        let rate = || {
            let (allowed, due) = self.route.log_rate.admit(limits.log_rate, len);
            report = due;
            allowed
        };
        let (verdict, spent) = {
            let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
            let verdict = budget.take(len, limits.log_lines, limits.log_bytes, rate);
            (verdict, budget.spent(limits.log_lines, limits.log_bytes))
        };
        if let Some((lines, bytes, over)) = report {
            tracing::warn!(
                "{}: guest log over its log_rate of {}/s: dropped {lines} lines / {bytes} bytes in the last {}",
                self.route.label(),
                limits.log_rate,
                seconds(over)
            );
        }
        let logged = match verdict {
            None => true,
            Some((why, first)) => {
                self.report_first(why, first);
                false
            }
        };
        Admitted { logged, spent }
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
            spent: false,
        })
    }
}

struct LineWriter {
    log: Arc<InstanceLog>,
    which: Which,
    pending: Vec<u8>,
    /// The instance's budget was spent when this writer last asked (it never un-spends, so
    /// the flag is never stale the other way; the other stream may spend it first, and then
    /// this writer learns it at its next line).
    spent: bool,
}

impl LineWriter {
    fn emit(&mut self, line: &[u8]) {
        let admitted = self.log.admit(line.len());
        self.spent = admitted.spent;
        if !admitted.logged {
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
            if self.spent {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WasmLimits;
    use crate::wasm::outbound::OutboundShare;

    fn route(log_lines: u64) -> Arc<RouteInfo> {
        Arc::new(RouteInfo {
            name: "t".to_string(),
            prefix: "/".to_string(),
            file: "t.wasm".into(),
            tenant: None,
            hosts: Vec::new(),
            limits: WasmLimits {
                log_lines,
                log_bytes: 1 << 20,
                log_rate: 1000,
                ..WasmLimits::default()
            },
            tenant_memory: None,
            log_rate: Default::default(),
            outbound: OutboundShare::new(1, None),
        })
    }

    #[test]
    fn admit_says_when_it_spent_the_budget() {
        let (stdout, _stderr) = GuestLog::pair(&route(2));
        let yes = |spent| Admitted {
            logged: true,
            spent,
        };
        assert_eq!(stdout.log.admit(3), yes(false));
        assert_eq!(stdout.log.admit(3), yes(true), "the second line spends it");
        let no = stdout.log.admit(3);
        assert_eq!((no.logged, no.spent), (false, true));
    }

    #[test]
    fn a_writer_drops_in_bulk_once_told_the_budget_is_spent() {
        let (stdout, stderr) = GuestLog::pair(&route(2));
        let mut out = LineWriter {
            log: stdout.log.clone(),
            which: Which::Stdout,
            pending: Vec::new(),
            spent: false,
        };
        out.take(b"a\nb\nc\nd\ne\n");
        assert!(out.spent);
        let counted = |log: &GuestLog| {
            let budget = log.log.budget.lock().unwrap();
            (budget.dropped_lines, budget.hit.clone())
        };
        // Two logged; "c" to "e" dropped in one bulk count.
        assert_eq!(counted(&stdout), (3, vec![Over::Lines]));
        // The other stream learns it at its first line, then drops in bulk too.
        let mut err = LineWriter {
            log: stderr.log.clone(),
            which: Which::Stderr,
            pending: Vec::new(),
            spent: false,
        };
        err.take(b"f\ng\n");
        assert!(err.spent);
        assert_eq!(counted(&stderr).0, 5);
    }
}
