//! The `Services` value: what the Python and WASM hosts call to queue jobs and set timers.
//!
//! Owns: `Services` (built by start-up code and handed down, one per process, never a
//! global), `RouteCheck` (the services' only view of routing), the choice of store
//! (`open_store`), the checks every job and timer passes before it is stored, and the
//! `[[timer]]` tables as stored timers (`config_timers`). Must not touch: storage details
//! (behind `JobStore`), delivery (`dispatch`), Python or wasmtime types.

use std::sync::Arc;
use std::time::Duration;

use super::error::StoreResult;
use super::job::{JobRequest, NewJob, ServiceError, TimerRecord};
use super::job_store::JobStore;
use super::journal::now_ms;
use super::store::SqliteStore;
use crate::config::{JobsConfig, Schedule, TimerConfig};

/// Answers "does a route serve this (host, path)?" — the services' only view of routing.
pub trait RouteCheck: Send + Sync {
    fn serves(&self, host: &str, path: &str) -> bool;
}

/// The services of one process (the master while apps are imported, then each worker's
/// own): a store, the routes jobs may go to, the `[jobs]` settings. Cheap to clone (one
/// `Arc`), usable from any thread; built by start-up code and handed down, never global.
#[derive(Clone)]
pub struct Services(Arc<Shared>);

struct Shared {
    store: Arc<dyn JobStore>,
    routes: Arc<dyn RouteCheck>,
    settings: JobsConfig,
}

/// Opens the job store of `state_dir`: the one place that picks the store implementation.
pub fn open_store(state_dir: &std::path::Path) -> StoreResult<Arc<dyn JobStore>> {
    Ok(Arc::new(SqliteStore::start(state_dir)?))
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
    /// Services over `store`, for jobs to the routes `routes` serves.
    pub fn new(
        store: Arc<dyn JobStore>,
        routes: Arc<dyn RouteCheck>,
        settings: JobsConfig,
    ) -> Services {
        Services(Arc::new(Shared {
            store,
            routes,
            settings,
        }))
    }

    /// Opens the store of `state_dir` (starting its threads) for this process.
    pub fn open(
        state_dir: &std::path::Path,
        settings: JobsConfig,
        routes: Arc<dyn RouteCheck>,
    ) -> StoreResult<Services> {
        Ok(Services::new(open_store(state_dir)?, routes, settings))
    }

    /// The store (for the dispatcher).
    pub fn store(&self) -> &dyn JobStore {
        self.0.store.as_ref()
    }

    /// The `[jobs]` settings.
    pub fn settings(&self) -> &JobsConfig {
        &self.0.settings
    }

    fn check(&self, request: &JobRequest) -> Result<(), ServiceError> {
        request.validate()?;
        if !self.0.routes.serves(&request.host, request.route_path()) {
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
        let max_attempts = max_attempts.unwrap_or(self.0.settings.max_attempts);
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
        Ok(self.store().enqueue_blocking(job)?)
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
        Ok(self.store().enqueue(job).await?)
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
        Ok(self.store().set_timer_blocking(record)?)
    }

    pub async fn set_timer(&self, timer: TimerRequest) -> Result<(), ServiceError> {
        let record = self.timer_record(timer)?;
        Ok(self.store().set_timer(record).await?)
    }

    /// Removes a durable timer; false if none had that name.
    pub fn cancel_timer_blocking(&self, name: &str) -> Result<bool, ServiceError> {
        check_timer_name(name)?;
        Ok(self.store().cancel_timer_blocking(name.to_string())?)
    }

    pub async fn cancel_timer(&self, name: &str) -> Result<bool, ServiceError> {
        check_timer_name(name)?;
        Ok(self.store().cancel_timer(name.to_string()).await?)
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

/// The `[[timer]]` tables as the store keeps them (source `config`).
pub fn config_timers(timers: &[TimerConfig]) -> Vec<TimerRecord> {
    let now = now_ms();
    timers
        .iter()
        .map(|timer| TimerRecord {
            name: timer.name.clone(),
            next_due: timer.schedule.first_due(now, Duration::ZERO),
            schedule: timer.schedule.clone(),
            request: JobRequest::new(
                &timer.method,
                "",
                timer.path.clone(),
                Vec::new(),
                timer.body.clone(),
            ),
            source: CONFIG_SOURCE.to_string(),
        })
        .collect()
}

/// The source of timers that come from `[[timer]]` tables (kept in step with the file).
pub const CONFIG_SOURCE: &str = "config";
