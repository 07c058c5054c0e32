//! A worker's route table while it runs, and the WebAssembly host behind its wasm routes.
//!
//! Owns: `LiveRouter` (the router built before the fork, replaced whole when `--watch` adds or
//! removes a handler; a request keeps the table it started with; a watched handler never
//! displaces a configured route, and its removal removes only itself; a route added here claims its metrics label slot) and `start_wasm`, which builds
//! the worker's `WasmHost` after the fork, loads every fixed wasm route (a failure fails the
//! boot) and starts the directory watcher. Must not touch: request handling or matching rules.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc::UnboundedReceiver;

use super::handler::Handler;
use crate::config::{Config, WasmLimits};
use crate::metrics::WorkerMetrics;
use crate::router::{Entry, Route, Router};
use crate::services::RouteCheck;
use crate::wasm::{CompileLimits, WasmHost, WasmRoute, WatchChange};

/// The current router of a worker.
pub struct LiveRouter {
    current: RefCell<Rc<Router<Handler>>>,
    /// Its shape, readable from any thread (the services check job paths against it).
    shape: Arc<RouteShape>,
    /// Where a route added at run time claims its metrics label slot.
    metrics: Option<WorkerMetrics>,
}

/// Which (host, path) pairs the worker routes now; shared with the services.
pub struct RouteShape(ArcSwap<Router<()>>);

impl RouteCheck for RouteShape {
    fn serves(&self, host: &str, path: &str) -> bool {
        self.0.load().serves(host, path)
    }

    fn max_body_size(&self, host: &str, path: &str) -> Option<u64> {
        self.0.load().max_body_size(host, path)
    }

    fn prefixes(&self) -> Option<Vec<String>> {
        let router = self.0.load();
        let mut prefixes: Vec<String> = router.routes().map(|r| r.prefix.clone()).collect();
        prefixes.sort();
        prefixes.dedup();
        Some(prefixes)
    }
}

impl LiveRouter {
    pub fn new(router: Router<Handler>, metrics: Option<WorkerMetrics>) -> LiveRouter {
        if let Some(m) = metrics {
            router.label_routes(|prefix, tenant| m.claim(prefix, tenant));
        }
        let shape = Arc::new(RouteShape(ArcSwap::from_pointee(router.shape())));
        LiveRouter {
            current: RefCell::new(Rc::new(router)),
            shape,
            metrics,
        }
    }

    /// The route check the services use for this worker.
    pub fn shape(&self) -> Arc<RouteShape> {
        self.shape.clone()
    }

    /// The table a new request is routed with.
    pub fn get(&self) -> Rc<Router<Handler>> {
        self.current.borrow().clone()
    }

    /// Applies one `--watch` change: a new handler's route, or a removed one. Only the watched
    /// route itself is removed: a configured route at the same prefix keeps serving.
    pub fn apply(&self, change: WatchChange, max_body_size: u64) {
        let next = self.get().rebuilt(|entries| match change {
            WatchChange::Added(route) => {
                let prefix = route.info.prefix.clone();
                let shadowed = entries
                    .iter()
                    .any(|(hosts, r)| hosts.is_empty() && r.prefix == prefix);
                if shadowed {
                    tracing::warn!(
                        "{}: {prefix} is already routed; the configured route wins",
                        route.info.label()
                    );
                }
                entries.push(watched_entry(route, max_body_size));
            }
            WatchChange::Removed(gone) => entries.retain(|(_, r)| !is_route(r, &gone)),
        });
        if let Some(m) = self.metrics {
            next.label_routes(|prefix, tenant| m.claim(prefix, tenant));
        }
        self.shape.0.store(Arc::new(next.shape()));
        *self.current.borrow_mut() = Rc::new(next);
    }
}

/// The WebAssembly side of a worker, once booted.
pub struct WasmBoot {
    pub host: WasmHost,
    /// `--watch` changes still to come, when watching.
    pub changes: Option<UnboundedReceiver<WatchChange>>,
}

/// Builds the worker's WASM host when any route or `--watch` needs one, loads the fixed wasm
/// routes of `router`, and adds the watched directory's routes to it.
pub fn start_wasm(
    config: &Config,
    router: &mut Router<Handler>,
) -> Result<Option<WasmBoot>, String> {
    let fixed: Vec<Arc<WasmRoute>> = router
        .routes()
        .flat_map(|r| r.handler.wasm_routes())
        .collect();
    if fixed.is_empty() && config.watch.is_none() {
        return Ok(None);
    }
    let cache_dir = config.server.state_dir.join("wasm-cache");
    let budget = config.server.wasm_memory_budget();
    let limits = CompileLimits::of(&config.server);
    let host = WasmHost::start(config.max_wasm_memory(), Some(cache_dir), budget, limits)?;
    host.load_routes(&fixed)?;
    let Some(dir) = &config.watch else {
        return Ok(Some(WasmBoot {
            host,
            changes: None,
        }));
    };
    let (initial, changes) = host.watch(dir, WasmLimits::default())?;
    let max_body_size = config.server.max_body_size;
    *router = router.rebuilt(|entries| {
        entries.extend(initial.into_iter().map(|r| watched_entry(r, max_body_size)));
    });
    Ok(Some(WasmBoot {
        host,
        changes: Some(changes),
    }))
}

/// Whether `route` serves exactly the WASM route `wasm` (the same one, not one at its prefix).
fn is_route(route: &Route<Handler>, wasm: &Arc<WasmRoute>) -> bool {
    matches!(&route.handler, Handler::Wasm(r) if Arc::ptr_eq(r, wasm))
}

/// The router entry of a watched handler: any host, at its `/NAME` prefix.
fn watched_entry(route: Arc<WasmRoute>, max_body_size: u64) -> Entry<Handler> {
    let route = Route {
        prefix: route.info.prefix.clone(),
        handler: Handler::Wasm(route),
        max_body_size,
        compress: true,
        tenant: None,
        metrics_slot: Default::default(),
    };
    (Vec::new(), Arc::new(route))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::{OutboundShare, RouteInfo};

    fn wasm_route(name: &str) -> Arc<WasmRoute> {
        let info = RouteInfo {
            name: name.to_string(),
            prefix: "/hello".to_string(),
            file: format!("{name}.wasm").into(),
            tenant: None,
            hosts: Vec::new(),
            outbound: OutboundShare::new(1, None),
            limits: WasmLimits::default(),
            tenant_memory: None,
            log_rate: Default::default(),
        };
        Arc::new(WasmRoute::new(info, None))
    }

    fn served_by(live: &LiveRouter) -> Option<String> {
        let router = live.get();
        let matched = router.find("any", b"/hello")?;
        match &matched.route.handler {
            Handler::Wasm(route) => Some(route.info.name.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_watched_route_never_replaces_or_removes_a_configured_one() {
        let configured = wasm_route("configured");
        let live = LiveRouter::new(
            Router::new(vec![(
                Vec::new(),
                Route {
                    prefix: "/hello".to_string(),
                    handler: Handler::Wasm(configured),
                    max_body_size: 10,
                    compress: true,
                    tenant: None,
                    metrics_slot: Default::default(),
                },
            )]),
            None,
        );
        let watched = wasm_route("watched");
        live.apply(WatchChange::Added(watched.clone()), 10);
        assert_eq!(served_by(&live).as_deref(), Some("configured"));
        assert_eq!(live.get().routes().count(), 2);
        live.apply(WatchChange::Removed(watched), 10);
        assert_eq!(served_by(&live).as_deref(), Some("configured"));
        assert_eq!(live.get().routes().count(), 1);
    }

    #[test]
    fn a_removed_watched_route_is_gone() {
        let live = LiveRouter::new(Router::new(Vec::new()), None);
        let watched = wasm_route("watched");
        live.apply(WatchChange::Added(watched.clone()), 10);
        assert_eq!(served_by(&live).as_deref(), Some("watched"));
        live.apply(WatchChange::Removed(watched), 10);
        assert_eq!(served_by(&live), None);
        assert!(!live.shape().serves("", "/hello"));
    }
}
