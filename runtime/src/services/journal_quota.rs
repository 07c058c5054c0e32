//! Accounts in the journal: quotas checked when a job or timer is stored, and claims that
//! share the delivery slots fairly between accounts.
//!
//! Owns: the SQL that counts an account's jobs, bytes and timers (from the rows themselves,
//! through covering indexes, inside the storing transaction: the quotas hold across restarts
//! and worker processes), the refusal messages that name the limit, and the fair claim: due
//! jobs are taken account by account, fewest in delivery first, never more of one tenant's
//! than `Claim::per_account`. Must not touch: the schema (`journal_schema`), the other
//! statements (`journal`), or where the quotas come from (`config`, the hosts).

use std::collections::VecDeque;

use rusqlite::params;

use super::error::StoreError;
use super::job::{stored_size, JobRecord, NewJob, TimerRecord};
use super::job_store::{pick_fairly, AccountQueue, Claim};
use super::journal::{job_record, ms, JournalResult, Tx, JOB_COLUMNS};
use crate::config::format_size;

impl Tx<'_> {
    /// Refuses `job` when its account would pass `max_jobs` or `max_job_bytes`.
    pub(super) fn check_job_quota(&self, job: &NewJob) -> JournalResult<()> {
        let Some(limits) = &job.quota.limits else {
            return Ok(());
        };
        let account = &job.quota.account;
        let (jobs, bytes): (i64, f64) = self
            .tx
            .query_row(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE account = ?1)
                      + (SELECT COUNT(*) FROM dead_jobs WHERE account = ?1),
                        (SELECT TOTAL(size) FROM jobs WHERE account = ?1)
                      + (SELECT TOTAL(size) FROM dead_jobs WHERE account = ?1)",
                [account],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.fail(e))?;
        let jobs = u64::try_from(jobs).unwrap_or(0);
        if jobs >= limits.max_jobs {
            return Err(StoreError::OverQuota(format!(
                "{account} holds {jobs} jobs (pending or dead-lettered), its max_jobs of {}; \
                 more wait until some are delivered or purged",
                limits.max_jobs
            )));
        }
        // TOTAL is a float; a byte count this large is exact in it.
        let after = (bytes as u64).saturating_add(stored_size(&job.request));
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
    pub(super) fn check_timer_quota(&self, timer: &TimerRecord) -> JournalResult<()> {
        let Some(limits) = &timer.quota.limits else {
            return Ok(());
        };
        let account = &timer.quota.account;
        let others: i64 = self
            .tx
            .query_row(
                "SELECT COUNT(*) FROM timers WHERE account = ?1
                 AND NOT (owner = ?2 AND name = ?3)",
                params![account, timer.owner, timer.name],
                |r| r.get(0),
            )
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

    /// Claims up to `claim.limit` due jobs for `claim.owner` until `now + claim.lease`,
    /// counting the attempt: account by account, the one with the fewest jobs in delivery
    /// first (the oldest due job breaks ties), each within its `Claim::room`.
    pub fn claim(&self, claim: &Claim, now: i64) -> JournalResult<Vec<JobRecord>> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        let mut queues = Vec::new();
        for account in self.accounts()? {
            let room = claim.room(&account);
            if room == 0 {
                continue;
            }
            let jobs = self.due_of(&account, now, room)?;
            if !jobs.is_empty() {
                let busy = claim.busy(&account);
                queues.push(AccountQueue { busy, jobs });
            }
        }
        let chosen = pick_fairly(queues, claim.limit);
        let until = now.saturating_add(ms(claim.lease));
        let mut jobs = Vec::with_capacity(chosen.len());
        for id in chosen {
            jobs.push(self.lease(id, claim.owner, until)?);
        }
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    /// Every account with a job in the table, by skipping through the account index (one
    /// look-up per account, whatever the backlog).
    fn accounts(&self) -> JournalResult<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "WITH RECURSIVE a(account) AS (
                     SELECT MIN(account) FROM jobs
                     UNION ALL
                     SELECT (SELECT MIN(account) FROM jobs WHERE account > a.account)
                     FROM a WHERE a.account IS NOT NULL)
                 SELECT account FROM a WHERE account IS NOT NULL",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// Up to `limit` due jobs of `account` nobody holds: (id, run_at), oldest first.
    fn due_of(&self, account: &str, now: i64, limit: usize) -> JournalResult<VecDeque<(i64, i64)>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT id, run_at FROM jobs WHERE account = ?1 AND run_at <= ?2
                 AND (lease_until IS NULL OR lease_until <= ?2)
                 ORDER BY run_at, id LIMIT ?3",
            )
            .map_err(|e| self.fail(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![account, now, limit], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// Leases job `id` to `owner` until `until`, counting an attempt.
    fn lease(&self, id: i64, owner: i64, until: i64) -> JournalResult<JobRecord> {
        let sql = format!(
            "UPDATE jobs SET lease_owner = ?2, lease_until = ?3, attempts = attempts + 1
             WHERE id = ?1 RETURNING {JOB_COLUMNS}"
        );
        let mut stmt = self.tx.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        stmt.query_row(params![id, owner, until], job_record)
            .map_err(|e| self.fail(e))
    }
}
