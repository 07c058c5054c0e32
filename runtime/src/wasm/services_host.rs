//! The `wsrun:services` imports of a guest: `defer.enqueue` and `timers.every/once/cancel`.
//!
//! Owns: the host bindings of the `services` world (`runtime/wit/services.wit`), the per-
//! instance `ServicesHost` that turns a guest's call into a call on the worker's `Services`
//! (handed to it through `GuestState`), and the rules a guest cannot bend: a job goes to the
//! host of the route that runs the handler (`services::job::route_job_host`), never one the
//! guest names; its origin
//! says which handler queued it; its tenant's (or, outside tenants, its route's) quotas
//! apply (`Caller`); every refusal comes back as the WIT `error` variant, never a trap, and
//! a limit's refusal is logged once per instance with the tenant and the limit. Must not touch: the journal or delivery (`services`), the wasi:http plumbing, or the
//! route's other limits (`state`). A component that imports nothing of `wsrun:services` never
//! reaches this code.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker};

use super::route_info::RouteInfo;
use crate::config::Schedule;
use crate::services::job::route_job_host;
use crate::services::{Caller, JobRequest, Quota, ServiceError, Services, TimerRequest};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wsrun:services/services",
        imports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

use bindings::wsrun::services::types::{Error as WitError, Job};
use bindings::wsrun::services::{defer, timers, types};

/// The services state of one instance: which route it runs for, the worker's services, and
/// how many of its calls a limit refused (only the first is logged; `Drop` counts the rest).
pub struct ServicesHost {
    route: Arc<RouteInfo>,
    services: Option<Services>,
    over_limit: u32,
}

impl ServicesHost {
    pub fn new(route: Arc<RouteInfo>, services: Option<Services>) -> ServicesHost {
        ServicesHost {
            route,
            services,
            over_limit: 0,
        }
    }

    /// Whose name space and quotas this instance's calls come under: its tenant's (timer
    /// names in the tenant's own space), or, outside tenants, its route's quotas in the
    /// operator's name space.
    fn caller(&self) -> Caller {
        let (owner, account) = match &self.route.tenant {
            Some(tenant) => (tenant.clone(), format!("tenant {tenant}")),
            None => (
                String::new(),
                format!(
                    "route {}{}",
                    route_job_host(&self.route.hosts),
                    self.route.prefix
                ),
            ),
        };
        Caller {
            owner,
            quota: Quota {
                account,
                limits: Some(self.route.limits.quotas),
            },
        }
    }

    /// The request a guest's job becomes: on the route's own host, whatever the guest wrote.
    fn request(&self, job: Job) -> JobRequest {
        let host = route_job_host(&self.route.hosts);
        JobRequest::new(&job.method, host, job.path, job.headers, job.body)
    }

    /// The worker's services, or the `unavailable` error a guest gets without them.
    fn services(&self) -> Result<Services, ServiceError> {
        self.services.clone().ok_or_else(|| {
            ServiceError::Unavailable(
                "wsrun's job services are not running in this process".to_string(),
            )
        })
    }

    fn origin(&self) -> String {
        match &self.route.tenant {
            Some(tenant) => format!(
                "wasm tenant {tenant} handler {} on {}",
                self.route.name, self.route.prefix
            ),
            None => format!("wasm handler {} on {}", self.route.name, self.route.prefix),
        }
    }

    /// Logs a refusal (the guest gets it too) at a level that fits whose fault it is. A
    /// limit's refusal is a warning naming the tenant (or route) and the limit, once per
    /// instance: a guest that calls in a loop does not flood the log.
    fn refused(&mut self, call: &str, err: ServiceError) -> WitError {
        match &err {
            ServiceError::Store(_) | ServiceError::Unavailable(_) => {
                tracing::error!("{}: {call}: {err}", self.route.label())
            }
            ServiceError::OverQuota(_) | ServiceError::OverLimit(_) => {
                if self.over_limit == 0 {
                    tracing::warn!("{}: {call} refused: {err}", self.route.label());
                }
                self.over_limit = self.over_limit.saturating_add(1);
            }
            ServiceError::NoRoute { .. } | ServiceError::Invalid(_) => {
                tracing::debug!("{}: {call} refused: {err}", self.route.label())
            }
        }
        to_wit(err)
    }
}

impl Drop for ServicesHost {
    fn drop(&mut self) {
        if self.over_limit > 1 {
            tracing::warn!(
                "{}: {} service calls in all were refused by a limit in this request",
                self.route.label(),
                self.over_limit
            );
        }
    }
}

/// The WIT form of a refusal; a journal failure or a used-up quota is `unavailable` to the
/// guest (later may work), an argument over a limit is `invalid`.
fn to_wit(err: ServiceError) -> WitError {
    let message = err.to_string();
    match err {
        ServiceError::NoRoute { .. } => WitError::NoRoute(message),
        ServiceError::Invalid(_) | ServiceError::OverLimit(_) => WitError::Invalid(message),
        ServiceError::Store(_) | ServiceError::Unavailable(_) | ServiceError::OverQuota(_) => {
            WitError::Unavailable(message)
        }
    }
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl types::Host for ServicesHost {}

impl defer::Host for ServicesHost {
    async fn enqueue(
        &mut self,
        job: Job,
        delay_ms: u64,
        max_attempts: Option<u32>,
    ) -> Result<u64, WitError> {
        let request = self.request(job);
        let origin = self.origin();
        let caller = self.caller();
        let queued = match self.services() {
            Ok(services) => {
                let delay = millis(delay_ms);
                services
                    .enqueue(request, delay, max_attempts, &origin, &caller)
                    .await
            }
            Err(err) => Err(err),
        };
        queued
            .and_then(|id| {
                u64::try_from(id).map_err(|_| {
                    ServiceError::Unavailable(format!("the job store gave job id {id}"))
                })
            })
            .map_err(|err| self.refused("defer.enqueue", err))
    }
}

impl ServicesHost {
    /// Timer names are one name space per server, except that a tenant's handlers get their
    /// own (the tenant is the timer's owner in the journal, apart from its name): a tenant
    /// can neither see, replace nor cancel another tenant's timers, nor the operator's.
    async fn set_timer(
        &mut self,
        call: &str,
        name: String,
        schedule: Schedule,
        delay: Duration,
        job: Job,
    ) -> Result<(), WitError> {
        let timer = TimerRequest {
            name,
            schedule,
            delay,
            request: self.request(job),
        };
        let caller = self.caller();
        let set = match self.services() {
            Ok(services) => services.set_timer(timer, &caller).await,
            Err(err) => Err(err),
        };
        set.map_err(|err| self.refused(call, err))
    }
}

impl timers::Host for ServicesHost {
    async fn every(&mut self, name: String, period_ms: u64, job: Job) -> Result<(), WitError> {
        let schedule = Schedule::Every(millis(period_ms));
        self.set_timer("timers.every", name, schedule, Duration::ZERO, job)
            .await
    }

    async fn once(&mut self, name: String, delay_ms: u64, job: Job) -> Result<(), WitError> {
        self.set_timer("timers.once", name, Schedule::Once, millis(delay_ms), job)
            .await
    }

    async fn cancel(&mut self, name: String) -> Result<bool, WitError> {
        let caller = self.caller();
        let cancelled = match self.services() {
            Ok(services) => services.cancel_timer(&name, &caller).await,
            Err(err) => Err(err),
        };
        cancelled.map_err(|err| self.refused("timers.cancel", err))
    }
}

/// `HasData` for the linker: the instance's `ServicesHost`, borrowed from its store data.
struct ServicesData;

impl HasData for ServicesData {
    type Data<'a> = &'a mut ServicesHost;
}

/// Adds the `wsrun:services` imports to `linker`; `get` finds an instance's `ServicesHost`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ServicesHost,
) -> wasmtime::Result<()> {
    defer::add_to_linker::<T, ServicesData>(linker, get)?;
    timers::add_to_linker::<T, ServicesData>(linker, get)?;
    types::add_to_linker::<T, ServicesData>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_kind_and_message() {
        let no_route = ServiceError::NoRoute {
            host: String::new(),
            path: "/nope".into(),
        };
        assert_eq!(
            to_wit(no_route),
            WitError::NoRoute("no route serves \"/nope\"".into())
        );
        assert_eq!(
            to_wit(ServiceError::Invalid("bad".into())),
            WitError::Invalid("bad".into())
        );
        let full = crate::services::StoreError::Full {
            store: "/s/jobs.sqlite3".into(),
            detail: "disk full".into(),
        };
        assert_eq!(
            to_wit(ServiceError::Store(full)),
            WitError::Unavailable("job journal /s/jobs.sqlite3: disk full".into())
        );
    }
}
