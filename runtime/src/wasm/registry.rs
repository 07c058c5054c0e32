//! WASM routes and the handler version each one serves right now.
//!
//! Owns: `WasmRoute` (a route's `RouteInfo`, its current `HandlerVersion` behind an atomic
//! pointer, the permits that enforce `max_concurrency` per route and per tenant — 100 for a
//! tenant that sets none — and its tenant's share of the slow lane) and `WasmRouteBuilder`,
//! which makes them from the config. A request takes the version that is current when it
//! starts and keeps it to the end,
//! so a swap never disturbs requests in flight. Must not touch: compiling (`compile`), running
//! (`invoke`) or watching files (`watcher`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::lanes::LaneShare;
use super::memory_budget::MemoryAccount;
use super::outbound::{OutboundShare, TenantCap};
use super::route_info::{handler_name, RouteInfo};
use super::state::GuestState;
use crate::config::{
    Config, RouteConfig, DEFAULT_MAX_OUTBOUND, DEFAULT_TENANT_MAX_CONCURRENCY,
    DEFAULT_TENANT_MEMORY_TOTAL,
};

/// One compiled, linked version of a handler, ready to instantiate.
pub struct HandlerVersion {
    pub pre: ProxyPre<GuestState>,
    /// SHA-256 of the file this version was built from (hex).
    pub digest: String,
    /// Set when a warm instance of this version returned without answering its request (its
    /// runtime serves one request per instance): it gets no warm instance any more.
    single_use: AtomicBool,
}

impl HandlerVersion {
    pub fn new(pre: ProxyPre<GuestState>, digest: String) -> HandlerVersion {
        HandlerVersion {
            pre,
            digest,
            single_use: AtomicBool::new(false),
        }
    }

    /// Whether this version's instances serve one request each, whatever the route allows.
    pub fn single_use(&self) -> bool {
        self.single_use.load(Ordering::Relaxed)
    }

    /// Marks this version as serving one request per instance; true the first time.
    pub fn mark_single_use(&self) -> bool {
        !self.single_use.swap(true, Ordering::Relaxed)
    }
}

/// A WASM route: its description, its current version, its concurrency permits and its turn
/// in the slow lane.
pub struct WasmRoute {
    pub info: Arc<RouteInfo>,
    current: ArcSwapOption<HandlerVersion>,
    route_permits: Arc<Semaphore>,
    /// The tenant-wide cap, shared by all of the tenant's routes (tenant routes only).
    tenant_permits: Option<(Arc<Semaphore>, usize)>,
    /// The tenant's share of the slow lane (shared by its routes), or the route's own.
    pub lane_share: Arc<LaneShare>,
}

/// What the routes of one tenant share: its `max_concurrency` permits and its slow-lane turn.
#[derive(Clone)]
pub struct TenantShare {
    permits: Arc<Semaphore>,
    cap: usize,
    lane: Arc<LaneShare>,
}

impl TenantShare {
    fn new(cap: usize) -> TenantShare {
        TenantShare {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            lane: LaneShare::new(),
        }
    }
}

/// Permits held by a running instance; dropping them frees the slot.
pub struct Admission {
    _pool: OwnedSemaphorePermit,
    _route: OwnedSemaphorePermit,
    _tenant: Option<OwnedSemaphorePermit>,
}

/// Which `max_concurrency` turned a request away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// Every slot of the worker's instance pool is taken.
    Pool(usize),
    Route(usize),
    Tenant(String, usize),
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Busy::Pool(n) => write!(f, "the worker's {n} WebAssembly instance slots are taken"),
            Busy::Route(n) => write!(f, "the route's max_concurrency of {n} is reached"),
            Busy::Tenant(t, n) => write!(f, "tenant `{t}`'s max_concurrency of {n} is reached"),
        }
    }
}

impl WasmRoute {
    /// A route of `tenant` (`None`: an untenanted route, its own share of the slow lane).
    pub fn new(info: RouteInfo, tenant: Option<TenantShare>) -> WasmRoute {
        let (tenant_permits, lane_share) = match tenant {
            Some(t) => (Some((t.permits, t.cap)), t.lane),
            None => (None, LaneShare::new()),
        };
        WasmRoute {
            route_permits: Arc::new(Semaphore::new(info.limits.max_concurrency)),
            info: Arc::new(info),
            current: ArcSwapOption::empty(),
            tenant_permits,
            lane_share,
        }
    }

    /// The version new requests get (`None` until the first successful load).
    pub fn current(&self) -> Option<Arc<HandlerVersion>> {
        self.current.load_full()
    }

    /// Makes `version` the one new requests get; requests in flight keep theirs.
    pub fn swap(&self, version: HandlerVersion) {
        self.current.store(Some(Arc::new(version)));
    }

    /// Takes a slot under the route's and the tenant's `max_concurrency` and one of the
    /// worker's instance `pool` slots, or says which is full.
    pub fn admit(&self, pool: &Arc<Semaphore>) -> Result<Admission, Busy> {
        let route = self
            .route_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Route(self.info.limits.max_concurrency))?;
        let tenant = match &self.tenant_permits {
            Some((permits, cap)) => {
                Some(permits.clone().try_acquire_owned().map_err(|_| {
                    Busy::Tenant(self.info.tenant.clone().unwrap_or_default(), *cap)
                })?)
            }
            None => None,
        };
        // Last, so a request its route or tenant refuses never holds a pool slot.
        let pool_size = crate::wasm::engine::RUNNING_INSTANCES;
        let pool = pool
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Pool(pool_size))?;
        Ok(Admission {
            _pool: pool,
            _route: route,
            _tenant: tenant,
        })
    }
}

/// Makes the `WasmRoute` of each configured wasm route; routes of one tenant share the
/// tenant's `max_concurrency` permits (`DEFAULT_TENANT_MAX_CONCURRENCY` when it sets none),
/// its slow-lane share, its `memory_total` account and its `max_outbound` permits, so one
/// builder serves a whole configuration.
pub struct WasmRouteBuilder {
    /// Per `config.tenants` entry: what its routes share.
    tenants: Vec<TenantShare>,
    /// Per `config.tenants` entry: its `memory_total` account in this worker.
    tenant_memory: Vec<Arc<MemoryAccount>>,
    /// Per `config.tenants` entry: its outgoing requests in flight (`max_outbound`).
    tenant_outbound: Vec<Arc<TenantCap>>,
}

impl WasmRouteBuilder {
    pub fn new(config: &Config) -> WasmRouteBuilder {
        let tenants = config
            .tenants
            .iter()
            .map(|t| {
                let cap = t.defaults.max_concurrency;
                TenantShare::new(cap.unwrap_or(DEFAULT_TENANT_MAX_CONCURRENCY))
            })
            .collect();
        let tenant_outbound = config
            .tenants
            .iter()
            .map(|t| TenantCap::new(t.defaults.max_outbound.unwrap_or(DEFAULT_MAX_OUTBOUND)))
            .collect();
        let tenant_memory = config
            .tenants
            .iter()
            .map(|t| {
                let budget = t
                    .defaults
                    .memory_total
                    .unwrap_or(DEFAULT_TENANT_MEMORY_TOTAL);
                MemoryAccount::tenant(&t.name, budget)
            })
            .collect();
        WasmRouteBuilder {
            tenants,
            tenant_memory,
            tenant_outbound,
        }
    }

    /// The (not yet loaded) route for `route`, which serves the component `file`.
    pub fn route(&self, config: &Config, route: &RouteConfig, file: &Path) -> Arc<WasmRoute> {
        let tenant = route.tenant.and_then(|i| self.tenants.get(i).cloned());
        let limits = config.wasm_limits(route);
        let tenant_outbound = route
            .tenant
            .and_then(|i| self.tenant_outbound.get(i).cloned());
        let info = RouteInfo {
            name: handler_name(file),
            prefix: route.prefix.clone(),
            file: file.to_path_buf(),
            tenant: route
                .tenant
                .and_then(|i| config.tenants.get(i))
                .map(|t| t.name.clone()),
            hosts: route.hosts.clone(),
            tenant_memory: route
                .tenant
                .and_then(|i| self.tenant_memory.get(i).cloned()),
            log_rate: Default::default(),
            outbound: OutboundShare::new(limits.max_outbound, tenant_outbound),
            limits,
        };
        Arc::new(WasmRoute::new(info, tenant))
    }
}
