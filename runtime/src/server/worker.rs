//! A worker: one process, one event-loop thread, its own listeners and interpreter state.
//!
//! Owns: the tokio runtime of a worker, its start-up order (context, `--watch` changes,
//! services, and only then its accept loops on the SO_REUSEPORT listeners the master bound for
//! its index: a worker accepts once it is ready, logs `worker N (pid P) listening on
//! http://ADDR` then, and tells the master it is ready), the accept loops
//! (with the per-worker connection cap: past it the oldest connection serving no request is
//! evicted for the new one, see `live_connections`; when all are busy, 503), and
//! draining on SIGTERM/SIGINT or the master's death within the grace period, then writing
//! `--profile` files. Must not touch: other workers or the
//! supervisor (see `supervisor`), or per-request logic (see `service`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::task::LocalSet;

use super::connection::serve_connection;
use super::context::WorkerContext;
use super::fd_limit;
use super::handler::Handler;
use super::idle_clock::IdleClock;
use super::job_delivery::JobDelivery;
use super::listener_set::IndexListener;
use super::listener_traits::ListenerTraits;
use super::live_connections::LiveConnections;
use super::peer::Peer;
use super::recycle::Recycle;
use super::supervisor::{MasterLink, PARENT_CHECK, WORKER_BOOT_FAILED};
use crate::config::Config;
use crate::metrics::MetricsSegment;
use crate::python::profile as python_profile;
use crate::python::services as python_services;
use crate::router::Router;
use crate::services::{dispatch, Services};
use crate::wasm::WatchChange;
use tokio::sync::mpsc::UnboundedReceiver;

/// What a worker is started with (built once in the parent, before any fork).
pub struct WorkerSetup {
    pub config: Arc<Config>,
    pub router: Router<Handler>,
    /// This index's listeners, bound by the master (which keeps its own copies: connections
    /// waiting in their accept queues outlive this worker, for its successor to accept), and
    /// the retired listeners lent to it.
    pub listeners: Vec<IndexListener>,
    /// How to reach the master (ready, recycle me).
    pub link: MasterLink,
    /// The master's metrics segment, when the admin listener is on.
    pub metrics: Option<&'static MetricsSegment>,
}

/// Runs worker `index` until it has drained; returns the process exit code.
pub fn run_worker(setup: WorkerSetup, index: usize) -> i32 {
    if let Some(dir) = &setup.config.server.profile {
        crate::profile::enable(dir, index);
    }
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

async fn serve_until_drained(mut setup: WorkerSetup, index: usize) -> i32 {
    let listeners = std::mem::take(&mut setup.listeners);
    let link = setup.link;
    let Some(ready) = get_ready(setup, index) else {
        return WORKER_BOOT_FAILED;
    };
    let Ready {
        ctx,
        drain,
        draining,
        mut stop,
    } = ready;
    let server = &ctx.config.server;
    // Accepted from only now that the worker is ready (context built, WASM loaded, the watched
    // directory scanned, services started): the "listening" line below means "ready".
    let listeners = match to_tokio(listeners) {
        Ok(listeners) => listeners,
        Err(message) => {
            tracing::error!("worker {index}: {message}");
            return WORKER_BOOT_FAILED;
        }
    };
    let live = Rc::new(LiveConnections::default());
    let open_files = fd_limit::open_file_limit().unwrap_or(1024);
    let max_connections = fd_limit::connection_cap(server.max_connections, open_files);
    for (listener, addr, retired) in listeners {
        let scheme = if ctx.tls.is_some() { "https" } else { "http" };
        match retired {
            None => tracing::info!(
                "worker {index} (pid {}) listening on {scheme}://{addr}",
                std::process::id()
            ),
            Some(old) => tracing::debug!(
                "worker {index} also empties the queue of retired listener {old} on {addr}"
            ),
        }
        let traits = ListenerTraits::of(&listener, addr);
        let accept = accept_loop(
            listener,
            traits,
            ctx.clone(),
            draining.clone(),
            live.clone(),
            max_connections,
        );
        tokio::task::spawn_local(accept);
    }
    link.ready();
    tokio::task::spawn_local(ctx.recycle.clone().watch());
    let _ = stop.wait_for(|stopped| *stopped).await;
    tracing::info!("worker {index}: draining {} connection(s)", live.count());
    let _ = drain.send(true);
    if tokio::time::timeout(server.graceful_timeout, live.all_closed())
        .await
        .is_err()
    {
        tracing::warn!(
            "worker {index}: grace period over, closing {} connection(s)",
            live.count()
        );
    }
    write_profiles();
    0
}

/// `--profile`: the worker's Python and WebAssembly profiles, once it has drained.
fn write_profiles() {
    let Some(target) = crate::profile::target() else {
        return;
    };
    if let Err(err) = std::fs::create_dir_all(&target.dir) {
        tracing::warn!("--profile: {}: {err}", target.dir.display());
        return;
    }
    let pstats = target.pstats_path();
    python_profile::dump(&pstats, target.accumulates(&pstats));
    let wasm = target.wasm_path();
    crate::wasm::profile::write(&wasm, target.accumulates(&wasm));
}

/// A worker that may accept: its context, the drain switch and the stop signal.
struct Ready {
    ctx: Rc<WorkerContext>,
    drain: watch::Sender<bool>,
    draining: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
}

/// Everything before the worker may accept: its context, the task applying `--watch`
/// changes, the stop watchdog and the services. `None` after logging why the boot failed.
fn get_ready(setup: WorkerSetup, index: usize) -> Option<Ready> {
    let fail = |message: String| tracing::error!("worker {index}: {message}");
    let recycle = Recycle::new(&setup.config.server, index, setup.link);
    let (ctx, watch_changes) =
        WorkerContext::build(setup.config, setup.router, recycle, index, setup.metrics)
            .map_err(fail)
            .ok()?;
    let ctx = Rc::new(ctx);
    if let Some(changes) = watch_changes {
        tokio::task::spawn_local(apply_watch_changes(ctx.clone(), changes));
    }
    let stop = spawn_stop_watchdog(ctx.config.server.graceful_timeout, setup.link)
        .map_err(fail)
        .ok()?;
    let (drain, draining) = watch::channel(false);
    // Jobs appear to arrive at the first configured address (the listeners are bound later).
    let local = ctx.config.server.bind_addrs().first().copied();
    start_services(&ctx.config, &ctx, local, &draining)
        .map_err(fail)
        .ok()?;
    Some(Ready {
        ctx,
        drain,
        draining,
        stop,
    })
}

/// Applies `--watch` changes to the worker's router as they come.
async fn apply_watch_changes(ctx: Rc<WorkerContext>, mut changes: UnboundedReceiver<WatchChange>) {
    let max_body_size = ctx.config.server.max_body_size;
    while let Some(change) = changes.recv().await {
        ctx.router.apply(change, max_body_size);
    }
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
        &config.server.node,
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

/// The master's listeners as this worker's event loop's.
fn to_tokio(
    listeners: Vec<IndexListener>,
) -> Result<Vec<(TcpListener, SocketAddr, Option<usize>)>, String> {
    listeners
        .into_iter()
        .map(|l| {
            TcpListener::from_std(l.socket)
                .map(|socket| (socket, l.addr, l.retired))
                .map_err(|e| format!("cannot listen on {}: {e}", l.addr))
        })
        .collect()
}

/// Watches for SIGTERM/SIGINT and for the master's death on its own thread (the event loop
/// may be busy inside a Python call): reports the stop to the worker, and ends the process if
/// draining outlasts the grace period.
fn spawn_stop_watchdog(grace: Duration, link: MasterLink) -> Result<watch::Receiver<bool>, String> {
    let (stop, stopped) = watch::channel(false);
    let (ready, installed) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("wsrun-signals".to_string())
        .spawn(move || watch_signals(stop, ready, grace, link))
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
    link: MasterLink,
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
            _ = master_death(link) => {}
        }
        let grace_over = tokio::time::Instant::now() + grace + Duration::from_millis(200);
        if link.master_gone() {
            tracing::warn!("the master process is gone; draining and exiting");
            let _ = stop.send(true);
        } else {
            let _ = stop.send(true);
            let late = master_death_while_draining(link, &mut term);
            if tokio::time::timeout_at(grace_over, late).await.is_ok() {
                tracing::warn!("the master process is gone; draining and exiting");
            }
        }
        tokio::time::sleep_until(grace_over).await;
        tracing::warn!("grace period over: stopping with requests still running");
        crate::pgo_training::before_exit();
        // SAFETY: ends the process at once; spool files are already unlinked, so the kernel
        // cleans up everything that is left.
        unsafe { libc::_exit(0) };
    });
}

/// Resolves once the master is no longer this worker's parent (the back-up of the
/// parent-death signal, see `supervisor::orphan`).
async fn master_death(link: MasterLink) {
    let mut every = tokio::time::interval(PARENT_CHECK);
    while !link.master_gone() {
        every.tick().await;
    }
}

/// Resolves once the master is no longer this worker's parent, for a worker already draining.
///
/// A `SIGTERM` may be the parent-death signal of a master that is only partly gone: the kernel
/// sends it when the forking thread ends, and re-parents the worker to a thread of the same
/// master while any other lives (one still tearing down a large address space, or stuck in
/// disk I/O, when `SIGKILL` hits). The worker is re-parented to init, and signalled again,
/// only when the last thread ends; that signal, or the periodic check, is noticed here.
async fn master_death_while_draining(link: MasterLink, term: &mut Signal) {
    while !link.master_gone() {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::time::sleep(PARENT_CHECK) => {}
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    traits: ListenerTraits,
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
        // At the cap, the oldest connection serving no request makes room (slowloris heads
        // and idle keep-alives go first); only when all are busy is the new one refused.
        if live.count() >= max_connections && !live.evict_oldest_idle() {
            tokio::task::spawn_local(refuse_busy(stream));
            continue;
        }
        let (local, socket) = traits.prepare(&stream);
        let peer = Peer {
            remote,
            local,
            socket,
            tls: ctx.tls.is_some(),
        };
        let clock = Rc::new(IdleClock::new());
        let guard = live.open(&clock);
        let (ctx, draining) = (ctx.clone(), draining.clone());
        // Boxed: a task spawned with its future by value copies it three times on the way into
        // its cell, and this one is ~4.5 KB (the inline path's state; see serve_connection).
        tokio::task::spawn_local(Box::pin(async move {
            serve_connection(stream, peer, ctx, draining, clock).await;
            drop(guard);
        }));
    }
}

async fn refuse_busy(mut stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 42\r\nRetry-After: 1\r\nConnection: close\r\n\r\nService Unavailable: too many connections\n";
    let _ = stream.write_all(BUSY).await;
    let _ = stream.shutdown().await;
}
