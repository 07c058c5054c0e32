//! Store suite cases about accounts: quotas counted from what the store holds, timers kept
//! apart by owner, claims shared fairly, and a timer that never piles up jobs.
//!
//! Owns: those cases (run by `store_suite::suite`). Must not touch: any store's internals.

use std::time::Duration;

use super::{block_on, claim, job, record, timer, A, HOUR};
use crate::config::{JobQuotas, Schedule};
use crate::services::error::StoreError;
use crate::services::job::{NewJob, Quota, TimerRecord};
use crate::services::job_store::{Claim, JobStore, Outcome};
use crate::services::journal::now_ms;

fn limits(max_jobs: u64, max_job_bytes: u64, max_timers: u64) -> JobQuotas {
    JobQuotas {
        max_jobs,
        max_job_bytes,
        max_timers,
        min_timer_period: Duration::ZERO,
        max_attempts: 10,
    }
}

fn quota(account: &str, limits: JobQuotas) -> Quota {
    Quota {
        account: account.to_string(),
        limits: Some(limits),
    }
}

fn job_of(quota: &Quota, body: usize) -> NewJob {
    let mut new = job("/q", Duration::from_secs(3600), 1);
    new.request.body = vec![b'x'; body];
    new.quota = quota.clone();
    new
}

fn over_quota<T: std::fmt::Debug>(result: Result<T, StoreError>, limit: &str) {
    match result {
        Err(StoreError::OverQuota(message)) => assert!(message.contains(limit), "{message}"),
        other => panic!("expected a refusal naming {limit}, got {other:?}"),
    }
}

pub fn quotas_count_jobs_and_bytes<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let acme = quota("tenant acme", limits(3, 10_000, 10));
    for _ in 0..2 {
        store.enqueue_blocking(job_of(&acme, 10)).expect("enqueue");
    }
    let dead = block_on(store.enqueue(job_of(&acme, 10))).expect("enqueue");
    over_quota(store.enqueue_blocking(job_of(&acme, 10)), "max_jobs");
    // Other accounts, and the operator's jobs, are not counted against it.
    let other = quota("tenant other", limits(3, 10_000, 10));
    store.enqueue_blocking(job_of(&other, 10)).expect("other");
    store
        .enqueue_blocking(job("/op", HOUR, 1))
        .expect("operator");
    // Counted from the store: another connection (a worker, a restart) sees the same.
    let again = make("s");
    over_quota(block_on(again.enqueue(job_of(&acme, 10))), "max_jobs");
    // A dead-lettered job still holds its place until purged.
    assert!(again.retry(dead).expect("due now"));
    let claimed = claim(&again, A, HOUR);
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].account, "tenant acme");
    record(&again, dead, Outcome::Dead { error: "x".into() });
    over_quota(again.enqueue_blocking(job_of(&acme, 10)), "max_jobs");
    again.purge(false).expect("purge");
    again
        .enqueue_blocking(job_of(&acme, 10))
        .expect("room after purge");
    // Bytes: a body that would pass max_job_bytes is refused, a small one still fits.
    let small = quota("tenant small", limits(100, 1_000, 10));
    store
        .enqueue_blocking(job_of(&small, 500))
        .expect("enqueue");
    over_quota(store.enqueue_blocking(job_of(&small, 600)), "max_job_bytes");
    store.enqueue_blocking(job_of(&small, 100)).expect("fits");
    store.shutdown();
    again.shutdown();
}

pub fn quotas_count_timers<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let later = now_ms() + 3_600_000;
    let acme = quota("tenant acme", limits(100, 100_000, 2));
    let of = |name: &str| {
        let mut t = timer(name, later);
        t.owner = "acme".into();
        t.quota = acme.clone();
        t
    };
    store.set_timer_blocking(of("a")).expect("a");
    block_on(store.set_timer(of("b"))).expect("b");
    over_quota(store.set_timer_blocking(of("c")), "max_timers");
    store
        .set_timer_blocking(of("a"))
        .expect("replacing one adds none");
    assert!(store
        .cancel_timer_blocking("acme".into(), "a".into())
        .expect("cancel"));
    store
        .set_timer_blocking(of("c"))
        .expect("room after cancel");
    store
        .set_timer_blocking(timer("d", later))
        .expect("operator");
    store.shutdown();
}

pub fn owners_keep_timers_apart<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let later = now_ms() + 3_600_000;
    let owned = |owner: &str, due: i64| {
        let mut t = timer("x", due);
        t.owner = owner.into();
        t
    };
    // `org` and `org/team` could not be told apart in one name column; owners can.
    for (owner, due) in [("org", later), ("org/team", later + 1), ("", later + 2)] {
        store.set_timer_blocking(owned(owner, due)).expect("set");
    }
    store
        .set_timer_blocking(owned("org", later + 9))
        .expect("replace org's");
    assert!(store
        .cancel_timer_blocking("org".into(), "x".into())
        .expect("cancel"));
    let mut left: Vec<(String, String, i64)> = store
        .list(10)
        .expect("list")
        .timers
        .into_iter()
        .map(|t| (t.owner, t.name, t.next_due))
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            (String::new(), "x".into(), later + 2),
            ("org/team".into(), "x".into(), later + 1),
        ]
    );
    store.shutdown();
}

pub fn claims_are_fair_across_accounts<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let noisy = quota("tenant noisy", limits(100, 1_000_000, 10));
    let quiet = quota("tenant quiet", limits(100, 1_000_000, 10));
    let due_now = |q: &Quota| NewJob {
        delay: Duration::ZERO,
        ..job_of(q, 1)
    };
    for _ in 0..6 {
        store.enqueue_blocking(due_now(&noisy)).expect("noisy");
    }
    store
        .enqueue_blocking(due_now(&quiet))
        .expect("quiet, last");
    let poll = |limit: usize, busy: Vec<(String, usize)>| {
        let claim = Claim {
            owner: A,
            limit,
            lease: HOUR,
            timer_attempts: 3,
            per_account: 2,
            busy,
            routes: None,
        };
        block_on(store.poll(claim)).expect("poll").jobs
    };
    let first = poll(4, Vec::new());
    let accounts: Vec<&str> = first.iter().map(|j| j.account.as_str()).collect();
    assert_eq!(first.len(), 3, "{accounts:?}: noisy's share is 2");
    assert_eq!(
        accounts.iter().filter(|a| **a == "tenant quiet").count(),
        1,
        "the quiet tenant's job, queued last, is in the first round"
    );
    // Noisy has its share in delivery: nothing more of it, however many slots are free.
    assert!(poll(8, vec![("tenant noisy".into(), 2)]).is_empty());
    // The fewest-in-delivery account goes first when slots are scarce.
    store
        .enqueue_blocking(due_now(&quiet))
        .expect("quiet again");
    let busy = vec![("tenant noisy".into(), 1), ("tenant quiet".into(), 0)];
    let next = poll(1, busy);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].account, "tenant quiet");
    store.shutdown();
}

pub fn a_timer_does_not_pile_up<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let every = |due: i64| TimerRecord {
        schedule: Schedule::Every(Duration::from_millis(1)),
        ..timer("fast", due)
    };
    store.set_timer_blocking(every(now_ms() - 5)).expect("set");
    let fired = claim(&store, A, HOUR);
    assert_eq!(fired.len(), 1);
    // Due again while its job is still in delivery: no second job.
    store
        .set_timer_blocking(every(now_ms() - 5))
        .expect("due again");
    assert!(claim(&store, A, HOUR).is_empty(), "a second job piled up");
    assert_eq!(store.list(10).expect("list").pending, 1);
    // Once its job is done, the timer fires again.
    record(&store, fired[0].id, Outcome::Done);
    store
        .set_timer_blocking(every(now_ms() - 5))
        .expect("due again");
    assert_eq!(claim(&store, A, HOUR).len(), 1);
    store.shutdown();
}
