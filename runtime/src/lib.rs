//! wsrun: one server for Python WSGI apps and sandboxed WebAssembly (`wasi:http`) handlers,
//! with durable jobs and timers shared by both.
//!
//! The binary's logic lives here so tests and benchmarks can reach it; `main.rs` only calls
//! `cli::main`. Dependencies point one way, top down (no file imports a file that imports it
//! back; `tools/import_cycles.py` lists the edges and any cycle):
//! - `cli`: the start-up sequence -> `config`, `python`, `router`, `server`, `services`, `wasm`,
//!   `handover` (what a reload's previous master image passed), `reload_client` (`wsrun reload`
//!   -> `config`, `control_files`); `wsrun bench` goes straight to the `wsrun-loadgen` crate
//!   (loadgen/)
//! - `server`: master and workers, connections, the request pipeline, the route kinds
//!   (`server::handler`) -> `router`, `python`, `wasm`, `static_files`, `services`, `spool`,
//!   `http_path`, `body`
//! - `router`: Host + longest prefix, generic over the handler -> `http_path`
//! - `python` (WSGI host) and `wasm` (wasi:http host) -> `services`, `config`, `spool`, `body`;
//!   they never import each other
//! - `services`: jobs, timers, their stores (the SQLite journal; PostgreSQL shared by several
//!   nodes) -> `config`; routes only through its `RouteCheck`
//!   and `Deliver` traits, which `server` implements
//!   Services are values: `cli` builds the master's `StartupServices`, which `server::run`
//!   consumes before any fork; each worker builds its own `Services` and hands it to the
//!   Python module and the WASM host.
//! - `migrate`: shadow traffic and canaries (mirror decision, body tee, comparison, the
//!   SQLite result store, `wsrun migrate report|show`, the shared canary window) -> `config`,
//!   `body`, `spool`; `server::migrating` drives it on the request path
//! - `metrics`: the shared-memory counters every worker adds to and the master renders
//!   (`server` and `wasm` count into it; it imports nothing of the crate)
//! - `profile`: `--profile DIR`, the worker's profile target (a leaf); `python::profile` and
//!   `wasm::profile` read it, the worker writes both on drain
//! - `handover` (the reload's exec: named descriptors, workers) and `control_files` (the pid
//!   and reload status files in `state_dir`): leaves, used by `server::supervisor` too
//! - `config`: the validated `Config`; `field_rules` (request singletons, forbidden trailers);
//!   `static_files` (-> `body`, `accept_encoding`), `spool`,
//!   `body` (-> `file_region`), `http_path`, `accept_encoding`: leaves
//! - `pgo_training`: writes an instrumented build's profile before a worker's `_exit` (a leaf)
//! - `thread_nice`: lowers a background thread's priority (a leaf; the shadow thread, the
//!   migrate store's writer, the WASM slow lane and the watcher use it); `thread_clock`: the
//!   calling thread's CPU time (a leaf; guest CPU budgets and the event loop's saturation)

pub mod accept_encoding;
pub mod body;
pub mod cli;
pub mod config;
pub mod control_files;
pub mod field_rules;
pub mod file_region;
pub mod handover;
pub mod http_path;
pub mod metrics;
pub mod migrate;
pub mod pgo_training;
pub mod profile;
pub mod python;
pub mod reload_client;
pub mod router;
pub mod server;
pub mod services;
pub mod spool;
pub mod static_files;
pub mod thread_clock;
pub mod thread_nice;
pub mod wasm;
