//! The dispatcher: one task per worker that claims due jobs and delivers them.
//!
//! Owns: the loop that asks the journal for due work (firing due timers on the way), the
//! per-worker job concurrency budget and each account's share of it (`per_account`: what
//! the worker has in flight by account goes with each claim), delivery through the `Deliver` trait, and the retry
//! policy — 2xx/3xx done; 5xx, trap or timeout retried with exponential backoff and jitter
//! up to `max_attempts`, then dead-letter; 4xx (except 408/429) and "no route" go to the
//! dead-letter table at once, since repeating them cannot help. Must not touch: routing or
//! handlers (the worker implements `Deliver`), SQL (`journal`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::watch;

use super::dispatch_faults::{record_outcome, PollFaults};
use super::job::JobRecord;
use super::job_store::{Claim, Outcome};
use super::journal::now_ms;
use super::Services;
use crate::config::{format_duration, JobsConfig};

/// How a delivery ended, as seen by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The route answered with this status (the body was read to its end).
    Status(u16),
    /// No route serves the job's host and path any more.
    NoRoute,
    /// The response broke off, or the handler could not be reached; the reason.
    Failed(String),
}

/// Delivers one job in-process through the router (implemented by the worker).
pub trait Deliver {
    fn deliver(&self, job: JobRecord) -> Pin<Box<dyn Future<Output = Delivered>>>;
}

/// Longest sleep between two looks at the journal: jobs queued by other workers, and timers
/// they set, are noticed at least this often.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The jobs one account (a tenant, or a wasm route outside tenants) may have in delivery at
/// once in one worker: half the worker's `[jobs] concurrency`, at least one, so another
/// tenant's job always finds a free slot however slow the first tenant's jobs are.
pub fn per_account(concurrency: usize) -> usize {
    (concurrency / 2).max(1)
}

/// This worker's deliveries in flight, in total and by account.
#[derive(Default)]
struct InFlight {
    total: Cell<usize>,
    by_account: RefCell<HashMap<String, usize>>,
}

impl InFlight {
    fn start(&self, account: &str) {
        self.total.set(self.total.get() + 1);
        *self
            .by_account
            .borrow_mut()
            .entry(account.to_string())
            .or_default() += 1;
    }

    fn end(&self, account: &str) {
        self.total.set(self.total.get().saturating_sub(1));
        let mut by_account = self.by_account.borrow_mut();
        if let Some(n) = by_account.get_mut(account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by_account.remove(account);
            }
        }
    }

    fn busy(&self) -> Vec<(String, usize)> {
        let by_account = self.by_account.borrow();
        by_account.iter().map(|(a, n)| (a.clone(), *n)).collect()
    }
}

/// Runs until `draining` turns true (a journal that fails makes it back off: see
/// `dispatch_faults`); deliveries in flight then finish on their own tasks.
pub async fn run(
    services: Services,
    deliver: Rc<dyn Deliver>,
    mut draining: watch::Receiver<bool>,
) {
    let owner = i64::from(std::process::id());
    let settings = services.settings().clone();
    let in_flight = Rc::new(InFlight::default());
    let store = services.store();
    let mut faults = PollFaults::default();
    loop {
        if *draining.borrow() {
            return;
        }
        let free = settings.concurrency.saturating_sub(in_flight.total.get());
        if free == 0 {
            // The budget is spent: nothing to ask the journal until a delivery ends.
            tokio::select! {
                _ = store.wake().notified() => {}
                _ = draining.changed() => {}
            }
            continue;
        }
        let claim = Claim {
            owner,
            limit: free,
            lease: settings.lease,
            timer_attempts: settings.max_attempts,
            per_account: per_account(settings.concurrency),
            busy: in_flight.busy(),
            routes: services.routes(),
        };
        let polled = store.poll(claim).await;
        let mut wait = POLL_EVERY;
        let next_due = match polled {
            Ok(polled) => {
                faults.ok();
                for job in polled.jobs {
                    let account = job.account.clone();
                    in_flight.start(&account);
                    let (deliver, services, in_flight) =
                        (deliver.clone(), services.clone(), in_flight.clone());
                    tokio::task::spawn_local(async move {
                        deliver_one(&services, deliver.as_ref(), job).await;
                        in_flight.end(&account);
                        services.store().wake().notify_one();
                    });
                }
                polled.next_due
            }
            Err(err) => {
                wait = faults.failed(&err);
                None
            }
        };
        let wait = until(next_due).min(wait);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = store.wake().notified() => {}
            _ = draining.changed() => {}
        }
    }
}

fn until(due: Option<i64>) -> Duration {
    match due {
        Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
        None => Duration::MAX,
    }
}

async fn deliver_one(services: &Services, deliver: &dyn Deliver, job: JobRecord) {
    let (id, attempts, max_attempts) = (job.id, job.attempts, job.max_attempts);
    let target = format!("{} {}", job.request.method, job.request.path);
    let delivered = deliver.deliver(job).await;
    let outcome = decide(&delivered, attempts, max_attempts, services.settings());
    match &outcome {
        Outcome::Done => tracing::debug!("job {id} ({target}): delivered"),
        Outcome::Retry { at, error } => tracing::warn!(
            "job {id} ({target}): attempt {attempts} of {max_attempts} failed ({error}); retrying in {}",
            format_duration(Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)))
        ),
        Outcome::Dead { error } => tracing::error!(
            "job {id} ({target}): {error}; moved to the dead-letter table after {attempts} attempt(s)"
        ),
    }
    // The lease covers a record that fails for good: the job is delivered again once it
    // runs out.
    record_outcome(services, id, &target, outcome).await;
}

/// The retry policy.
pub fn decide(
    delivered: &Delivered,
    attempts: u32,
    max_attempts: u32,
    settings: &JobsConfig,
) -> Outcome {
    let error = match delivered {
        Delivered::Status(status) if *status < 400 => return Outcome::Done,
        Delivered::Status(status) if *status < 500 && *status != 408 && *status != 429 => {
            return Outcome::Dead {
                error: format!("refused with status {status}"),
            };
        }
        Delivered::NoRoute => {
            return Outcome::Dead {
                error: "no route serves its path".to_string(),
            };
        }
        Delivered::Status(status) => format!("status {status}"),
        Delivered::Failed(reason) => reason.clone(),
    };
    if attempts >= max_attempts {
        return Outcome::Dead { error };
    }
    let delay = backoff(attempts, settings);
    Outcome::Retry {
        at: now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        error,
    }
}

/// `backoff * 2^(attempt-1)`, capped at `max_backoff`, then a random point in its upper half
/// ("equal jitter"), so retries of many jobs that failed together spread out.
pub fn backoff(attempt: u32, settings: &JobsConfig) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let full = settings
        .backoff
        .saturating_mul(1u32 << doublings)
        .min(settings.max_backoff);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JobsConfig {
        JobsConfig {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..JobsConfig::default()
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let s = settings();
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            for _ in 0..50 {
                let d = backoff(attempt, &s).as_millis();
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
            }
        }
    }

    #[test]
    fn outcomes_follow_the_status() {
        let s = settings();
        assert!(matches!(
            decide(&Delivered::Status(204), 1, 3, &s),
            Outcome::Done
        ));
        assert!(matches!(
            decide(&Delivered::Status(302), 1, 3, &s),
            Outcome::Done
        ));
        assert!(matches!(
            decide(&Delivered::Status(404), 1, 3, &s),
            Outcome::Dead { .. }
        ));
        assert!(matches!(
            decide(&Delivered::NoRoute, 1, 3, &s),
            Outcome::Dead { .. }
        ));
        assert!(matches!(
            decide(&Delivered::Status(429), 1, 3, &s),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            decide(&Delivered::Status(503), 2, 3, &s),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            decide(&Delivered::Status(500), 3, 3, &s),
            Outcome::Dead { .. }
        ));
        let failed = Delivered::Failed("trap".into());
        assert!(matches!(decide(&failed, 1, 1, &s), Outcome::Dead { .. }));
    }
}
