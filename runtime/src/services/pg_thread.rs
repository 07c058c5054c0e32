//! The PostgreSQL store's threads: the command thread (group commit, heartbeat, lease
//! sweep) and the listener (LISTEN/NOTIFY wake-ups).
//!
//! Owns: `Link` (the command thread's connection: opened when first needed, the schema
//! migrated on each new connection, re-opened after a failure but at most once per
//! `RECONNECT_PAUSE`, so a database that is down costs callers one quick refusal, never a
//! hang), running a batch of tasks (`pg_task`) — a burst of plain enqueues as one statement
//! with no transaction around it, anything else in one transaction — the groupable ones in
//! one statement per kind (`pg_batch`), and if anything fails, all of them again each in a
//! savepoint, so one refused task does not undo the others — and answering each caller after
//! the commit, and the listener thread that wakes this process's dispatcher when any node
//! queues a job that is due at once. Must not touch: SQL (`pg_sql`, `pg_batch`, `pg_claim`,
//! `pg_schema`), the handle callers hold (`pg_store`), delivery.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use tokio::sync::Notify;

use super::down_log::DownLog;
use super::error::{StoreError, StoreResult};
use super::journal::now_ms;
use super::pg_batch::{enqueue_alone, run_grouped};
use super::pg_schema;
use super::pg_sql::{pg_error, PgCtx, PgTx, Session, SWEEP_PLANNER};
use super::pg_task::Task;

/// At most this many commands share one transaction.
const MAX_BATCH: usize = 256;
/// How often this process records that it is alive and sweeps leases of gone processes.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// After a failed connection attempt, calls fail at once with its error for this long.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// How often the listener looks at its stop flag while no notification comes.
const LISTEN_TICK: Duration = Duration::from_millis(200);

pub enum Command {
    Run(Box<dyn Task>),
    /// Ends the thread (after answering what came before).
    Stop,
}

/// What a command thread's connection is for (`pg_store` starts one thread of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Enqueues, timers, `wsrun jobs`, and the housekeeping (heartbeat, lease sweep).
    Commands,
    /// The dispatcher's claims and outcomes.
    Deliveries,
}

/// Planner settings of the deliveries connection. Its statements are look-ups by key or
/// ordered walks of an index with a small LIMIT, but the planner, without column statistics
/// (a new table, until autovacuum's first ANALYZE: a minute or more) or with a generic plan
/// cached while the table was nearly empty, chose a bitmap scan and a sort of every due job to
/// find the oldest 32, and a sequential scan of the table to complete or lease jobs by id:
/// O(backlog) per claim and per completion (12 ms per claim at 20,000 pending jobs against
/// 0.06 ms as an index walk; bench/README.md). Nothing is forbidden by these settings (a
/// statement with no other plan still gets one); those plans are priced out.
pub(super) const DELIVERIES_SESSION: &str =
    "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off";

/// Opens a connection (no TLS: put the database on a trusted network or a unix socket).
pub fn connect(config: &postgres::Config, ctx: &PgCtx) -> StoreResult<Client> {
    config.connect(NoTls).map_err(|e| pg_error(&ctx.store, &e))
}

/// The command thread's connection, with the statements prepared on it.
pub struct Link {
    config: postgres::Config,
    pub ctx: PgCtx,
    role: Role,
    client: Option<(Client, Session)>,
    failed: Option<(Instant, StoreError)>,
    log: DownLog,
}

impl Link {
    pub fn new(config: postgres::Config, ctx: PgCtx, role: Role) -> Link {
        Link {
            config,
            ctx,
            role,
            client: None,
            failed: None,
            log: DownLog::default(),
        }
    }

    /// The open connection, opening (and migrating) one if needed.
    fn client(&mut self) -> StoreResult<(&mut Client, &mut Session)> {
        if self.client.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            if let Some((at, err)) = &self.failed {
                if at.elapsed() < RECONNECT_PAUSE {
                    return Err(err.clone());
                }
            }
            match self.open() {
                Ok(client) => {
                    self.failed = None;
                    self.log.ok("jobs");
                    self.client = Some((client, Session::default()));
                }
                Err(err) => {
                    self.log.failed("jobs", &err);
                    self.failed = Some((Instant::now(), err.clone()));
                    return Err(err);
                }
            }
        }
        match &mut self.client {
            Some((client, session)) => Ok((client, session)),
            None => Err(StoreError::Closed),
        }
    }

    fn open(&self) -> StoreResult<Client> {
        let mut client = connect(&self.config, &self.ctx)?;
        let applied = pg_schema::migrate(&mut client).map_err(|e| self.ctx.fail(e))?;
        if self.role == Role::Deliveries {
            client
                .batch_execute(DELIVERIES_SESSION)
                .map_err(|e| self.ctx.fail(e))?;
        }
        if !applied.is_empty() {
            tracing::info!(
                "jobs: migrated {} to schema version {}",
                self.ctx.store,
                pg_schema::current_version()
            );
        }
        Ok(client)
    }

    /// Forgets a connection that failed (the next call opens a new one).
    fn broken(&mut self, err: &StoreError) {
        if matches!(err, StoreError::Io { .. }) {
            self.client = None;
            self.log.failed("jobs", err);
        }
    }

    /// Runs `tasks` in one transaction; answers each after the commit. True if committed.
    fn run_batch(&mut self, mut tasks: Vec<Box<dyn Task>>) -> bool {
        let ctx = self.ctx.clone();
        let failure = match self.client() {
            Ok((client, session)) => run_tasks(client, session, &ctx, &mut tasks).err(),
            Err(err) => Some(err),
        };
        if let Some(err) = &failure {
            if !matches!(err, StoreError::Io { .. }) {
                tracing::error!("jobs: {err}");
            }
            self.broken(err);
        }
        for task in tasks {
            task.answer(failure.as_ref());
        }
        failure.is_none()
    }

    /// Records this process as alive and frees the leases of gone ones.
    fn housekeeping(&mut self) {
        let ctx = self.ctx.clone();
        let Ok((client, session)) = self.client() else {
            return;
        };
        let done = client
            .transaction()
            .map_err(|e| ctx.fail(e))
            .and_then(|mut tx| {
                tx.batch_execute(SWEEP_PLANNER).map_err(|e| ctx.fail(e))?;
                let now = now_ms();
                let mut pg = PgTx {
                    tx: &mut tx,
                    ctx: &ctx,
                    session,
                };
                pg.heartbeat(now)?;
                let freed = pg.sweep(now, &process_alive)?;
                tx.commit().map_err(|e| ctx.fail(e))?;
                Ok(freed)
            });
        match done {
            Ok(0) => {}
            Ok(freed) => tracing::info!("jobs: took over {freed} job(s) of gone processes"),
            Err(err) => {
                if !matches!(err, StoreError::Io { .. }) {
                    tracing::warn!("jobs: {err}");
                }
                self.broken(&err);
            }
        }
    }
}

/// Runs a batch: a burst of plain enqueues as one statement on its own (`enqueue_alone`),
/// anything else in a transaction. If the lone statement is refused, nothing was written
/// and each task runs again on its own, in a savepoint, and gets its own answer (the
/// grouped insert is not tried a second time: it would be refused again).
fn run_tasks(
    client: &mut Client,
    session: &mut Session,
    ctx: &PgCtx,
    tasks: &mut [Box<dyn Task>],
) -> StoreResult<()> {
    let offers = tasks.iter_mut().map(|t| t.grouped()).collect();
    match enqueue_alone(client, session, ctx, offers, now_ms()) {
        None => {}
        Some(Ok(())) => return Ok(()),
        Some(Err(err @ StoreError::Io { .. })) => return Err(err),
        Some(Err(err)) => {
            tracing::debug!("jobs: a burst of enqueues was refused ({err}); each on its own");
            return run_each_in_savepoint(client, session, ctx, tasks, now_ms());
        }
    }
    run_in_transaction(client, session, ctx, tasks)
}

/// The batch's transaction. First all tasks run in it directly, no savepoints: the
/// enqueues without a quota in one multi-row insert and the completions in one delete
/// (`pg_batch`), the rest one by one; if anything failed, that is rolled back and every task
/// runs again on its own, each in a savepoint, so a refused task (or a bad row of the
/// grouped insert) does not undo the others. An error outside the tasks (begin, savepoint,
/// commit) fails the whole batch.
fn run_in_transaction(
    client: &mut Client,
    session: &mut Session,
    ctx: &PgCtx,
    tasks: &mut [Box<dyn Task>],
) -> StoreResult<()> {
    let fail = |e| ctx.fail(e);
    let now = now_ms();
    let mut tx = client.transaction().map_err(fail)?;
    let mut pg = PgTx {
        tx: &mut tx,
        ctx,
        session: &mut *session,
    };
    let mut all_ok = grouped_first(&mut pg, tasks, now);
    for task in tasks.iter_mut().filter(|t| !t.settled()) {
        if !all_ok || !task.run(&mut pg, now) {
            all_ok = false;
            break;
        }
    }
    if all_ok {
        return tx.commit().map_err(fail);
    }
    tx.rollback().map_err(fail)?;
    if tasks.len() == 1 {
        return Ok(());
    }
    run_each_in_savepoint(client, session, ctx, tasks, now)
}

/// Runs every task of the batch on its own in one transaction, each in a savepoint, so a
/// refused task leaves the others' writes in place. An error outside the tasks (begin,
/// savepoint, commit) fails the whole batch.
fn run_each_in_savepoint(
    client: &mut Client,
    session: &mut Session,
    ctx: &PgCtx,
    tasks: &mut [Box<dyn Task>],
    now: i64,
) -> StoreResult<()> {
    let fail = |e| ctx.fail(e);
    let mut tx = client.transaction().map_err(fail)?;
    for task in tasks.iter_mut() {
        let mut savepoint = tx.savepoint("wsrun_task").map_err(fail)?;
        let mut pg = PgTx {
            tx: &mut savepoint,
            ctx,
            session: &mut *session,
        };
        match task.run(&mut pg, now) {
            true => savepoint.commit().map_err(fail)?,
            false => savepoint.rollback().map_err(fail)?,
        }
    }
    tx.commit().map_err(fail)
}

/// Runs the grouped statements of a batch's tasks; whether they succeeded.
fn grouped_first(pg: &mut PgTx<'_, '_>, tasks: &mut [Box<dyn Task>], now: i64) -> bool {
    let offers = tasks.iter_mut().map(|t| t.grouped()).collect();
    match run_grouped(pg, offers, now) {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!("jobs: a grouped statement failed ({err}); each task on its own");
            false
        }
    }
}

/// A command thread's body: wait for a command (or the housekeeping tick), take every
/// other one waiting, run them in one transaction, answer after the commit. A process has
/// two (`pg_store`): one for enqueues and the rest, with `housekeeping` (`Role::Commands`),
/// and one for the dispatcher's polls and outcomes (`Role::Deliveries`).
pub fn run(mut link: Link, commands: std_mpsc::Receiver<Command>, wake: Arc<Notify>) {
    let housekeeping = link.role == Role::Commands;
    let mut last_housekeeping: Option<Instant> = None;
    let mut stopping = false;
    while !stopping {
        let mut batch = Vec::new();
        match commands.recv_timeout(HOUSEKEEPING_EVERY) {
            Ok(Command::Run(task)) => batch.push(task),
            Ok(Command::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => stopping = true,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
        }
        while !stopping && batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(Command::Run(task)) => batch.push(task),
                Ok(Command::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        let due = last_housekeeping.is_none_or(|at| at.elapsed() >= HOUSEKEEPING_EVERY);
        if housekeeping && !stopping && due {
            last_housekeeping = Some(Instant::now());
            link.housekeeping();
        }
        if batch.is_empty() {
            continue;
        }
        let wakes = batch.iter().any(|t| t.wakes());
        if link.run_batch(batch) && wakes {
            wake.notify_one();
        }
    }
}

/// The listener's body: LISTEN on `wsrun_jobs` and wake the dispatcher on each
/// notification (and on each new connection, in case one was missed meanwhile); reconnects
/// after a failure; returns once `stop` is set.
pub fn listen(config: postgres::Config, ctx: PgCtx, wake: Arc<Notify>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match connect(&config, &ctx) {
            Ok(mut client) => {
                if client.batch_execute("LISTEN wsrun_jobs").is_ok() {
                    wake.notify_one();
                    listen_on(&mut client, &wake, &stop);
                }
            }
            Err(err) => tracing::debug!("jobs listener: {err}"),
        }
        let mut waited = Duration::ZERO;
        while waited < RECONNECT_PAUSE && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(LISTEN_TICK);
            waited += LISTEN_TICK;
        }
    }
}

fn listen_on(client: &mut Client, wake: &Notify, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let next = {
            let mut notifications = client.notifications();
            let next = notifications.timeout_iter(LISTEN_TICK).next();
            next
        };
        match next {
            Ok(Some(_)) => wake.notify_one(),
            Ok(None) => {}
            Err(_) => return,
        }
        if client.is_closed() {
            return;
        }
    }
}

/// Whether process `pid` of this machine exists.
pub fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
