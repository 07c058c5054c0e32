//! The job store's figures for the admin listener: pending and dead jobs, and when the oldest
//! pending job is due, read at scrape time.
//!
//! Owns: one read-only connection per call — on the SQLite journal file, or to the shared
//! PostgreSQL database when `[jobs] backend` names one — opened and closed in the caller's
//! thread (the master's admin thread, which must start no store thread: the master forks).
//! No journal yet (nothing was ever queued) reads as all zero; a database that cannot be
//! reached is an error (the admin status shows the store as down). Must not touch: writing
//! either store, or the `JobStore`.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::journal::JOURNAL_FILE;
use super::pg_store::connection_config;
use crate::config::PostgresBackend;
pub use crate::metrics::render::JobFigures;

/// The figures of the store: the PostgreSQL `backend` if there is one, else the journal in
/// `state_dir`.
pub fn read(state_dir: &Path, backend: Option<&PostgresBackend>) -> Result<JobFigures, String> {
    match backend {
        Some(backend) => read_postgres(backend),
        None => read_journal(state_dir),
    }
}

fn read_postgres(backend: &PostgresBackend) -> Result<JobFigures, String> {
    let (config, shown) = connection_config(backend).map_err(|e| e.to_string())?;
    let fail = |e: postgres::Error| format!("{shown}: {e}");
    let mut client = config.connect(postgres::NoTls).map_err(fail)?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM wsrun_jobs), (SELECT min(run_at) FROM wsrun_jobs), \
             (SELECT count(*) FROM wsrun_dead_jobs)",
            &[],
        )
        .map_err(fail)?;
    let (pending, oldest, dead): (i64, Option<i64>, i64) = (row.get(0), row.get(1), row.get(2));
    Ok(JobFigures {
        pending: u64::try_from(pending).unwrap_or(0),
        dead: u64::try_from(dead).unwrap_or(0),
        oldest_due_unix_ms: oldest,
    })
}

fn read_journal(state_dir: &Path) -> Result<JobFigures, String> {
    let path = state_dir.join(JOURNAL_FILE);
    if !path.exists() {
        return Ok(JobFigures::default());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&path, flags)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = conn.busy_timeout(std::time::Duration::from_millis(500));
    let (pending, oldest): (i64, Option<i64>) = conn
        .query_row("SELECT count(*), min(run_at) FROM jobs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let dead: i64 = conn
        .query_row("SELECT count(*) FROM dead_jobs", [], |r| r.get(0))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(JobFigures {
        pending: u64::try_from(pending).unwrap_or(0),
        dead: u64::try_from(dead).unwrap_or(0),
        oldest_due_unix_ms: oldest,
    })
}
