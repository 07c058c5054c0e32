//! Route kinds: what a route serves, and the one function per kind that builds it.
//!
//! Owns: `Handler` (one variant per route kind) and `build_router`, which turns each configured
//! route into a router entry through a single match on its `RouteTarget`: `python_handler`,
//! `static_handler`, `wasm_handler`. Adding a route kind takes a `RouteTarget` variant and its
//! TOML key (`config`), one builder here and one arm in `service::run_handler`.
//! A route with a `[route.shadow]` or `[route.canary]` is wrapped (`wrap`, `Migrating`; run by
//! `migrating`) around
//! its own handler, its alternative built by the same builders (`alt_handler`).
//! Must not touch: running a handler (`service`), loading WASM code (done per worker after the
//! fork, `live_routes`), or importing Python apps (`python::loader`).

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, RouteConfig, RouteTarget};
use crate::python::loader::PythonApps;
use crate::python::WsgiApp;
use crate::router::{Route, Router};
use crate::static_files::StaticDir;
use crate::wasm::{WasmRoute, WasmRouteBuilder};

use crate::migrate::canary::Split;
use crate::migrate::mirror::Mirror;

/// What a route serves.
#[derive(Clone)]
pub enum Handler {
    Python(Arc<WsgiApp>),
    Static(Arc<StaticDir>),
    Wasm(Arc<WasmRoute>),
    /// A route with a `[route.shadow]` or `[route.canary]` (`migrating`).
    Migrating(Arc<Migrating>),
}

impl Handler {
    /// The handler that answers when no shadow or canary is involved.
    pub fn primary(&self) -> &Handler {
        match self {
            Handler::Migrating(m) => &m.primary,
            other => other,
        }
    }

    /// The WASM routes this handler runs (its own, a shadow's, a canary's), to load after the
    /// fork.
    pub fn wasm_routes(&self) -> Vec<Arc<WasmRoute>> {
        match self {
            Handler::Wasm(route) => vec![route.clone()],
            Handler::Migrating(m) => m.handlers().flat_map(Handler::wasm_routes).collect(),
            _ => Vec::new(),
        }
    }
}

/// The router of `config`'s routes, each with its handler; `apps` holds the imported Python
/// apps. Fails when nothing is served or a route's handler cannot be made.
pub fn build_router(config: &Config, apps: &PythonApps) -> Result<Router<Handler>, String> {
    if config.routes.is_empty() && config.watch.is_none() {
        return Err("nothing to serve: no routes".to_string());
    }
    let wasm = WasmRouteBuilder::new(config);
    let mut entries = Vec::with_capacity(config.routes.len());
    for route in &config.routes {
        let handler = match &route.target {
            RouteTarget::Python { .. } | RouteTarget::ScriptPath { .. } => {
                python_handler(apps, route)?
            }
            RouteTarget::Static { root } => static_handler(route, root)?,
            RouteTarget::Wasm { file } => wasm_handler(&wasm, config, route, file),
        };
        let handler = wrap(handler, route, |alt| alt_handler(apps, &wasm, config, alt))?;
        let max_body_size = route.max_body_size.unwrap_or(config.server.max_body_size);
        let entry = Route {
            prefix: route.prefix.clone(),
            handler,
            max_body_size,
            compress: route.compress,
            tenant: route
                .tenant
                .and_then(|i| config.tenants.get(i))
                .map(|t| t.name.clone()),
            metrics_slot: Default::default(),
        };
        entries.push((route.hosts.clone(), entry));
    }
    Ok(Router::new(entries))
}

/// A route's own handler with its shadow and canary.
pub struct Migrating {
    pub primary: Handler,
    pub shadow: Option<(Handler, Mirror)>,
    pub canary: Option<(Handler, Split)>,
}

impl Migrating {
    /// Every handler involved.
    pub fn handlers(&self) -> impl Iterator<Item = &Handler> {
        let shadow = self.shadow.as_ref().map(|(h, _)| h);
        let canary = self.canary.as_ref().map(|(h, _)| h);
        std::iter::once(&self.primary).chain(shadow).chain(canary)
    }
}

/// `handler` itself for an ordinary route; else wrapped with its alternatives, each built by
/// `build` from a copy of the route with the alternative's target.
pub fn wrap(
    handler: Handler,
    route: &RouteConfig,
    build: impl Fn(&RouteConfig) -> Result<Handler, String>,
) -> Result<Handler, String> {
    let m = &route.migrate;
    if m.is_empty() {
        return Ok(handler);
    }
    let alt = |target: &crate::config::RouteTarget| {
        let mut alt = route.clone();
        alt.target = target.clone();
        alt.migrate = Default::default();
        alt
    };
    let shadow = match &m.shadow {
        Some(s) => {
            let mut route = alt(&s.target);
            route.wasm.timeout = Some(s.timeout);
            Some((build(&route)?, Mirror::new((**s).clone())))
        }
        None => None,
    };
    let canary = match &m.canary {
        Some(c) => {
            let split = Split::new(c).map_err(|e| format!("route {}: {e}", route.prefix))?;
            Some((build(&alt(&c.target))?, split))
        }
        None => None,
    };
    Ok(Handler::Migrating(Arc::new(Migrating {
        primary: handler,
        shadow,
        canary,
    })))
}

/// The handler of a shadow or canary (`alt`: the route with the alternative's target).
fn alt_handler(
    apps: &PythonApps,
    wasm: &WasmRouteBuilder,
    config: &Config,
    alt: &RouteConfig,
) -> Result<Handler, String> {
    match &alt.target {
        RouteTarget::Wasm { file } => Ok(wasm_handler(wasm, config, alt, file)),
        _ => python_handler(apps, alt),
    }
}

/// A WSGI app (a `module:attr` target or a script's `PATHS` entry), imported at start-up.
fn python_handler(apps: &PythonApps, route: &RouteConfig) -> Result<Handler, String> {
    apps.for_target(&route.target)
        .map(Handler::Python)
        .ok_or_else(|| format!("route {} has no app", route.prefix))
}

/// A directory served as files; it must exist now.
fn static_handler(route: &RouteConfig, root: &Path) -> Result<Handler, String> {
    let dir = StaticDir::new(root, route.static_options.clone())
        .map_err(|e| format!("static route {}: {}: {e}", route.prefix, root.display()))?;
    Ok(Handler::Static(Arc::new(dir)))
}

/// A `wasi:http/proxy` component; its code is loaded in each worker after the fork.
fn wasm_handler(
    wasm: &WasmRouteBuilder,
    config: &Config,
    route: &RouteConfig,
    file: &Path,
) -> Handler {
    Handler::Wasm(wasm.route(config, route, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(routes: Vec<RouteConfig>) -> Config {
        Config {
            routes,
            ..Config::default()
        }
    }

    fn route(prefix: &str, target: RouteTarget) -> RouteConfig {
        RouteConfig::new(prefix.to_string(), Vec::new(), target)
    }

    fn kind(router: &Router<Handler>, path: &str) -> Option<&'static str> {
        router
            .find("", path.as_bytes())
            .map(|m| match m.route.handler {
                Handler::Python(_) => "python",
                Handler::Static(_) => "static",
                Handler::Wasm(_) => "wasm",
                Handler::Migrating(_) => "migrating",
            })
    }

    #[test]
    fn each_route_gets_the_handler_of_its_own_kind() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().to_path_buf();
        let config = config(vec![
            route("/files", RouteTarget::Static { root }),
            route(
                "/app",
                RouteTarget::Wasm {
                    file: "h.wasm".into(),
                },
            ),
            route(
                "/more",
                RouteTarget::Static {
                    root: dir.path().into(),
                },
            ),
        ]);
        let router = build_router(&config, &PythonApps::default()).expect("a router");
        assert_eq!(kind(&router, "/files/a"), Some("static"));
        assert_eq!(kind(&router, "/app"), Some("wasm"));
        assert_eq!(kind(&router, "/more"), Some("static"));
        assert_eq!(kind(&router, "/other"), None);
    }

    #[test]
    fn a_python_route_without_its_app_or_a_missing_directory_is_an_error() {
        let python = config(vec![route("/", RouteTarget::ScriptPath { index: 0 })]);
        let err = build_router(&python, &PythonApps::default()).err();
        assert_eq!(err.as_deref(), Some("route / has no app"));
        let missing = RouteTarget::Static {
            root: "/nonexistent/wsrun-static".into(),
        };
        let err = build_router(&config(vec![route("/s", missing)]), &PythonApps::default());
        assert!(err
            .err()
            .is_some_and(|e| e.starts_with("static route /s: ")));
    }

    #[test]
    fn nothing_to_serve_is_an_error() {
        let err = build_router(&Config::default(), &PythonApps::default()).err();
        assert_eq!(err.as_deref(), Some("nothing to serve: no routes"));
    }
}
