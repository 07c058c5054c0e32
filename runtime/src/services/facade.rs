//! The `Services` value: what the Python and WASM hosts call to queue jobs and set timers.
//!
//! Owns: `Services` (built by start-up code and handed down, one per process, never a
//! global), `RouteCheck` (the services' only view of routing), the choice of store
//! (`open_store`), the checks every job and timer passes before it is stored, and the
//! `[[timer]]` tables as stored timers (`config_timers`), and `Caller`: whose name space and
//! quotas a call comes under, with the limits checked here (`max_attempts`,
//! `min_timer_period`, the target's `max_body_size`; the counted quotas are the store's).
//! Must not touch: storage details
//! (behind `JobStore`), delivery (`dispatch`), Python or wasmtime types.

use std::sync::Arc;
use std::time::Duration;

use super::error::StoreResult;
use super::job::{JobRequest, NewJob, Quota, ServiceError, TimerRecord};
use super::job_store::JobStore;
use super::journal::now_ms;
use super::pg_store::PgStore;
use super::store::SqliteStore;
use crate::config::{
    format_duration, format_size, JobsConfig, PostgresBackend, Schedule, TimerConfig,
};

/// Answers "does a route serve this (host, path)?" — the services' only view of routing.
pub trait RouteCheck: Send + Sync {
    fn serves(&self, host: &str, path: &str) -> bool;

    /// The `max_body_size` of the route that serves (host, path), if one does and it is
    /// known here (the master's check during imports knows no routes yet: `None`).
    fn max_body_size(&self, _host: &str, _path: &str) -> Option<u64> {
        None
    }

    /// The prefixes of the routes served (`None`: not known here).
    fn prefixes(&self) -> Option<Vec<String>> {
        None
    }
}

/// Who makes a service call: the operator (Python, `[[timer]]`), or a WebAssembly handler
/// with its tenant's (or route's) name space and quotas.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Whose timer names these are: a tenant's name, or empty (the operator's and the
    /// routes outside tenants share one name space).
    pub owner: String,
    /// Whose journal space the jobs and timers take, and the limits checked.
    pub quota: Quota,
}

impl Caller {
    /// The operator's calls: one name space, no quotas.
    pub fn operator() -> Caller {
        Caller::default()
    }
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

/// Opens the job store: the PostgreSQL database of `backend` (as node `node`) when one is
/// given, else the SQLite journal of `state_dir`. The one place that picks the store.
pub fn open_store(
    state_dir: &std::path::Path,
    node: &str,
    backend: Option<&PostgresBackend>,
) -> StoreResult<Arc<dyn JobStore>> {
    match backend {
        Some(backend) => Ok(Arc::new(PgStore::start(backend, node)?)),
        None => Ok(Arc::new(SqliteStore::start(state_dir)?)),
    }
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

    /// Opens the store (`settings.backend`, else `state_dir`'s journal; starting its
    /// threads) for this process, which is (part of) node `node`.
    pub fn open(
        state_dir: &std::path::Path,
        node: &str,
        settings: JobsConfig,
        routes: Arc<dyn RouteCheck>,
    ) -> StoreResult<Services> {
        let store = open_store(state_dir, node, settings.backend.as_ref())?;
        Ok(Services::new(store, routes, settings))
    }

    /// The store (for the dispatcher).
    pub fn store(&self) -> &dyn JobStore {
        self.0.store.as_ref()
    }

    /// The route prefixes this process serves now, if known (claims take only their jobs).
    pub fn routes(&self) -> Option<Vec<String>> {
        self.0.routes.prefixes()
    }

    /// The `[jobs]` settings.
    pub fn settings(&self) -> &JobsConfig {
        &self.0.settings
    }

    /// Checks a request: valid, routed, and its body within the target's `max_body_size`.
    fn check(&self, request: &JobRequest) -> Result<(), ServiceError> {
        request.validate()?;
        let (host, path) = (&request.host, request.route_path());
        if !self.0.routes.serves(host, path) {
            return Err(ServiceError::NoRoute {
                host: host.clone(),
                path: path.to_string(),
            });
        }
        let limit = self.0.routes.max_body_size(host, path);
        let size = u64::try_from(request.body.len()).unwrap_or(u64::MAX);
        match limit {
            Some(limit) if size > limit => Err(ServiceError::OverLimit(format!(
                "the job's body of {size} bytes is over the max_body_size of {} of the route serving {path:?}",
                format_size(limit)
            ))),
            _ => Ok(()),
        }
    }

    /// The attempts a job gets: as asked (at least 1, and within the caller's
    /// `max_attempts` quota), else the `[jobs]` default capped by that quota.
    fn attempts(&self, asked: Option<u32>, caller: &Caller) -> Result<u32, ServiceError> {
        let default = self.0.settings.max_attempts;
        let Some(limits) = caller.quota.limits else {
            return match asked {
                Some(0) => Err(ServiceError::Invalid(
                    "max_attempts must be at least 1".into(),
                )),
                asked => Ok(asked.unwrap_or(default)),
            };
        };
        match asked {
            Some(0) => Err(ServiceError::Invalid(
                "max_attempts must be at least 1".into(),
            )),
            Some(n) if n > limits.max_attempts => Err(ServiceError::OverLimit(format!(
                "max_attempts {n} is over the max_attempts of {} ({})",
                caller.quota.account, limits.max_attempts
            ))),
            Some(n) => Ok(n),
            None => Ok(default.min(limits.max_attempts)),
        }
    }

    fn new_job(
        &self,
        request: JobRequest,
        delay: Duration,
        max_attempts: Option<u32>,
        origin: &str,
        caller: &Caller,
    ) -> Result<NewJob, ServiceError> {
        self.check(&request)?;
        Ok(NewJob {
            request,
            delay,
            max_attempts: self.attempts(max_attempts, caller)?,
            origin: origin.to_string(),
            quota: caller.quota.clone(),
        })
    }

    /// Queues a job (blocking until it is committed); returns its id.
    pub fn enqueue_blocking(
        &self,
        request: JobRequest,
        delay: Duration,
        max_attempts: Option<u32>,
        origin: &str,
        caller: &Caller,
    ) -> Result<i64, ServiceError> {
        let job = self.new_job(request, delay, max_attempts, origin, caller)?;
        Ok(self.store().enqueue_blocking(job)?)
    }

    /// Queues a job; resolves once it is committed, to its id.
    pub async fn enqueue(
        &self,
        request: JobRequest,
        delay: Duration,
        max_attempts: Option<u32>,
        origin: &str,
        caller: &Caller,
    ) -> Result<i64, ServiceError> {
        let job = self.new_job(request, delay, max_attempts, origin, caller)?;
        Ok(self.store().enqueue(job).await?)
    }

    fn timer_record(
        &self,
        timer: TimerRequest,
        caller: &Caller,
    ) -> Result<TimerRecord, ServiceError> {
        check_timer_name(&timer.name)?;
        self.check(&timer.request)?;
        if let Schedule::Every(period) = &timer.schedule {
            if period.is_zero() {
                return Err(ServiceError::Invalid(
                    "a timer's period must be above 0".into(),
                ));
            }
            if let Some(limits) = caller.quota.limits {
                if *period < limits.min_timer_period {
                    return Err(ServiceError::OverLimit(format!(
                        "a period of {} is under the min_timer_period of {} ({})",
                        format_duration(*period),
                        caller.quota.account,
                        format_duration(limits.min_timer_period)
                    )));
                }
            }
        }
        let next_due = timer.schedule.first_due(now_ms(), timer.delay);
        Ok(TimerRecord {
            owner: caller.owner.clone(),
            name: timer.name,
            schedule: timer.schedule,
            request: timer.request,
            source: "api".to_string(),
            next_due,
            quota: caller.quota.clone(),
        })
    }

    /// Creates or replaces the caller's durable timer `timer.name` (blocking until committed).
    pub fn set_timer_blocking(
        &self,
        timer: TimerRequest,
        caller: &Caller,
    ) -> Result<(), ServiceError> {
        let record = self.timer_record(timer, caller)?;
        Ok(self.store().set_timer_blocking(record)?)
    }

    pub async fn set_timer(
        &self,
        timer: TimerRequest,
        caller: &Caller,
    ) -> Result<(), ServiceError> {
        let record = self.timer_record(timer, caller)?;
        Ok(self.store().set_timer(record).await?)
    }

    /// Removes the caller's durable timer `name`; false if it had none by that name.
    pub fn cancel_timer_blocking(&self, name: &str, caller: &Caller) -> Result<bool, ServiceError> {
        check_timer_name(name)?;
        let owner = caller.owner.clone();
        Ok(self
            .store()
            .cancel_timer_blocking(owner, name.to_string())?)
    }

    pub async fn cancel_timer(&self, name: &str, caller: &Caller) -> Result<bool, ServiceError> {
        check_timer_name(name)?;
        let owner = caller.owner.clone();
        Ok(self.store().cancel_timer(owner, name.to_string()).await?)
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
            owner: String::new(),
            quota: Quota::operator(),
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
