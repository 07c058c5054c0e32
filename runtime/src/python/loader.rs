//! Loading apps: `module:attr` targets and Fapws-style scripts.
//!
//! Owns: importing each Python route's callable (in the parent process, before workers fork,
//! so a broken app fails at start-up with its traceback and the workers share its memory), and
//! reading a script's `PATHS`, `SERVER`, `MAX_BODY_SIZE` and `DEBUG` into the config (for a
//! Fapws3 script, what it registered through `fapws._evwsgi` stands in for them: `fapws3.rs`).
//! Must not touch: requests, sockets, or the order of config precedence beyond "a setting given
//! on the command line wins over the script".

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::errors::format_exception;
use super::{fapws3, WsgiApp};
use crate::config::{Config, RouteConfig, RouteTarget};

/// Which script settings the command line already fixed.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandLineFixed {
    pub bind: bool,
    pub max_body_size: bool,
    pub debug: bool,
}

/// The Python apps of a configuration, found by the route target that names them.
#[derive(Default)]
pub struct PythonApps {
    /// `module:attr` targets, imported once each.
    imported: HashMap<(String, String), Arc<WsgiApp>>,
    /// A Fapws-style script's `PATHS` handlers, by their index in `PATHS`.
    script: Vec<Arc<WsgiApp>>,
}

impl PythonApps {
    /// The app a Python route target names (`None` for other kinds, or an unknown target).
    pub fn for_target(&self, target: &RouteTarget) -> Option<Arc<WsgiApp>> {
        match target {
            RouteTarget::Python { module, attr } => {
                self.imported.get(&(module.clone(), attr.clone())).cloned()
            }
            RouteTarget::ScriptPath { index } => self.script.get(*index).cloned(),
            RouteTarget::Static { .. } | RouteTarget::Wasm { .. } => None,
        }
    }
}

/// Loads every Python app the config names (in route order, so the first broken one is the
/// one reported), after adding a script's routes to `config`.
pub fn load_apps(config: &mut Config, fixed: CommandLineFixed) -> Result<PythonApps, String> {
    Python::attach(|py| {
        let mut apps = PythonApps::default();
        if let Some(script) = config.script.clone() {
            apps.script = load_script(py, &script, config, fixed)?;
        }
        for route in &config.routes {
            let shadow = route.migrate.shadow.as_ref().map(|s| &s.target);
            let canary = route.migrate.canary.as_ref().map(|c| &c.target);
            let targets = std::iter::once(&route.target).chain(shadow).chain(canary);
            for target in targets {
                let RouteTarget::Python { module, attr } = target else {
                    continue;
                };
                let key = (module.clone(), attr.clone());
                if let Entry::Vacant(slot) = apps.imported.entry(key) {
                    slot.insert(import_app(py, module, attr)?);
                }
            }
        }
        Ok(apps)
    })
}

fn import_app(py: Python<'_>, module: &str, attr: &str) -> Result<Arc<WsgiApp>, String> {
    let name = format!("{module}:{attr}");
    let loaded = py.import(module).map_err(|e| {
        format!(
            "cannot import module {module:?} for app {name}:\n{}",
            format_exception(py, &e)
        )
    })?;
    let mut object = loaded.into_any();
    for part in attr.split('.') {
        object = object
            .getattr(part)
            .map_err(|_| format!("module {module:?} has no attribute {attr:?} (app {name})"))?;
    }
    if !object.is_callable() {
        return Err(format!(
            "{name} is not callable: a WSGI app must be app(environ, start_response)"
        ));
    }
    Ok(Arc::new(WsgiApp {
        callable: object.unbind(),
        lenient: false,
        name,
    }))
}

/// Runs a Fapws-style script and turns its `PATHS` (or its `wsgi_cb` routes) into routes.
fn load_script(
    py: Python<'_>,
    script: &Path,
    config: &mut Config,
    fixed: CommandLineFixed,
) -> Result<Vec<Arc<WsgiApp>>, String> {
    let shown = script.display().to_string();
    if let Some(dir) = script.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepend_sys_path(py, dir).map_err(|e| format_exception(py, &e))?;
    }
    let runpy = py.import("runpy").map_err(|e| format_exception(py, &e))?;
    let namespace = runpy
        .call_method1("run_path", (shown.as_str(), py.None(), "__main__"))
        .map_err(|e| format!("{shown} failed to run:\n{}", format_exception(py, &e)))?;
    let namespace = namespace
        .cast_into::<PyDict>()
        .map_err(|_| format!("{shown}: run_path returned no namespace"))?;
    let namespace = fapws3::with_registrations(namespace, &shown)?;
    read_settings(&namespace, &shown, config, fixed)?;
    let paths = namespace
        .get_item("PATHS")
        .map_err(|e| format_exception(py, &e))?
        .ok_or_else(|| {
            format!(
                "{shown}: the script defines no PATHS = [('/', handler), ...] \
                 and registers no fapws._evwsgi.wsgi_cb(('/', handler))"
            )
        })?;
    let paths = paths
        .cast_into::<PyList>()
        .map(|l| l.into_any())
        .or_else(|e| e.into_inner().cast_into::<PyTuple>().map(|t| t.into_any()))
        .map_err(|_| format!("{shown}: PATHS must be a list of (prefix, handler) pairs"))?;
    let mut apps = Vec::new();
    for (index, entry) in paths
        .try_iter()
        .map_err(|e| format_exception(py, &e))?
        .enumerate()
    {
        let entry = entry.map_err(|e| format_exception(py, &e))?;
        let (prefix, handler) = path_entry(&entry)
            .ok_or_else(|| format!("{shown}: PATHS[{index}] must be a (prefix, handler) pair"))?;
        let prefix = normalise_prefix(&prefix).ok_or_else(|| {
            format!("{shown}: PATHS[{index}] prefix {prefix:?} must start with '/'")
        })?;
        if config
            .routes
            .iter()
            .any(|r| r.prefix == prefix && r.hosts.is_empty())
        {
            return Err(format!(
                "{shown}: PATHS[{index}] prefix {prefix:?} is routed twice"
            ));
        }
        config.routes.push(RouteConfig::new(
            prefix,
            Vec::new(),
            RouteTarget::ScriptPath { index },
        ));
        let name = format!("{shown} PATHS[{index}]");
        apps.push(Arc::new(WsgiApp {
            callable: handler.unbind(),
            lenient: true,
            name,
        }));
    }
    Ok(apps)
}

fn path_entry<'py>(entry: &Bound<'py, PyAny>) -> Option<(String, Bound<'py, PyAny>)> {
    let prefix: String = entry.get_item(0).ok()?.extract().ok()?;
    let handler = entry.get_item(1).ok()?;
    if entry.len().ok()? != 2 || !handler.is_callable() {
        return None;
    }
    Some((prefix, handler))
}

fn normalise_prefix(prefix: &str) -> Option<String> {
    if !prefix.starts_with('/') {
        return None;
    }
    let trimmed = prefix.trim_end_matches('/');
    Some(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

fn read_settings(
    namespace: &Bound<'_, PyDict>,
    shown: &str,
    config: &mut Config,
    fixed: CommandLineFixed,
) -> Result<(), String> {
    let get = |key: &str| namespace.get_item(key).ok().flatten();
    if let (Some(server), false) = (get("SERVER"), fixed.bind) {
        let addr = server_address(&server).ok_or_else(|| {
            format!("{shown}: SERVER must be \"host:port\" or (host, port), got {server}")
        })?;
        config.server.bind = Some(vec![addr]);
    }
    if let (Some(size), false) = (get("MAX_BODY_SIZE"), fixed.max_body_size) {
        config.server.max_body_size = size
            .extract::<u64>()
            .map_err(|_| format!("{shown}: MAX_BODY_SIZE must be a whole number of bytes"))?;
    }
    if let (Some(debug), false) = (get("DEBUG"), fixed.debug) {
        config.server.debug = debug.is_truthy().unwrap_or(false);
    }
    Ok(())
}

fn server_address(value: &Bound<'_, PyAny>) -> Option<std::net::SocketAddr> {
    let text = if let Ok(text) = value.extract::<String>() {
        text
    } else {
        let (host, port): (String, u16) = value.extract().ok()?;
        format!("{host}:{port}")
    };
    text.to_socket_addrs().ok()?.next()
}

fn prepend_sys_path(py: Python<'_>, dir: &Path) -> PyResult<()> {
    let path = py.import("sys")?.getattr("path")?;
    path.call_method1("insert", (0, dir.display().to_string()))?;
    Ok(())
}
