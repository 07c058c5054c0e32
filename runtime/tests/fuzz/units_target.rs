//! Fuzz target for the value grammars of `config::units` (sizes, durations, listen addresses,
//! route prefixes).
//!
//! Owns: the properties. Never a panic; what parses formats back to the same value
//! (`parse(format(x)) == x`); normalising a prefix twice changes nothing; and a duration's
//! fraction never makes it shorter than its whole part (catches wrapped arithmetic, which the
//! round trip alone would not). Must not touch: the driver.

use std::time::Duration;

use wsrun::config::{
    format_duration, format_size, normalize_prefix, parse_bind, parse_duration, parse_size,
};

use crate::driver::{Rng, Verdict};

/// Every property for one string; the class names which grammars accepted it.
pub fn check_units(input: &[u8]) -> Verdict {
    let s = String::from_utf8_lossy(input);
    let mut class = String::new();
    if let Ok(v) = parse_size(&s) {
        let back = parse_size(&format_size(v)).map_err(|e| e.to_string());
        if back != Ok(v) {
            return Err(format!(
                "size {v}: format_size gives {:?}, which parses to {back:?}",
                format_size(v)
            ));
        }
        class.push_str("size ");
    }
    if let Ok(d) = parse_duration(&s) {
        duration_round_trip(d)?;
        fraction_adds(&s, d)?;
        class.push_str("duration ");
    }
    if let Ok(p) = normalize_prefix(&s) {
        if normalize_prefix(&p).map_err(|e| e.to_string()) != Ok(p.clone()) {
            return Err(format!("prefix {p:?} does not normalise to itself"));
        }
        class.push_str("prefix ");
    }
    if let Ok(a) = parse_bind(&s) {
        if parse_bind(&a.to_string()).map_err(|e| e.to_string()) != Ok(a) {
            return Err(format!("address {a} does not read back"));
        }
        class.push_str("bind ");
    }
    numeric_round_trips(input)?;
    Ok(class)
}

fn duration_round_trip(d: Duration) -> Result<(), String> {
    let shown = format_duration(d);
    match parse_duration(&shown) {
        Ok(back) if back == d => Ok(()),
        other => Err(format!(
            "duration {d:?}: shown as {shown:?}, reads back as {other:?}"
        )),
    }
}

/// `12.5s` is at least `12s`: a fraction only ever adds.
fn fraction_adds(s: &str, d: Duration) -> Result<(), String> {
    let t = s.trim();
    let Some(dot) = t.find('.') else {
        return Ok(());
    };
    let end = t[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(t.len(), |i| dot + 1 + i);
    let whole = format!("{}{}", &t[..dot], &t[end..]);
    match parse_duration(&whole) {
        Ok(w) if w > d => Err(format!(
            "{s:?} parses to {d:?}, less than its whole part {whole:?} ({w:?})"
        )),
        Ok(_) => Ok(()),
        // An empty whole part (`.5s`) is not a duration by itself.
        Err(_) if t[..dot].is_empty() => Ok(()),
        Err(e) => Err(format!(
            "{s:?} parses to {d:?} but its whole part {whole:?} does not: {e}"
        )),
    }
}

/// The input's first bytes read as numbers: every u64 size and every duration round trips.
fn numeric_round_trips(input: &[u8]) -> Result<(), String> {
    let mut word = [0u8; 8];
    let n = input.len().min(8);
    word[..n].copy_from_slice(&input[..n]);
    let x = u64::from_le_bytes(word);
    for v in [x, x << 10, x << 20, x << 30, x << 40] {
        if parse_size(&format_size(v)).map_err(|e| e.to_string()) != Ok(v) {
            return Err(format!(
                "size {v} does not round trip via {:?}",
                format_size(v)
            ));
        }
    }
    let nanos = (x % 1_000_000_000) as u32;
    for d in [
        Duration::new(x, nanos),
        Duration::new(x >> 20, 0),
        Duration::new(0, nanos),
        Duration::from_millis(x >> 24),
    ] {
        duration_round_trip(d)?;
    }
    Ok(())
}

/// Numbers near the edges of the arithmetic (u64 seconds, u128 nanoseconds) with units and
/// fractions, and plain small values.
pub fn numbers(rng: &mut Rng) -> Vec<u8> {
    let edges: [u128; 6] = [
        u128::MAX / 1_000_000,
        u128::MAX / 1_000_000_000,
        u128::MAX / 60_000_000_000,
        u128::MAX / 3_600_000_000_000,
        u128::from(u64::MAX),
        u128::from(u64::MAX) >> 10,
    ];
    let base = *rng.pick(&edges);
    let n = match rng.below(3) {
        0 => base.saturating_sub(rng.below(3) as u128),
        1 => base.saturating_add(rng.below(3) as u128),
        _ => rng.below(100_000) as u128,
    };
    let frac = match rng.below(3) {
        0 => String::new(),
        1 => format!(".{}", rng.below(10)),
        _ => format!(".{:09}{}", rng.below(1_000_000_000), rng.below(100)),
    };
    let unit = rng.pick(&[
        "", "ms", "s", "m", "h", "K", "KiB", "MB", "g", "TiB", " s", "B",
    ]);
    format!("{n}{frac}{unit}").into_bytes()
}
