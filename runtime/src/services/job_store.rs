//! The job store trait: everything the services need from durable storage, in one place.
//!
//! Owns: `JobStore` (enqueue, claim due jobs under a lease, record an outcome — done, retry
//! later or dead-letter —, timers with a compare-and-set of their next due time, the lease
//! sweep, and the listing and repair `wsrun jobs` does) and the values that cross it.
//! Must not touch: any storage detail (the SQLite journal is `journal` + `store`; a later
//! PostgreSQL store implements this trait too), Python or WASM (they only see `Services`).
//!
//! Rules every store keeps (checked once for all stores by `store_suite`):
//! - a job is durable when `enqueue` returns; it is delivered at least once;
//! - a claim leases a job to one owner until the lease runs out; nobody else gets it before;
//! - each claim counts an attempt; `Outcome::Retry` makes the job due again at its time;
//!   `Outcome::Dead` moves it to the dead-letter list;
//! - a due timer becomes exactly one job per period however many pollers race (its next due
//!   time moves with a compare-and-set).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::Notify;

use super::error::StoreResult;
use super::job::{JobRecord, JobState, NewJob, TimerRecord};

/// A store call that resolves once the store has answered (for writes: once durable).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// How a claimed job's delivery ended, as the store records it.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done,
    /// Try again at this time (Unix ms); the reason is kept for `wsrun jobs show`.
    Retry {
        at: i64,
        error: String,
    },
    /// No more attempts: to the dead-letter list.
    Dead {
        error: String,
    },
}

/// What one dispatcher round asks for.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Who holds the lease (a worker's pid for SQLite).
    pub owner: i64,
    /// At most this many jobs.
    pub limit: usize,
    /// How long the jobs are this owner's before anyone may claim them again.
    pub lease: Duration,
    /// `max_attempts` of the jobs that due timers turn into.
    pub timer_attempts: u32,
    /// Fair shares: at most this many jobs of one account (a tenant, or a wasm route outside
    /// tenants; not the operator's) in delivery at once for this owner ...
    pub per_account: usize,
    /// ... counting the ones this owner delivers now, by account (absent: none).
    pub busy: Vec<(String, usize)>,
    /// The route prefixes this owner serves: a store shared by nodes hands it only jobs
    /// whose path one of them serves (`None`: every job; one node's store ignores it).
    pub routes: Option<Vec<String>>,
}

impl Claim {
    /// Jobs of `account` this owner has in delivery now.
    pub fn busy(&self, account: &str) -> usize {
        self.busy
            .iter()
            .find(|(a, _)| a == account)
            .map_or(0, |(_, n)| *n)
    }

    /// How many more jobs of `account` this round may take.
    pub fn room(&self, account: &str) -> usize {
        match account {
            "" => self.limit,
            _ => self
                .per_account
                .saturating_sub(self.busy(account))
                .min(self.limit),
        }
    }
}

/// What a dispatcher round gets back.
#[derive(Debug, Default)]
pub struct Polled {
    pub jobs: Vec<JobRecord>,
    /// When the next job or timer is due (Unix ms), if any.
    pub next_due: Option<i64>,
}

/// `wsrun jobs list`: the first jobs of each state, the counts, and every timer.
#[derive(Debug, Default)]
pub struct Listing {
    /// Pending jobs (oldest first), then dead ones; at most `limit` of each.
    pub jobs: Vec<(JobState, JobRecord)>,
    pub pending: u64,
    pub dead: u64,
    /// By name.
    pub timers: Vec<TimerRecord>,
    /// Pending jobs that wait because no live node serves their path: (path, how many).
    pub unserved: Vec<(String, u64)>,
}

/// Durable jobs and timers. Cheap calls from any thread; `_blocking` forms block the caller
/// (for Python's threads), the others resolve on the caller's event loop.
pub trait JobStore: Send + Sync {
    /// Stores `job`; returns its id once it is durable.
    fn enqueue_blocking(&self, job: NewJob) -> StoreResult<i64>;
    fn enqueue(&self, job: NewJob) -> StoreFuture<'_, i64>;

    /// Creates or replaces `timer.owner`'s timer `timer.name`; it first fires at `timer.next_due`.
    fn set_timer_blocking(&self, timer: TimerRecord) -> StoreResult<()>;
    fn set_timer(&self, timer: TimerRecord) -> StoreFuture<'_, ()>;

    /// Removes `owner`'s timer `name`; false if it had none by that name.
    fn cancel_timer_blocking(&self, owner: String, name: String) -> StoreResult<bool>;
    fn cancel_timer(&self, owner: String, name: String) -> StoreFuture<'_, bool>;

    /// Fires due timers (one job per timer and period, whoever else polls), then claims up
    /// to `claim.limit` due jobs for `claim.owner`, counting an attempt on each.
    fn poll(&self, claim: Claim) -> StoreFuture<'_, Polled>;

    /// Records how the delivery of a claimed job ended.
    fn record(&self, id: i64, outcome: Outcome) -> StoreFuture<'_, ()>;

    /// Frees the leases held by owners that are known to be gone; returns how many jobs.
    fn sweep_leases(&self) -> StoreResult<usize>;

    /// Woken when a job becomes due at once, so a dispatcher of this process need not poll.
    fn wake(&self) -> &Notify;

    /// Makes the timers of `source` exactly `wanted`: others of that source are removed,
    /// changed ones replaced, and an unchanged one (same schedule and request) keeps its
    /// next due time.
    fn sync_timers(&self, source: &str, wanted: Vec<TimerRecord>) -> StoreResult<()>;

    /// For `wsrun jobs list`.
    fn list(&self, limit: usize) -> StoreResult<Listing>;
    /// One job, pending or dead.
    fn show(&self, id: i64) -> StoreResult<Option<(JobState, JobRecord)>>;
    /// A dead job back to pending with its attempts reset, or a pending one due now; false
    /// if no such job, or it is leased right now.
    fn retry(&self, id: i64) -> StoreResult<bool>;
    /// Deletes dead jobs (and pending ones too when `pending`), then gives the space back to
    /// the file system; returns how many went.
    fn purge(&self, pending: bool) -> StoreResult<usize>;

    /// Stops the store's threads and closes its connections; later calls fail with
    /// `StoreError::Closed`. Returns once they are gone.
    fn shutdown(&self);
}

/// One account's due jobs for a claim, oldest first as `(id, run_at)`, and how many of its
/// jobs are in delivery (the claiming owner's) plus those this claim took.
pub struct AccountQueue {
    pub busy: usize,
    pub jobs: VecDeque<(i64, i64)>,
}

/// The fair share every store claims by: up to `limit` job ids, each next one from the
/// account with the fewest jobs in delivery, then the earliest due.
pub fn pick_fairly(mut queues: Vec<AccountQueue>, limit: usize) -> Vec<i64> {
    let mut chosen = Vec::new();
    while chosen.len() < limit {
        let next = queues
            .iter_mut()
            .filter(|q| !q.jobs.is_empty())
            .min_by_key(|q| (q.busy, q.jobs.front().map_or(i64::MAX, |j| j.1)));
        let Some(queue) = next else {
            break;
        };
        if let Some((id, _)) = queue.jobs.pop_front() {
            chosen.push(id);
            queue.busy += 1;
        }
    }
    chosen
}
