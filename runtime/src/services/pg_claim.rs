//! Claims and quotas in the PostgreSQL store: due jobs taken with `FOR UPDATE SKIP LOCKED`
//! under a lease, shared fairly between accounts, and quotas counted inside the storing
//! transaction.
//!
//! Owns: the claim (due jobs nobody holds, account by account with the fewest in delivery
//! first, never more of one account than `Claim::room`; the chosen rows leased to
//! (node, pid) until `now + lease` with an attempt counted) and the quota checks (serialized
//! per account across nodes with a transaction-scoped advisory lock, so two nodes cannot
//! both pass the last free slot). The refusal messages are the SQLite store's. Must not
//! touch: the schema (`pg_schema`), other statements (`pg_sql`), threads (`pg_thread`).

use std::collections::VecDeque;

use super::error::{StoreError, StoreResult};
use super::job::{stored_size, JobRecord, NewJob, TimerRecord};
use super::job_store::{pick_fairly, AccountQueue, Claim};
use super::journal::ms;
use super::pg_routes::SERVED_BY_1;
use super::pg_sql::{job_record, PgTx, JOB_COLUMNS};
use crate::config::format_size;

/// Every account with a job due and free, by skipping through the account index (one
/// look-up per account, whatever the backlog). The check for a free due job is a
/// `LATERAL ... LIMIT 1` probe of that index per account: written as `EXISTS`, the planner
/// turned it into a join against every free due job, a scan of the whole backlog on each
/// claim (6 ms at 20,000 pending jobs, against 0.05 ms now; bench/README.md). `$1`: now.
pub(super) const DUE_ACCOUNTS: &str = "WITH RECURSIVE a(account) AS (
         SELECT MIN(account) FROM wsrun_jobs
         UNION ALL
         SELECT (SELECT MIN(account) FROM wsrun_jobs WHERE account > a.account)
         FROM a WHERE a.account IS NOT NULL)
     SELECT a.account FROM a CROSS JOIN LATERAL (
         SELECT 1 FROM wsrun_jobs j WHERE j.account = a.account
         AND j.run_at <= $1 AND (j.lease_until IS NULL OR j.lease_until <= $1)
         LIMIT 1) AS free
     WHERE a.account IS NOT NULL";

/// One account's due jobs nobody holds, oldest first, locked (skipping locked ones): `$1`
/// the routes (or NULL), `$2` the account, `$3` now, `$4` how many.
pub(super) fn due_of_sql() -> String {
    format!(
        "SELECT id, run_at FROM wsrun_jobs j WHERE account = $2 AND run_at <= $3
         AND (lease_until IS NULL OR lease_until <= $3)
         AND ($1::TEXT[] IS NULL OR {SERVED_BY_1})
         ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED"
    )
}

impl PgTx<'_, '_> {
    /// Holds `account`'s quota lock until the transaction ends.
    fn lock_account(&mut self, account: &str) -> StoreResult<()> {
        self.tx
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext('wsrun quota ' || $1))",
                &[&account],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Refuses `job` when its account would pass `max_jobs` or `max_job_bytes`.
    pub(super) fn check_job_quota(&mut self, job: &NewJob) -> StoreResult<()> {
        let Some(limits) = &job.quota.limits else {
            return Ok(());
        };
        let account = &job.quota.account;
        self.lock_account(account)?;
        let row = self
            .tx
            .query_one(
                "SELECT (SELECT COUNT(*) FROM wsrun_jobs WHERE account = $1)
                      + (SELECT COUNT(*) FROM wsrun_dead_jobs WHERE account = $1),
                        ((SELECT COALESCE(SUM(size), 0) FROM wsrun_jobs WHERE account = $1)
                      + (SELECT COALESCE(SUM(size), 0) FROM wsrun_dead_jobs WHERE account = $1))::BIGINT",
                &[account],
            )
            .map_err(|e| self.fail(e))?;
        let jobs: i64 = row.try_get(0).map_err(|e| self.fail(e))?;
        let bytes: i64 = row.try_get(1).map_err(|e| self.fail(e))?;
        let jobs = u64::try_from(jobs).unwrap_or(0);
        if jobs >= limits.max_jobs {
            return Err(StoreError::OverQuota(format!(
                "{account} holds {jobs} jobs (pending or dead-lettered), its max_jobs of {}; \
                 more wait until some are delivered or purged",
                limits.max_jobs
            )));
        }
        let after = u64::try_from(bytes)
            .unwrap_or(0)
            .saturating_add(stored_size(&job.request));
        if after > limits.max_job_bytes {
            return Err(StoreError::OverQuota(format!(
                "{account}'s jobs would take {after} bytes in the journal, over its max_job_bytes of {}",
                format_size(limits.max_job_bytes)
            )));
        }
        Ok(())
    }

    /// Refuses a new timer when its account has `max_timers` already (replacing one of the
    /// same owner and name does not add one).
    pub(super) fn check_timer_quota(&mut self, timer: &TimerRecord) -> StoreResult<()> {
        let Some(limits) = &timer.quota.limits else {
            return Ok(());
        };
        let account = &timer.quota.account;
        self.lock_account(account)?;
        let others: i64 = self
            .tx
            .query_one(
                "SELECT COUNT(*) FROM wsrun_timers WHERE account = $1
                 AND NOT (owner = $2 AND name = $3)",
                &[account, &timer.owner, &timer.name],
            )
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.fail(e))?;
        let others = u64::try_from(others).unwrap_or(0);
        if others >= limits.max_timers {
            return Err(StoreError::OverQuota(format!(
                "{account} has {others} timers, its max_timers of {}; cancel one first",
                limits.max_timers
            )));
        }
        Ok(())
    }

    /// Claims up to `claim.limit` due jobs for (this node, `claim.owner`) until
    /// `now + claim.lease`, counting the attempt; rows another node is claiming right now
    /// are skipped, not waited for.
    pub fn claim(&mut self, claim: &Claim, now: i64) -> StoreResult<Vec<JobRecord>> {
        let routes = claim.routes.as_deref();
        self.record_routes(routes, now)?;
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        let mut queues = Vec::new();
        for account in self.due_accounts(now)? {
            let room = claim.room(&account);
            if room == 0 {
                continue;
            }
            let jobs = self.due_of(&account, now, room, routes)?;
            if !jobs.is_empty() {
                let busy = claim.busy(&account);
                queues.push(AccountQueue { busy, jobs });
            }
        }
        let chosen = pick_fairly(queues, claim.limit);
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let until = now.saturating_add(ms(claim.lease));
        let sql = format!(
            "UPDATE wsrun_jobs SET lease_node = $2, lease_pid = $3, lease_until = $4,
                 attempts = attempts + 1
             WHERE id = ANY($1) RETURNING {JOB_COLUMNS}"
        );
        let statement = self.prepared(&sql)?;
        let rows = self
            .tx
            .query(&statement, &[&chosen, &self.ctx.node, &claim.owner, &until])
            .map_err(|e| self.fail(e))?;
        let mut jobs = rows
            .iter()
            .map(|r| job_record(r).map_err(|e| self.fail(e)))
            .collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    /// Every account with a job due and free (see `DUE_ACCOUNTS`).
    fn due_accounts(&mut self, now: i64) -> StoreResult<Vec<String>> {
        let statement = self.prepared(DUE_ACCOUNTS)?;
        let rows = self
            .tx
            .query(&statement, &[&now])
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(|e| self.fail(e)))
            .collect()
    }

    /// Up to `limit` due jobs of `account` nobody holds whose path one of `routes` serves
    /// (`None`: any), locked for this transaction (skipping the ones another claimer has
    /// locked): (id, run_at), oldest first.
    fn due_of(
        &mut self,
        account: &str,
        now: i64,
        limit: usize,
        routes: Option<&[String]>,
    ) -> StoreResult<VecDeque<(i64, i64)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = self.prepared(&due_of_sql())?;
        let rows = self
            .tx
            .query(&statement, &[&routes, &account, &now, &limit])
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()
            .map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
#[path = "pg_claim_tests.rs"]
mod tests;
