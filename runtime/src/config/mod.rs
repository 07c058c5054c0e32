//! The one validated configuration every other module reads.
//!
//! Owns: the list of config files and what the rest of the crate may use of them (re-exports
//! only), and `load`, which turns the command line, an optional `wsrun.toml` and an app target
//! into a `Config` (or a `ConfigError` that names the file, line and key). Must not touch:
//! sockets, the Python interpreter, or any runtime state; a Fapws-style script is only
//! recorded here and read by the Python host (`python::loader`).
//!
//! Inside, dependencies point one way (no file imports this one):
//!
//! ```text
//! cli -> jobs_cli -> toml_file -> toml_routes, toml_jobs -> toml_values -> units -> route
//!   \-> reload_cli -> jobs_cli, units
//!   \-> server (the settings table) -> settings, setting_kinds -> toml_values, units, error
//! model (Config) -> server, route, jobs, wasm_settings;   error, jobs, wasm_settings: leaves
//! setting_kinds, toml_values, route -> tls (a configured PEM file) -> error
//! toml_routes -> toml_migrate -> route -> migrate (sticky, JSON paths);  migrate_cli -> jobs_cli
//! ```
//!
//! Adding a `[server]` setting = one entry in the table in `server.rs` (+ reading it where it
//! is used): its field, `--flag`, TOML key, default and `--help` line all come from that entry.

mod admin;
mod cli;
mod error;
mod jobs;
mod jobs_cli;
mod migrate;
mod migrate_cli;
mod model;
mod reload_cli;
mod route;
mod server;
mod setting_kinds;
mod settings;
mod tls;
mod toml_file;
mod toml_jobs;
mod toml_migrate;
mod toml_routes;
mod toml_values;
mod units;
mod wasm_settings;

pub use admin::AdminBind;
pub use cli::{Cli, Command, RunArgs};
pub use error::ConfigError;
pub use jobs::{JobsConfig, PostgresBackend, Schedule, TimerConfig};
pub use jobs_cli::{JobsAction, JobsArgs};
pub use migrate::{JsonPath, Step, Sticky};
pub use migrate_cli::{MigrateAction, MigrateArgs};
pub use model::Config;
pub use reload_cli::ReloadArgs;
pub use route::{
    CanaryConfig, MigrateConfig, RouteConfig, RouteTarget, ShadowConfig, TenantConfig,
};
pub use server::{AccessLogFormat, ServerConfig, ServerFlags, DEFAULT_BIND};
pub use tls::TlsFile;
pub use toml_jobs::check_timer_routes;
pub use units::{
    format_duration, format_size, normalize_prefix, parse_bind, parse_duration, parse_size,
};
pub use wasm_settings::{
    default_port, JobQuotas, Origin, WasmLimits, WasmSettings, DEFAULT_MAX_OUTBOUND,
    DEFAULT_TENANT_MAX_CONCURRENCY, DEFAULT_TENANT_MEMORY_TOTAL, RESOURCE_WORST_BYTES,
};

/// Builds the validated `Config` for a run (or a `check`) from the parsed command line.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    cli::build_config(cli)
}
