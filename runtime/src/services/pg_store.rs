//! The PostgreSQL job store: several wsrun nodes share durable jobs and timers through one
//! database.
//!
//! Owns: `PgStore` (the `JobStore` over `pg_thread` + `pg_sql`), turning `[jobs] backend`
//! (with `password_file` or `PGPASSWORD`) into a connection config with bounded timeouts,
//! and the caller-side time limit on every call. Must not touch: SQL (`pg_sql`, `pg_claim`,
//! `pg_schema`), what happens to a claimed job (`dispatch`).
//!
//! Client crate: the synchronous `postgres` crate on a dedicated thread per process, the
//! same shape as the SQLite journal thread: one connection that runs a burst of commands in
//! one transaction (group commit), answers each caller after the commit, and is never driven
//! by the worker's own event loop (which runs Python and WASM; a database call there must
//! not stall requests). `tokio-postgres` would have needed a second runtime or a pool shared
//! with that loop for no gain. The dispatcher's polls and outcomes go to a second such thread
//! on its own connection (claims and completions then never wait behind a burst of
//! enqueues, and the two commit in parallel); a third connection per process LISTENs for
//! `wsrun_jobs` notifications.
//!
//! A call never hangs a request: blocking calls wait at most `CALL_TIMEOUT`, connecting
//! at most `CONNECT_TIMEOUT`, a statement at most 5 s (`SESSION_OPTIONS`); while the database is
//! down, calls fail at once with the last connection error and the thread tries again.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use super::error::{StoreError, StoreResult};
use super::job::{JobRecord, JobState, NewJob, TimerRecord};
use super::job_store::{Claim, JobStore, Listing, Outcome, Polled, StoreFuture};
use super::pg_sql::{PgCtx, PgTx};
use super::pg_task::{complete_task, enqueue_task, task, Reply, Task};
use super::pg_thread::{self, process_alive, Command, Link, Role};
use crate::config::PostgresBackend;

/// Longest a caller waits for the store thread's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection attempt takes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The settings of every connection, sent before the URL's own `options` (so a setting the
/// URL gives wins): a statement runs at most 5 s, and is never JIT-compiled. JIT pays off
/// for long analytic queries; the store's statements are all short, yet a plan whose cost
/// passes `jit_above_cost` was compiled by LLVM on every run, and every plan the store's
/// planner settings price out has such a cost (1e10): the housekeeping's two-row
/// `DELETE FROM wsrun_processes` took 22-120 ms each second, on the connection that carries
/// the enqueues (their p99 at 1,000/s: bench/README.md).
const SESSION_OPTIONS: &str = "-c statement_timeout=5000 -c jit=off";

/// A handle on the PostgreSQL store of this process; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct PgStore {
    /// Enqueues, timers and `wsrun jobs`: the command thread with housekeeping.
    commands: std_mpsc::Sender<Command>,
    /// The dispatcher's polls and outcomes, on a second connection, so claims and
    /// completions do not wait behind a burst of enqueues (and the two commit in parallel).
    deliveries: std_mpsc::Sender<Command>,
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

/// The connection config of `backend`, and how errors name the database (no password).
pub fn connection_config(backend: &PostgresBackend) -> StoreResult<(postgres::Config, String)> {
    let bad = |detail: String| StoreError::other("[jobs] backend", detail);
    let mut config: postgres::Config = backend.url.parse().map_err(|e| bad(format!("{e}")))?;
    if config.get_password().is_none() {
        if let Some(file) = &backend.password_file {
            config.password(read_password(file)?);
        } else if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let options = match config.get_options() {
        Some(own) => format!("{SESSION_OPTIONS} {own}"),
        None => SESSION_OPTIONS.to_string(),
    };
    config.options(&options);
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(10));
    config.tcp_user_timeout(CALL_TIMEOUT);
    config.application_name("wsrun");
    let shown = shown(&config);
    Ok((config, shown))
}

fn read_password(file: &Path) -> StoreResult<String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| StoreError::other(format!("[jobs] password_file {}", file.display()), e))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// `postgres://user@host:port/db` (never the password).
fn shown(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

impl PgStore {
    /// Starts the store threads of this process for `backend`, as node `node`. Connects
    /// lazily: the first call opens the connection (and migrates the schema).
    pub fn start(backend: &PostgresBackend, node: &str) -> StoreResult<PgStore> {
        let (config, store) = connection_config(backend)?;
        let ctx = PgCtx {
            store,
            node: node.to_string(),
            pid: i64::from(std::process::id()),
        };
        let wake = Arc::new(Notify::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (commands, worker) = command_thread("wsrun-pg", &config, &ctx, &wake, Role::Commands)?;
        let (deliveries, delivery) =
            command_thread("wsrun-pg-claims", &config, &ctx, &wake, Role::Deliveries)?;
        let (listen_wake, listen_stop) = (wake.clone(), stop.clone());
        let listener = std::thread::Builder::new()
            .name("wsrun-pg-listen".to_string())
            .spawn(move || pg_thread::listen(config, ctx, listen_wake, listen_stop));
        let mut threads = vec![worker, delivery];
        match listener {
            Ok(listener) => threads.push(listener),
            Err(e) => tracing::warn!("jobs: no listener thread ({e}); polling only"),
        }
        Ok(PgStore {
            commands,
            deliveries,
            threads: Arc::new(Mutex::new(threads)),
            stop,
            wake,
        })
    }

    fn call_blocking<T, F>(&self, wakes: bool, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut PgTx<'_, '_>, i64) -> StoreResult<T> + Send + 'static,
    {
        self.blocking_task(&self.commands, |reply| task(work, reply, wakes))
    }

    fn call<T, F>(&self, wakes: bool, work: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnMut(&mut PgTx<'_, '_>, i64) -> StoreResult<T> + Send + 'static,
    {
        self.async_task(&self.commands, |reply| task(work, reply, wakes))
    }

    /// Sends the task `make` builds around a reply and waits for the answer.
    fn blocking_task<T: Send + 'static>(
        &self,
        thread: &std_mpsc::Sender<Command>,
        make: impl FnOnce(Reply<T>) -> Box<dyn Task>,
    ) -> StoreResult<T> {
        let (sender, receiver) = std_mpsc::sync_channel(1);
        let reply: Reply<T> = Box::new(move |result| {
            let _ = sender.send(result);
        });
        if thread.send(Command::Run(make(reply))).is_err() {
            return Err(StoreError::Closed);
        }
        match receiver.recv_timeout(CALL_TIMEOUT) {
            Ok(result) => result,
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(timed_out()),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::Closed),
        }
    }

    /// Sends the task `make` builds around a reply; the future is its answer.
    fn async_task<T: Send + 'static>(
        &self,
        thread: &std_mpsc::Sender<Command>,
        make: impl FnOnce(Reply<T>) -> Box<dyn Task>,
    ) -> StoreFuture<'_, T> {
        let (sender, receiver) = oneshot::channel();
        let reply: Reply<T> = Box::new(move |result| {
            let _ = sender.send(result);
        });
        let sent = thread.send(Command::Run(make(reply))).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            match tokio::time::timeout(CALL_TIMEOUT, receiver).await {
                Ok(answer) => answer.map_err(|_| StoreError::Closed)?,
                Err(_) => Err(timed_out()),
            }
        })
    }
}

/// Starts a command thread on its own connection (`housekeeping`: it also heartbeats and
/// sweeps leases); the sender its commands go to.
fn command_thread(
    name: &str,
    config: &postgres::Config,
    ctx: &PgCtx,
    wake: &Arc<Notify>,
    role: Role,
) -> StoreResult<(std_mpsc::Sender<Command>, std::thread::JoinHandle<()>)> {
    let (commands, receiver) = std_mpsc::channel();
    let link = Link::new(config.clone(), ctx.clone(), role);
    let wake = wake.clone();
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || pg_thread::run(link, receiver, wake))
        .map_err(|e| StoreError::other("cannot start the job store thread", e))?;
    Ok((commands, thread))
}

fn timed_out() -> StoreError {
    StoreError::Busy {
        store: "postgres".to_string(),
        detail: format!(
            "no answer from the job store within {} s",
            CALL_TIMEOUT.as_secs()
        ),
    }
}

impl JobStore for PgStore {
    fn enqueue_blocking(&self, job: NewJob) -> StoreResult<i64> {
        self.blocking_task(&self.commands, |reply| enqueue_task(job, reply))
    }

    fn enqueue(&self, job: NewJob) -> StoreFuture<'_, i64> {
        self.async_task(&self.commands, |reply| enqueue_task(job, reply))
    }

    fn set_timer_blocking(&self, timer: TimerRecord) -> StoreResult<()> {
        self.call_blocking(false, move |tx, _| tx.set_timer(&timer))
    }

    fn set_timer(&self, timer: TimerRecord) -> StoreFuture<'_, ()> {
        self.call(false, move |tx, _| tx.set_timer(&timer))
    }

    fn cancel_timer_blocking(&self, owner: String, name: String) -> StoreResult<bool> {
        self.call_blocking(false, move |tx, _| tx.cancel_timer(&owner, &name))
    }

    fn cancel_timer(&self, owner: String, name: String) -> StoreFuture<'_, bool> {
        self.call(false, move |tx, _| tx.cancel_timer(&owner, &name))
    }

    fn poll(&self, claim: Claim) -> StoreFuture<'_, Polled> {
        let work = move |tx: &mut PgTx<'_, '_>, now| {
            tx.fire_due_timers(now, claim.timer_attempts)?;
            let jobs = tx.claim(&claim, now)?;
            let next_due = tx.next_due(claim.routes.as_deref())?;
            Ok(Polled { jobs, next_due })
        };
        self.async_task(&self.deliveries, |reply| task(work, reply, false))
    }

    fn record(&self, id: i64, outcome: Outcome) -> StoreFuture<'_, ()> {
        if matches!(outcome, Outcome::Done) {
            return self.async_task(&self.deliveries, |reply| complete_task(id, reply));
        }
        let work = move |tx: &mut PgTx<'_, '_>, now| match &outcome {
            Outcome::Done => tx.complete(id),
            Outcome::Retry { at, error } => tx.reschedule(id, *at, error),
            Outcome::Dead { error } => tx.bury(id, error, now),
        };
        self.async_task(&self.deliveries, |reply| task(work, reply, false))
    }

    fn sweep_leases(&self) -> StoreResult<usize> {
        self.call_blocking(false, |tx, now| tx.sweep(now, &process_alive))
    }

    fn wake(&self) -> &Notify {
        &self.wake
    }

    fn sync_timers(&self, source: &str, wanted: Vec<TimerRecord>) -> StoreResult<()> {
        let source = source.to_string();
        self.call_blocking(false, move |tx, _| tx.sync_timers(&source, &wanted))
    }

    fn list(&self, limit: usize) -> StoreResult<Listing> {
        self.call_blocking(false, move |tx, now| {
            let (pending, dead) = tx.counts()?;
            Ok(Listing {
                jobs: tx.list(limit)?,
                pending,
                dead,
                timers: tx.timers()?,
                unserved: tx.unserved(now)?,
            })
        })
    }

    fn show(&self, id: i64) -> StoreResult<Option<(JobState, JobRecord)>> {
        self.call_blocking(false, move |tx, _| tx.show(id))
    }

    fn retry(&self, id: i64) -> StoreResult<bool> {
        self.call_blocking(true, move |tx, now| tx.retry(id, now))
    }

    fn purge(&self, pending: bool) -> StoreResult<usize> {
        self.call_blocking(false, move |tx, _| tx.purge(pending))
    }

    /// Stops all three threads and waits for them: their connections are closed on return.
    fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.commands.send(Command::Stop);
        let _ = self.deliveries.send(Command::Stop);
        let threads = match self.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(_) => Vec::new(),
        };
        for thread in threads {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
#[path = "pg_session_tests.rs"]
mod tests;
