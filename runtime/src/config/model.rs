//! The whole validated configuration: `Config`, which gathers the `[server]` settings, the
//! routes, tenants, jobs and timers.
//!
//! Owns: `Config` and the questions answered from all of it at once (a route's resolved WASM
//! limits, the largest WASM memory). Must not touch: how any part is read (`cli`, `toml_*`);
//! depends only on the type files below it (`server`, `route`, `jobs`, `wasm_settings`).

use std::path::PathBuf;

use super::jobs::{JobsConfig, TimerConfig};
use super::route::{RouteConfig, RouteTarget, TenantConfig};
use super::server::ServerConfig;
use super::wasm_settings::WasmLimits;

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
