//! The behaviour every `JobStore` must show, written once against the trait.
//!
//! Owns: `suite`, which runs each case on fresh stores from a factory, and the runs of it on
//! both stores: SQLite, and PostgreSQL on a real server (`pg_test_server`; one database per
//! store name) — the cases about accounts (quotas, timer owners, fair claims) are in
//! `store_suite_accounts.rs`.
//! Must not touch: any store's internals — only the trait is used.

use std::future::Future;
use std::time::Duration;

use super::dispatch::{decide, Delivered};
use super::error::StoreError;
use super::job::{JobRequest, JobState, NewJob, Quota, TimerRecord};
use super::job_store::{Claim, JobStore, Outcome};
use super::journal::now_ms;
use crate::config::{JobsConfig, Schedule};

pub(super) const HOUR: Duration = Duration::from_secs(3600);
pub(super) const A: i64 = 1;
const B: i64 = 2;
/// An owner no live process has (for the sweep).
const GONE: i64 = -7;

#[path = "store_suite_accounts.rs"]
mod accounts;

/// Opens a store by name (see `suite`).
type Make<'a, S> = &'a dyn Fn(&str) -> S;
/// One case of the suite.
type Case<S> = fn(Make<'_, S>);

/// Runs every case. `make(name)` opens the store called `name`: a new name gives an empty
/// store, the same name again gives another connection to the same store (as a second
/// worker, or the same one after a restart, would have).
pub fn suite<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let cases: [(&str, Case<S>); 17] = [
        ("enqueue_then_claim", enqueue_then_claim),
        (
            "concurrent_calls_each_get_their_own_result",
            concurrent_calls_each_get_their_own_result,
        ),
        ("delayed_jobs_wait", delayed_jobs_wait),
        (
            "a_lease_is_exclusive_until_it_runs_out",
            a_lease_is_exclusive_until_it_runs_out,
        ),
        ("done_jobs_leave", done_jobs_leave),
        (
            "retry_with_backoff_then_dead_letter",
            retry_with_backoff_then_dead_letter,
        ),
        (
            "a_due_timer_fires_once_for_two_claimers",
            a_due_timer_fires_once_for_two_claimers,
        ),
        ("timers_are_set_and_cancelled", timers_are_set_and_cancelled),
        (
            "config_timers_sync_keeps_rhythm",
            config_timers_sync_keeps_rhythm,
        ),
        ("admin_list_retry_and_purge", admin_list_retry_and_purge),
        ("jobs_survive_a_restart", jobs_survive_a_restart),
        (
            "gone_owners_lose_their_leases",
            gone_owners_lose_their_leases,
        ),
        (
            "quotas_count_jobs_and_bytes",
            accounts::quotas_count_jobs_and_bytes,
        ),
        ("quotas_count_timers", accounts::quotas_count_timers),
        (
            "owners_keep_timers_apart",
            accounts::owners_keep_timers_apart,
        ),
        (
            "claims_are_fair_across_accounts",
            accounts::claims_are_fair_across_accounts,
        ),
        (
            "a_timer_does_not_pile_up",
            accounts::a_timer_does_not_pile_up,
        ),
    ];
    for (name, case) in cases {
        eprintln!("store suite: {name}");
        case(&|store: &str| make(&format!("{name}-{store}")));
    }
}

pub(super) fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(future)
}

pub(super) fn job(path: &str, delay: Duration, max_attempts: u32) -> NewJob {
    let headers = vec![("X-Trace".to_string(), b"t1".to_vec())];
    NewJob {
        request: JobRequest::new("post", "", path.to_string(), headers, b"body".to_vec()),
        delay,
        max_attempts,
        origin: "suite".to_string(),
        quota: Quota::operator(),
    }
}

pub(super) fn claim(store: &dyn JobStore, owner: i64, lease: Duration) -> Vec<super::JobRecord> {
    let claim = Claim {
        owner,
        limit: 10,
        lease,
        timer_attempts: 3,
        per_account: 10,
        busy: Vec::new(),
        routes: None,
    };
    block_on(store.poll(claim)).expect("poll").jobs
}

pub(super) fn record(store: &dyn JobStore, id: i64, outcome: Outcome) {
    block_on(store.record(id, outcome)).expect("record");
}

fn enqueue_then_claim<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let first = store
        .enqueue_blocking(job("/a", Duration::ZERO, 3))
        .expect("enqueue");
    let second = block_on(store.enqueue(job("/b", Duration::ZERO, 3))).expect("enqueue");
    assert_ne!(first, second);
    let jobs = claim(&store, A, HOUR);
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![first, second], "oldest first");
    let got = &jobs[0];
    assert_eq!(got.attempts, 1, "a claim counts an attempt");
    assert_eq!(got.request, job("/a", Duration::ZERO, 3).request);
    assert_eq!(got.origin, "suite");
    assert_eq!(got.max_attempts, 3);
    store.shutdown();
}

/// Calls sent together (as many request threads would: each future sends its call when
/// made) may share a commit and one statement; each still gets its own job's id, and the
/// completions sent together all land.
fn concurrent_calls_each_get_their_own_result<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let sent: Vec<_> = (0..100)
        .map(|i| store.enqueue(job(&format!("/c/{i}"), Duration::ZERO, 3)))
        .collect();
    let ids = block_on(async {
        let mut ids = Vec::new();
        for call in sent {
            ids.push(call.await.expect("enqueue"));
        }
        ids
    });
    for (i, id) in ids.iter().enumerate() {
        let (_, record) = store.show(*id).expect("show").expect("the job exists");
        assert_eq!(
            record.request.path,
            format!("/c/{i}"),
            "job {id} is the caller's own"
        );
    }
    let mut claimed = Vec::new();
    while claimed.len() < ids.len() {
        let jobs = claim(&store, A, HOUR);
        assert!(
            !jobs.is_empty(),
            "{} of {} claimed",
            claimed.len(),
            ids.len()
        );
        claimed.extend(jobs.into_iter().map(|j| j.id));
    }
    let done: Vec<_> = claimed
        .iter()
        .map(|id| store.record(*id, Outcome::Done))
        .collect();
    block_on(async {
        for call in done {
            call.await.expect("record");
        }
    });
    assert_eq!(store.list(10).expect("list").pending, 0, "all delivered");
    store.shutdown();
}

fn delayed_jobs_wait<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let before = now_ms();
    store
        .enqueue_blocking(job("/later", HOUR, 3))
        .expect("enqueue");
    let polled = block_on(store.poll(Claim {
        owner: A,
        limit: 10,
        lease: HOUR,
        timer_attempts: 3,
        per_account: 10,
        busy: Vec::new(),
        routes: None,
    }))
    .expect("poll");
    assert!(polled.jobs.is_empty());
    let due = polled.next_due.expect("something is waiting");
    assert!(
        due >= before + 3_600_000,
        "next due {due} is the job's time"
    );
    store.shutdown();
}

fn a_lease_is_exclusive_until_it_runs_out<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let (one, two) = (make("s"), make("s"));
    let id = one
        .enqueue_blocking(job("/a", Duration::ZERO, 3))
        .expect("enqueue");
    assert_eq!(claim(&one, A, HOUR).len(), 1);
    assert!(claim(&two, B, HOUR).is_empty(), "held by A");
    assert!(
        claim(&one, A, HOUR).is_empty(),
        "not even A claims it twice"
    );
    let other = one
        .enqueue_blocking(job("/b", Duration::ZERO, 3))
        .expect("enqueue");
    let jobs = claim(&two, B, Duration::ZERO);
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![other]);
    // A lease of zero has run out at once: the next claimer takes the job over.
    let again = claim(&one, A, HOUR);
    assert_eq!(
        again.iter().map(|j| (j.id, j.attempts)).collect::<Vec<_>>(),
        vec![(other, 2)]
    );
    assert_ne!(id, other);
    one.shutdown();
    two.shutdown();
}

fn done_jobs_leave<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let id = store
        .enqueue_blocking(job("/a", Duration::ZERO, 3))
        .expect("enqueue");
    claim(&store, A, HOUR);
    record(&store, id, Outcome::Done);
    assert_eq!(store.show(id).expect("show").map(|(s, _)| s), None);
    let listing = store.list(10).expect("list");
    assert_eq!((listing.pending, listing.dead), (0, 0));
    store.shutdown();
}

fn retry_with_backoff_then_dead_letter<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let settings = JobsConfig {
        backoff: HOUR,
        max_backoff: HOUR * 2,
        ..JobsConfig::default()
    };
    let id = store
        .enqueue_blocking(job("/flaky", Duration::ZERO, 2))
        .expect("enqueue");
    let [first] = claim(&store, A, HOUR).try_into().expect("one job");
    let outcome = decide(&Delivered::Status(503), first.attempts, 2, &settings);
    let Outcome::Retry { at, .. } = &outcome else {
        panic!("first failure retries: {outcome:?}");
    };
    assert!(
        *at >= now_ms() + 1_800_000,
        "backoff (half of 1 h at least) is kept"
    );
    record(&store, id, outcome);
    assert!(
        claim(&store, B, HOUR).is_empty(),
        "not due before its backoff"
    );
    let (state, pending) = store.show(id).expect("show").expect("still there");
    assert_eq!(state, JobState::Pending);
    assert_eq!(pending.last_error.as_deref(), Some("status 503"));
    assert!(store.retry(id).expect("retry"), "made due now");
    let [second] = claim(&store, B, HOUR).try_into().expect("one job");
    assert_eq!(second.attempts, 2);
    let outcome = decide(&Delivered::Status(500), second.attempts, 2, &settings);
    assert!(matches!(outcome, Outcome::Dead { .. }), "{outcome:?}");
    record(&store, id, outcome);
    let (state, dead) = store.show(id).expect("show").expect("dead-lettered");
    assert_eq!((state, dead.attempts), (JobState::Dead, 2));
    assert_eq!(dead.last_error.as_deref(), Some("status 500"));
    assert!(
        claim(&store, A, HOUR).is_empty(),
        "dead jobs are not delivered"
    );
    store.shutdown();
}

pub(super) fn timer(name: &str, next_due: i64) -> TimerRecord {
    TimerRecord {
        owner: String::new(),
        quota: Quota::operator(),
        name: name.to_string(),
        schedule: Schedule::Every(HOUR),
        request: job("/tick", Duration::ZERO, 1).request,
        source: "api".to_string(),
        next_due,
    }
}

fn a_due_timer_fires_once_for_two_claimers<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let (one, two) = (make("s"), make("s"));
    let due = now_ms() - 10;
    one.set_timer_blocking(timer("tick", due)).expect("set");
    let claim_of = |owner| Claim {
        owner,
        limit: 10,
        lease: HOUR,
        timer_attempts: 3,
        per_account: 10,
        busy: Vec::new(),
        routes: None,
    };
    let (a, b) = block_on(async { tokio::join!(one.poll(claim_of(A)), two.poll(claim_of(B))) });
    let fired: Vec<_> = [a.expect("poll A"), b.expect("poll B")]
        .into_iter()
        .flat_map(|p| p.jobs)
        .collect();
    assert_eq!(fired.len(), 1, "one job for one period: {fired:?}");
    assert_eq!(fired[0].origin, "timer tick");
    assert_eq!(fired[0].max_attempts, 3);
    let listing = one.list(10).expect("list");
    assert_eq!(listing.timers.len(), 1);
    assert!(
        listing.timers[0].next_due > due,
        "the next due time moved on"
    );
    assert!(
        claim(&two, B, HOUR).is_empty(),
        "and does not fire again this period"
    );
    one.shutdown();
    two.shutdown();
}

fn timers_are_set_and_cancelled<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let later = now_ms() + 3_600_000;
    block_on(store.set_timer(timer("a", later))).expect("set");
    store.set_timer_blocking(timer("b", later)).expect("set");
    store
        .set_timer_blocking(timer("b", later + 5))
        .expect("replace");
    let names = |store: &S| -> Vec<(String, i64)> {
        let listing = store.list(10).expect("list");
        listing
            .timers
            .into_iter()
            .map(|t| (t.name, t.next_due))
            .collect()
    };
    assert_eq!(
        names(&store),
        vec![("a".into(), later), ("b".into(), later + 5)]
    );
    assert!(block_on(store.cancel_timer(String::new(), "a".into())).expect("cancel"));
    assert!(!store
        .cancel_timer_blocking(String::new(), "a".into())
        .expect("cancel again"));
    assert_eq!(names(&store), vec![("b".into(), later + 5)]);
    store.shutdown();
}

fn config_timers_sync_keeps_rhythm<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let config = |name: &str, due: i64| TimerRecord {
        source: "config".into(),
        ..timer(name, due)
    };
    let t0 = now_ms() + 3_600_000;
    store.set_timer_blocking(timer("api", t0)).expect("set");
    store
        .sync_timers("config", vec![config("a", t0), config("b", t0)])
        .expect("sync");
    store
        .sync_timers("config", vec![config("a", t0 + 99)])
        .expect("sync");
    let listing = store.list(10).expect("list");
    let timers: Vec<(String, i64)> = listing
        .timers
        .into_iter()
        .map(|t| (t.name, t.next_due))
        .collect();
    assert_eq!(
        timers,
        vec![("a".into(), t0), ("api".into(), t0)],
        "b went; a kept its time"
    );
    store.sync_timers("config", Vec::new()).expect("sync");
    assert_eq!(
        store.list(10).expect("list").timers.len(),
        1,
        "only the api timer stays"
    );
    store.shutdown();
}

fn admin_list_retry_and_purge<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let dead = store
        .enqueue_blocking(job("/d", Duration::ZERO, 1))
        .expect("enqueue");
    claim(&store, A, HOUR);
    let error = "refused with status 404".to_string();
    record(&store, dead, Outcome::Dead { error });
    let pending = store.enqueue_blocking(job("/p", HOUR, 1)).expect("enqueue");
    let listing = store.list(10).expect("list");
    assert_eq!((listing.pending, listing.dead), (1, 1));
    let states: Vec<(JobState, i64)> = listing.jobs.iter().map(|(s, j)| (*s, j.id)).collect();
    assert_eq!(
        states,
        vec![(JobState::Pending, pending), (JobState::Dead, dead)]
    );
    assert_eq!(
        store.list(0).expect("list").jobs.len(),
        0,
        "the limit holds"
    );
    assert!(store.retry(dead).expect("retry"));
    let (state, revived) = store.show(dead).expect("show").expect("pending again");
    assert_eq!((state, revived.attempts), (JobState::Pending, 0));
    assert!(!store.retry(12_345).expect("retry unknown"));
    let [again] = claim(&store, A, HOUR)
        .try_into()
        .expect("the revived job is due");
    assert_eq!(again.id, dead);
    assert!(
        !store.retry(dead).expect("leased"),
        "a leased job is not changed"
    );
    record(&store, dead, Outcome::Dead { error: "x".into() });
    assert_eq!(store.purge(false).expect("purge"), 1);
    assert_eq!(store.purge(true).expect("purge"), 1);
    let listing = store.list(10).expect("list");
    assert_eq!((listing.pending, listing.dead), (0, 0));
    store.shutdown();
}

fn jobs_survive_a_restart<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    let id = store
        .enqueue_blocking(job("/kept", Duration::ZERO, 3))
        .expect("enqueue");
    store
        .set_timer_blocking(timer("kept", now_ms() + 3_600_000))
        .expect("set");
    store.shutdown();
    assert!(
        matches!(
            store.enqueue_blocking(job("/x", Duration::ZERO, 1)),
            Err(StoreError::Closed)
        ),
        "a stopped store refuses calls"
    );
    let reopened = make("s");
    let jobs = claim(&reopened, A, HOUR);
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(reopened.list(10).expect("list").timers.len(), 1);
    reopened.shutdown();
}

fn gone_owners_lose_their_leases<S: JobStore>(make: &dyn Fn(&str) -> S) {
    let store = make("s");
    store
        .enqueue_blocking(job("/a", Duration::ZERO, 3))
        .expect("enqueue");
    store
        .enqueue_blocking(job("/b", Duration::ZERO, 3))
        .expect("enqueue");
    let mine = i64::from(std::process::id());
    let claim_one = |owner| {
        block_on(store.poll(Claim {
            owner,
            limit: 1,
            lease: HOUR,
            timer_attempts: 3,
            per_account: 10,
            busy: Vec::new(),
            routes: None,
        }))
        .expect("poll")
        .jobs
    };
    assert_eq!(claim_one(GONE).len(), 1);
    assert_eq!(claim_one(mine).len(), 1);
    assert_eq!(
        store.sweep_leases().expect("sweep"),
        1,
        "only the gone owner's lease"
    );
    let jobs = claim(&store, B, HOUR);
    assert_eq!(jobs.len(), 1, "its job is free again");
    store.shutdown();
}

#[test]
fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    suite(&|name: &str| super::SqliteStore::start(&root.join(name)).expect("open the store"));
}

#[test]
fn postgres_store_passes_the_suite() {
    let Some(server) = super::pg_test_server::TestServer::start() else {
        return;
    };
    suite(&|name: &str| {
        server.create_db(name);
        let backend = crate::config::PostgresBackend {
            url: server.url(name),
            password_file: None,
        };
        super::PgStore::start(&backend, "suite").expect("open the store")
    });
}
