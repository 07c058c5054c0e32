//! How much a guest may log: a budget per instance and a rate per route.
//!
//! Owns: `LogBudget` (one instance's `log_lines` and `log_bytes`, with what it dropped and
//! why) and `LogRate` (a route's token bucket of `log_rate` lines a second, burst twice that,
//! shared by all its instances, with the drops not yet reported). Both only count and decide;
//! `guest_log` writes the lines and the reports. Must not touch: logging itself or `RouteInfo`
//! (which holds a `LogRate`; this file sits below it).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two reports of a route's rate drops.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Why a line was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Lines,
    Bytes,
    Rate,
}

/// One instance's log budget and what it dropped. The budget counts every line the instance
/// wrote, logged or dropped, so once it is spent the rest can be dropped in bulk (`drop_bulk`)
/// without looking at each line: a flood costs a byte count, not a lock per line.
#[derive(Debug, Default)]
pub struct LogBudget {
    lines: u64,
    bytes: u64,
    pub dropped_lines: u64,
    pub dropped_bytes: u64,
    /// Which limits dropped lines, in the order they were first hit.
    pub hit: Vec<Over>,
}

impl LogBudget {
    /// Counts a line of `len` bytes against `max_lines`/`max_bytes`: `None` if it may be
    /// logged, else why not and whether that limit dropped a line for the first time. `rate`
    /// (the route's verdict) is asked only for lines the budget allows; a line dropped either
    /// way is counted here.
    pub fn take(
        &mut self,
        len: usize,
        max_lines: u64,
        max_bytes: u64,
        rate: impl FnOnce() -> bool,
    ) -> Option<(Over, bool)> {
        let len = len as u64;
        let over = if self.lines >= max_lines {
            Some(Over::Lines)
        } else if self.bytes.saturating_add(len) > max_bytes {
            Some(Over::Bytes)
        } else if !rate() {
            Some(Over::Rate)
        } else {
            None
        };
        self.lines += 1;
        self.bytes = self.bytes.saturating_add(len);
        let why = over?;
        self.dropped_lines += 1;
        self.dropped_bytes += len;
        let first = !self.hit.contains(&why);
        if first {
            self.hit.push(why);
        }
        Some((why, first))
    }

    /// Has the instance written all the lines or bytes it may? Then every further line is
    /// dropped, whatever the rate.
    pub fn spent(&self, max_lines: u64, max_bytes: u64) -> bool {
        self.lines >= max_lines || self.bytes >= max_bytes
    }

    /// Counts `lines` lines of `bytes` bytes in all as written and dropped, once the budget
    /// is `spent`: which limit dropped them and whether for the first time (as `take`).
    pub fn drop_bulk(&mut self, lines: u64, bytes: u64, max_lines: u64) -> (Over, bool) {
        let why = if self.lines >= max_lines {
            Over::Lines
        } else {
            Over::Bytes
        };
        self.lines = self.lines.saturating_add(lines);
        self.bytes = self.bytes.saturating_add(bytes);
        self.dropped_lines += lines;
        self.dropped_bytes += bytes;
        let first = !self.hit.contains(&why);
        if first {
            self.hit.push(why);
        }
        (why, first)
    }
}

/// A route's log rate: a token bucket of lines, and the drops since the last report.
#[derive(Debug)]
pub struct LogRate {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// `None` until the first line: the bucket starts full.
    tokens: Option<f64>,
    filled_at: Instant,
    dropped_lines: u64,
    dropped_bytes: u64,
    /// When the first drop not yet reported happened.
    since: Instant,
    reported_at: Instant,
}

/// Drops to report: lines, bytes, and how long since the first of them.
pub type RateReport = (u64, u64, Duration);

impl Default for LogRate {
    fn default() -> Self {
        let now = Instant::now();
        LogRate {
            state: Mutex::new(Bucket {
                tokens: None,
                filled_at: now,
                dropped_lines: 0,
                dropped_bytes: 0,
                since: now,
                // The first drop is reported at once.
                reported_at: now.checked_sub(REPORT_EVERY).unwrap_or(now),
            }),
        }
    }
}

impl LogRate {
    /// Takes a token for a line of `len` bytes at `per_second` lines a second (burst twice
    /// that): true if it may be logged. Also returns the drops to report, at most once a
    /// `REPORT_EVERY`.
    pub fn admit(&self, per_second: u64, len: usize) -> (bool, Option<RateReport>) {
        let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let rate = per_second as f64;
        let burst = rate * 2.0;
        let since = now.duration_since(b.filled_at).as_secs_f64();
        let tokens = b.tokens.map_or(burst, |t| (t + since * rate).min(burst));
        b.filled_at = now;
        let allowed = tokens >= 1.0;
        b.tokens = Some(if allowed { tokens - 1.0 } else { tokens });
        if !allowed {
            if b.dropped_lines == 0 {
                b.since = now;
            }
            b.dropped_lines += 1;
            b.dropped_bytes += len as u64;
        }
        let due = now.duration_since(b.reported_at) >= REPORT_EVERY;
        let report = (b.dropped_lines > 0 && due).then(|| {
            let report = (
                b.dropped_lines,
                b.dropped_bytes,
                now.duration_since(b.since),
            );
            (b.dropped_lines, b.dropped_bytes, b.reported_at) = (0, 0, now);
            report
        });
        (allowed, report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_lines_and_bytes() {
        let mut budget = LogBudget::default();
        for _ in 0..3 {
            assert_eq!(budget.take(10, 3, 100, || true), None);
        }
        assert_eq!(budget.take(0, 3, 100, || true), Some((Over::Lines, true)));
        assert_eq!(budget.take(0, 3, 100, || true), Some((Over::Lines, false)));
        assert_eq!(
            (budget.dropped_lines, budget.hit.clone()),
            (2, vec![Over::Lines])
        );
        let mut bytes = LogBudget::default();
        assert_eq!(bytes.take(60, 10, 100, || false), Some((Over::Rate, true)));
        assert_eq!(bytes.take(30, 10, 100, || true), None);
        assert!(!bytes.spent(10, 100));
        // Lines dropped by the rate count against the budget too: 60 + 30 + 20 > 100.
        assert_eq!(bytes.take(20, 10, 100, || true), Some((Over::Bytes, true)));
        assert!(bytes.spent(10, 100));
        assert_eq!((bytes.dropped_lines, bytes.dropped_bytes), (2, 80));
        assert_eq!(bytes.hit, vec![Over::Rate, Over::Bytes]);
    }

    #[test]
    fn a_spent_budget_drops_in_bulk() {
        let mut budget = LogBudget::default();
        assert_eq!(budget.take(5, 2, 100, || true), None);
        assert_eq!(budget.take(5, 2, 100, || true), None);
        assert!(budget.spent(2, 100));
        assert_eq!(budget.drop_bulk(999_999, 999_999, 2), (Over::Lines, true));
        assert_eq!(budget.take(0, 2, 100, || true), Some((Over::Lines, false)));
        assert_eq!(budget.hit, vec![Over::Lines]);
        assert_eq!(budget.dropped_lines, 1_000_000);
    }

    #[test]
    fn rate_allows_a_burst_then_drops() {
        let rate = LogRate::default();
        let allowed = (0..50).filter(|_| rate.admit(10, 1).0).count();
        assert_eq!(allowed, 20, "a burst of twice the rate");
    }
}
