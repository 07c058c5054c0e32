//! Latency as a log-bucket histogram: four buckets per doubling (each ~19% wide), so a
//! route's p50/p99 come from a few dozen rows however many requests were measured.
//!
//! Owns: `bucket_of` (microseconds to bucket) and `quantile` (buckets back to a duration,
//! the bucket's upper edge). Must not touch: storage (`store`) or reporting (`report`).

/// Buckets per doubling of the latency.
const PER_OCTAVE: f64 = 4.0;

/// The bucket of a latency of `us` microseconds (1µs and less: bucket 0).
pub fn bucket_of(us: u64) -> i64 {
    if us <= 1 {
        return 0;
    }
    ((us as f64).log2() * PER_OCTAVE).floor() as i64
}

/// The upper edge of `bucket`, in microseconds.
pub fn upper_us(bucket: i64) -> f64 {
    2f64.powf((bucket + 1) as f64 / PER_OCTAVE)
}

/// The `q`-quantile (0..1) of `(bucket, count)` rows sorted by bucket, in microseconds.
pub fn quantile(rows: &[(i64, i64)], q: f64) -> Option<f64> {
    let total: i64 = rows.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (bucket, n) in rows {
        seen += n;
        if seen >= rank {
            return Some(upper_us(*bucket));
        }
    }
    rows.last().map(|(b, _)| upper_us(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_within_a_bucket() {
        let mut rows: Vec<(i64, i64)> = Vec::new();
        for us in [1000u64; 98].into_iter().chain([100_000, 100_000]) {
            let b = bucket_of(us);
            match rows.iter_mut().find(|(x, _)| *x == b) {
                Some((_, n)) => *n += 1,
                None => rows.push((b, 1)),
            }
        }
        rows.sort();
        let p50 = quantile(&rows, 0.5).expect("a value");
        assert!((1000.0..1200.0).contains(&p50), "{p50}");
        let p99 = quantile(&rows, 0.99).expect("a value");
        assert!((100_000.0..120_000.0).contains(&p99), "{p99}");
        assert_eq!(quantile(&[], 0.5), None);
    }
}
