//! The one validated configuration every other module reads.
//!
//! Owns: the `Config` types and their defaults, and `load`, which turns the command line, an
//! optional `wsrun.toml` and an app target into a `Config` (or a `ConfigError` that names the
//! file, line and key). Must not touch: sockets, the Python interpreter, or any runtime state;
//! a Fapws-style script is only recorded here and read by the Python host (`python::loader`).

mod cli;
mod jobs;
mod jobs_cli;
mod toml_file;
mod toml_jobs;
mod toml_routes;
mod toml_values;
mod units;
mod wasm_settings;

pub use cli::{Cli, Command, RunArgs};
pub use jobs::{JobsConfig, Schedule, TimerConfig};
pub use jobs_cli::{JobsAction, JobsArgs};
pub use toml_jobs::check_timer_routes;
pub use units::{normalize_prefix, parse_bind, parse_duration, parse_size};
pub use wasm_settings::{default_port, Origin, WasmLimits, WasmSettings};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a server run needs, validated. `Config::default()` is the defaults alone, with
/// no routes: what the command line and the file are applied onto.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    /// Routes in declaration order; the router sorts them for matching.
    pub routes: Vec<RouteConfig>,
    /// A Fapws-style script to execute for its `PATHS` (filled into `routes` by the Python host).
    pub script: Option<PathBuf>,
    /// `[[tenant]]` tables; their routes are in `routes` with `tenant` set.
    pub tenants: Vec<TenantConfig>,
    /// `--watch DIR`: every `DIR/NAME.wasm` is served at `/NAME` and reloaded when it changes.
    pub watch: Option<PathBuf>,
    /// The `[jobs]` table: retry policy and concurrency of durable jobs.
    pub jobs: JobsConfig,
    /// `[[timer]]` tables: durable timers declared in the file.
    pub timers: Vec<TimerConfig>,
}

impl Config {
    /// The limits a WASM route runs with (its own keys, then its tenant's, then defaults).
    pub fn wasm_limits(&self, route: &RouteConfig) -> WasmLimits {
        let tenant = route.tenant.and_then(|i| self.tenants.get(i));
        route.wasm.resolve(tenant.map(|t| &t.defaults))
    }

    /// The largest linear memory any wasm route (or a watched handler, with the defaults) may
    /// grow to: the size of one slot of the instance pool.
    pub fn max_wasm_memory(&self) -> u64 {
        let fixed = self
            .routes
            .iter()
            .filter(|r| matches!(r.target, RouteTarget::Wasm { .. }))
            .map(|r| self.wasm_limits(r).memory);
        let watched = self.watch.as_ref().map(|_| WasmLimits::default().memory);
        fixed
            .chain(watched)
            .max()
            .unwrap_or(WasmLimits::default().memory)
    }
}

/// One `[[tenant]]`: a name, the hosts it owns, default limits for its routes.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    pub hosts: Vec<String>,
    /// Defaults for the tenant's routes; `defaults.max_concurrency` caps the whole tenant.
    pub defaults: WasmSettings,
}

/// The `[server]` table and its command-line shortcuts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen addresses; `None` until a CLI flag, the TOML file or a script's `SERVER` sets it.
    pub bind: Option<Vec<SocketAddr>>,
    pub workers: usize,
    pub threads: usize,
    pub state_dir: PathBuf,
    pub spool_dir: PathBuf,
    pub max_body_size: u64,
    pub spool_threshold: u64,
    /// Whole request head must arrive within this (slowloris guard).
    pub header_timeout: Duration,
    /// Body allowance: this much time, plus one second per `body_min_rate` bytes received.
    pub body_timeout: Duration,
    pub body_min_rate: u64,
    /// Idle time allowed between requests on a kept-alive connection.
    pub keepalive_timeout: Duration,
    /// Largest request head accepted; past it the client gets 431.
    pub max_header_size: usize,
    pub max_headers: usize,
    /// Open connections per worker; past it a new connection gets 503 and is closed.
    pub max_connections: usize,
    /// How long SIGTERM waits for in-flight requests before closing them.
    pub graceful_timeout: Duration,
    pub log_level: String,
    /// `-` for stdout, or a file path. `None`: no access log.
    pub access_log: Option<String>,
    pub pythonpath: Vec<PathBuf>,
    pub chdir: Option<PathBuf>,
    pub debug: bool,
}

pub const DEFAULT_BIND: &str = "0.0.0.0:8888";

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: None,
            workers: 1,
            threads: 1,
            state_dir: PathBuf::from(".wsrun"),
            spool_dir: std::env::temp_dir(),
            max_body_size: 10 * 1024 * 1024,
            spool_threshold: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(20),
            body_min_rate: 512,
            keepalive_timeout: Duration::from_secs(5),
            max_header_size: 16 * 1024,
            max_headers: 100,
            max_connections: 1000,
            graceful_timeout: Duration::from_secs(30),
            log_level: "info".to_string(),
            access_log: None,
            pythonpath: Vec::new(),
            chdir: None,
            debug: false,
        }
    }
}

impl ServerConfig {
    /// The addresses to listen on, falling back to the default.
    pub fn bind_addrs(&self) -> Vec<SocketAddr> {
        match &self.bind {
            Some(addrs) => addrs.clone(),
            None => vec![DEFAULT_BIND.parse().expect("default bind address is valid")],
        }
    }
}

/// One `[[route]]` table (or a CLI app target, or one entry of a script's `PATHS`).
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Path prefix, normalised: starts with `/`, no trailing `/` except for the root itself.
    pub prefix: String,
    /// Host names this route answers (lower-case, no port); empty means any host.
    pub hosts: Vec<String>,
    pub target: RouteTarget,
    /// Overrides `server.max_body_size` for this route.
    pub max_body_size: Option<u64>,
    /// WASM keys written on this route (only allowed on `wasm` routes).
    pub wasm: WasmSettings,
    /// Index into `Config::tenants` for a `[[tenant.route]]`.
    pub tenant: Option<usize>,
}

impl RouteConfig {
    /// A route with no per-route settings.
    pub fn new(prefix: String, hosts: Vec<String>, target: RouteTarget) -> RouteConfig {
        RouteConfig {
            prefix,
            hosts,
            target,
            max_body_size: None,
            wasm: WasmSettings::default(),
            tenant: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// A WSGI callable: `module:attr` (attr may be dotted, e.g. `pkg.mod:wsgi.application`).
    Python { module: String, attr: String },
    /// The `index`-th entry of the script's `PATHS` (a Fapws-style handler).
    ScriptPath { index: usize },
    /// Files under a directory.
    Static { root: PathBuf },
    /// A `wasi:http/proxy` component file.
    Wasm { file: PathBuf },
}

/// A configuration problem, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (`<command line>` for flags).
    pub file: String,
    pub line: Option<usize>,
    /// The key at fault, dotted (`route[2].prefix`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(
        file: impl Into<String>,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Builds the validated `Config` for a run (or a `check`) from the parsed command line.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    cli::build_config(cli)
}
