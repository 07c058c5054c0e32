//! `--profile` for WebAssembly routes: per route, how many instances ran and the time spent
//! instantiating, running (the guest's `handle` call) and streaming (from the response head
//! to the end of its body), written as JSON (`DIR/worker-N-wasm.json`) when the worker drains.
//! A step counts once its timer is dropped, so a run stopped half-way (its response already
//! sent, a timeout, a cancel) counts too. A recycled worker's successor adds its totals to the
//! file its predecessor wrote since the server started (`crate::profile::Target::accumulates`).
//!
//! Owns: the per-route totals of this worker process. Off unless `crate::profile::target()`
//! is set: `clock()` is then `None` and nothing is recorded. Must not touch: the instance's
//! run or its limits (`invoke` measures at its seams and hands the durations here).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::route_info::RouteInfo;

/// One route's totals.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RouteTimes {
    /// The route's label (prefix, handler and tenant): the key totals are merged by.
    pub route: String,
    pub prefix: String,
    pub handler: String,
    pub instances: u64,
    pub instantiate: Phase,
    pub run: Phase,
    pub stream: Phase,
}

/// One phase's count, total and longest, in seconds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
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

    fn merge(&mut self, other: &Phase) {
        self.count += other.count;
        self.total_s += other.total_s;
        self.max_s = self.max_s.max(other.max_s);
    }
}

impl RouteTimes {
    fn merge(&mut self, other: &RouteTimes) {
        self.instances += other.instances;
        self.instantiate.merge(&other.instantiate);
        self.run.merge(&other.run);
        self.stream.merge(&other.stream);
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
    let label = info.label();
    let times = routes.entry(label.clone()).or_insert_with(|| RouteTimes {
        route: label,
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

/// Records one step of a route when dropped: the step ends when its future or body is done
/// or dropped, whichever comes first.
pub struct StepTimer {
    info: std::sync::Arc<RouteInfo>,
    step: Step,
    since: Instant,
}

impl StepTimer {
    /// A timer for `step` from now, or `None` when profiling is off (nothing is cloned then).
    pub fn start(info: &std::sync::Arc<RouteInfo>, step: Step) -> Option<StepTimer> {
        let since = clock()?;
        Some(StepTimer {
            info: info.clone(),
            step,
            since,
        })
    }
}

impl Drop for StepTimer {
    fn drop(&mut self) {
        record(&self.info, self.step, Some(self.since));
    }
}

/// Writes the totals as `{"routes": [...]}`; with `accumulate`, adds them to the file's.
pub fn write(path: &Path, accumulate: bool) {
    let mut routes: BTreeMap<String, RouteTimes> = match ROUTES.lock() {
        Ok(routes) => routes.clone(),
        Err(_) => return,
    };
    if accumulate {
        add_earlier(path, &mut routes);
    }
    let routes: Vec<RouteTimes> = routes.into_values().collect();
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

/// The file's earlier totals (a predecessor's in this worker slot), added to `routes`. A file
/// that is missing or unreadable adds nothing (said in the log when it exists but is not ours).
fn add_earlier(path: &Path, routes: &mut BTreeMap<String, RouteTimes>) {
    #[derive(Deserialize)]
    struct Earlier {
        routes: Vec<RouteTimes>,
    }
    let Ok(text) = std::fs::read(path) else {
        return;
    };
    let earlier: Earlier = match serde_json::from_slice(&text) {
        Ok(earlier) => earlier,
        Err(err) => {
            tracing::warn!("--profile: {} is replaced: {err}", path.display());
            return;
        }
    };
    for times in earlier.routes {
        match routes.get_mut(&times.route) {
            Some(mine) => mine.merge(&times),
            None => {
                routes.insert(times.route.clone(), times);
            }
        }
    }
}
