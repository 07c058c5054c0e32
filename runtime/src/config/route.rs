//! What one route is: its prefix, hosts, target and per-route limits, and what a tenant is.
//!
//! Owns: `RouteConfig`, `RouteTarget` and `TenantConfig` (plain data, checked by whoever builds
//! them: `toml_routes`, `cli`, the Python host's script loader). Must not touch: parsing or
//! reading files; depends only on `wasm_settings`, `tls` and `static_files::StaticOptions` (a static
//! route's own keys, defined by the module that obeys them).

use std::path::PathBuf;

use super::migrate::MigrateConfig;
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
