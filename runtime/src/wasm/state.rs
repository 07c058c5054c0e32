//! What one guest instance may see and use: the data of its `Store`.
//!
//! Owns: `GuestState` (WASI context with the route's environment and nothing else: no
//! preopened directories, no sockets, stdout/stderr into the log; the wasi:http context; the
//! resource table, capped at the route's `max_resources`; the per-resource size caps), the
//! memory limiter (`memory_budget`) that enforces the route's `memory`, the outgoing-request
//! hooks (`outbound`: made here, one per instance, with the instance's deadline), and the route
//! and worker services the guest's `wsrun:services` calls act for (`services_host`), and what
//! is reset when a warm instance takes its next request (`start_request`). Must not touch: the
//! engine, the request/response plumbing (`invoke`) or other instances — each instance has its
//! own state (a fresh one per request by default; a warm one keeps it across its requests).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::guest_log::GuestLog;
use super::memory_budget::{MemoryAccount, MemoryLimiter, FIELD_SIZE_LIMIT};
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
    /// The state of one instance of `route`; its memory is charged to the route's tenant
    /// and to `worker_memory`.
    pub fn new(
        route: &Arc<RouteInfo>,
        services: Option<Services>,
        worker_memory: &Arc<MemoryAccount>,
    ) -> GuestState {
        let mut wasi = WasiCtx::builder();
        let (stdout, stderr) = GuestLog::pair(route);
        wasi.envs(&route.limits.env)
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        let mut table = ResourceTable::new();
        table.set_max_capacity(route.limits.max_resources);
        GuestState {
            wasi: wasi.build(),
            http,
            table,
            hooks: OutboundHooks::new(route),
            limiter: MemoryLimiter::new(route.limits.memory, memory_accounts(route, worker_memory)),
            services: ServicesHost::new(route.clone(), services),
        }
    }

    /// Readies a warm instance's state for its next request of `route`: outgoing requests
    /// get this request's deadline, and no earlier memory refusal is reported for it.
    pub fn start_request(&mut self, route: &Arc<RouteInfo>) {
        self.hooks = OutboundHooks::new(route);
        self.limiter.refused = None;
    }
}

/// The shared accounts an instance of `route` is charged to: its tenant's, then the worker's.
fn memory_accounts(route: &RouteInfo, worker: &Arc<MemoryAccount>) -> Vec<Arc<MemoryAccount>> {
    route
        .tenant_memory
        .iter()
        .cloned()
        .chain(std::iter::once(worker.clone()))
        .collect()
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
