//! The figures of a run as it goes: an HDR latency histogram (microseconds), status counts,
//! error counts by kind, bytes moved; merged across connections, then summarised.
//!
//! Owns: recording and summarising. Must not touch: sockets, clocks (callers pass latencies),
//! output formats.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency tracked: 1 hour in microseconds (higher values are clamped to it).
const MAX_MICROS: u64 = 3_600_000_000;
/// Significant figures of the histogram (3: within 0.1%).
const SIGFIG: u8 = 3;

/// Errors by kind: a refused or failed connect, a failed write or read, a timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

/// What one connection (or the whole run, after merging) recorded.
#[derive(Debug, Clone)]
pub struct Stats {
    hist: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: Errors,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        // The bounds are constants within what hdrhistogram accepts (low >= 1, high >= 2*low,
        // sigfig <= 5), so this cannot fail.
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds"));
        Stats {
            hist,
            statuses: BTreeMap::new(),
            errors: Errors::default(),
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// A completed response.
    pub fn record(&mut self, latency: Duration, status: u16, read: u64, written: u64) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        self.hist.saturating_record(micros);
        *self.statuses.entry(status).or_insert(0) += 1;
        self.bytes_read += read;
        self.bytes_written += written;
    }

    pub fn responses(&self) -> u64 {
        self.hist.len()
    }

    pub fn merge(&mut self, other: &Stats) {
        // Same bounds on both sides: `add` only fails on a value out of range, impossible here.
        let _ = self.hist.add(&other.hist);
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_insert(0) += n;
        }
        self.errors.connect += other.errors.connect;
        self.errors.read += other.errors.read;
        self.errors.write += other.errors.write;
        self.errors.timeout += other.errors.timeout;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
    }

    /// Percentiles in milliseconds (zero when nothing was recorded).
    pub fn latency(&self) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let q = |p: f64| ms(self.hist.value_at_quantile(p));
        match self.hist.is_empty() {
            true => Latency::default(),
            false => Latency {
                mean: self.hist.mean() / 1000.0,
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p999: q(0.999),
                max: ms(self.hist.max()),
            },
        }
    }

    /// The histogram as `[value_us, count]` pairs of its non-empty buckets (what is stored).
    pub fn buckets(&self) -> Vec<[u64; 2]> {
        self.hist
            .iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect()
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
