//! WASM routes and the handler version each one serves right now.
//!
//! Owns: `WasmRoute` (a route's `RouteInfo`, its current `HandlerVersion` behind an atomic
//! pointer, and the permits that enforce `max_concurrency` per route and per tenant) and
//! `WasmRouteBuilder`, which makes them from the config. A request takes the version that is current when it starts and keeps it to the end,
//! so a swap never disturbs requests in flight. Must not touch: compiling (`compile`), running
//! (`invoke`) or watching files (`watcher`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::outbound::{OutboundShare, TenantCap};
use super::route_info::{handler_name, RouteInfo};
use super::state::GuestState;
use crate::config::{Config, RouteConfig, DEFAULT_MAX_OUTBOUND};

/// One compiled, linked version of a handler, ready to instantiate.
pub struct HandlerVersion {
    pub pre: ProxyPre<GuestState>,
    /// SHA-256 of the file this version was built from (hex).
    pub digest: String,
}

/// A WASM route: its description, its current version and its concurrency permits.
pub struct WasmRoute {
    pub info: Arc<RouteInfo>,
    current: ArcSwapOption<HandlerVersion>,
    route_permits: Arc<Semaphore>,
    /// The tenant-wide cap, shared by all of the tenant's routes, when the tenant sets one.
    tenant_permits: Option<(Arc<Semaphore>, usize)>,
}

/// Permits held by a running instance; dropping them frees the slot.
pub struct Admission {
    _route: OwnedSemaphorePermit,
    _tenant: Option<OwnedSemaphorePermit>,
}

/// Which `max_concurrency` turned a request away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    Route(usize),
    Tenant(String, usize),
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Busy::Route(n) => write!(f, "the route's max_concurrency of {n} is reached"),
            Busy::Tenant(t, n) => write!(f, "tenant `{t}`'s max_concurrency of {n} is reached"),
        }
    }
}

impl WasmRoute {
    pub fn new(info: RouteInfo, tenant_permits: Option<(Arc<Semaphore>, usize)>) -> WasmRoute {
        WasmRoute {
            route_permits: Arc::new(Semaphore::new(info.limits.max_concurrency)),
            info: Arc::new(info),
            current: ArcSwapOption::empty(),
            tenant_permits,
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

    /// Takes a slot under the route's and the tenant's `max_concurrency`, or says which is full.
    pub fn admit(&self) -> Result<Admission, Busy> {
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
        Ok(Admission {
            _route: route,
            _tenant: tenant,
        })
    }
}

/// Makes the `WasmRoute` of each configured wasm route; routes of one tenant share the
/// tenant's `max_concurrency` and `max_outbound` permits, so one builder serves a whole
/// configuration.
pub struct WasmRouteBuilder {
    /// Per `config.tenants` entry: its shared permits and cap, when it sets `max_concurrency`.
    tenant_permits: Vec<Option<(Arc<Semaphore>, usize)>>,
    /// Per `config.tenants` entry: its outgoing requests in flight (`max_outbound`).
    tenant_outbound: Vec<Arc<TenantCap>>,
}

impl WasmRouteBuilder {
    pub fn new(config: &Config) -> WasmRouteBuilder {
        let tenant_permits = config
            .tenants
            .iter()
            .map(|t| {
                t.defaults
                    .max_concurrency
                    .map(|n| (Arc::new(Semaphore::new(n)), n))
            })
            .collect();
        let tenant_outbound = config
            .tenants
            .iter()
            .map(|t| TenantCap::new(t.defaults.max_outbound.unwrap_or(DEFAULT_MAX_OUTBOUND)))
            .collect();
        WasmRouteBuilder {
            tenant_permits,
            tenant_outbound,
        }
    }

    /// The (not yet loaded) route for `route`, which serves the component `file`.
    pub fn route(&self, config: &Config, route: &RouteConfig, file: &Path) -> Arc<WasmRoute> {
        let permits = route
            .tenant
            .and_then(|i| self.tenant_permits.get(i).cloned().flatten());
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
            outbound: OutboundShare::new(limits.max_outbound, tenant_outbound),
            limits,
        };
        Arc::new(WasmRoute::new(info, permits))
    }
}
