//! The front end: listeners, workers, connections and the per-request pipeline.
//!
//! Owns: starting the server for a validated config — a master process, the listeners it
//! holds for each worker index, and its workers — and
//! everything between the socket and a route's handler, including what each route kind's
//! handler is (`handler`). Must not touch: configuration parsing (see `config`) or handler
//! internals (`python`, `wasm`, `static_files`).
//!
//! Layout, top down (each file uses only files below it):
//! - `worker`: one process's event loop: builds its context, starts the services, then accepts
//!   on the listeners the master bound for its index (`listener`; `listener_set`: which of
//!   them a reload inherits; `listener_traits`: what its connections share, found once);
//!   `supervisor` forks, restarts, recycles workers and reloads the
//!   configuration; `recycle`: when a worker asks to be replaced (`max_requests`, `max_rss`).
//! - `connection`: one client connection behind `guard` (strict RFC 9112 framing, with
//!   `rejecting_io` writing its refusals): `inline_h1` serves plain `GET`s to Python apps on
//!   the event loop without hyper, and hands anything else (`rewind`) to hyper, with the
//!   `connection_state` both loops share; timeouts (`idle_clock`), `access_log` (its JSON
//!   line: `access_json`).
//! - `job_delivery`: a durable job as an in-process request through `service`.
//! - `migrating`: a route with a shadow or canary (`crate::migrate`): picks the side, starts
//!   the shadow once the primary's response is under way; `shadow`: the shadow run, compared
//!   and recorded on `shadow_lane`, the worker's lower-priority shadow thread;
//!   `loop_pressure`: whether the event loop is saturated (sampled requests are then skipped).
//! - `handler_run`: `run_kind`, one handler of a route run for a request.
//! - `service`: one request: Host and path, routing, body limit, spooling, `run_handler`, then
//!   `compress` (the response compression rules; `compress_stream`: the codecs).
//! - `context`: `WorkerContext`, what all of the above read (live router, hosts, `Arc<Config>`).
//! - `live_routes`: the router while it runs (`--watch` changes) and the worker's WASM host.
//! - `handler`: `Handler` (one variant per route kind) and `build_router`, one builder per kind.
//! - `peer`: the connection's addresses.
//! - `admin`: the admin listener in the master (`/metrics`, `/status` from `crate::metrics`),
//!   kept out of every `fork()` by its gate.

mod access_json;
mod access_log;
pub mod admin;
mod compress;
mod compress_cache;
mod compress_stream;
mod connection;
mod connection_state;
mod context;
mod fd_limit;
pub mod guard;
mod h2;
mod h2_request;
mod handler;
mod handler_run;
mod idle_clock;
mod inline_h1;
mod job_delivery;
pub mod listener;
mod listener_set;
mod listener_traits;
mod live_connections;
mod live_routes;
mod loop_pressure;
mod migrating;
mod peer;
mod recycle;
mod rejecting_io;
mod reuseport_steer;
mod rewind;
mod service;
mod shadow;
mod shadow_lane;
pub mod supervisor;
pub mod tls;
mod worker;

pub use handler::{build_router, Handler};
pub use worker::{run_worker, WorkerSetup};

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::handover::{Handover, Inherited, Outgoing};
use crate::python::interpreter;
use crate::router::Router;
use crate::services::StartupServices;
use supervisor::{supervise, ForkHooks, ReloadSetup, SupervisorSettings};

/// How this master image started: fresh, or by a reload's `execv` of the previous one.
pub struct Launch {
    /// The process's arguments, the program name first (a reload runs them again).
    pub argv: Vec<OsString>,
    /// The directory wsrun started in, before any `chdir`.
    pub cwd: PathBuf,
    /// What the previous image handed over, if any.
    pub handover: Option<Handover>,
    /// The named descriptors it passed; what is not taken by the time the workers fork is
    /// closed.
    pub inherited: Inherited,
}

impl Launch {
    /// The exit code after a failure before serving: `code` on a fresh start; after a
    /// reload's exec, the old workers keep serving under a degraded master
    /// (`supervisor::keep_old_workers`) and its code is returned once they are gone.
    pub fn failed(self, code: i32, message: &str) -> i32 {
        match self.handover {
            Some(handover) => supervisor::keep_old_workers(handover, self.inherited, message),
            None => code,
        }
    }
}

/// Serves `config` with `router` until stopped; returns the process exit code. `startup`, the
/// master's services while the apps were imported, is stopped before the workers fork.
pub fn run(
    config: Arc<Config>,
    router: Router<Handler>,
    startup: StartupServices,
    launch: Launch,
) -> i32 {
    if let Err(err) = supervisor::ignore_file_size_signal() {
        tracing::warn!("cannot ignore SIGXFSZ: {err}");
    }
    match fd_limit::raise_open_file_limit() {
        Ok(limit) => tracing::debug!("open-file limit: {limit}"),
        Err(err) => tracing::warn!("cannot raise the open-file limit: {err}"),
    }
    for addr in config.server.bind_addrs() {
        if listener_set::inherited(&launch.inherited, &addr) {
            continue; // ours already: a reload keeps it
        }
        if let Err(err) = listener::check_bindable(addr) {
            tracing::error!("{err}"); // names the address and the reason
            startup.stop();
            return launch.failed(1, &err.to_string());
        }
    }
    let Launch {
        argv,
        cwd,
        handover,
        mut inherited,
    } = launch;
    let mut outgoing = Outgoing::default();
    let admin = match admin::start(&config, &router, &mut inherited, &mut outgoing) {
        Ok(admin) => admin,
        Err(message) => {
            tracing::error!("{message}");
            startup.stop();
            return 1;
        }
    };
    let metrics = admin.as_ref().map(|a| a.segment);
    let admin_fd = admin.as_ref().map(|a| a.fd);
    let gate = admin.as_ref().map(|a| a.gate.clone());
    // Always a master, even for one worker (as with gunicorn): a worker that crashes is
    // replaced, and SIGTERM/SIGHUP mean the same whatever the worker count.
    let workers = config.server.workers.max(1);
    // One set of SO_REUSEPORT listeners per worker index, bound here and kept open by the
    // master for its whole life: a worker that stops (SIGHUP, recycle, crash) closes only its
    // copy, so the connections waiting in its accept queue are not reset but accepted by the
    // next worker of that index (or by the replacement already running beside it).
    // A reload inherits the listeners of an address and index it keeps; one to fewer workers
    // retires the extra indexes' listeners instead of closing them, since a close resets the
    // connections in their queues (`listener_set`, `reuseport_steer`).
    let addrs = config.server.bind_addrs();
    let per_index = match listener_set::take_or_bind(workers, &addrs, &mut inherited, &mut outgoing)
    {
        Ok(per_index) => per_index,
        Err(message) => {
            tracing::error!("{message}");
            startup.stop();
            return 1;
        }
    };
    // Other subsystems take their named descriptors from `inherited` before this point.
    drop(inherited);
    let reload = ReloadSetup {
        argv,
        state_dir: absolute(&cwd, &config.server.state_dir),
        cwd,
        outgoing,
        handover,
    };
    let settings = SupervisorSettings {
        workers,
        graceful_timeout: config.server.graceful_timeout,
    };
    // The admin thread stays out of every fork (see `admin::gate`).
    let mut before = || {
        if let Some(gate) = &gate {
            gate.close();
        }
        interpreter::fork::before();
    };
    let mut after_in_parent = || {
        interpreter::fork::after_in_parent();
        if let Some(gate) = &gate {
            gate.open();
        }
    };
    let hooks = ForkHooks {
        before: &mut before,
        after_in_parent: &mut after_in_parent,
        after_in_child: &mut interpreter::fork::after_in_child,
    };
    // `worker_main` runs only in a freshly forked child, which has its own copy of these slots:
    // each child moves the router and its index's listeners out of its copy (and closes its
    // copies of the other indexes' listeners); the master's stay filled for the next fork.
    let router = std::cell::RefCell::new(Some(router));
    let listeners = std::cell::RefCell::new(per_index);
    let mut worker_main = |index: usize, link| -> i32 {
        if let Some(fd) = admin_fd {
            // SAFETY: the admin listener's fd, inherited from the master; this process never
            // uses it (only the master's admin thread, which does not exist here, did).
            unsafe { libc::close(fd) };
        }
        let mine = listeners.borrow_mut().get_mut(index).and_then(Option::take);
        listeners.borrow_mut().clear();
        match (router.borrow_mut().take(), mine) {
            (Some(router), Some(listeners)) => run_worker(
                WorkerSetup {
                    config: config.clone(),
                    router,
                    listeners,
                    link,
                    metrics,
                },
                index,
            ),
            _ => supervisor::WORKER_BOOT_FAILED,
        }
    };
    crate::profile::mark_server_start();
    supervise(&settings, startup, reload, hooks, &mut worker_main)
}

/// `dir` made absolute against the current directory (after `chdir`, where the server runs),
/// else against `cwd`.
fn absolute(cwd: &std::path::Path, dir: &std::path::Path) -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| cwd.to_path_buf());
    here.join(dir)
}
