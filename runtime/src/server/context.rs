//! What every connection, request and job delivery of a worker reads.
//!
//! Owns: `WorkerContext` (the worker's live router, its WSGI and WebAssembly hosts, its access
//! log, its TLS acceptor, its recycling state, its metrics handle, its shadow thread and the validated `Config` it runs with, shared as an `Arc`) and building it after the
//! fork: WASM code loaded and the watched directory's first scan done before the worker binds.
//! Must not touch: sockets, accepting, or what happens per request (`service`, `connection`).

use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use super::access_log::AccessLog;
use super::handler::Handler;
use super::live_routes::{start_wasm, LiveRouter};
use super::loop_pressure::LoopPressure;
use super::recycle::Recycle;
use super::shadow_lane::ShadowLane;
use super::tls::{self, TlsAcceptor};
use crate::config::Config;
use crate::metrics::{MetricsSegment, WorkerMetrics};
use crate::python::WsgiHost;
use crate::router::Router;
use crate::spool::SpoolLimits;
use crate::wasm::{WasmHost, WatchChange};

/// Everything a connection of this worker reads.
pub struct WorkerContext {
    pub router: LiveRouter,
    pub wsgi: Arc<WsgiHost>,
    pub wasm: Option<Arc<WasmHost>>,
    pub access_log: Option<AccessLog>,
    /// Counts responses towards `max_requests`, watches `max_rss`.
    pub recycle: Rc<Recycle>,
    /// The validated configuration (timeouts and limits are read from `config.server`).
    pub config: Arc<Config>,
    /// Set when the bound addresses serve TLS (`[server] tls_cert`): every connection is.
    pub tls: Option<TlsAcceptor>,
    /// Where this worker counts, when the admin listener is on.
    pub metrics: Option<WorkerMetrics>,
    /// The thread mirrored requests run on (started by the first one).
    pub shadow_lane: ShadowLane,
    /// Whether this event loop is saturated (mirroring is skipped while it is).
    pub loop_pressure: LoopPressure,
}

/// `--watch` changes still to come, when watching.
pub type WatchChanges = Option<UnboundedReceiver<WatchChange>>;

impl WorkerContext {
    /// Builds this worker's context: WASM host with every fixed route loaded and the watched
    /// directory scanned, the WSGI host, the access log.
    pub fn build(
        config: Arc<Config>,
        mut router: Router<Handler>,
        recycle: Recycle,
        index: usize,
        segment: Option<&'static MetricsSegment>,
    ) -> Result<(WorkerContext, WatchChanges), String> {
        let server = &config.server;
        let metrics = match segment {
            Some(segment) => Some(
                WorkerMetrics::attach(segment, index)
                    .ok_or_else(|| format!("no room for worker {index} in the metrics"))?,
            ),
            None => None,
        };
        let (wasm, changes) = match start_wasm(&config, &mut router)? {
            Some(boot) => (Some(boot.host), boot.changes),
            None => (None, None),
        };
        if let (Some(wasm), Some(m)) = (&wasm, metrics) {
            wasm.set_metrics(m);
        }
        let wsgi = WsgiHost::start(server.threads, server.workers > 1, server.debug)?;
        let access_log = match &server.access_log {
            Some(target) => Some(
                AccessLog::open(target, server.access_log_format, index)
                    .map_err(|e| format!("cannot open access log {target}: {e}"))?,
            ),
            None => None,
        };
        let tls = tls::acceptor(&config).map_err(|e| e.to_string())?;
        let ctx = WorkerContext {
            router: LiveRouter::new(router, metrics),
            wsgi,
            wasm: wasm.map(Arc::new),
            access_log,
            recycle: Rc::new(recycle),
            config,
            tls,
            metrics,
            shadow_lane: ShadowLane::default(),
            loop_pressure: LoopPressure::default(),
        };
        Ok((ctx, changes))
    }

    /// The route table a new request is routed with.
    pub fn router(&self) -> Rc<Router<Handler>> {
        self.router.get()
    }

    /// Spool limits for a route whose body limit is `max_body_size`.
    pub fn spool_limits(&self, max_body_size: u64) -> SpoolLimits {
        let server = &self.config.server;
        SpoolLimits {
            max_body_size,
            memory_threshold: server.spool_threshold,
            dir: server.spool_dir.clone(),
            body_timeout: server.body_timeout,
            min_rate: server.body_min_rate,
        }
    }
}
