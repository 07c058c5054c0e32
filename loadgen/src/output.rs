//! Text shown to a person: the summary of a run, the `history` table. (`--json` is the record
//! itself, serialised in `lib`.)
//!
//! Owns: layout and units. Must not touch: figures (they come in the record), the store.

use std::fmt::Write as _;

use crate::run::RunRecord;
use crate::store::Listed;

/// The summary printed after a run.
pub fn summary(run: &RunRecord) -> String {
    let mut out = String::new();
    let s = &run.settings;
    let _ = writeln!(out, "wsrun bench: {} ({})", run.target, run.scenario);
    let _ = writeln!(
        out,
        "  {} connection(s), {} mode, {:.2}s{}",
        s.connections,
        run.mode,
        run.duration_s,
        s.rate.map_or(String::new(), |r| format!(", rate {r}/s")),
    );
    if let Some(slow) = &run.slow {
        let [min, mid, max] = slow.cut_after_s;
        let _ = writeln!(
            out,
            "  slow {}: {} B/s; {} cut by the server, {} still open, {} connect errors",
            slow.part, slow.rate_bytes_per_s, slow.cut, slow.open_at_end, slow.connect_errors
        );
        let _ = writeln!(
            out,
            "  cut after (s): min {min:.2}  median {mid:.2}  max {max:.2}"
        );
        let _ = writeln!(
            out,
            "  responses before the cut: {}",
            status_line(&slow.statuses)
        );
        return out;
    }
    if let Some(f) = &run.flood {
        let [min, mid, max] = f.probe_ttfb_ms;
        let _ = writeln!(
            out,
            "  flood: {} attempts: {} accepted, {} refused, {} reset, {} timed out, {} other; \
             up to {} held",
            f.attempts, f.accepted, f.refused, f.reset, f.timed_out, f.other_errors, f.held_max
        );
        let _ = writeln!(
            out,
            "  probe TTFB (ms): min {min:.2}  median {mid:.2}  max {max:.2}  ({} probes, {} failed)",
            f.probes, f.probe_failures
        );
        return out;
    }
    let l = &run.latency_ms;
    let _ = writeln!(
        out,
        "  requests:   {}  ({:.1} req/s)",
        run.requests, run.requests_per_s
    );
    let _ = writeln!(out, "  transfer:   {}/s", bytes(run.transfer_bytes_per_s));
    let _ = writeln!(
        out,
        "  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3})",
        l.p50, l.p90, l.p99, l.p999, l.max, l.mean
    );
    let _ = writeln!(out, "  status:     {}", status_line(&run.statuses));
    let e = &run.errors;
    let _ = writeln!(
        out,
        "  errors:     connect {}  read {}  write {}  timeout {}",
        e.connect, e.read, e.write, e.timeout
    );
    out
}

fn status_line<K: std::fmt::Display>(statuses: &std::collections::BTreeMap<K, u64>) -> String {
    match statuses.is_empty() {
        true => "none".to_string(),
        false => statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join("  "),
    }
}

/// `1.5 MiB`-style bytes.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

/// The `history` table.
pub fn history(runs: &[Listed]) -> String {
    if runs.is_empty() {
        return "no runs recorded yet\n".to_string();
    }
    let mut out = format!(
        "{:>5}  {:>10}  {:>10}  {:>9}  {:>9}  {:>7}  {:<8}  {}\n",
        "id", "started", "req/s", "p50 ms", "p99 ms", "errors", "wsrun", "scenario / target"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:>5}  {:>10}  {:>10.1}  {:>9.3}  {:>9.3}  {:>7}  {:<8}  {} {}",
            r.id,
            r.started_at,
            r.requests_per_s,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            r.wsrun_version,
            r.scenario,
            r.target
        );
    }
    out
}

/// The table `--suite` prints after its runs.
pub fn suite_table(
    runs: &[crate::measure::Measured],
    addr: std::net::SocketAddr,
    stopped: &str,
) -> String {
    let mut out = String::new();
    if let Some(first) = runs.first() {
        let m = &first.record.machine;
        let v = &m.versions;
        let _ = writeln!(
            out,
            "wsrun bench --suite: {} scenario(s) against wsrun {} (Python {}, wasmtime {}) on {addr}",
            runs.len(),
            v.wsrun,
            v.python,
            v.wasmtime
        );
        let _ = writeln!(
            out,
            "  {} x {}, {}, {:.2}s each, {} connection(s)",
            m.cpu_count,
            m.cpu_model,
            m.os,
            first.record.duration_s,
            first.record.settings.connections
        );
    }
    let _ = writeln!(
        out,
        "  {:<28} {:>10} {:>12} {:>9} {:>9} {:>9} {:>7} {:>7} {:>6}",
        "scenario", "req/s", "transfer/s", "p50 ms", "p99 ms", "max ms", "non-2xx", "errors", "run"
    );
    for r in runs.iter().map(|m| &m.record) {
        let non_2xx: u64 = r
            .statuses
            .iter()
            .filter(|(s, _)| !s.starts_with('2'))
            .map(|(_, n)| n)
            .sum();
        let _ = writeln!(
            out,
            "  {:<28} {:>10.1} {:>12} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>7} {:>6}",
            r.scenario,
            r.requests_per_s,
            bytes(r.transfer_bytes_per_s),
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.latency_ms.max,
            non_2xx,
            r.errors.total(),
            r.id.map_or("-".to_string(), |id| id.to_string()),
        );
    }
    if let Some(status) = runs.iter().find_map(|m| m.reported) {
        let _ = writeln!(out, "  reported each run to the board ({status})");
    }
    let _ = writeln!(out, "  server {stopped}");
    out
}
