//! WASM routes and the handler version each one serves right now.
//!
//! Owns: `WasmRoute` (what a route is: its name, prefix, file, limits and tenant, plus the
//! current `HandlerVersion` behind an atomic pointer and the permits that enforce
//! `max_concurrency` per route and per tenant) and `build_routes`, which makes them from the
//! config. A request takes the version that is current when it starts and keeps it to the end,
//! so a swap never disturbs requests in flight. Must not touch: compiling (`compile`), running
//! (`invoke`) or watching files (`watcher`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::state::GuestState;
use crate::config::{Config, RouteConfig, RouteTarget, WasmLimits};

/// What a route is, shared with every instance it runs (for limits and log labels).
#[derive(Debug)]
pub struct RouteInfo {
    /// The handler's name: its file name without `.wasm`.
    pub name: String,
    pub prefix: String,
    pub file: PathBuf,
    pub tenant: Option<String>,
    /// The Host names the route answers (a tenant's hosts for a tenant route); empty: any.
    pub hosts: Vec<String>,
    pub limits: WasmLimits,
}

impl RouteInfo {
    /// `handler `hello` on /hello` (with the tenant when there is one), for logs and errors.
    pub fn label(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!(
                "tenant `{tenant}` handler `{}` on {}",
                self.name, self.prefix
            ),
            None => format!("handler `{}` on {}", self.name, self.prefix),
        }
    }
}

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

/// A route's handler name: the file stem (`handlers/api_v2.wasm` -> `api_v2`).
pub fn handler_name(file: &std::path::Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

/// The `WasmRoute` of every wasm route in `config`, in `config.routes` order (`None` for
/// routes of another kind). Routes of one tenant share the tenant's permits.
pub fn build_routes(config: &Config) -> Vec<Option<Arc<WasmRoute>>> {
    let tenant_permits: Vec<Option<(Arc<Semaphore>, usize)>> = config
        .tenants
        .iter()
        .map(|t| {
            t.defaults
                .max_concurrency
                .map(|n| (Arc::new(Semaphore::new(n)), n))
        })
        .collect();
    config
        .routes
        .iter()
        .map(|route| {
            let RouteTarget::Wasm { file } = &route.target else {
                return None;
            };
            let permits = route
                .tenant
                .and_then(|i| tenant_permits.get(i).cloned().flatten());
            Some(Arc::new(WasmRoute::new(
                route_info(config, route, file),
                permits,
            )))
        })
        .collect()
}

fn route_info(config: &Config, route: &RouteConfig, file: &std::path::Path) -> RouteInfo {
    RouteInfo {
        name: handler_name(file),
        prefix: route.prefix.clone(),
        file: file.to_path_buf(),
        tenant: route
            .tenant
            .and_then(|i| config.tenants.get(i))
            .map(|t| t.name.clone()),
        hosts: route.hosts.clone(),
        limits: config.wasm_limits(route),
    }
}
