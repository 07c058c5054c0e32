//! The PostgreSQL store's statements: jobs, outcomes, the listing and repair `wsrun jobs`
//! does, and the lease sweep.
//!
//! Owns: `PgTx` (one transaction of the store thread, with who this process is), the SQL
//! over the `wsrun_*` tables except the claim and the quotas (`pg_claim`), the grouped
//! statements (`pg_batch`) and the timers (`pg_timers`), reading job rows into the store's
//! records, and the one mapping from PostgreSQL errors to `StoreError` kinds.
//! Must not touch: the schema (`pg_schema`), connections and threads (`pg_thread`), delivery.
//!
//! Leases: a job is held by (`lease_node`, `lease_pid`) until
//! `lease_until`; the sweep frees leases of processes of this node that are gone, and of
//! processes elsewhere whose heartbeat (`wsrun_processes.seen_at`) stopped.

use std::collections::HashMap;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{GenericClient, Row, Statement, Transaction};

use super::error::{StoreError, StoreResult};
use super::job::{
    decode_headers, encode_headers, stored_size, JobRecord, JobRequest, JobState, NewJob,
};
use super::journal::ms;

/// Columns of a job row, in the order `job_record` reads them.
pub(super) const JOB_COLUMNS: &str = "id, method, host, path, headers, body, origin, attempts, \
     max_attempts, created_at, run_at, last_error, account";

const INSERT: &str = "INSERT INTO wsrun_jobs (method, host, path, headers, body, origin,
     max_attempts, created_at, run_at, account, size, timer)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id";

const INSERT_AND_NOTIFY: &str = "WITH j AS (INSERT INTO wsrun_jobs (method, host, path, headers,
     body, origin, max_attempts, created_at, run_at, account, size, timer)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id)
     SELECT j.id FROM j, pg_notify('wsrun_jobs', '') AS n";

/// A process whose heartbeat is older than this is taken for dead, and its leases freed.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(5);
// The sweep's statements. A lease sets `lease_node`, `lease_pid` and `lease_until` together
// and every release clears all three, so `lease_until IS NOT NULL` selects the leased jobs,
// and says so in the form that lets PostgreSQL walk the partial index `wsrun_jobs_lease`
// (jobs in delivery) instead of the whole table, backlog included, every second on every node.

/// Processes whose heartbeat is older than `$1` are forgotten (a few rows: a sequential scan).
pub(super) const FORGET_PROCESSES: &str = "DELETE FROM wsrun_processes WHERE seen_at < $1";

/// Leases held by processes of other nodes whose heartbeat is older than `$2` (not `$1`'s).
pub(super) const FREE_LEASES_OF_STALE_NODES: &str =
    "UPDATE wsrun_jobs j SET lease_node = NULL, lease_pid = NULL, lease_until = NULL
     WHERE j.lease_until IS NOT NULL AND j.lease_node <> $1 AND NOT EXISTS (
         SELECT 1 FROM wsrun_processes p
         WHERE p.node = j.lease_node AND p.pid = j.lease_pid AND p.seen_at > $2)";

/// The processes of node `$1` holding leases.
pub(super) const LEASE_PIDS_OF_NODE: &str =
    "SELECT DISTINCT lease_pid FROM wsrun_jobs WHERE lease_until IS NOT NULL AND lease_node = $1";

/// The leases of process `$2` of node `$1`.
pub(super) const FREE_LEASES_OF_PID: &str =
    "UPDATE wsrun_jobs SET lease_node = NULL, lease_pid = NULL, lease_until = NULL
     WHERE lease_until IS NOT NULL AND lease_node = $1 AND lease_pid = $2";

/// Planner settings of the housekeeping transaction (see `pg_thread::DELIVERIES_SESSION`):
/// without statistics PostgreSQL would scan the table for the statements above.
pub(super) const SWEEP_PLANNER: &str = "SET LOCAL enable_seqscan = off";

/// Who this store is, for every statement.
#[derive(Debug, Clone)]
pub struct PgCtx {
    /// The database as errors show it (`postgres://host:port/db`, no password).
    pub store: String,
    /// This node's name (`[server] node`).
    pub node: String,
    /// This process.
    pub pid: i64,
}

impl PgCtx {
    /// A PostgreSQL error as a store error of its kind.
    pub fn fail(&self, e: postgres::Error) -> StoreError {
        pg_error(&self.store, &e)
    }
}

/// The kind of a PostgreSQL error: the only place that reads its SQLSTATE codes.
pub fn pg_error(store: &str, e: &postgres::Error) -> StoreError {
    let store = store.to_string();
    let detail = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    if e.is_closed() || e.code().is_none() {
        return StoreError::Io { store, detail };
    }
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE
                || *c == SqlState::QUERY_CANCELED =>
        {
            StoreError::Busy { store, detail }
        }
        Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::OUT_OF_MEMORY => {
            StoreError::Full { store, detail }
        }
        Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt { store, detail }
        }
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => {
            StoreError::Io { store, detail }
        }
        _ => StoreError::Other {
            context: format!("job store {store}"),
            detail,
        },
    }
}

/// What lives as long as one connection: the statements prepared on it, by their SQL (a
/// prepared statement saves a round trip on every later use).
#[derive(Default)]
pub struct Session {
    statements: HashMap<String, Statement>,
    /// The route prefixes recorded for this process in `wsrun_processes`.
    pub(super) routes: Option<Vec<String>>,
}

impl Session {
    /// `sql` prepared on `conn`, this session's connection (once per connection).
    pub(super) fn prepared(
        &mut self,
        conn: &mut impl GenericClient,
        ctx: &PgCtx,
        sql: &str,
    ) -> StoreResult<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = conn.prepare(sql).map_err(|e| ctx.fail(e))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// One transaction of the store thread.
pub struct PgTx<'a, 't> {
    pub(super) tx: &'a mut Transaction<'t>,
    pub(super) ctx: &'a PgCtx,
    pub(super) session: &'a mut Session,
}

impl PgTx<'_, '_> {
    pub(super) fn fail(&self, e: postgres::Error) -> StoreError {
        self.ctx.fail(e)
    }

    /// `sql` prepared on this connection (once per connection).
    pub(super) fn prepared(&mut self, sql: &str) -> StoreResult<Statement> {
        self.session.prepared(&mut *self.tx, self.ctx, sql)
    }

    /// Adds a job within its account's quota (`pg_claim`); returns its id.
    pub fn enqueue(&mut self, job: &NewJob, now: i64) -> StoreResult<i64> {
        self.check_job_quota(job)?;
        self.insert(job, now, None)
    }

    pub(super) fn insert(
        &mut self,
        job: &NewJob,
        now: i64,
        timer: Option<&str>,
    ) -> StoreResult<i64> {
        let r = &job.request;
        let run_at = now.saturating_add(ms(job.delay));
        let size = i64::try_from(stored_size(r)).unwrap_or(i64::MAX);
        let attempts = i32::try_from(job.max_attempts).unwrap_or(i32::MAX);
        // A job due at once wakes every node's dispatcher, in the same round trip.
        let sql = match run_at <= now {
            true => INSERT_AND_NOTIFY,
            false => INSERT,
        };
        let statement = self.prepared(sql)?;
        let row = self
            .tx
            .query_one(
                &statement,
                &[
                    &r.method,
                    &r.host,
                    &r.path,
                    &encode_headers(&r.headers),
                    &r.body,
                    &job.origin,
                    &attempts,
                    &now,
                    &run_at,
                    &job.quota.account,
                    &size,
                    &timer,
                ],
            )
            .map_err(|e| self.fail(e))?;
        row.try_get(0).map_err(|e| self.fail(e))
    }

    /// A delivered job leaves the store.
    pub fn complete(&mut self, id: i64) -> StoreResult<()> {
        let statement = self.prepared("DELETE FROM wsrun_jobs WHERE id = $1")?;
        self.tx
            .execute(&statement, &[&id])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// A failed attempt: the job waits until `run_at` for the next one.
    pub fn reschedule(&mut self, id: i64, run_at: i64, error: &str) -> StoreResult<()> {
        self.tx
            .execute(
                "UPDATE wsrun_jobs SET run_at = $2, lease_node = NULL, lease_pid = NULL,
                 lease_until = NULL, last_error = $3 WHERE id = $1",
                &[&id, &run_at, &error],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// The last attempt failed: the job moves to the dead-letter table.
    pub fn bury(&mut self, id: i64, error: &str, now: i64) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO wsrun_dead_jobs (id, method, host, path, headers, body, origin,
                     attempts, max_attempts, created_at, failed_at, last_error, account, size)
                 SELECT id, method, host, path, headers, body, origin, attempts, max_attempts,
                     created_at, $2, $3, account, size FROM wsrun_jobs WHERE id = $1
                 ON CONFLICT (id) DO NOTHING",
                &[&id, &now, &error],
            )
            .map_err(|e| self.fail(e))?;
        self.complete(id)
    }

    /// Moves a dead job back to pending, due now, attempts reset; else makes a pending job
    /// nobody holds due now. False if neither happened.
    pub fn retry(&mut self, id: i64, now: i64) -> StoreResult<bool> {
        let revived = self
            .tx
            .execute(
                "WITH dead AS (DELETE FROM wsrun_dead_jobs WHERE id = $1 RETURNING *)
                 INSERT INTO wsrun_jobs (id, method, host, path, headers, body, origin,
                     attempts, max_attempts, created_at, run_at, last_error, account, size)
                 SELECT id, method, host, path, headers, body, origin, 0, max_attempts,
                     created_at, $2, last_error, account, size FROM dead",
                &[&id, &now],
            )
            .map_err(|e| self.fail(e))?;
        if revived == 1 {
            return Ok(true);
        }
        self.tx
            .execute(
                "UPDATE wsrun_jobs SET run_at = $2 WHERE id = $1 AND lease_until IS NULL",
                &[&id, &now],
            )
            .map(|n| n == 1)
            .map_err(|e| self.fail(e))
    }

    /// Deletes dead jobs (and pending ones too when `pending`); returns how many went.
    pub fn purge(&mut self, pending: bool) -> StoreResult<usize> {
        let mut gone = self
            .tx
            .execute("DELETE FROM wsrun_dead_jobs", &[])
            .map_err(|e| self.fail(e))?;
        if pending {
            gone += self
                .tx
                .execute("DELETE FROM wsrun_jobs", &[])
                .map_err(|e| self.fail(e))?;
        }
        Ok(usize::try_from(gone).unwrap_or(usize::MAX))
    }

    /// Pending jobs (oldest first) then dead ones, at most `limit` of each.
    pub fn list(&mut self, limit: usize) -> StoreResult<Vec<(JobState, JobRecord)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        for (state, table) in JOB_TABLES {
            let columns = job_columns_of(table);
            let sql = format!("SELECT {columns} FROM {table} ORDER BY id LIMIT $1");
            for row in self.tx.query(&sql, &[&limit]).map_err(|e| self.fail(e))? {
                out.push((state, job_record(&row).map_err(|e| self.fail(e))?));
            }
        }
        Ok(out)
    }

    /// One job, pending or dead.
    pub fn show(&mut self, id: i64) -> StoreResult<Option<(JobState, JobRecord)>> {
        for (state, table) in JOB_TABLES {
            let columns = job_columns_of(table);
            let sql = format!("SELECT {columns} FROM {table} WHERE id = $1");
            if let Some(row) = self.tx.query_opt(&sql, &[&id]).map_err(|e| self.fail(e))? {
                return Ok(Some((state, job_record(&row).map_err(|e| self.fail(e))?)));
            }
        }
        Ok(None)
    }

    /// Counts of pending and dead jobs.
    pub fn counts(&mut self) -> StoreResult<(u64, u64)> {
        let row = self
            .tx
            .query_one(
                "SELECT (SELECT COUNT(*) FROM wsrun_jobs), (SELECT COUNT(*) FROM wsrun_dead_jobs)",
                &[],
            )
            .map_err(|e| self.fail(e))?;
        let count = |i| -> StoreResult<u64> {
            let n: i64 = row.try_get(i).map_err(|e| self.fail(e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok((count(0)?, count(1)?))
    }

    /// Records that this process is alive (its leases are kept by the sweep of other nodes).
    pub fn heartbeat(&mut self, now: i64) -> StoreResult<()> {
        let statement = self.prepared(
            "INSERT INTO wsrun_processes (node, pid, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (node, pid) DO UPDATE SET seen_at = EXCLUDED.seen_at",
        )?;
        self.tx
            .execute(&statement, &[&self.ctx.node, &self.ctx.pid, &now])
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Frees the leases of processes that are gone (after `SWEEP_PLANNER`): of this node, those `alive` says no to;
    /// of other nodes, those whose heartbeat stopped `PROCESS_TIMEOUT` ago. Returns how many.
    pub fn sweep(&mut self, now: i64, alive: &dyn Fn(i64) -> bool) -> StoreResult<usize> {
        let stale = now.saturating_sub(ms(PROCESS_TIMEOUT));
        let mut freed = self
            .tx
            .execute(FREE_LEASES_OF_STALE_NODES, &[&self.ctx.node, &stale])
            .map_err(|e| self.fail(e))?;
        let pids = self
            .tx
            .query(LEASE_PIDS_OF_NODE, &[&self.ctx.node])
            .map_err(|e| self.fail(e))?;
        for row in pids {
            let pid: i64 = row.try_get(0).map_err(|e| self.fail(e))?;
            if !alive(pid) {
                freed += self
                    .tx
                    .execute(FREE_LEASES_OF_PID, &[&self.ctx.node, &pid])
                    .map_err(|e| self.fail(e))?;
            }
        }
        // Processes not seen for an hour are forgotten.
        let forget = now.saturating_sub(3_600_000);
        self.tx
            .execute(FORGET_PROCESSES, &[&forget])
            .map_err(|e| self.fail(e))?;
        Ok(usize::try_from(freed).unwrap_or(usize::MAX))
    }
}

const JOB_TABLES: [(JobState, &str); 2] = [
    (JobState::Pending, "wsrun_jobs"),
    (JobState::Dead, "wsrun_dead_jobs"),
];

fn job_columns_of(table: &str) -> String {
    match table {
        "wsrun_dead_jobs" => JOB_COLUMNS.replace("run_at", "failed_at"),
        _ => JOB_COLUMNS.to_string(),
    }
}

/// The request in columns `first..first + 5` (method, host, path, headers, body).
pub(super) fn request_at(row: &Row, first: usize) -> Result<JobRequest, postgres::Error> {
    let headers: Vec<u8> = row.try_get(first + 3)?;
    Ok(JobRequest {
        method: row.try_get(first)?,
        host: row.try_get(first + 1)?,
        path: row.try_get(first + 2)?,
        headers: decode_headers(&headers),
        body: row.try_get(first + 4)?,
    })
}

fn count(row: &Row, i: usize) -> Result<u32, postgres::Error> {
    let n: i32 = row.try_get(i)?;
    Ok(u32::try_from(n).unwrap_or(0))
}

pub(super) fn job_record(row: &Row) -> Result<JobRecord, postgres::Error> {
    Ok(JobRecord {
        id: row.try_get(0)?,
        request: request_at(row, 1)?,
        origin: row.try_get(6)?,
        attempts: count(row, 7)?,
        max_attempts: count(row, 8)?,
        created_at: row.try_get(9)?,
        run_at: row.try_get(10)?,
        last_error: row.try_get(11)?,
        account: row.try_get(12)?,
    })
}
