//! wsrun: one server for Python WSGI apps (and, next, sandboxed WebAssembly handlers).
//!
//! The binary's logic lives here so tests and benchmarks can reach it; `main.rs` only calls
//! `cli::main`. Dependencies point one way: `cli -> config, server`;
//! `server -> router -> {python, static_files}`; `python -> spool, body`.

pub mod body;
pub mod cli;
pub mod config;
pub mod http_path;
pub mod python;
pub mod router;
pub mod server;
pub mod services;
pub mod spool;
pub mod static_files;
pub mod wasm;
