//! `--watch DIR`: every `DIR/NAME.wasm` served at `/NAME`, live on the next request after a save.
//!
//! Owns: the directory scan at start-up, the notify watcher and its thread, debouncing (a file
//! is compiled once it has been quiet for `DEBOUNCE`), compiling off the request path, and the
//! outcome per file: a changed file that loads is swapped into its existing route atomically
//! (requests in flight finish on the version they started with); a new file adds a route, a
//! deleted one removes it (both reported as `WatchChange`s for the worker's router); a file
//! that fails to load is logged with the reason and the previous version keeps serving.
//! Must not touch: the router itself or requests.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::compile::Compiler;
use super::outbound::OutboundShare;
use super::registry::WasmRoute;
use super::route_info::{handler_name, RouteInfo};
use crate::config::{format_duration, WasmLimits};

/// Quiet time after the last event on a file before it is compiled.
const DEBOUNCE: Duration = Duration::from_millis(40);

/// A change to the set of watched routes, for the worker's router.
pub enum WatchChange {
    Added(Arc<WasmRoute>),
    /// This watched route (the very one `Added` reported) is gone; a configured route at the
    /// same prefix is not a watched one and stays.
    Removed(Arc<WasmRoute>),
}

struct DirWatch {
    dir: PathBuf,
    compiler: Compiler,
    limits: WasmLimits,
    routes: HashMap<String, Arc<WasmRoute>>,
    changes: UnboundedSender<WatchChange>,
}

/// The watcher thread's nice value: it compiles, which is background work next to serving.
const WATCH_NICE: libc::c_int = 10;

/// Scans `dir`, loads what is there, and starts the watcher thread.
pub fn start(
    dir: &Path,
    compiler: Compiler,
    limits: WasmLimits,
) -> Result<(Vec<Arc<WasmRoute>>, UnboundedReceiver<WatchChange>), String> {
    let shown = dir.display().to_string();
    let (event_tx, events) = channel::<notify::Result<Event>>();
    let mut notifier =
        notify::recommended_watcher(event_tx).map_err(|e| format!("--watch {shown}: {e}"))?;
    notifier
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("--watch {shown}: {e}"))?;
    let (changes, receiver) = unbounded_channel();
    let mut watch = DirWatch {
        dir: dir.to_path_buf(),
        compiler,
        limits,
        routes: HashMap::new(),
        changes,
    };
    let initial: Vec<Arc<WasmRoute>> = handler_files(dir)?
        .iter()
        .filter_map(|file| match watch.refresh(file) {
            Some(WatchChange::Added(route)) => Some(route),
            _ => None,
        })
        .collect();
    tracing::info!("watching {shown}: {} handler(s)", initial.len());
    thread::Builder::new()
        .name("wsrun-watch".to_string())
        .spawn(move || {
            // The notifier lives as long as this thread; dropping it stops the events.
            let _notifier = notifier;
            // Compiling a new version (seconds for a big or hostile file) must not take CPU
            // from the requests the worker serves meanwhile.
            crate::thread_nice::lower_this_thread(WATCH_NICE);
            watch.run(events);
        })
        .map_err(|e| format!("--watch {shown}: cannot start the watcher thread: {e}"))?;
    Ok((initial, receiver))
}

/// The handler files of `dir` now, sorted (`NAME.wasm`, not hidden, not in subdirectories).
pub fn handler_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("--watch {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| is_handler_file(path))
        .collect();
    files.sort();
    Ok(files)
}

fn is_handler_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && path.extension().is_some_and(|ext| ext == "wasm")
}

impl DirWatch {
    fn run(mut self, events: Receiver<notify::Result<Event>>) {
        let mut pending = BTreeSet::new();
        loop {
            let wait = if pending.is_empty() {
                Duration::from_secs(3600)
            } else {
                DEBOUNCE
            };
            match events.recv_timeout(wait) {
                Ok(Ok(event)) => self.note(event, &mut pending),
                Ok(Err(err)) => tracing::warn!("--watch {}: {err}", self.dir.display()),
                Err(RecvTimeoutError::Timeout) => {
                    for file in std::mem::take(&mut pending) {
                        if let Some(change) = self.refresh(&file) {
                            let _ = self.changes.send(change);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.changes.is_closed() {
                return;
            }
        }
    }

    fn note(&self, event: Event, pending: &mut BTreeSet<PathBuf>) {
        if matches!(event.kind, EventKind::Access(_)) && !is_close_write(&event.kind) {
            return;
        }
        for path in event.paths {
            if is_handler_file(&path) && path.parent() == Some(self.dir.as_path()) {
                pending.insert(path);
            }
        }
    }

    /// Brings the route of `file` in line with the file: load and swap, add, or remove.
    /// Returns the change to the set of routes, if there is one.
    fn refresh(&mut self, file: &Path) -> Option<WatchChange> {
        let name = handler_name(file);
        if !file.is_file() {
            let route = self.routes.remove(&name)?;
            tracing::info!("{}: file removed; route removed", route.info.label());
            return Some(WatchChange::Removed(route));
        }
        let loaded = match self.compiler.load(file) {
            Ok(loaded) => loaded,
            Err(err) => {
                match self.routes.get(&name) {
                    Some(route) => tracing::error!(
                        "{}: new version not loaded, the previous one keeps serving: {err}",
                        route.info.label()
                    ),
                    None => tracing::error!("handler `{name}` not served: {err}"),
                }
                return None;
            }
        };
        if let Some(route) = self.routes.get(&name) {
            if route
                .current()
                .is_none_or(|v| v.digest != loaded.version.digest)
            {
                route.swap(loaded.version);
                tracing::info!(
                    "{}: reloaded in {}",
                    route.info.label(),
                    format_duration(loaded.elapsed)
                );
            }
            return None;
        }
        let info = RouteInfo {
            prefix: format!("/{name}"),
            file: file.to_path_buf(),
            tenant: None,
            hosts: Vec::new(),
            outbound: OutboundShare::new(self.limits.max_outbound, None),
            limits: self.limits.clone(),
            name: name.clone(),
            tenant_memory: None,
            log_rate: Default::default(),
        };
        let route = Arc::new(WasmRoute::new(info, None));
        route.swap(loaded.version);
        tracing::info!(
            "{}: added ({})",
            route.info.label(),
            format_duration(loaded.elapsed)
        );
        self.routes.insert(name, route.clone());
        Some(WatchChange::Added(route))
    }
}

fn is_close_write(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}
