//! Durable timers in the PostgreSQL store, fired once across nodes: setting, cancelling and
//! listing them, making the operator's timers match the config, and turning due ones into
//! jobs.
//!
//! Owns: the SQL over `wsrun_timers` and reading its rows. Must not touch: the jobs' own
//! statements (`pg_sql`, whose single-row insert a fired timer uses), quotas (`pg_claim`),
//! connections and threads (`pg_thread`).
//!
//! Once across nodes: a due timer's row is locked with `FOR UPDATE SKIP LOCKED` and its
//! `next_due` moved with a compare-and-set in the claiming transaction, so however many
//! nodes poll, a period becomes exactly one job.

use std::time::Duration;

use postgres::Row;

use super::error::StoreResult;
use super::job::{encode_headers, NewJob, Quota, TimerRecord};
use super::journal::display_key;
use super::pg_sql::{request_at, PgTx};
use super::timer_sync::{sync_timers, TimerTable};
use crate::config::Schedule;

/// Columns of a timer row, in the order `timer_record` reads them.
const TIMER_COLUMNS: &str =
    "owner, name, schedule, method, host, path, headers, body, source, next_due, account";

/// A one-shot timer whose job is still pending looks again this much later.
const ONE_SHOT_RETRY_MS: i64 = 1000;

/// How jobs name the timer that fired them (as the SQLite journal does).
fn timer_key(owner: &str, name: &str) -> String {
    format!("{owner}\u{1f}{name}")
}

impl PgTx<'_, '_> {
    /// Creates or replaces a durable timer within its account's quota.
    pub fn set_timer(&mut self, timer: &TimerRecord) -> StoreResult<()> {
        self.check_timer_quota(timer)?;
        let r = &timer.request;
        self.tx
            .execute(
                "INSERT INTO wsrun_timers (owner, name, schedule, method, host, path, headers,
                     body, source, next_due, account)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (owner, name) DO UPDATE SET schedule = EXCLUDED.schedule,
                     method = EXCLUDED.method, host = EXCLUDED.host, path = EXCLUDED.path,
                     headers = EXCLUDED.headers, body = EXCLUDED.body,
                     source = EXCLUDED.source, next_due = EXCLUDED.next_due,
                     account = EXCLUDED.account",
                &[
                    &timer.owner,
                    &timer.name,
                    &timer.schedule.to_string(),
                    &r.method,
                    &r.host,
                    &r.path,
                    &encode_headers(&r.headers),
                    &r.body,
                    &timer.source,
                    &timer.next_due,
                    &timer.quota.account,
                ],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Removes `owner`'s durable timer `name`; false if there was none.
    pub fn cancel_timer(&mut self, owner: &str, name: &str) -> StoreResult<bool> {
        self.tx
            .execute(
                "DELETE FROM wsrun_timers WHERE owner = $1 AND name = $2",
                &[&owner, &name],
            )
            .map(|n| n > 0)
            .map_err(|e| self.fail(e))
    }

    /// Makes the operator's timers of `source` exactly `wanted` (`timer_sync`).
    pub fn sync_timers(&mut self, source: &str, wanted: &[TimerRecord]) -> StoreResult<()> {
        sync_timers(self, source, wanted)
    }

    /// Fires every due timer: each becomes one job. Rows another node is firing right now
    /// are skipped (`SKIP LOCKED`), and `next_due` moves with a compare-and-set, so exactly
    /// one node fires each period. A timer whose last job is still pending skips the period.
    pub fn fire_due_timers(&mut self, now: i64, max_attempts: u32) -> StoreResult<usize> {
        let statement = self.prepared(&format!(
            "SELECT {TIMER_COLUMNS} FROM wsrun_timers WHERE next_due <= $1
             ORDER BY next_due FOR UPDATE SKIP LOCKED"
        ))?;
        let rows = self
            .tx
            .query(&statement, &[&now])
            .map_err(|e| self.fail(e))?;
        let mut fired = 0;
        for row in rows {
            let timer = timer_record(&row).map_err(|e| self.fail(e))?;
            if self.fire(timer, now, max_attempts)? {
                fired += 1;
            }
        }
        Ok(fired)
    }

    fn fire(&mut self, timer: TimerRecord, now: i64, max_attempts: u32) -> StoreResult<bool> {
        let key = timer_key(&timer.owner, &timer.name);
        let busy: bool = self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM wsrun_jobs WHERE timer = $1)",
                &[&key],
            )
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.fail(e))?;
        let next = match (busy, timer.schedule.next_after(timer.next_due, now)) {
            (true, None) => Some(now.saturating_add(ONE_SHOT_RETRY_MS)),
            (_, next) => next,
        };
        let (owner, name, due) = (&timer.owner, &timer.name, &timer.next_due);
        let moved = match next {
            Some(next) => self.tx.execute(
                "UPDATE wsrun_timers SET next_due = $4
                 WHERE owner = $1 AND name = $2 AND next_due = $3",
                &[owner, name, due, &next],
            ),
            None => self.tx.execute(
                "DELETE FROM wsrun_timers WHERE owner = $1 AND name = $2 AND next_due = $3",
                &[owner, name, due],
            ),
        }
        .map_err(|e| self.fail(e))?;
        if moved != 1 || busy {
            return Ok(false);
        }
        let job = NewJob {
            origin: format!("timer {}", display_key(&timer.owner, &timer.name)),
            request: timer.request,
            delay: Duration::ZERO,
            max_attempts,
            quota: timer.quota,
        };
        self.insert(&job, now, Some(&key))?;
        Ok(true)
    }

    /// Every durable timer, by owner and name.
    pub fn timers(&mut self) -> StoreResult<Vec<TimerRecord>> {
        let sql = format!("SELECT {TIMER_COLUMNS} FROM wsrun_timers ORDER BY owner, name");
        let rows = self.tx.query(&sql, &[]).map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| timer_record(r).map_err(|e| self.fail(e)))
            .collect()
    }
}

impl TimerTable for PgTx<'_, '_> {
    fn operator_timer_names(&mut self, source: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .tx
            .query(
                "SELECT name FROM wsrun_timers WHERE source = $1 AND owner = ''",
                &[&source],
            )
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(|e| self.fail(e)))
            .collect()
    }

    fn stored_timer(&mut self, owner: &str, name: &str) -> StoreResult<Option<TimerRecord>> {
        let sql =
            format!("SELECT {TIMER_COLUMNS} FROM wsrun_timers WHERE owner = $1 AND name = $2");
        let row = self
            .tx
            .query_opt(&sql, &[&owner, &name])
            .map_err(|e| self.fail(e))?;
        row.map(|r| timer_record(&r).map_err(|e| self.fail(e)))
            .transpose()
    }

    fn write_timer(&mut self, timer: &TimerRecord) -> StoreResult<()> {
        self.set_timer(timer)
    }

    fn remove_operator_timer(&mut self, name: &str) -> StoreResult<()> {
        self.cancel_timer("", name).map(drop)
    }
}

/// A timer from a row of `TIMER_COLUMNS`.
fn timer_record(row: &Row) -> Result<TimerRecord, postgres::Error> {
    let schedule: String = row.try_get(2)?;
    // A schedule this wsrun cannot read (written by a newer one) fires once, then stops.
    let schedule = schedule.parse::<Schedule>().unwrap_or(Schedule::Once);
    Ok(TimerRecord {
        owner: row.try_get(0)?,
        name: row.try_get(1)?,
        schedule,
        request: request_at(row, 3)?,
        source: row.try_get(8)?,
        next_due: row.try_get(9)?,
        quota: Quota {
            account: row.try_get(10)?,
            limits: None,
        },
    })
}
