//! The route rule of the PostgreSQL store: a job goes only to a process that serves its path.
//!
//! Owns: matching a job's path against route prefixes in SQL (`SERVED_BY_1`, which claims
//! use), `next_due` (when the next job this process serves, or a timer, falls due), recording the prefixes each process serves in `wsrun_processes.routes`,
//! and finding the pending jobs no live process serves (for `wsrun jobs list`). Must not
//! touch: the claim itself (`pg_claim`), the schema (`pg_schema`), how routes are matched for
//! requests (`router`).

use super::error::StoreResult;
use super::journal::ms;
use super::pg_sql::{PgTx, PROCESS_TIMEOUT};

/// Whether one of the route prefixes in `$1` serves job `j`'s path (the router's rule: `/`
/// serves all; `/a` serves `/a`, `/a?q` and `/a/...`; hosts are not compared).
pub(super) const SERVED_BY_1: &str = "EXISTS (SELECT 1 FROM unnest($1::TEXT[]) AS r(prefix)
     WHERE r.prefix = '/' OR split_part(j.path, '?', 1) = r.prefix
         OR starts_with(j.path, r.prefix || '/'))";

impl PgTx<'_, '_> {
    /// When the next job of `routes` (`None`: any) or timer falls due (Unix ms), if
    /// anything is waiting.
    pub fn next_due(&mut self, routes: Option<&[String]>) -> StoreResult<Option<i64>> {
        let statement = self.prepared(&format!(
            "SELECT LEAST(
                 (SELECT MIN(run_at) FROM wsrun_jobs j WHERE lease_until IS NULL
                     AND ($1::TEXT[] IS NULL OR {SERVED_BY_1})),
                 (SELECT MIN(lease_until) FROM wsrun_jobs j WHERE lease_until IS NOT NULL
                     AND ($1::TEXT[] IS NULL OR {SERVED_BY_1})),
                 (SELECT MIN(next_due) FROM wsrun_timers))"
        ))?;
        let row = self
            .tx
            .query_one(&statement, &[&routes])
            .map_err(|e| self.fail(e))?;
        row.try_get(0).map_err(|e| self.fail(e))
    }

    /// Pending jobs no live process serves (by path without the query, at most 20 paths):
    /// they wait for a node that serves them. Processes that have not said yet which routes
    /// they serve (`wsrun jobs` itself, a node that has not polled yet) serve none here.
    pub fn unserved(&mut self, now: i64) -> StoreResult<Vec<(String, u64)>> {
        let alive = now.saturating_sub(ms(PROCESS_TIMEOUT));
        let rows = self
            .tx
            .query(
                "SELECT split_part(j.path, '?', 1), COUNT(*) FROM wsrun_jobs j
                 WHERE NOT EXISTS (SELECT 1 FROM wsrun_processes w, unnest(w.routes) AS r(prefix)
                     WHERE w.seen_at > $1 AND (r.prefix = '/'
                         OR split_part(j.path, '?', 1) = r.prefix
                         OR starts_with(j.path, r.prefix || '/')))
                 GROUP BY 1 ORDER BY 1 LIMIT 20",
                &[&alive],
            )
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                let count: i64 = r.try_get(1)?;
                Ok((r.try_get(0)?, u64::try_from(count).unwrap_or(0)))
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(|e| self.fail(e))
    }

    /// Records the route prefixes this process serves, when they changed (claims pass them).
    pub(super) fn record_routes(&mut self, routes: Option<&[String]>, now: i64) -> StoreResult<()> {
        if self.session.routes.as_deref() == routes {
            return Ok(());
        }
        self.tx
            .execute(
                "INSERT INTO wsrun_processes (node, pid, seen_at, routes) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (node, pid) DO UPDATE SET routes = EXCLUDED.routes",
                &[&self.ctx.node, &self.ctx.pid, &now, &routes],
            )
            .map_err(|e| self.fail(e))?;
        self.session.routes = routes.map(<[String]>::to_vec);
        Ok(())
    }
}
