//! The counters of one worker index: a `Region` of the shared segment, with one `SlotStats`
//! per (route, tenant) label slot and the worker-wide counters (`RegionHead`).
//!
//! Owns: the layout of a region, the status-code index and the latency buckets, and the hot
//! path's writes (one relaxed `fetch_add` per counter; a region is written only by the worker
//! of its index, and by its replacement while both run, so atomic adds never lose a count).
//! Must not touch: where the region lives (`segment`), label names (`labels`), rendering.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Status codes 100..=599 each have a counter; anything else lands in the last one.
pub const CODES: usize = 501;
const OTHER_CODE: usize = CODES - 1;
/// Upper bounds of the latency histogram, in seconds (Prometheus client defaults plus 0.5 ms,
/// 1 ms for a server whose hello world answers in well under a millisecond).
pub const BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BUCKETS_NS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
/// Bucket counts (not cumulative: rendering sums them); the last is `+Inf` only.
pub const BUCKET_SLOTS: usize = BUCKETS_S.len() + 1;

/// Which `wsrun_wasm_limit_hits_total` label a refusal counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Memory = 0,
    Timeout = 1,
    Concurrency = 2,
    CpuTime = 3,
}

impl LimitKind {
    pub const ALL: [LimitKind; 4] = [
        LimitKind::Memory,
        LimitKind::Timeout,
        LimitKind::Concurrency,
        LimitKind::CpuTime,
    ];
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory",
            LimitKind::Timeout => "timeout",
            LimitKind::Concurrency => "concurrency",
            LimitKind::CpuTime => "cpu_time",
        }
    }
}

/// One (route, tenant) label's counters in one region.
#[repr(C, align(64))]
pub struct SlotStats {
    pub codes: [AtomicU64; CODES],
    pub buckets: [AtomicU64; BUCKET_SLOTS],
    pub sum_ns: AtomicU64,
    /// Canary rollbacks this worker decided for the route (`migrate::canary`).
    pub canary_rollbacks: AtomicU64,
}

/// The worker-wide counters of one index.
#[repr(C, align(64))]
pub struct RegionHead {
    /// Workers ever started for this index (restarts = starts - 1).
    pub starts: AtomicU64,
    pub wasm_instances: AtomicU64,
    pub wasm_traps: AtomicU64,
    pub limit_hits: [AtomicU64; 4],
    pub spool_bytes: AtomicU64,
    pub jobs_delivered: AtomicU64,
    pub jobs_failed: AtomicU64,
}

/// Everything one worker index counts.
#[repr(C)]
pub struct Region {
    pub head: RegionHead,
    pub slots: [SlotStats; super::labels::LABELS],
}

/// The counter index of a status code.
#[inline]
pub fn code_index(code: u16) -> usize {
    match code {
        100..=599 => usize::from(code - 100),
        _ => OTHER_CODE,
    }
}

/// The status code a counter index stands for (`None`: the "other" counter).
pub fn index_code(index: usize) -> Option<u16> {
    (index < OTHER_CODE).then(|| index as u16 + 100)
}

/// The histogram bucket of a duration.
#[inline]
fn bucket(ns: u64) -> usize {
    BUCKETS_NS
        .iter()
        .position(|&bound| ns <= bound)
        .unwrap_or(BUCKETS_NS.len())
}

impl SlotStats {
    /// Counts one response of status `code` that took `elapsed`.
    #[inline]
    pub fn record(&self, code: u16, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.codes[code_index(code)].fetch_add(1, Relaxed);
        self.buckets[bucket(ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_buckets_index_as_documented() {
        assert_eq!(code_index(100), 0);
        assert_eq!(code_index(200), 100);
        assert_eq!(code_index(599), 499);
        assert_eq!(code_index(600), OTHER_CODE);
        assert_eq!(index_code(100), Some(200));
        assert_eq!(index_code(OTHER_CODE), None);
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(500_000), 0);
        assert_eq!(bucket(500_001), 1);
        assert_eq!(bucket(u64::MAX), BUCKETS_NS.len());
        for (s, ns) in BUCKETS_S.iter().zip(BUCKETS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
    }
}
