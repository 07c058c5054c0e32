//! The durable journal: an embedded SQLite database (WAL) in the state directory.
//!
//! Owns: opening a connection, and the SQL statements that read or change the journal —
//! inserting jobs, recording an outcome, firing due timers exactly once across workers (and
//! not while a timer's last job is pending), timers by (owner, name), listing and repair —
//! for the SQLite store. The tables and their upgrades are `journal_schema`'s; quotas and the
//! fair claim of due jobs are `journal_quota`'s (both extend `Tx`). Must not touch: threads
//! or channels (`store`, `journal_thread`), delivery (`dispatch`), the router, or what kind
//! an error is (`error` maps SQLite's codes).
//!
//! Every worker process opens its own connection; SQLite's locking makes claims and timer
//! firings atomic between them. `synchronous = NORMAL` in WAL mode: a committed job survives
//! the process being killed (the write is in the WAL file); only a power loss in the moments
//! after a commit may lose it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::error::{StoreError, StoreResult};
use super::job::TimerRecord;
use super::job::{encode_headers, stored_size, JobRecord, JobRequest, JobState, NewJob, Quota};
use super::journal_schema;
use super::timer_sync::{sync_timers, TimerTable};
use crate::config::Schedule;

/// The journal's file name inside the state directory.
pub const JOURNAL_FILE: &str = "jobs.sqlite3";

/// Columns of a job row, in the order `job_record` reads them.
pub(super) const JOB_COLUMNS: &str = "id, method, host, path, headers, body, origin, attempts, \
     max_attempts, created_at, run_at, last_error, account";

/// Columns of a timer row, in the order `timer_record` reads them.
const TIMER_COLUMNS: &str =
    "owner, name, schedule, method, host, path, headers, body, source, next_due, account";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(super) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Called by SQLite while another connection holds the write lock. Transactions here last
/// microseconds, so first yield the CPU (the holder is often a thread of this very process),
/// then sleep in short steps; give up after about ten seconds.
fn wait_for_lock(attempt: i32) -> bool {
    match attempt {
        0..200 => std::thread::yield_now(),
        200..100_200 => std::thread::sleep(Duration::from_micros(100)),
        _ => return false,
    }
    true
}

/// A journal call's result; the error names the file and says what kind of failure it was.
pub type JournalResult<T> = StoreResult<T>;

/// One open connection to the journal.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating if needed) the journal in `state_dir`.
    pub fn open(state_dir: &Path) -> JournalResult<Journal> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            StoreError::other(
                format!("cannot create state directory {}", state_dir.display()),
                e,
            )
        })?;
        let path = state_dir.join(JOURNAL_FILE);
        let fail = |e: rusqlite::Error| StoreError::sqlite(&path, e);
        let mut conn = Connection::open(&path).map_err(fail)?;
        conn.busy_handler(Some(wait_for_lock)).map_err(fail)?;
        journal_schema::configure(&conn).map_err(fail)?;
        journal_schema::create(&mut conn).map_err(fail)?;
        if let Err(err) = journal_schema::ensure_incremental_vacuum(&conn) {
            // The journal works without it; only purges do not give space back.
            tracing::warn!(
                "job journal {}: cannot switch on incremental vacuum yet: {err}",
                path.display()
            );
        }
        Ok(Journal { conn, path })
    }

    /// Gives the space of deleted jobs back to the file system and truncates the WAL (after
    /// `wsrun jobs purge`, and from the checkpointer once enough pages are free).
    pub fn reclaim(&self) -> JournalResult<()> {
        journal_schema::reclaim(&self.conn).map_err(|e| self.fail(e))
    }

    /// Truncates the WAL when it has grown past `journal_schema::WAL_SIZE_LIMIT` (a burst
    /// of writes, a purge) and nothing has written since to cut it back (call it after a
    /// checkpoint that copied everything: then it waits for no one but a reader).
    pub fn trim_wal(&self) -> JournalResult<()> {
        let wal = self.path.with_extension("sqlite3-wal");
        let size = std::fs::metadata(wal).map_or(0, |m| m.len());
        if size > journal_schema::WAL_SIZE_LIMIT.unsigned_abs() {
            journal_schema::truncate_wal(&self.conn).map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Pages deleted rows left free in the file.
    pub fn free_pages(&self) -> JournalResult<i64> {
        journal_schema::free_pages(&self.conn).map_err(|e| self.fail(e))
    }

    /// Leaves checkpoints (copying the WAL back into the database, with an fsync) to
    /// `checkpoint`, so a commit never waits for one.
    pub fn without_auto_checkpoints(self) -> JournalResult<Journal> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| self.fail(e))?;
        Ok(self)
    }

    /// Copies what it can of the WAL into the database without waiting for anyone; true
    /// when all of it was copied (nothing was written meanwhile).
    pub fn checkpoint(&self) -> JournalResult<bool> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                let (log, copied): (i64, i64) = (r.get(1)?, r.get(2)?);
                Ok(log == copied)
            })
            .map_err(|e| self.fail(e))
    }

    fn fail(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }

    /// Runs `work` in one transaction (a group commit for everything it does).
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&Tx<'_>) -> JournalResult<T>,
    ) -> JournalResult<T> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| StoreError::sqlite(&path, e);
        // IMMEDIATE: the write lock is taken (waiting in the busy handler) before anything
        // is read, so a read-then-write (a timer's compare-and-set) never has to be upgraded
        // after another connection wrote, which WAL refuses at once with SQLITE_BUSY.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let out = work(&Tx {
            tx: &tx,
            path: &path,
        })?;
        tx.commit().map_err(fail)?;
        Ok(out)
    }

    /// Pending jobs (oldest first) and dead ones, for `wsrun jobs list`.
    pub fn list(&self, limit: usize) -> JournalResult<Vec<(JobState, JobRecord)>> {
        let mut out = Vec::new();
        for (state, table) in [(JobState::Pending, "jobs"), (JobState::Dead, "dead_jobs")] {
            let columns = job_columns_of(table);
            let sql = format!("SELECT {columns} FROM {table} ORDER BY id LIMIT ?1");
            let mut stmt = self.conn.prepare(&sql).map_err(|e| self.fail(e))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map([limit], job_record)
                .map_err(|e| self.fail(e))?;
            for row in rows {
                out.push((state, row.map_err(|e| self.fail(e))?));
            }
        }
        Ok(out)
    }

    /// One job, pending or dead.
    pub fn show(&self, id: i64) -> JournalResult<Option<(JobState, JobRecord)>> {
        for (state, table) in [(JobState::Pending, "jobs"), (JobState::Dead, "dead_jobs")] {
            let columns = job_columns_of(table);
            let sql = format!("SELECT {columns} FROM {table} WHERE id = ?1");
            let found = self
                .conn
                .query_row(&sql, [id], job_record)
                .optional()
                .map_err(|e| self.fail(e))?;
            if let Some(job) = found {
                return Ok(Some((state, job)));
            }
        }
        Ok(None)
    }

    /// Counts of pending and dead jobs.
    pub fn counts(&self) -> JournalResult<(u64, u64)> {
        let count = |table: &str| -> JournalResult<u64> {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            self.conn
                .query_row(&sql, [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(|e| self.fail(e))
        };
        Ok((count("jobs")?, count("dead_jobs")?))
    }

    /// Durable timers, by name.
    pub fn timers(&self) -> JournalResult<Vec<TimerRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {TIMER_COLUMNS} FROM timers ORDER BY owner, name"
            ))
            .map_err(|e| self.fail(e))?;
        let rows = stmt.query_map([], timer_record).map_err(|e| self.fail(e))?;
        rows.map(|r| r.map_err(|e| self.fail(e))).collect()
    }
}

/// The statements that run inside a transaction.
pub struct Tx<'a> {
    pub(super) tx: &'a rusqlite::Transaction<'a>,
    pub(super) path: &'a Path,
}

impl Tx<'_> {
    pub(super) fn fail(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(self.path, e)
    }

    /// Adds a job within its account's quota (`journal_quota`); returns its id.
    pub fn enqueue(&self, job: &NewJob, now: i64) -> JournalResult<i64> {
        self.check_job_quota(job)?;
        self.insert(job, now, None)
    }

    /// Adds a job (`timer`: the key of the timer that fired it); returns its id.
    fn insert(&self, job: &NewJob, now: i64, timer: Option<&str>) -> JournalResult<i64> {
        let r = &job.request;
        self.tx
            .execute(
                "INSERT INTO jobs (method, host, path, headers, body, origin, max_attempts,
                     created_at, run_at, account, size, timer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    r.method,
                    r.host,
                    r.path,
                    encode_headers(&r.headers),
                    r.body,
                    job.origin,
                    job.max_attempts,
                    now,
                    now.saturating_add(ms(job.delay)),
                    job.quota.account,
                    i64::try_from(stored_size(r)).unwrap_or(i64::MAX),
                    timer,
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(self.tx.last_insert_rowid())
    }

    /// A delivered job leaves the journal.
    pub fn complete(&self, id: i64) -> JournalResult<()> {
        self.tx
            .execute("DELETE FROM jobs WHERE id = ?1", [id])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// A failed attempt: the job waits until `run_at` for the next one.
    pub fn reschedule(&self, id: i64, run_at: i64, error: &str) -> JournalResult<()> {
        self.tx
            .execute(
                "UPDATE jobs SET run_at = ?2, lease_owner = NULL, lease_until = NULL,
                 last_error = ?3 WHERE id = ?1",
                params![id, run_at, error],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// The last attempt failed: the job moves to the dead-letter table.
    pub fn bury(&self, id: i64, error: &str, now: i64) -> JournalResult<()> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO dead_jobs (id, method, host, path, headers, body, origin,
                     attempts, max_attempts, created_at, failed_at, last_error, account, size)
                 SELECT id, method, host, path, headers, body, origin, attempts, max_attempts,
                     created_at, ?2, ?3, account, size FROM jobs WHERE id = ?1",
                params![id, now, error],
            )
            .map_err(|e| self.fail(e))?;
        self.complete(id)
    }

    /// Frees every lease `owner` holds (a worker that is gone).
    pub fn release_owner(&self, owner: i64) -> JournalResult<usize> {
        self.tx
            .execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1",
                [owner],
            )
            .map_err(|e| self.fail(e))
    }

    /// The owners that hold leases now.
    pub fn lease_owners(&self) -> JournalResult<Vec<i64>> {
        let mut stmt = self
            .tx
            .prepare("SELECT DISTINCT lease_owner FROM jobs WHERE lease_owner IS NOT NULL")
            .map_err(|e| self.fail(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// When the next job or timer falls due (Unix ms), if anything is waiting.
    pub fn next_due(&self) -> JournalResult<Option<i64>> {
        self.tx
            .query_row(
                // Three index look-ups, whatever the backlog: the first job nobody holds, the
                // first lease to run out, the first timer.
                "SELECT MIN(t) FROM (
                     SELECT * FROM (SELECT run_at AS t FROM jobs WHERE lease_owner IS NULL
                                    ORDER BY run_at LIMIT 1)
                     UNION ALL SELECT MIN(lease_until) FROM jobs
                     UNION ALL SELECT MIN(next_due) FROM timers)",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map_err(|e| self.fail(e))
    }

    /// Creates or replaces a durable timer within its account's quota; the first firing is
    /// at `next_due`.
    pub fn set_timer(&self, timer: &TimerRecord) -> JournalResult<()> {
        self.check_timer_quota(timer)?;
        let r = &timer.request;
        self.tx
            .execute(
                "INSERT OR REPLACE INTO timers (owner, name, schedule, method, host, path, headers,
                     body, source, next_due, account)
                 VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11)",
                params![
                    timer.name,
                    timer.schedule.to_string(),
                    r.method,
                    r.host,
                    r.path,
                    encode_headers(&r.headers),
                    r.body,
                    timer.source,
                    timer.next_due,
                    timer.owner,
                    timer.quota.account,
                ],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Removes `owner`'s durable timer `name`; false if there was none.
    pub fn cancel_timer(&self, owner: &str, name: &str) -> JournalResult<bool> {
        self.tx
            .execute(
                "DELETE FROM timers WHERE owner = ?1 AND name = ?2",
                [owner, name],
            )
            .map(|n| n > 0)
            .map_err(|e| self.fail(e))
    }

    /// Makes the operator's timers of `source` exactly `wanted` (`timer_sync`).
    pub fn sync_timers(&self, source: &str, wanted: &[TimerRecord]) -> JournalResult<()> {
        sync_timers(&mut &*self, source, wanted)
    }

    /// Fires every timer that is due: each becomes one job. A timer's `next_due` moves with a
    /// compare-and-set, so when several workers race, exactly one fires each period. A timer
    /// whose last job is still pending does not fire again: a period is skipped (a one-shot
    /// waits), so a slow target never piles up jobs of one timer.
    pub fn fire_due_timers(&self, now: i64, max_attempts: u32) -> JournalResult<usize> {
        let due: Vec<TimerRecord> = {
            let sql = format!("SELECT {TIMER_COLUMNS} FROM timers WHERE next_due <= ?1");
            let mut stmt = self.tx.prepare(&sql).map_err(|e| self.fail(e))?;
            let rows = stmt
                .query_map([now], timer_record)
                .map_err(|e| self.fail(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))?
        };
        let mut fired = 0;
        for timer in due {
            let key = timer_key(&timer.owner, &timer.name);
            let busy = self.timer_job_pending(&key)?;
            let next = match (busy, timer.schedule.next_after(timer.next_due, now)) {
                (true, None) => Some(now.saturating_add(ONE_SHOT_RETRY_MS)),
                (_, next) => next,
            };
            let moved = match next {
                Some(next) => self.tx.execute(
                    "UPDATE timers SET next_due = ?4 WHERE owner = ?1 AND name = ?2 AND next_due = ?3",
                    params![timer.owner, timer.name, timer.next_due, next],
                ),
                None => self.tx.execute(
                    "DELETE FROM timers WHERE owner = ?1 AND name = ?2 AND next_due = ?3",
                    params![timer.owner, timer.name, timer.next_due],
                ),
            }
            .map_err(|e| self.fail(e))?;
            if moved == 1 && !busy {
                let job = NewJob {
                    request: timer.request,
                    delay: Duration::ZERO,
                    max_attempts,
                    origin: format!("timer {}", display_key(&timer.owner, &timer.name)),
                    quota: timer.quota,
                };
                self.insert(&job, now, Some(&key))?;
                fired += 1;
            }
        }
        Ok(fired)
    }

    /// Whether a job fired by the timer `key` is still pending (queued or in delivery).
    fn timer_job_pending(&self, key: &str) -> JournalResult<bool> {
        self.tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE timer = ?1)",
                [key],
                |r| r.get(0),
            )
            .map_err(|e| self.fail(e))
    }

    /// Moves a dead job back to pending, due now, with its attempts reset. False if no dead
    /// job has that id; a pending job is made due now instead.
    pub fn retry(&self, id: i64, now: i64) -> JournalResult<bool> {
        let revived = self
            .tx
            .execute(
                "INSERT INTO jobs (id, method, host, path, headers, body, origin, attempts,
                     max_attempts, created_at, run_at, last_error, account, size)
                 SELECT id, method, host, path, headers, body, origin, 0, max_attempts,
                     created_at, ?2, last_error, account, size FROM dead_jobs WHERE id = ?1",
                params![id, now],
            )
            .map_err(|e| self.fail(e))?;
        if revived == 1 {
            self.tx
                .execute("DELETE FROM dead_jobs WHERE id = ?1", [id])
                .map_err(|e| self.fail(e))?;
            return Ok(true);
        }
        self.tx
            .execute(
                "UPDATE jobs SET run_at = ?2 WHERE id = ?1 AND lease_owner IS NULL",
                params![id, now],
            )
            .map(|n| n == 1)
            .map_err(|e| self.fail(e))
    }

    /// Deletes dead jobs (and pending ones too when `pending`); returns how many went.
    pub fn purge(&self, pending: bool) -> JournalResult<usize> {
        let mut gone = self
            .tx
            .execute("DELETE FROM dead_jobs", [])
            .map_err(|e| self.fail(e))?;
        if pending {
            gone += self
                .tx
                .execute("DELETE FROM jobs", [])
                .map_err(|e| self.fail(e))?;
        }
        Ok(gone)
    }
}

impl TimerTable for &Tx<'_> {
    fn operator_timer_names(&mut self, source: &str) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare("SELECT name FROM timers WHERE source = ?1 AND owner = ''")
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map([source], |r| r.get(0))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    fn stored_timer(&mut self, owner: &str, name: &str) -> StoreResult<Option<TimerRecord>> {
        self.tx
            .query_row(
                &format!("SELECT {TIMER_COLUMNS} FROM timers WHERE owner = ?1 AND name = ?2"),
                [owner, name],
                timer_record,
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    fn write_timer(&mut self, timer: &TimerRecord) -> StoreResult<()> {
        self.set_timer(timer)
    }

    fn remove_operator_timer(&mut self, name: &str) -> StoreResult<()> {
        self.cancel_timer("", name).map(drop)
    }
}

/// A one-shot timer whose job is still pending looks again this much later.
const ONE_SHOT_RETRY_MS: i64 = 1000;

/// How jobs name the timer that fired them: owner and name apart (a timer name holds no
/// control character, so the unit separator cannot occur in either).
fn timer_key(owner: &str, name: &str) -> String {
    format!("{owner}\u{1f}{name}")
}

/// A timer as `wsrun jobs` and origins show it: `NAME`, or `tenant OWNER: NAME`.
pub fn display_key(owner: &str, name: &str) -> String {
    match owner {
        "" => name.to_string(),
        owner => format!("{name} (tenant {owner})"),
    }
}

fn job_columns_of(table: &str) -> String {
    match table {
        // The dead table has no run_at: the time it failed stands in its place.
        "dead_jobs" => JOB_COLUMNS.replace("run_at", "failed_at"),
        _ => JOB_COLUMNS.to_string(),
    }
}

/// The request stored in columns `first..first + 5` (method, host, path, headers, body), the
/// same in the job and timer tables.
fn request_at(row: &Row<'_>, first: usize) -> rusqlite::Result<JobRequest> {
    let headers: Vec<u8> = row.get(first + 3)?;
    Ok(JobRequest {
        method: row.get(first)?,
        host: row.get(first + 1)?,
        path: row.get(first + 2)?,
        headers: super::job::decode_headers(&headers),
        body: row.get(first + 4)?,
    })
}

pub(super) fn job_record(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: row.get(0)?,
        request: request_at(row, 1)?,
        origin: row.get(6)?,
        attempts: row.get(7)?,
        max_attempts: row.get(8)?,
        created_at: row.get(9)?,
        run_at: row.get(10)?,
        last_error: row.get(11)?,
        account: row.get(12)?,
    })
}

fn timer_record(row: &Row<'_>) -> rusqlite::Result<TimerRecord> {
    let schedule: String = row.get(2)?;
    let schedule = schedule.parse::<Schedule>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(TimerRecord {
        owner: row.get(0)?,
        name: row.get(1)?,
        schedule,
        request: request_at(row, 3)?,
        source: row.get(8)?,
        next_due: row.get(9)?,
        quota: Quota {
            account: row.get(10)?,
            limits: None,
        },
    })
}
