//! What one route is: its prefix, hosts, target and per-route limits, and what a tenant is.
//!
//! Owns: `RouteConfig`, `RouteTarget`, `TenantConfig` and a route's migration tables
//! (`MigrateConfig`: `ShadowConfig`, `CanaryConfig`) (plain data, checked by whoever builds
//! them: `toml_routes`, `cli`, the Python host's script loader). Must not touch: parsing or
//! reading files; depends only on `wasm_settings`, `tls` and `static_files::StaticOptions` (a static
//! route's own keys, defined by the module that obeys them).

use std::path::PathBuf;
use std::time::Duration;

use super::migrate::{JsonPath, Sticky};
use super::tls::TlsFile;
use super::wasm_settings::WasmSettings;
pub use crate::static_files::StaticOptions;

/// One `[[tenant]]`: a name, the hosts it owns, default limits for its routes.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    pub hosts: Vec<String>,
    /// Defaults for the tenant's routes; `defaults.max_concurrency` caps the whole tenant.
    pub defaults: WasmSettings,
    /// The tenant's own certificate and key (`tls_cert`, `tls_key`), served by SNI for its
    /// hosts; both or neither (checked at start-up by `server::tls`).
    pub tls_cert: Option<TlsFile>,
    pub tls_key: Option<TlsFile>,
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
    /// `max_age`, `precompressed`, `listing`, `hidden` (only allowed on `static` routes).
    pub static_options: StaticOptions,
    /// `compress = false` keeps this route's responses as the handler made them.
    pub compress: bool,
    /// `[route.shadow]` and `[route.canary]` (python and wasm routes only).
    pub migrate: MigrateConfig,
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
            static_options: StaticOptions::default(),
            compress: true,
            migrate: MigrateConfig::default(),
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

/// A route's migration tables (both `None` on an ordinary route).
#[derive(Debug, Clone, Default)]
pub struct MigrateConfig {
    pub shadow: Option<Box<ShadowConfig>>,
    pub canary: Option<Box<CanaryConfig>>,
}

impl MigrateConfig {
    pub fn is_empty(&self) -> bool {
        self.shadow.is_none() && self.canary.is_none()
    }
}

/// `[route.shadow]`: a second handler that sees a copy of the traffic; never answers it.
#[derive(Debug, Clone)]
pub struct ShadowConfig {
    /// `wasm = "file"` or `python = "module:attr"`.
    pub target: RouteTarget,
    /// Upper-case methods mirrored (default: GET, HEAD, OPTIONS).
    pub methods: Vec<String>,
    /// Share of requests mirrored, 0..=1.
    pub sample: f64,
    /// JSON paths left out of the body comparison.
    pub ignore_paths: Vec<JsonPath>,
    /// Header names (lower-case) left out of the comparison (`header:NAME` in `ignore`).
    pub ignore_headers: Vec<String>,
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub max_body: u64,
}

/// `[route.canary]`: a second handler that answers `percent` of the traffic.
#[derive(Debug, Clone)]
pub struct CanaryConfig {
    pub target: RouteTarget,
    /// Share of requests served by the canary, 0..=100.
    pub percent: f64,
    pub sticky: Option<Sticky>,
    /// Roll back when the canary's 5xx rate exceeds the primary's by more than this.
    pub rollback_5xx_rate: Option<f64>,
    pub rollback_window: usize,
}
