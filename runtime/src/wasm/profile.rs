//! `--profile` for WebAssembly routes: per route, how many instances ran and the time spent
//! instantiating, running (the guest's `handle` call) and streaming (from the response head
//! to the end of its body), written as JSON (`DIR/worker-N-wasm.json`) when the worker drains.
//!
//! Owns: the per-route totals of this worker process. Off unless `crate::profile::target()`
//! is set: `clock()` is then `None` and nothing is recorded. Must not touch: the instance's
//! run or its limits (`invoke` measures at its seams and hands the durations here).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::route_info::RouteInfo;

/// One route's totals.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RouteTimes {
    pub prefix: String,
    pub handler: String,
    pub instances: u64,
    pub instantiate: Phase,
    pub run: Phase,
    pub stream: Phase,
}

/// One phase's count, total and longest, in seconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Phase {
    pub count: u64,
    pub total_s: f64,
    pub max_s: f64,
}

impl Phase {
    fn add(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        self.count += 1;
        self.total_s += secs;
        self.max_s = self.max_s.max(secs);
    }
}

/// Which phase a duration belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Instantiate,
    Run,
    Stream,
}

/// Keyed by the route's label (prefix, handler and tenant).
static ROUTES: Mutex<BTreeMap<String, RouteTimes>> = Mutex::new(BTreeMap::new());

/// `Some(now)` when profiling is on: the start of a measured step.
pub fn clock() -> Option<Instant> {
    crate::profile::target().map(|_| Instant::now())
}

/// Adds the time since `since` (from `clock`) to `step` of the route.
pub fn record(info: &RouteInfo, step: Step, since: Option<Instant>) {
    let Some(since) = since else { return };
    let took = since.elapsed();
    let Ok(mut routes) = ROUTES.lock() else {
        return;
    };
    let times = routes.entry(info.label()).or_insert_with(|| RouteTimes {
        prefix: info.prefix.clone(),
        handler: info.name.clone(),
        ..RouteTimes::default()
    });
    match step {
        Step::Instantiate => {
            times.instances += 1;
            times.instantiate.add(took);
        }
        Step::Run => times.run.add(took),
        Step::Stream => times.stream.add(took),
    }
}

/// Records the stream step when dropped: held by a response body until it is sent or dropped.
pub struct StreamTimer {
    pub info: std::sync::Arc<RouteInfo>,
    pub since: Option<Instant>,
}

impl Drop for StreamTimer {
    fn drop(&mut self) {
        record(&self.info, Step::Stream, self.since);
    }
}

/// Writes the totals as `{"routes": [...]}`.
pub fn write(path: &Path) {
    let routes: Vec<RouteTimes> = match ROUTES.lock() {
        Ok(routes) => routes.values().cloned().collect(),
        Err(_) => return,
    };
    let count = routes.len();
    let written = serde_json::to_vec_pretty(&serde_json::json!({ "routes": routes }))
        .map_err(|e| e.to_string())
        .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
    match written {
        Ok(()) => tracing::info!(
            "--profile: {count} WebAssembly route(s) in {}",
            path.display()
        ),
        Err(err) => tracing::warn!("--profile: cannot write {}: {err}", path.display()),
    }
}
