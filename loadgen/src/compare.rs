//! `wsrun bench compare A B`: the differences between two stored runs, figure by figure, with
//! the change from A to B in percent; settings and machine fields that differ are listed too.
//!
//! Owns: choosing and formatting the compared figures. Must not touch: the store (runs come in
//! loaded).

use std::fmt::Write as _;

use crate::run::RunRecord;

/// The comparison text.
pub fn compare(a: &RunRecord, b: &RunRecord) -> String {
    let id = |r: &RunRecord| r.id.map_or("?".to_string(), |i| i.to_string());
    let mut out = format!(
        "{:<16} {:>14} {:>14} {:>9}\n",
        "",
        format!("run {}", id(a)),
        format!("run {}", id(b)),
        "change"
    );
    for (name, x, y) in figures(a, b) {
        let _ = writeln!(out, "{name:<16} {x:>14.3} {y:>14.3} {:>9}", change(x, y));
    }
    for (name, x, y) in differing_fields(a, b) {
        let _ = writeln!(out, "{name:<16} {x} -> {y}");
    }
    out
}

fn figures(a: &RunRecord, b: &RunRecord) -> Vec<(&'static str, f64, f64)> {
    let (la, lb) = (&a.latency_ms, &b.latency_ms);
    vec![
        ("req/s", a.requests_per_s, b.requests_per_s),
        ("requests", a.requests as f64, b.requests as f64),
        (
            "transfer B/s",
            a.transfer_bytes_per_s,
            b.transfer_bytes_per_s,
        ),
        ("p50 ms", la.p50, lb.p50),
        ("p90 ms", la.p90, lb.p90),
        ("p99 ms", la.p99, lb.p99),
        ("p99.9 ms", la.p999, lb.p999),
        ("max ms", la.max, lb.max),
        ("errors", a.errors.total() as f64, b.errors.total() as f64),
    ]
}

/// `+12.5%`, `-3.0%`, or `n/a` from zero.
pub fn change(from: f64, to: f64) -> String {
    if from == 0.0 {
        return match to == 0.0 {
            true => "0.0%".to_string(),
            false => "n/a".to_string(),
        };
    }
    format!("{:+.1}%", (to - from) / from * 100.0)
}

fn differing_fields(a: &RunRecord, b: &RunRecord) -> Vec<(&'static str, String, String)> {
    let (ma, mb) = (&a.machine, &b.machine);
    let fields = [
        ("scenario", a.scenario.clone(), b.scenario.clone()),
        ("target", a.target.clone(), b.target.clone()),
        (
            "connections",
            a.settings.connections.to_string(),
            b.settings.connections.to_string(),
        ),
        (
            "wsrun",
            ma.versions.wsrun.clone(),
            mb.versions.wsrun.clone(),
        ),
        (
            "python",
            ma.versions.python.clone(),
            mb.versions.python.clone(),
        ),
        (
            "git commit",
            ma.git_commit.clone().unwrap_or_default(),
            mb.git_commit.clone().unwrap_or_default(),
        ),
        ("cpu", ma.cpu_model.clone(), mb.cpu_model.clone()),
        ("kernel", ma.kernel.clone(), mb.kernel.clone()),
    ];
    fields.into_iter().filter(|(_, x, y)| x != y).collect()
}

#[cfg(test)]
mod tests {
    use super::change;

    #[test]
    fn change_in_percent() {
        assert_eq!(change(100.0, 150.0), "+50.0%");
        assert_eq!(change(200.0, 100.0), "-50.0%");
        assert_eq!(change(0.0, 0.0), "0.0%");
        assert_eq!(change(0.0, 5.0), "n/a");
    }
}
