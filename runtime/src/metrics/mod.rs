//! Server-wide metrics: counters every worker process adds to in one shared-memory segment,
//! summed by the master when scraped.
//!
//! Owns: the segment (`segment`: memfd + `MAP_SHARED`, one region per worker index), the
//! (route, tenant) label table (`labels`), the process table (`procs`), a region's counters
//! (`counter`), the Prometheus text (`render`), and `WorkerMetrics`, the handle a worker's
//! request path writes through. Must not touch: HTTP, sockets, config parsing or processes:
//! the admin listener that serves these figures is `server::admin`.
//!
//! Cost on the request path, when the admin listener is on: the route's label slot was
//! resolved when the route was built (`Route::metrics_slot`), so a response is three relaxed
//! `fetch_add`s on its region's slot (status code, latency bucket, latency sum) and three on
//! the worker's process entry (in flight up and down, requests served), all on cache lines
//! only this worker writes; no lookup, allocation or formatting. Off: one `Option` test.

pub mod counter;
pub mod labels;
pub mod procs;
pub mod render;
pub mod segment;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

pub use counter::LimitKind;
pub use segment::{MetricsSegment, MAX_WORKERS};

use counter::Region;
use labels::Labels;
use procs::ProcSlot;

/// What one worker process counts into: its index's region and its own process entry.
#[derive(Clone, Copy)]
pub struct WorkerMetrics {
    region: &'static Region,
    process: &'static ProcSlot,
    labels: &'static Labels,
}

impl WorkerMetrics {
    /// Attaches worker `index` (this process) to `segment`: claims its process entry (or the
    /// spare one, when its index's are all taken) and counts one start of the index. `None`
    /// when the segment has no region for the index.
    pub fn attach(segment: &'static MetricsSegment, index: usize) -> Option<WorkerMetrics> {
        let region = segment.region(index)?;
        let pid = i32::try_from(std::process::id()).unwrap_or(0);
        let entries = segment.proc_entries(index)?;
        let process = procs::claim(entries, index, pid).unwrap_or(&segment.layout().spare);
        region.head.starts.fetch_add(1, Relaxed);
        Some(WorkerMetrics {
            region,
            process,
            labels: &segment.layout().labels,
        })
    }

    /// The label slot of (`route` prefix, `tenant`), for a route built in this worker.
    pub fn claim(&self, route: &str, tenant: Option<&str>) -> u16 {
        self.labels.claim(route, tenant.unwrap_or(""))
    }

    /// A request's head has been read.
    // Out of line, like `request_done`: a call costs ~1 ns, and a profile then shows the
    // metrics' whole share under `wsrun::metrics::` (bench/metrics.sh PROFILE=1).
    #[inline(never)]
    pub fn request_started(&self) {
        self.process.in_flight.fetch_add(1, Relaxed);
    }

    /// A request counted as started is left to another path (which counts it again).
    #[inline(never)]
    pub fn request_abandoned(&self) {
        self.process.in_flight.fetch_sub(1, Relaxed);
    }

    /// Its response ended (sent, or abandoned by the client): status `code`, label `slot`.
    #[inline(never)]
    pub fn request_done(&self, slot: u16, code: u16, elapsed: Duration) {
        let slots = &self.region.slots;
        let stats = slots.get(usize::from(slot)).unwrap_or(&slots[0]);
        stats.record(code, elapsed);
        self.process.in_flight.fetch_sub(1, Relaxed);
        self.process.requests.fetch_add(1, Relaxed);
    }

    /// The route of label `slot` rolled its canary back.
    pub fn canary_rolled_back(&self, slot: u16) {
        let slots = &self.region.slots;
        let stats = slots.get(usize::from(slot)).unwrap_or(&slots[0]);
        stats.canary_rollbacks.fetch_add(1, Relaxed);
    }

    pub fn wasm_instance(&self) {
        self.region.head.wasm_instances.fetch_add(1, Relaxed);
    }

    pub fn wasm_trap(&self) {
        self.region.head.wasm_traps.fetch_add(1, Relaxed);
    }

    pub fn limit_hit(&self, kind: LimitKind) {
        self.region.head.limit_hits[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn spooled(&self, bytes: u64) {
        self.region.head.spool_bytes.fetch_add(bytes, Relaxed);
    }

    /// A job delivery ended: `ok` when its route answered below 400 (a success for the store).
    pub fn job_done(&self, ok: bool) {
        let head = &self.region.head;
        let counter = if ok {
            &head.jobs_delivered
        } else {
            &head.jobs_failed
        };
        counter.fetch_add(1, Relaxed);
    }
}
