//! The front end: listeners, workers, connections and the per-request pipeline.
//!
//! Owns: starting the server for a validated config — a master process and its workers — and
//! everything between the socket and a route's handler, including what each route kind's
//! handler is (`handler`). Must not touch: configuration parsing (see `config`) or handler
//! internals (`python`, `wasm`, `static_files`).
//!
//! Layout, top down (each file uses only files below it):
//! - `worker`: one process's event loop: builds its context, starts the services, then binds
//!   its listeners (`listener`) and accepts; `supervisor` forks and restarts workers.
//! - `connection`: one client connection behind `guard` (strict RFC 9112 framing, with
//!   `rejecting_io` writing its refusals): `inline_h1` serves plain `GET`s to Python apps on
//!   the event loop without hyper, and hands anything else (`rewind`) to hyper, with the
//!   `connection_state` both loops share; timeouts (`idle_clock`), `access_log`.
//! - `job_delivery`: a durable job as an in-process request through `service`.
//! - `service`: one request: Host and path, routing, body limit, spooling, `run_handler`, then
//!   `compress` (the response compression rules; `compress_stream`: the codecs).
//! - `context`: `WorkerContext`, what all of the above read (live router, hosts, `Arc<Config>`).
//! - `live_routes`: the router while it runs (`--watch` changes) and the worker's WASM host.
//! - `handler`: `Handler` (one variant per route kind) and `build_router`, one builder per kind.
//! - `peer`: the connection's addresses.

mod access_log;
mod compress;
mod compress_stream;
mod connection;
mod connection_state;
mod context;
pub mod guard;
mod h2;
mod h2_request;
mod handler;
mod idle_clock;
mod inline_h1;
mod job_delivery;
pub mod listener;
mod live_routes;
mod peer;
mod rejecting_io;
mod rewind;
mod service;
pub mod supervisor;
pub mod tls;
mod worker;

pub use handler::{build_router, Handler};
pub use worker::{run_worker, WorkerSetup};

use std::sync::Arc;

use crate::config::Config;
use crate::python::interpreter;
use crate::router::Router;
use crate::services::StartupServices;
use supervisor::{supervise, ForkHooks, SupervisorSettings};

/// Serves `config` with `router` until stopped; returns the process exit code. `startup`, the
/// master's services while the apps were imported, is stopped before the workers fork.
pub fn run(config: Arc<Config>, router: Router<Handler>, startup: StartupServices) -> i32 {
    for addr in config.server.bind_addrs() {
        if let Err(err) = listener::check_bindable(addr) {
            tracing::error!("{err}"); // names the address and the reason
            startup.stop();
            return 1;
        }
    }
    // Always a master, even for one worker (as with gunicorn): a worker that crashes is
    // replaced, and SIGTERM/SIGHUP mean the same whatever the worker count.
    let workers = config.server.workers.max(1);
    let settings = SupervisorSettings {
        workers,
        graceful_timeout: config.server.graceful_timeout,
    };
    let hooks = ForkHooks {
        before: &mut interpreter::fork::before,
        after_in_parent: &mut interpreter::fork::after_in_parent,
        after_in_child: &mut interpreter::fork::after_in_child,
    };
    // `worker_main` runs only in a freshly forked child, which has its own copy of this slot:
    // each child moves the router out of its copy; the master's stays filled for the next fork.
    let router = std::cell::RefCell::new(Some(router));
    let mut worker_main = |index: usize| -> i32 {
        match router.borrow_mut().take() {
            Some(router) => run_worker(
                WorkerSetup {
                    config: config.clone(),
                    router,
                },
                index,
            ),
            None => supervisor::WORKER_BOOT_FAILED,
        }
    };
    supervise(&settings, startup, hooks, &mut worker_main)
}
