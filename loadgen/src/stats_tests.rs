//! Tests of `stats` (kept apart so the module stays readable).
use super::*;

#[test]
fn percentiles_of_known_latencies() {
    let mut s = Stats::new();
    for ms in 1..=1000u64 {
        s.record(Duration::from_millis(ms), 200, 100, 10);
    }
    let l = s.latency();
    assert_eq!(s.responses(), 1000);
    assert!((l.p50 - 500.0).abs() <= 1.0, "p50 {}", l.p50);
    assert!((l.p90 - 900.0).abs() <= 1.0, "p90 {}", l.p90);
    assert!((l.p99 - 990.0).abs() <= 1.0, "p99 {}", l.p99);
    assert!((l.max - 1000.0).abs() <= 1.0, "max {}", l.max);
    assert_eq!((s.bytes_read, s.bytes_written), (100_000, 10_000));
}

#[test]
fn empty_stats_give_zero_latency() {
    assert_eq!(Stats::new().latency(), Latency::default());
    assert!(Stats::new().buckets().is_empty());
}

#[test]
fn merge_adds_counts_statuses_and_errors() {
    let mut a = Stats::new();
    a.record(Duration::from_micros(100), 200, 1, 1);
    a.errors.connect = 2;
    let mut b = Stats::new();
    b.record(Duration::from_micros(300), 404, 1, 1);
    b.record(Duration::from_micros(300), 200, 1, 1);
    b.errors.timeout = 1;
    a.merge(&b);
    assert_eq!(a.responses(), 3);
    assert_eq!(a.statuses.get(&200), Some(&2));
    assert_eq!(a.statuses.get(&404), Some(&1));
    assert_eq!(a.errors.total(), 3);
    let total: u64 = a.buckets().iter().map(|[_, n]| n).sum();
    assert_eq!(total, 3);
}

#[test]
fn latencies_beyond_the_range_are_clamped() {
    let mut s = Stats::new();
    s.record(Duration::from_secs(10 * 3600), 200, 0, 0);
    s.record(Duration::ZERO, 200, 0, 0);
    assert_eq!(s.responses(), 2);
    assert!(s.latency().max >= 3_599_000.0);
}
