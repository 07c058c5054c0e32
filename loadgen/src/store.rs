//! The run store: one SQLite file (`--db`, default `.wsrun/bench.sqlite3`) with a `runs` table
//! (the key figures as columns for listing, the whole record as JSON) and a `histogram` table
//! (the latency buckets of each run). The schema is versioned with `PRAGMA user_version`.
//!
//! Owns: the tables and their migrations, saving, listing and loading runs. Must not touch:
//! how runs are made or shown.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::run::RunRecord;

/// `PRAGMA user_version` this code writes and reads.
const SCHEMA: i64 = 1;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    scenario TEXT NOT NULL,
    mode TEXT NOT NULL,
    target TEXT NOT NULL,
    requests INTEGER NOT NULL,
    requests_per_s REAL NOT NULL,
    p50_ms REAL NOT NULL,
    p99_ms REAL NOT NULL,
    errors INTEGER NOT NULL,
    wsrun_version TEXT NOT NULL,
    git_commit TEXT,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS histogram (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    latency_us INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (run_id, latency_us)
);
";

/// A store error, with the file it concerns.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of `history`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: i64,
    pub started_at: i64,
    pub scenario: String,
    pub target: String,
    pub requests: i64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: i64,
    pub wsrun_version: String,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating it and its directory if need be) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display();
        let fail = |e: &dyn std::fmt::Display| StoreError(format!("{shown}: {e}"));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(&e))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| fail(&e))?;
        if version > SCHEMA {
            let msg = format!("schema version {version} is newer than this wsrun's {SCHEMA}");
            return Err(fail(&msg));
        }
        conn.execute_batch(CREATE).map_err(|e| fail(&e))?;
        conn.pragma_update(None, "user_version", SCHEMA)
            .map_err(|e| fail(&e))?;
        Ok(Store { conn })
    }

    /// Saves a run and its histogram; returns its id.
    pub fn save(&mut self, run: &RunRecord) -> Result<i64, StoreError> {
        let fail = |e: rusqlite::Error| StoreError(format!("saving the run: {e}"));
        let json =
            serde_json::to_string(run).map_err(|e| StoreError(format!("encoding the run: {e}")))?;
        let tx = self.conn.transaction().map_err(fail)?;
        tx.execute(
            "INSERT INTO runs (started_at, scenario, mode, target, requests, requests_per_s, p50_ms,
                               p99_ms, errors, wsrun_version, git_commit, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                run.started_at as i64,
                run.scenario,
                run.mode,
                run.target,
                run.requests as i64,
                run.requests_per_s,
                run.latency_ms.p50,
                run.latency_ms.p99,
                run.errors.total() as i64,
                run.machine.versions.wsrun,
                run.machine.git_commit,
                json,
            ],
        )
        .map_err(fail)?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare("INSERT INTO histogram (run_id, latency_us, count) VALUES (?1, ?2, ?3)")
                .map_err(fail)?;
            for [value, count] in &run.histogram {
                insert
                    .execute(params![id, *value as i64, *count as i64])
                    .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        Ok(id)
    }

    /// The newest `limit` runs, newest first.
    pub fn list(&self, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let fail = |e: rusqlite::Error| StoreError(format!("listing runs: {e}"));
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at, scenario, target, requests, requests_per_s, p50_ms, p99_ms,
                        errors, wsrun_version FROM runs ORDER BY id DESC LIMIT ?1",
            )
            .map_err(fail)?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(Listed {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    scenario: r.get(2)?,
                    target: r.get(3)?,
                    requests: r.get(4)?,
                    requests_per_s: r.get(5)?,
                    p50_ms: r.get(6)?,
                    p99_ms: r.get(7)?,
                    errors: r.get(8)?,
                    wsrun_version: r.get(9)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    }

    /// One run by id, with its histogram as stored.
    pub fn load(&self, id: i64) -> Result<RunRecord, StoreError> {
        let fail = |e: rusqlite::Error| StoreError(format!("loading run {id}: {e}"));
        let json: Option<String> = self
            .conn
            .query_row("SELECT record FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(fail)?;
        let json =
            json.ok_or_else(|| StoreError(format!("no run {id} (see `wsrun bench history`)")))?;
        let mut run: RunRecord = serde_json::from_str(&json)
            .map_err(|e| StoreError(format!("run {id} is unreadable: {e}")))?;
        run.id = Some(id);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT latency_us, count FROM histogram WHERE run_id = ?1 ORDER BY latency_us",
            )
            .map_err(fail)?;
        let buckets = stmt
            .query_map([id], |r| {
                Ok([r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64])
            })
            .map_err(fail)?;
        run.histogram = buckets.collect::<Result<_, _>>().map_err(fail)?;
        Ok(run)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
