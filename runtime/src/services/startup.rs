//! The master's services while apps are imported, and the fork rule as a type.
//!
//! Owns: `StartupServices` — the master's store (with its journal thread) that calls made
//! during imports go to, the record of which routes those calls named (checked once the
//! router exists), and the start-up sync of `[[timer]]` tables. It is consumed by `stop`,
//! which the supervisor calls before its first `fork()`: the fork path takes the value, so
//! forking while the master's service threads run does not compile. Must not touch: Python
//! (the start-up code hands `services()` to the Python module), workers' services.

use std::sync::{Arc, Mutex};

use super::facade::{config_timers, RouteCheck, Services, CONFIG_SOURCE};
use super::job::ServiceError;
use crate::config::{JobsConfig, TimerConfig};

/// The services of the master before the fork. Not `Clone`: one owner, consumed by `stop`.
pub struct StartupServices {
    services: Services,
    calls: Arc<StartupCalls>,
}

impl StartupServices {
    /// Opens the store (`state_dir`'s journal, or `[jobs] backend`, as node `node`) for calls made while apps are imported; their route
    /// checks wait until the router exists (`unrouted`).
    pub fn start(
        state_dir: &std::path::Path,
        node: &str,
        settings: &JobsConfig,
    ) -> Result<StartupServices, String> {
        let calls = StartupCalls::recorder();
        let services = Services::open(state_dir, node, settings.clone(), calls.clone())
            .map_err(|e| e.to_string())?;
        Ok(StartupServices { services, calls })
    }

    /// The services calls made during imports use (a clone; it stops working after `stop`).
    pub fn services(&self) -> Services {
        self.services.clone()
    }

    /// Every (host, path) that calls during imports named and `routes` does not serve.
    pub fn unrouted(&self, routes: &dyn RouteCheck) -> Vec<String> {
        self.calls.unrouted(routes)
    }

    /// Brings the store's `[[timer]]`-sourced timers in step with the config: new ones are
    /// added, changed ones replaced, removed ones deleted; an unchanged timer keeps its rhythm.
    pub fn sync_config_timers(&self, timers: &[TimerConfig]) -> Result<(), String> {
        self.services
            .store()
            .sync_timers(CONFIG_SOURCE, config_timers(timers))
            .map_err(|e| e.to_string())
    }

    /// Stops the master's store threads and closes its connections (a SQLite connection
    /// must not cross a fork; each worker opens its own). Returns once they are gone.
    pub fn stop(self) {
        self.services.store().shutdown();
    }
}

/// Calls made while apps were imported (before the router existed), checked once it does.
#[derive(Default)]
pub struct StartupCalls {
    seen: Mutex<Vec<(String, String)>>,
}

impl StartupCalls {
    /// A check that accepts everything and remembers what it was asked.
    pub fn recorder() -> Arc<StartupCalls> {
        Arc::new(StartupCalls::default())
    }

    /// Every (host, path) asked about that `routes` does not serve, as error lines.
    pub fn unrouted(&self, routes: &dyn RouteCheck) -> Vec<String> {
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        seen.iter()
            .filter(|(host, path)| !routes.serves(host, path))
            .map(|(host, path)| {
                ServiceError::NoRoute {
                    host: host.clone(),
                    path: path.clone(),
                }
                .to_string()
            })
            .collect()
    }
}

impl RouteCheck for StartupCalls {
    fn serves(&self, host: &str, path: &str) -> bool {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((host.to_string(), path.to_string()));
        }
        true
    }
}
