//! The job store's figures for the admin listener: pending and dead jobs, and when the oldest
//! pending job is due, read at scrape time.
//!
//! Owns: one read-only SQLite connection per call on the journal file, opened and closed in
//! the caller's thread (the master's admin thread, which must start no store thread: the
//! master forks). No journal yet (nothing was ever queued) reads as all zero. Must not touch:
//! writing the journal, or the `JobStore` (a networked store would answer through it).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::journal::JOURNAL_FILE;
pub use crate::metrics::render::JobFigures;

/// The figures of the journal in `state_dir`.
pub fn read(state_dir: &Path) -> Result<JobFigures, String> {
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
