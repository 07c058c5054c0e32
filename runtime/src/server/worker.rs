//! A worker: one process, one event-loop thread, its own listeners and interpreter state.
//!
//! Owns: the tokio runtime of a worker, binding its SO_REUSEPORT listeners, the accept loops
//! (with the per-worker connection cap: past it a new connection gets 503 and is closed), and
//! draining on SIGTERM/SIGINT within the grace period. Must not touch: other workers or the
//! supervisor (see `supervisor`), or per-request logic (see `service`).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Notify};
use tokio::task::LocalSet;

use super::access_log::AccessLog;
use super::connection::serve_connection;
use super::job_delivery::JobDelivery;
use super::listener::bind_reuseport;
use super::live_routes::{start_wasm, LiveRouter};
use super::service::{Handler, Peer};
use super::supervisor::WORKER_BOOT_FAILED;
use crate::config::Config;
use crate::python::services as python_services;
use crate::python::WsgiHost;
use crate::router::Router;
use crate::services::{dispatch, Services};
use crate::spool::SpoolLimits;
use crate::wasm::{WasmHost, WatchChange};
use tokio::sync::mpsc::UnboundedReceiver;

/// What a worker is started with (built once in the parent, before any fork).
pub struct WorkerSetup {
    pub config: Arc<Config>,
    pub router: Router<Handler>,
}

/// Everything a connection of this worker reads.
pub struct WorkerContext {
    pub router: LiveRouter,
    pub wsgi: Arc<WsgiHost>,
    pub wasm: Option<WasmHost>,
    pub access_log: Option<AccessLog>,
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_header_size: usize,
    pub max_headers: usize,
    spool: SpoolLimits,
}

impl WorkerContext {
    /// The route table a new request is routed with.
    pub fn router(&self) -> Rc<Router<Handler>> {
        self.router.get()
    }

    /// Spool limits for a route whose body limit is `max_body_size`.
    pub fn spool_limits(&self, max_body_size: u64) -> SpoolLimits {
        SpoolLimits {
            max_body_size,
            ..self.spool.clone()
        }
    }
}

const LISTEN_BACKLOG: i32 = 1024;

/// Runs worker `index` until it has drained; returns the process exit code.
pub fn run_worker(setup: WorkerSetup, index: usize) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("worker {index}: cannot start its event loop: {err}");
            return WORKER_BOOT_FAILED;
        }
    };
    LocalSet::new().block_on(&runtime, serve_until_drained(setup, index))
}

async fn serve_until_drained(setup: WorkerSetup, index: usize) -> i32 {
    let config = setup.config.clone();
    let server = &config.server;
    let listeners = match bind_all(&server.bind_addrs()) {
        Ok(listeners) => listeners,
        Err(message) => {
            tracing::error!("worker {index}: {message}");
            return WORKER_BOOT_FAILED;
        }
    };
    let (ctx, watch_changes) = match build_context(setup) {
        Ok((ctx, changes)) => (Rc::new(ctx), changes),
        Err(message) => {
            tracing::error!("worker {index}: {message}");
            return WORKER_BOOT_FAILED;
        }
    };
    if let Some(mut changes) = watch_changes {
        let ctx = ctx.clone();
        let max_body_size = server.max_body_size;
        tokio::task::spawn_local(async move {
            while let Some(change) = changes.recv().await {
                ctx.router.apply(change, max_body_size);
            }
        });
    }
    let mut stop = match spawn_stop_watchdog(server.graceful_timeout) {
        Ok(stop) => stop,
        Err(message) => {
            tracing::error!("worker {index}: {message}");
            return WORKER_BOOT_FAILED;
        }
    };
    let (drain, draining) = watch::channel(false);
    let local = listeners.first().map(|(_, addr)| *addr);
    if let Err(message) = start_services(&config, &ctx, local, &draining) {
        tracing::error!("worker {index}: {message}");
        return WORKER_BOOT_FAILED;
    }
    let live = Rc::new(LiveConnections::default());
    for (listener, addr) in listeners {
        tracing::info!(
            "worker {index} (pid {}) listening on http://{addr}",
            std::process::id()
        );
        let accept = accept_loop(
            listener,
            ctx.clone(),
            draining.clone(),
            live.clone(),
            server.max_connections,
        );
        tokio::task::spawn_local(accept);
    }
    let _ = stop.wait_for(|stopped| *stopped).await;
    tracing::info!(
        "worker {index}: draining {} connection(s)",
        live.count.get()
    );
    let _ = drain.send(true);
    if tokio::time::timeout(server.graceful_timeout, live.all_closed())
        .await
        .is_err()
    {
        tracing::warn!(
            "worker {index}: grace period over, closing {} connection(s)",
            live.count.get()
        );
    }
    0
}

/// Starts this worker's share of the shared services: its own `Services` (its own store
/// connection and journal thread), handed to the Python module and the WASM host, the
/// dispatcher that delivers due jobs through this worker's router, and the runner of
/// in-process Python timers and deferred calls.
fn start_services(
    config: &Config,
    ctx: &Rc<WorkerContext>,
    local: Option<SocketAddr>,
    draining: &watch::Receiver<bool>,
) -> Result<(), String> {
    let services = Services::open(
        &config.server.state_dir,
        config.jobs.clone(),
        ctx.router.shape(),
    )
    .map_err(|e| e.to_string())?;
    let python_tasks = python_services::install(services.clone())?;
    if let Some(wasm) = &ctx.wasm {
        wasm.set_services(services.clone());
    }
    let delivery = Rc::new(JobDelivery {
        ctx: ctx.clone(),
        local: local.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
    });
    tokio::task::spawn_local(dispatch::run(services, delivery, draining.clone()));
    tokio::task::spawn_local(python_tasks.run(draining.clone()));
    Ok(())
}

fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<(TcpListener, SocketAddr)>, String> {
    addrs
        .iter()
        .map(|addr| {
            let std_listener = bind_reuseport(*addr, LISTEN_BACKLOG)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = std_listener.local_addr().unwrap_or(*addr);
            TcpListener::from_std(std_listener)
                .map(|l| (l, local))
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        })
        .collect()
}

type WatchChanges = Option<UnboundedReceiver<WatchChange>>;

fn build_context(setup: WorkerSetup) -> Result<(WorkerContext, WatchChanges), String> {
    let WorkerSetup { config, mut router } = setup;
    let server = &config.server;
    let (wasm, changes) = match start_wasm(&config, &mut router)? {
        Some(boot) => (Some(boot.host), boot.changes),
        None => (None, None),
    };
    let wsgi = WsgiHost::start(server.threads, server.workers > 1, server.debug)?;
    let access_log = match &server.access_log {
        Some(target) => Some(
            AccessLog::open(target).map_err(|e| format!("cannot open access log {target}: {e}"))?,
        ),
        None => None,
    };
    let ctx = WorkerContext {
        router: LiveRouter::new(router),
        wsgi,
        wasm,
        access_log,
        header_timeout: server.header_timeout,
        keepalive_timeout: server.keepalive_timeout,
        max_header_size: server.max_header_size,
        max_headers: server.max_headers,
        spool: SpoolLimits {
            max_body_size: server.max_body_size,
            memory_threshold: server.spool_threshold,
            dir: server.spool_dir.clone(),
            body_timeout: server.body_timeout,
            min_rate: server.body_min_rate,
        },
    };
    Ok((ctx, changes))
}

/// Watches for SIGTERM/SIGINT on its own thread (the event loop may be busy inside a Python
/// call): reports the signal to the worker, and ends the process if draining outlasts the
/// grace period.
fn spawn_stop_watchdog(grace: Duration) -> Result<watch::Receiver<bool>, String> {
    let (stop, stopped) = watch::channel(false);
    let (ready, installed) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("wsrun-signals".to_string())
        .spawn(move || watch_signals(stop, ready, grace))
        .map_err(|e| format!("cannot start the signal watcher: {e}"))?;
    match installed.recv() {
        Ok(Ok(())) => Ok(stopped),
        Ok(Err(message)) => Err(message),
        Err(_) => Err("the signal watcher died while starting".to_string()),
    }
}

/// Body of the signal thread: its own small event loop, so it runs even while the worker's
/// loop is inside a long Python call.
fn watch_signals(
    stop: watch::Sender<bool>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
    grace: Duration,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the signal watcher: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                let _ = ready.send(Err(format!("cannot install signal handlers: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop.send(true);
        tokio::time::sleep(grace + Duration::from_millis(200)).await;
        tracing::warn!("grace period over: stopping with requests still running");
        // SAFETY: ends the process at once; spool files are already unlinked, so the kernel
        // cleans up everything that is left.
        unsafe { libc::_exit(0) };
    });
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Rc<WorkerContext>,
    mut draining: watch::Receiver<bool>,
    live: Rc<LiveConnections>,
    max_connections: usize,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = draining.changed() => return,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if live.count.get() >= max_connections {
            tokio::task::spawn_local(refuse_busy(stream));
            continue;
        }
        let local = stream.local_addr().unwrap_or(remote);
        let peer = Peer { remote, local };
        let guard = live.open();
        let (ctx, draining) = (ctx.clone(), draining.clone());
        tokio::task::spawn_local(async move {
            serve_connection(stream, peer, ctx, draining).await;
            drop(guard);
        });
    }
}

async fn refuse_busy(mut stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 42\r\nRetry-After: 1\r\nConnection: close\r\n\r\nService Unavailable: too many connections\n";
    let _ = stream.write_all(BUSY).await;
    let _ = stream.shutdown().await;
}

/// Counts open connections so draining knows when it is done.
#[derive(Default)]
struct LiveConnections {
    count: Cell<usize>,
    closed: Notify,
}

impl LiveConnections {
    fn open(self: &Rc<Self>) -> LiveGuard {
        self.count.set(self.count.get() + 1);
        LiveGuard(self.clone())
    }

    async fn all_closed(&self) {
        while self.count.get() > 0 {
            self.closed.notified().await;
        }
    }
}

struct LiveGuard(Rc<LiveConnections>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let live = &self.0;
        live.count.set(live.count.get().saturating_sub(1));
        live.closed.notify_waiters();
    }
}
