//! What one guest instance may see and use: the data of its `Store`.
//!
//! Owns: `GuestState` (WASI context with the route's environment and nothing else: no
//! preopened directories, no sockets, stdout/stderr into the log; the wasi:http context; the
//! resource table), the memory limiter that enforces the route's `memory`, the outgoing-request
//! hooks (`outbound`: made here, one per instance, with the instance's deadline), and the route
//! and worker services the guest's `wsrun:services` calls act for (`services_host`). Must not touch: the engine,
//! the request/response plumbing (`invoke`) or other instances — each request gets its own.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::guest_log::GuestLog;
use super::outbound::OutboundHooks;
use super::route_info::RouteInfo;
use super::services_host::ServicesHost;
use crate::services::Services;

/// The data of one instance's `Store`.
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    pub limiter: MemoryLimiter,
    /// What the guest's `wsrun:services` imports act for (used only if it imports them).
    pub services: ServicesHost,
}

impl GuestState {
    pub fn new(route: &Arc<RouteInfo>, services: Option<Services>) -> GuestState {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&route.limits.env)
            .stdout(GuestLog::stdout(route.clone()))
            .stderr(GuestLog::stderr(route.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        GuestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks::new(route),
            limiter: MemoryLimiter {
                limit: usize::try_from(route.limits.memory).unwrap_or(usize::MAX),
                refused: false,
            },
            services: ServicesHost::new(route.clone(), services),
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Caps linear memory (and tables) at the route's limit; remembers whether it had to refuse.
pub struct MemoryLimiter {
    limit: usize,
    /// Set when a growth was refused: a trap that follows is reported as the memory limit.
    pub refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer; the same budget keeps tables from dodging the limit.
        let allowed = desired.saturating_mul(size_of::<usize>()) <= self.limit;
        self.refused |= !allowed;
        Ok(allowed)
    }
}
