//! The journal's schema, its upgrades, and how it gives disk space back.
//!
//! Owns: the tables and indexes of the SQLite journal, bringing a journal written by an
//! older wsrun up to them (added columns; the timers table re-keyed by owner and name), the
//! `auto_vacuum = INCREMENTAL` mode (set on new journals, switched on once for old ones with
//! a `VACUUM`), the WAL size limit, and `reclaim`: freed pages back to the file system and
//! the WAL truncated. Must not touch: the statements jobs and timers go through (`journal`,
//! `journal_quota`), threads (`journal_thread`).

use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// The timers table (name and columns), as both `SCHEMA` and `REKEY_TIMERS` create it.
macro_rules! timers_table {
    () => {
        "timers (
    owner    TEXT    NOT NULL DEFAULT '',
    name     TEXT    NOT NULL,
    schedule TEXT    NOT NULL,
    method   TEXT    NOT NULL,
    host     TEXT    NOT NULL,
    path     TEXT    NOT NULL,
    headers  BLOB    NOT NULL,
    body     BLOB    NOT NULL,
    source   TEXT    NOT NULL,
    next_due INTEGER NOT NULL,
    account  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (owner, name)
)"
    };
}

/// Tables as a new journal gets them (`CREATE ... IF NOT EXISTS`: an old journal keeps its
/// own until `upgrade` has run).
pub const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    method       TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    headers      BLOB    NOT NULL,
    body         BLOB    NOT NULL,
    origin       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    lease_owner  INTEGER,
    lease_until  INTEGER,
    last_error   TEXT,
    account      TEXT    NOT NULL DEFAULT '',
    size         INTEGER NOT NULL DEFAULT 0,
    timer        TEXT
);
CREATE TABLE IF NOT EXISTS dead_jobs (
    id           INTEGER PRIMARY KEY,
    method       TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    headers      BLOB    NOT NULL,
    body         BLOB    NOT NULL,
    origin       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    failed_at    INTEGER NOT NULL,
    last_error   TEXT,
    account      TEXT    NOT NULL DEFAULT '',
    size         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ",
    timers_table!(),
    ";"
);

/// Indexes, made once `upgrade` has added the columns they cover.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS jobs_by_run_at ON jobs (run_at);
CREATE INDEX IF NOT EXISTS jobs_by_lease ON jobs (lease_until);
CREATE INDEX IF NOT EXISTS jobs_by_account ON jobs (account, run_at, size);
CREATE INDEX IF NOT EXISTS jobs_by_timer ON jobs (timer) WHERE timer IS NOT NULL;
CREATE INDEX IF NOT EXISTS dead_jobs_by_account ON dead_jobs (account, size);
CREATE INDEX IF NOT EXISTS timers_by_account ON timers (account);
";

/// Columns older journals lack, with how they are added and filled.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("jobs", "account", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "size", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "timer", "TEXT"),
    ("dead_jobs", "account", "TEXT NOT NULL DEFAULT ''"),
    ("dead_jobs", "size", "INTEGER NOT NULL DEFAULT 0"),
];

/// The timers table re-keyed by (owner, name); an old journal's timers keep their names and
/// become the operator's (owner `''`).
const REKEY_TIMERS: &str = concat!(
    "
ALTER TABLE timers RENAME TO timers_before_owner;
CREATE TABLE ",
    timers_table!(),
    ";
INSERT INTO timers (owner, name, schedule, method, host, path, headers, body, source, next_due)
    SELECT '', name, schedule, method, host, path, headers, body, source, next_due
    FROM timers_before_owner;
DROP TABLE timers_before_owner;
"
);

/// A WAL larger than this is cut back to it once a checkpoint has emptied it (by the next
/// write), or truncated by the checkpointer (when nothing writes).
pub const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// `PRAGMA auto_vacuum` value of INCREMENTAL.
const INCREMENTAL: i64 = 2;

/// Settings of every connection, before anything else is done with it; on a new (empty)
/// journal also the vacuum mode, which must be set before the first table.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    switch_to_wal(conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
}

/// How long a connection keeps trying to switch a new journal into WAL mode while other
/// connections do the same (about as long as the busy handler waits for a lock).
const WAL_SWITCH_PATIENCE: Duration = Duration::from_secs(10);

/// Puts the journal in WAL mode (a no-op once it is). A new journal file starts in rollback
/// mode, where the switch needs the exclusive lock; when several connections open it at once
/// (a worker's journal thread, its direct connection and its checkpointer; other workers),
/// each holds a shared lock and wants to write, and SQLite answers `SQLITE_BUSY` at once to
/// all but one instead of calling their busy handler (waiting could deadlock). The loser
/// lets go of its lock with the failed statement, so trying again shortly after succeeds.
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<()> {
    let started = Instant::now();
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == ErrorCode::DatabaseBusy
                    && started.elapsed() < WAL_SWITCH_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            done => return done,
        }
    }
}

/// Creates the tables, upgrades an older journal's, makes the indexes (one transaction, so
/// two processes opening an old journal together upgrade it once).
pub fn create(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA)?;
    for (table, column, declaration) in ADDED_COLUMNS {
        if !has_column(&tx, table, column)? {
            tx.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
            ))?;
            if *column == "size" {
                let fill = format!(
                    "UPDATE {table} SET size = length(method) + length(path) + length(headers) + length(body)"
                );
                tx.execute_batch(&fill)?;
            }
        }
    }
    if !has_column(&tx, "timers", "owner")? {
        tx.execute_batch(REKEY_TIMERS)?;
    }
    tx.execute_batch(INDEXES)?;
    tx.commit()
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A journal made before wsrun set `auto_vacuum` gets the mode once, with a `VACUUM` (which
/// rewrites the file; another process holding it open makes it wait, then give up until the
/// next start). Returns whether the journal is (now) in incremental mode.
pub fn ensure_incremental_vacuum(conn: &Connection) -> rusqlite::Result<bool> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode == INCREMENTAL {
        return Ok(true);
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch("VACUUM")?;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    Ok(mode == INCREMENTAL)
}

/// Pages on the free list (space deleted rows left behind).
pub fn free_pages(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))
}

/// Copies the whole WAL into the database and truncates it to nothing (waiting, through the
/// busy handler, for readers of older snapshots; commits wait meanwhile, so only when the
/// WAL is large). Another checkpoint in progress makes it a no-op: that one's owner, or the
/// checkpointer's next round, does it.
pub fn truncate_wal(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Gives freed pages back to the file system and truncates the WAL as far as readers allow.
pub fn reclaim(conn: &Connection) -> rusqlite::Result<()> {
    // The pragma frees pages as it is stepped: run it to its end, not one step.
    let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = vacuum.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    truncate_wal(conn)
}
