//! Shared services: durable jobs and durable timers, one model for Python and WASM.
//!
//! A job is a request (method, host, path, headers, body) to a route of this server, written
//! to an SQLite journal before the caller hears "queued", then delivered in-process through
//! the router at least once, retried with backoff on a 5xx, and moved to a dead-letter table
//! after its last attempt. A durable timer turns into one such job per period, fired by
//! exactly one worker.
//!
//! Owns: `Services` (the facade the Python and WASM hosts call), the process's current
//! instance, and start-up checks of calls made while apps were being imported.
//! Must not touch: the router or handlers (delivery goes through the narrow `Deliver` trait
//! in `dispatch`), Python or wasmtime types — those hosts adapt their callers to this API.
//!
//! Layout: `job` (what a job is, validation), `journal` (SQL), `store` (the journal thread,
//! group commit), `dispatch` (claiming due jobs and delivering them), `admin` (`wsrun jobs`).

pub mod admin;
pub mod dispatch;
pub mod job;
pub mod journal;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use job::{JobRecord, JobRequest, NewJob, ServiceError, TimerRecord};
pub use store::Store;

use crate::config::{JobsConfig, Schedule, TimerConfig};
use journal::{now_ms, Journal};

/// Answers "does a route serve this (host, path)?" — the services' only view of routing.
pub trait RouteCheck: Send + Sync {
    fn serves(&self, host: &str, path: &str) -> bool;
}

/// The services of this process; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Services {
    store: Store,
    routes: Arc<dyn RouteCheck>,
    pub settings: Arc<JobsConfig>,
}

/// A durable timer as a caller asks for it.
#[derive(Debug, Clone)]
pub struct TimerRequest {
    pub name: String,
    pub schedule: Schedule,
    /// For a one-shot timer: how long until it fires.
    pub delay: Duration,
    pub request: JobRequest,
}

impl Services {
    /// Starts the journal thread for this process.
    pub fn start(
        state_dir: &std::path::Path,
        settings: JobsConfig,
        routes: Arc<dyn RouteCheck>,
    ) -> Result<Services, String> {
        Ok(Services {
            store: Store::start(state_dir)?,
            routes,
            settings: Arc::new(settings),
        })
    }

    /// The journal thread's handle (for the dispatcher).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn check(&self, request: &JobRequest) -> Result<(), ServiceError> {
        request.validate()?;
        if !self.routes.serves(&request.host, request.route_path()) {
            return Err(ServiceError::NoRoute {
                host: request.host.clone(),
                path: request.route_path().to_string(),
            });
        }
        Ok(())
    }

    fn new_job(
        &self,
        request: JobRequest,
        delay: Duration,
        max_attempts: Option<u32>,
        origin: &str,
    ) -> Result<NewJob, ServiceError> {
        self.check(&request)?;
        let max_attempts = max_attempts.unwrap_or(self.settings.max_attempts);
        if max_attempts == 0 {
            return Err(ServiceError::Invalid(
                "max_attempts must be at least 1".into(),
            ));
        }
        Ok(NewJob {
            request,
            delay,
            max_attempts,
            origin: origin.to_string(),
        })
    }

    /// Queues a job (blocking until it is committed); returns its id.
    pub fn enqueue_blocking(
        &self,
        request: JobRequest,
        delay: Duration,
        max_attempts: Option<u32>,
        origin: &str,
    ) -> Result<i64, ServiceError> {
        let job = self.new_job(request, delay, max_attempts, origin)?;
        self.store.enqueue_blocking(job)
    }

    /// Queues a job; resolves once it is committed, to its id.
    pub async fn enqueue(
        &self,
        request: JobRequest,
        delay: Duration,
        max_attempts: Option<u32>,
        origin: &str,
    ) -> Result<i64, ServiceError> {
        let job = self.new_job(request, delay, max_attempts, origin)?;
        self.store.enqueue(job).await
    }

    fn timer_record(&self, timer: TimerRequest) -> Result<TimerRecord, ServiceError> {
        check_timer_name(&timer.name)?;
        self.check(&timer.request)?;
        if let Schedule::Every(period) = &timer.schedule {
            if period.is_zero() {
                return Err(ServiceError::Invalid(
                    "a timer's period must be above 0".into(),
                ));
            }
        }
        let next_due = timer.schedule.first_due(now_ms(), timer.delay);
        Ok(TimerRecord {
            name: timer.name,
            schedule: timer.schedule,
            request: timer.request,
            source: "api".to_string(),
            next_due,
        })
    }

    /// Creates or replaces the durable timer `timer.name` (blocking until committed).
    pub fn set_timer_blocking(&self, timer: TimerRequest) -> Result<(), ServiceError> {
        let record = self.timer_record(timer)?;
        self.store.set_timer_blocking(record)
    }

    pub async fn set_timer(&self, timer: TimerRequest) -> Result<(), ServiceError> {
        let record = self.timer_record(timer)?;
        self.store.set_timer(record).await
    }

    /// Removes a durable timer; false if none had that name.
    pub fn cancel_timer_blocking(&self, name: &str) -> Result<bool, ServiceError> {
        check_timer_name(name)?;
        self.store.cancel_timer_blocking(name.to_string())
    }

    pub async fn cancel_timer(&self, name: &str) -> Result<bool, ServiceError> {
        check_timer_name(name)?;
        self.store.cancel_timer(name.to_string()).await
    }
}

fn check_timer_name(name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty() && name.len() <= 200 && name.chars().all(|c| !c.is_control());
    match ok {
        true => Ok(()),
        false => Err(ServiceError::Invalid(format!(
            "timer name {name:?} must be 1 to 200 printable characters"
        ))),
    }
}

static CURRENT: RwLock<Option<Services>> = RwLock::new(None);

/// Set while apps are imported in the master: where calls made then go.
static STARTUP: Mutex<Option<(PathBuf, JobsConfig, Arc<StartupCalls>)>> = Mutex::new(None);

/// The services of this process: the worker's, or — while apps are being imported before
/// the fork — a start-up instance whose route checks wait until the router exists.
pub fn current() -> Option<Services> {
    if let Some(services) = CURRENT.read().ok().and_then(|slot| slot.clone()) {
        return Some(services);
    }
    let startup = STARTUP.lock().ok()?.clone()?;
    let (state_dir, settings, calls) = startup;
    match Services::start(&state_dir, settings, calls) {
        Ok(services) => {
            install(Some(services.clone()));
            Some(services)
        }
        Err(message) => {
            tracing::error!("{message}");
            None
        }
    }
}

/// Lets apps call the services while they are imported (before routes exist); returns the
/// record of what they asked for, to check once the router is built.
pub fn begin_startup(state_dir: &std::path::Path, settings: &JobsConfig) -> Arc<StartupCalls> {
    let calls = StartupCalls::recorder();
    if let Ok(mut slot) = STARTUP.lock() {
        *slot = Some((state_dir.to_path_buf(), settings.clone(), calls.clone()));
    }
    calls
}

/// Makes `services` this process's current instance (replacing any previous one).
pub fn install(services: Option<Services>) {
    if let Ok(mut slot) = CURRENT.write() {
        *slot = services;
    }
}

/// Before workers fork: the master's journal thread is dropped (a SQLite connection must not
/// cross a fork), so each worker opens its own.
pub fn close_before_fork() {
    if let Ok(mut slot) = STARTUP.lock() {
        *slot = None;
    }
    let services = CURRENT.write().ok().and_then(|mut slot| slot.take());
    if let Some(services) = services {
        services.store.shutdown();
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

/// Brings the journal's `[[timer]]`-sourced timers in step with the config: new ones are
/// added, changed ones replaced, removed ones deleted; an unchanged timer keeps its rhythm.
pub fn sync_config_timers(
    state_dir: &std::path::Path,
    timers: &[TimerConfig],
) -> Result<(), String> {
    if timers.is_empty() && !state_dir.join(journal::JOURNAL_FILE).exists() {
        return Ok(()); // nothing to add, nothing to remove: no journal file is created
    }
    let mut journal = Journal::open(state_dir)?;
    journal.transaction(|tx| {
        let now = now_ms();
        for name in tx.timer_names("config")? {
            if !timers.iter().any(|t| t.name == name) {
                tx.cancel_timer(&name)?;
            }
        }
        for timer in timers {
            let request = JobRequest {
                method: timer.method.clone(),
                host: String::new(),
                path: timer.path.clone(),
                headers: Vec::new(),
                body: timer.body.clone(),
            };
            let existing = tx.timer(&timer.name)?;
            let unchanged = existing.as_ref().is_some_and(|t| {
                t.source == "config" && t.schedule == timer.schedule && t.request == request
            });
            if unchanged {
                continue;
            }
            tx.set_timer(&TimerRecord {
                name: timer.name.clone(),
                next_due: timer.schedule.first_due(now, Duration::ZERO),
                schedule: timer.schedule.clone(),
                request,
                source: "config".to_string(),
            })?;
        }
        Ok(())
    })
}
