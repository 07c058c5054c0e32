//! The Prometheus text exposition (format 0.0.4) of a segment: every worker index's region
//! summed, slots with equal (route, tenant) names added together.
//!
//! Owns: metric names, help lines and label escaping. Must not touch: the segment's layout
//! beyond reading it, or where the job figures come from (the caller passes them).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use super::counter::{index_code, LimitKind, BUCKETS_S, BUCKET_SLOTS, CODES};
use super::procs::{self, ProcView};
use super::segment::{MetricsSegment, MAX_WORKERS};

/// The job store's figures at scrape time.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct JobFigures {
    pub pending: u64,
    pub dead: u64,
    /// When the oldest pending job is due (Unix ms).
    pub oldest_due_unix_ms: Option<i64>,
}

/// One label pair's counters, summed over slots and regions.
struct Route {
    codes: Vec<u64>,
    buckets: [u64; BUCKET_SLOTS],
    sum_ns: u64,
    rollbacks: u64,
}

/// Worker-wide counters summed over regions.
#[derive(Default)]
struct Totals {
    restarts: u64,
    instances: u64,
    traps: u64,
    limits: [u64; 4],
    spool: u64,
    delivered: u64,
    failed: u64,
}

/// The worker indexes that ever counted: up to the highest index in the process table, and
/// at least `workers`.
fn indexes(segment: &MetricsSegment, workers: usize) -> usize {
    let table = &segment.layout().procs;
    let highest = table
        .iter()
        .filter(|p| p.pid.load(Relaxed) != 0)
        .map(|p| p.index.load(Relaxed) as usize + 1)
        .max()
        .unwrap_or(0);
    highest.max(workers).min(MAX_WORKERS)
}

fn routes(segment: &MetricsSegment, indexes: usize) -> BTreeMap<(String, String), Route> {
    let mut out: BTreeMap<(String, String), Route> = BTreeMap::new();
    for (slot, route, tenant) in segment.layout().labels.ready() {
        let sum = out.entry((route, tenant)).or_insert_with(|| Route {
            codes: vec![0; CODES],
            buckets: [0; BUCKET_SLOTS],
            sum_ns: 0,
            rollbacks: 0,
        });
        for region in &segment.layout().regions[..indexes] {
            let stats = &region.slots[slot];
            for (total, c) in sum.codes.iter_mut().zip(&stats.codes) {
                *total += c.load(Relaxed);
            }
            for (total, b) in sum.buckets.iter_mut().zip(&stats.buckets) {
                *total += b.load(Relaxed);
            }
            sum.sum_ns += stats.sum_ns.load(Relaxed);
            sum.rollbacks += stats.canary_rollbacks.load(Relaxed);
        }
    }
    out
}

fn totals(segment: &MetricsSegment, indexes: usize) -> Totals {
    let mut t = Totals::default();
    for region in &segment.layout().regions[..indexes] {
        let h = &region.head;
        t.restarts += h.starts.load(Relaxed).saturating_sub(1);
        t.instances += h.wasm_instances.load(Relaxed);
        t.traps += h.wasm_traps.load(Relaxed);
        for (total, hits) in t.limits.iter_mut().zip(&h.limit_hits) {
            *total += hits.load(Relaxed);
        }
        t.spool += h.spool_bytes.load(Relaxed);
        t.delivered += h.jobs_delivered.load(Relaxed);
        t.failed += h.jobs_failed.load(Relaxed);
    }
    t
}

/// The live workers (children of `master`) of `segment`.
pub fn workers(segment: &MetricsSegment, master: Option<i32>) -> Vec<ProcView> {
    procs::live(&segment.layout().procs, master)
}

/// The whole exposition. `workers`: the configured worker count; `master`: the pid whose
/// children count as live (`None`: any).
pub fn render(
    segment: &MetricsSegment,
    workers_configured: usize,
    master: Option<i32>,
    jobs: Option<JobFigures>,
) -> String {
    let n = indexes(segment, workers_configured);
    let mut out = String::with_capacity(4096);
    render_requests(&mut out, &routes(segment, n));
    let in_flight: i64 = workers(segment, master).iter().map(|w| w.in_flight).sum();
    head(
        &mut out,
        "wsrun_http_requests_in_flight",
        "gauge",
        "Requests being served now.",
    );
    let _ = writeln!(out, "wsrun_http_requests_in_flight {}", in_flight.max(0));
    render_totals(&mut out, &totals(segment, n));
    if let Some(jobs) = jobs {
        head(
            &mut out,
            "wsrun_jobs_pending",
            "gauge",
            "Durable jobs waiting for delivery.",
        );
        let _ = writeln!(out, "wsrun_jobs_pending {}", jobs.pending);
        head(
            &mut out,
            "wsrun_jobs_dead",
            "gauge",
            "Jobs in the dead-letter table.",
        );
        let _ = writeln!(out, "wsrun_jobs_dead {}", jobs.dead);
    }
    out
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_requests(out: &mut String, routes: &BTreeMap<(String, String), Route>) {
    head(
        out,
        "wsrun_http_requests_total",
        "counter",
        "Responses by route prefix, tenant and status code.",
    );
    for ((route, tenant), r) in routes {
        let labels = format!("route=\"{}\",tenant=\"{}\"", escape(route), escape(tenant));
        for (i, &count) in r.codes.iter().enumerate().filter(|(_, c)| **c > 0) {
            let code = index_code(i).map_or("other".to_string(), |c| c.to_string());
            let _ = writeln!(
                out,
                "wsrun_http_requests_total{{{labels},code=\"{code}\"}} {count}"
            );
        }
    }
    let name = "wsrun_http_request_duration_seconds";
    head(
        out,
        name,
        "histogram",
        "Time from the request head to the end of the response.",
    );
    for ((route, tenant), r) in routes {
        let count: u64 = r.buckets.iter().sum();
        if count == 0 {
            continue;
        }
        let labels = format!("route=\"{}\",tenant=\"{}\"", escape(route), escape(tenant));
        let mut cumulative = 0;
        for (bound, n) in BUCKETS_S.iter().zip(&r.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", r.sum_ns as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
    render_rollbacks(out, routes);
}

/// `wsrun_canary_rollbacks_total`, for the routes that rolled a canary back.
fn render_rollbacks(out: &mut String, routes: &BTreeMap<(String, String), Route>) {
    let name = "wsrun_canary_rollbacks_total";
    head(out, name, "counter", "Canaries rolled back to the primary.");
    for ((route, tenant), r) in routes.iter().filter(|(_, r)| r.rollbacks > 0) {
        let labels = format!("route=\"{}\",tenant=\"{}\"", escape(route), escape(tenant));
        let _ = writeln!(out, "{name}{{{labels}}} {}", r.rollbacks);
    }
}

fn render_totals(out: &mut String, t: &Totals) {
    let simple = [
        (
            "wsrun_wasm_instances_total",
            "WebAssembly instances started.",
            t.instances,
        ),
        (
            "wsrun_wasm_traps_total",
            "WebAssembly instances that trapped.",
            t.traps,
        ),
        (
            "wsrun_spool_bytes_total",
            "Request body bytes received through the spool.",
            t.spool,
        ),
        (
            "wsrun_jobs_delivered_total",
            "Job deliveries answered below 400.",
            t.delivered,
        ),
        (
            "wsrun_jobs_failed_total",
            "Job deliveries that failed (4xx, 5xx, no route, broken response).",
            t.failed,
        ),
        (
            "wsrun_worker_restarts_total",
            "Worker processes started to replace another.",
            t.restarts,
        ),
    ];
    for (name, help, value) in simple {
        head(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let name = "wsrun_wasm_limit_hits_total";
    head(
        out,
        name,
        "counter",
        "WebAssembly requests refused or stopped by a limit.",
    );
    for kind in LimitKind::ALL {
        let _ = writeln!(
            out,
            "{name}{{limit=\"{}\"}} {}",
            kind.label(),
            t.limits[kind as usize]
        );
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::WorkerMetrics;
    use std::time::Duration;

    #[test]
    fn regions_are_summed_and_equal_labels_merged() {
        let segment: &'static MetricsSegment =
            Box::leak(Box::new(MetricsSegment::create(2).expect("a segment")));
        let one = WorkerMetrics::attach(segment, 0).expect("worker 0");
        let two = WorkerMetrics::attach(segment, 1).expect("worker 1");
        let slot = one.claim("/api", Some("a\"b"));
        assert_eq!(two.claim("/api", Some("a\"b")), slot);
        for (m, n) in [(one, 3), (two, 4)] {
            for _ in 0..n {
                m.request_started();
                m.request_done(slot, 200, Duration::from_micros(700));
            }
        }
        one.request_started();
        one.request_done(slot, 503, Duration::from_secs(20));
        two.limit_hit(LimitKind::Timeout);
        let text = render(segment, 2, None, Some(JobFigures::default()));
        let labels = "route=\"/api\",tenant=\"a\\\"b\"";
        for line in [
            format!("wsrun_http_requests_total{{{labels},code=\"200\"}} 7"),
            format!("wsrun_http_requests_total{{{labels},code=\"503\"}} 1"),
            format!("wsrun_http_request_duration_seconds_bucket{{{labels},le=\"0.0005\"}} 0"),
            format!("wsrun_http_request_duration_seconds_bucket{{{labels},le=\"0.001\"}} 7"),
            format!("wsrun_http_request_duration_seconds_bucket{{{labels},le=\"10\"}} 7"),
            format!("wsrun_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 8"),
            format!("wsrun_http_request_duration_seconds_count{{{labels}}} 8"),
            "wsrun_http_requests_in_flight 0".to_string(),
            "wsrun_wasm_limit_hits_total{limit=\"timeout\"} 1".to_string(),
            "wsrun_worker_restarts_total 0".to_string(),
            "wsrun_jobs_pending 0".to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
