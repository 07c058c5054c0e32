//! The `/status` page: what this server is and runs, as JSON.
//!
//! Owns: `StatusInfo` (what the master knows before it forks: its pid and start, the worker
//! count, the routes and tenants) and the page: version, uptime, the live workers from the
//! segment's process table (pid, index, started, requests served, in flight, RSS), routes and
//! tenants with each WebAssembly handler's version, and the job store's figures.
//! A handler's version is computed here, in the master, from its file at request time
//! (SHA-256 of the bytes and the file's modification time): the workers swap in a changed file
//! once it compiled, so right after a change the hash may name a version still compiling.
//! Must not touch: the segment's layout or the counters (`crate::metrics`).

use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::super::handler::Handler;
use crate::config::{Config, PostgresBackend};
use crate::metrics::procs::unix_ms;
use crate::metrics::render::{self, JobFigures};
use crate::metrics::MetricsSegment;
use crate::router::Router;

/// One route as `/status` shows it.
#[derive(Debug, Clone)]
pub struct RouteDesc {
    pub prefix: String,
    pub tenant: Option<String>,
    pub kind: &'static str,
    /// The WebAssembly file, for a wasm route.
    pub file: Option<PathBuf>,
}

/// What the master knows of itself for `/status`.
#[derive(Debug, Clone)]
pub struct StatusInfo {
    pub master_pid: i32,
    pub started_unix_ms: u64,
    pub started: Instant,
    pub workers: usize,
    pub state_dir: PathBuf,
    /// `[jobs] backend`: the shared PostgreSQL store, if not the SQLite journal.
    pub jobs_backend: Option<PostgresBackend>,
    pub routes: Vec<RouteDesc>,
    /// `(name, hosts)` of each `[[tenant]]`.
    pub tenants: Vec<(String, Vec<String>)>,
    /// `--watch DIR`: each `DIR/NAME.wasm` is a route at `/NAME`.
    pub watch: Option<PathBuf>,
}

impl StatusInfo {
    /// What `/status` shows of `config` and `router`, taken in the master before it forks.
    pub fn of(config: &Config, router: &Router<Handler>) -> StatusInfo {
        let routes = router
            .routes()
            .map(|r| {
                let (kind, file) = match r.handler.primary() {
                    Handler::Wasm(w) => ("wasm", Some(w.info.file.clone())),
                    Handler::Static(_) => ("static", None),
                    _ => ("python", None),
                };
                RouteDesc {
                    prefix: r.prefix.clone(),
                    tenant: r.tenant.clone(),
                    kind,
                    file,
                }
            })
            .collect();
        StatusInfo {
            master_pid: std::process::id() as i32,
            started_unix_ms: unix_ms(),
            started: Instant::now(),
            workers: config.server.workers.max(1),
            state_dir: config.server.state_dir.clone(),
            jobs_backend: config.jobs.backend.clone(),
            routes,
            tenants: config
                .tenants
                .iter()
                .map(|t| (t.name.clone(), t.hosts.clone()))
                .collect(),
            watch: config.watch.clone(),
        }
    }
}

/// The page.
pub fn json(
    info: &StatusInfo,
    segment: &MetricsSegment,
    jobs: Result<JobFigures, String>,
) -> String {
    let workers = render::workers(segment, Some(info.master_pid));
    let mut routes: Vec<Value> = info.routes.iter().map(route_json).collect();
    routes.extend(watched(info.watch.as_deref()));
    let tenants: Vec<Value> = info
        .tenants
        .iter()
        .map(|(name, hosts)| {
            let own: Vec<&str> = info
                .routes
                .iter()
                .filter(|r| r.tenant.as_deref() == Some(name))
                .map(|r| r.prefix.as_str())
                .collect();
            json!({ "name": name, "hosts": hosts, "routes": own })
        })
        .collect();
    let page = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": info.master_pid,
        "started_unix_ms": info.started_unix_ms,
        "uptime_seconds": info.started.elapsed().as_secs_f64(),
        "now_unix_ms": unix_ms(),
        "workers_configured": info.workers,
        "workers": workers,
        "routes": routes,
        "tenants": tenants,
        "store": store_json(info, &jobs),
        "jobs": jobs.ok(),
    });
    let mut text = page.to_string();
    text.push('\n');
    text
}

/// Which job store, and whether its figures could be read (`up: false` and the error when
/// not: a PostgreSQL database that is down).
fn store_json(info: &StatusInfo, jobs: &Result<JobFigures, String>) -> Value {
    let backend = match &info.jobs_backend {
        Some(_) => "postgres",
        None => "sqlite",
    };
    match jobs {
        Ok(_) => json!({ "backend": backend, "up": true }),
        Err(error) => json!({ "backend": backend, "up": false, "error": error }),
    }
}

fn route_json(route: &RouteDesc) -> Value {
    json!({
        "prefix": route.prefix,
        "tenant": route.tenant.as_deref().unwrap_or(""),
        "kind": route.kind,
        "handler": route.file.as_deref().map(handler_version),
    })
}

/// The routes `--watch` serves now: one per `DIR/NAME.wasm`.
fn watched(dir: Option<&Path>) -> Vec<Value> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|file| {
            let name = file.file_stem()?.to_str()?;
            Some(json!({
                "prefix": format!("/{name}"),
                "tenant": "",
                "kind": "wasm (watched)",
                "handler": handler_version(file),
            }))
        })
        .collect()
}

/// A handler file's version: its path, SHA-256 and modification time (or why it is missing).
fn handler_version(file: &Path) -> Value {
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64);
    match std::fs::read(file) {
        Ok(bytes) => {
            let hash: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            json!({ "file": file, "sha256": hash, "modified_unix_ms": modified })
        }
        Err(e) => json!({ "file": file, "error": e.to_string() }),
    }
}
