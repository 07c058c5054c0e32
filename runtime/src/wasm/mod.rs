//! The WebAssembly host: standard `wasi:http/proxy` 0.2 components, one fresh sandboxed
//! instance per request (or up to a route's `requests_per_instance`, opt-in), hot-swappable
//! per route.
//!
//! Owns: `WasmHost`, a worker's engine, compiler and watcher, and the request entry point.
//! Files: `engine` (wasmtime set-up, pooling, epoch ticker), `compile` (file checks, code
//! cache, linking), `compile_child` (the compile child process and its limits), `route_info`
//! (what a route is: name, prefix, file, limits; the bottom layer the others read),
//! `registry` (routes, their current version, concurrency permits), `warm` (idle instances
//! kept for routes with `requests_per_instance` above 1), `state` (what an
//! instance may see: env, log, memory limit), `outbound` (outgoing requests: the allow-list by
//! name and address, caps in flight, connect bounds), `invoke` (one request), `memory_budget`
//! (the worker's and each tenant's shared memory accounts), `lanes` (event loop first,
//! low-priority thread for guests that keep computing, taken in turns per tenant),
//! `loop_share` (each tenant's recent use of the event loop against its fair part),
//! `guest_clock` (a guest's running time against `cpu_time`, and how its instance ended),
//! `body` (bodies both ways), `guest_log` (guest stdout/stderr) and `log_budget` (its
//! per-instance budget and per-route rate), `services_host` (the `wsrun:services` imports:
//! jobs and timers), `watcher` (`--watch DIR`). Must not touch: the Python host, the front
//! end's connection handling, or the router's matching (the worker rebuilds its router from
//! `WatchChange`s).
//!
//! The engine is built in each worker after the fork (wasmtime's threads and memory pools do
//! not survive a fork), so a bad handler file on a fixed route fails the worker's boot, and
//! SIGHUP's rolling restart re-reads every handler file.

mod body;
mod compile;
mod compile_child;
mod engine;
mod guest_clock;
mod guest_log;
mod invoke;
mod lanes;
mod log_budget;
mod loop_share;
mod memory_budget;
mod outbound;
pub mod profile;
mod registry;
mod route_info;
mod services_host;
mod state;
mod warm;
mod watcher;

pub use body::GuestRequestBody;
pub use compile_child::{
    child_main as compile_child_main, CompileLimits, SUBCOMMAND as COMPILE_SUBCOMMAND,
};
pub use memory_budget::MemoryAccount;
pub use outbound::OutboundShare;
pub use registry::{WasmRoute, WasmRouteBuilder};
pub use route_info::{handler_name, RouteInfo};
pub use watcher::{handler_files, WatchChange};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::request::Parts;
use http::{header, HeaderName, HeaderValue, Request, Response};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::body::ResponseBody;
use crate::config::{format_duration, WasmLimits};
use crate::metrics::WorkerMetrics;
use crate::services::Services;
use crate::spool::SpooledBody;
use compile::Compiler;
use engine::WasmEngine;
use lanes::SlowLane;

/// The request header that carries the route prefix to the guest.
pub const SCRIPT_NAME_HEADER: &str = "wsrun-script-name";

/// A worker's WebAssembly host.
pub struct WasmHost {
    engine: WasmEngine,
    compiler: Compiler,
    slow_lane: SlowLane,
    /// The worker's services (set once they are up), handed to each guest that may call them.
    services: std::sync::OnceLock<Services>,
    /// `wasm_memory`: the linear memory all of this worker's instances may hold at once.
    memory: Arc<MemoryAccount>,
    /// One permit per slot of the instance pool: a full pool answers 503 like a full route.
    pool: Arc<tokio::sync::Semaphore>,
    /// Where instances, traps and limit hits are counted (admin listener on).
    metrics: std::sync::OnceLock<WorkerMetrics>,
    /// Idle instances of routes with `requests_per_instance` above 1.
    warm: Arc<warm::WarmInstances>,
}

impl WasmHost {
    /// Builds the engine for guests of up to `max_memory` bytes, starts the epoch ticker, and
    /// keeps compiled code under `cache_dir` (no cache when `None`); all instances together
    /// may hold `memory_budget` bytes of linear memory. Files are compiled in a child process
    /// within `compile_limits`.
    pub fn start(
        max_memory: u64,
        cache_dir: Option<PathBuf>,
        memory_budget: u64,
        compile_limits: CompileLimits,
    ) -> Result<WasmHost, String> {
        let engine = WasmEngine::new(max_memory)?;
        engine.start_ticker()?;
        let compiler = Compiler::new(engine.clone(), cache_dir, compile_limits);
        let slow_lane = SlowLane::start()?;
        Ok(WasmHost {
            engine,
            compiler,
            slow_lane,
            services: std::sync::OnceLock::new(),
            memory: MemoryAccount::worker(memory_budget),
            pool: Arc::new(tokio::sync::Semaphore::new(engine::RUNNING_INSTANCES)),
            metrics: std::sync::OnceLock::new(),
            warm: Arc::default(),
        })
    }

    /// Counts this worker's instances, traps and limit hits into `metrics` from now on.
    pub fn set_metrics(&self, metrics: WorkerMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// Gives guests the worker's services (the first call wins; guests that run before get
    /// `unavailable` from `wsrun:services`).
    pub fn set_services(&self, services: Services) {
        let _ = self.services.set(services);
    }

    /// Loads the first version of every fixed route; any failure is returned (boot fails).
    pub fn load_routes(&self, routes: &[Arc<WasmRoute>]) -> Result<(), String> {
        for route in routes {
            let loaded = self
                .compiler
                .load(&route.info.file)
                .map_err(|e| format!("{}: {e}", route.info.label()))?;
            tracing::debug!(
                "{}: loaded {} in {}{}",
                route.info.label(),
                route.info.file.display(),
                format_duration(loaded.elapsed),
                if loaded.from_cache {
                    " (cached code)"
                } else {
                    ""
                }
            );
            route.swap(loaded.version);
        }
        Ok(())
    }

    /// Compiles and links `file` without serving it (for `wsrun check`).
    pub fn check_file(&self, file: &Path) -> Result<(), String> {
        self.compiler.load(file).map(drop)
    }

    /// Serves `DIR/NAME.wasm` at `/NAME`: loads what is there now (returned), then reports
    /// every later addition or removal on the receiver; changed files are swapped in place.
    pub fn watch(
        &self,
        dir: &Path,
        limits: WasmLimits,
    ) -> Result<(Vec<Arc<WasmRoute>>, UnboundedReceiver<WatchChange>), String> {
        watcher::start(dir, self.compiler.clone(), limits)
    }

    /// Runs one request on a fresh instance of `route`'s current version (or a warm one,
    /// when the route's `requests_per_instance` is above 1).
    pub async fn handle(
        &self,
        route: &WasmRoute,
        request: Request<GuestRequestBody>,
    ) -> Response<ResponseBody> {
        let host = invoke::HostParts {
            engine: &self.engine,
            slow_lane: &self.slow_lane,
            services: self.services.get(),
            memory: &self.memory,
            pool: &self.pool,
            metrics: self.metrics.get().copied(),
            warm: &self.warm,
        };
        invoke::invoke(host, route, request).await
    }
}

/// Marks a guest request that arrived over TLS: the guest sees scheme `https`.
#[derive(Debug, Clone, Copy)]
pub struct Tls;

/// The request a guest sees: origin-form target, the client's headers with `Host` always
/// present (`authority()` when the client sent none) and `wsrun-script-name` set by us (a
/// client's own is dropped), the spooled body.
pub fn guest_request(
    mut parts: Parts,
    body: SpooledBody,
    script_name: &str,
    authority: impl FnOnce() -> String,
) -> Request<GuestRequestBody> {
    if parts.uri.authority().is_some() {
        let origin_form = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .parse()
            .unwrap_or_default();
        parts.uri = origin_form;
    }
    let headers = &mut parts.headers;
    let script_name_header = HeaderName::from_static(SCRIPT_NAME_HEADER);
    headers.remove(&script_name_header);
    if let Ok(value) = HeaderValue::from_str(script_name) {
        headers.insert(script_name_header, value);
    }
    if !headers.contains_key(header::HOST) {
        if let Ok(value) = HeaderValue::from_str(&authority()) {
            headers.insert(header::HOST, value);
        }
    }
    Request::from_parts(parts, GuestRequestBody::new(body))
}
