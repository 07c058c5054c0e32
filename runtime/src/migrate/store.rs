//! The migration store: `state_dir/migrate.sqlite3`, its schema, and the one writer thread
//! per worker process that fills it.
//!
//! Owns: the schema (`counts` per route, `latency` as a log-bucket histogram per route and
//! side, `diff_paths` (every difference counted by its path), `diffs` (a bounded sample,
//! `SAMPLE_PER_ROUTE` newest per route), `events` (rollbacks)), `Record` and `Recorder`:
//! requests hand records to a bounded channel (`try_send`: a full channel drops the record
//! rather than wait), and the writer thread batches them into one transaction. The file is in
//! WAL mode with a busy timeout, so several workers write at once without "database is
//! locked". Must not touch: what is compared or reported (`compare`, `report`).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};

use super::latency::bucket_of;

/// The store's file name under `state_dir`.
pub const FILE: &str = "migrate.sqlite3";
/// Records a worker may have waiting for the writer.
const CHANNEL: usize = 4096;
/// Records written in one transaction at most.
const BATCH: usize = 512;
/// Differences kept in full per route (the newest).
pub const SAMPLE_PER_ROUTE: i64 = 200;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counts (
  route TEXT PRIMARY KEY, compared INTEGER NOT NULL DEFAULT 0, matched INTEGER NOT NULL DEFAULT 0,
  differed INTEGER NOT NULL DEFAULT 0, shadow_failed INTEGER NOT NULL DEFAULT 0,
  skipped INTEGER NOT NULL DEFAULT 0, canary INTEGER NOT NULL DEFAULT 0,
  rollbacks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS latency (
  route TEXT NOT NULL, side TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (route, side, bucket));
CREATE TABLE IF NOT EXISTS diff_paths (
  route TEXT NOT NULL, path TEXT NOT NULL, n INTEGER NOT NULL, last_id INTEGER,
  PRIMARY KEY (route, path));
CREATE TABLE IF NOT EXISTS diffs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, route TEXT NOT NULL, at INTEGER NOT NULL,
  path TEXT NOT NULL, request TEXT NOT NULL, primary_response TEXT NOT NULL,
  shadow_response TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, route TEXT NOT NULL, at INTEGER NOT NULL,
  kind TEXT NOT NULL, detail TEXT NOT NULL);
";

/// One fact about a route's migration.
pub enum Record {
    /// Both sides answered; `diff` is set when they differed.
    Compared {
        route: String,
        primary_us: u64,
        shadow_us: u64,
        diff: Option<Box<Diff>>,
    },
    /// The shadow trapped, timed out or could not run.
    ShadowFailed { route: String, primary_us: u64 },
    /// A request that should have been mirrored and was not (too busy, body too large).
    Skipped { route: String },
    /// A request the canary served.
    Canary { route: String },
    /// The canary was rolled back.
    Rollback { route: String, detail: String },
}

/// One difference, as kept in the sample.
pub struct Diff {
    pub path: String,
    pub request: String,
    pub primary: String,
    pub shadow: String,
}

/// Where this worker sends records (opened on first use, after the fork).
pub struct Recorder {
    tx: SyncSender<Record>,
}

static RECORDER: OnceLock<Option<Recorder>> = OnceLock::new();

impl Recorder {
    /// The worker's recorder for `state_dir` (`None` when the writer could not start; logged).
    pub fn get(state_dir: &Path) -> Option<&'static Recorder> {
        RECORDER
            .get_or_init(|| match Recorder::start(state_dir.join(FILE)) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!("migrate store: {e}; shadow results are not recorded");
                    None
                }
            })
            .as_ref()
    }

    fn start(path: PathBuf) -> Result<Recorder, String> {
        let conn = open(&path)?;
        let (tx, rx) = sync_channel(CHANNEL);
        std::thread::Builder::new()
            .name("wsrun-migrate-store".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(|e| format!("cannot start the writer: {e}"))?;
        Ok(Recorder { tx })
    }

    /// Queues `record`; dropped (debug-logged) when the writer is this far behind.
    pub fn send(&self, record: Record) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(record) {
            tracing::debug!("migrate store: writer behind, a record was dropped");
        }
    }
}

/// Opens (creating when needed) the store at `path`.
pub fn open(path: &Path) -> Result<Connection, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))
        .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|_| conn.execute_batch(SCHEMA))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(conn)
}

fn write_loop(mut conn: Connection, rx: Receiver<Record>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if let Err(e) = write_batch(&mut conn, batch) {
            tracing::warn!("migrate store: {e}");
        }
    }
}

/// One IMMEDIATE transaction: it takes the write lock first, waiting under the busy timeout
/// for the other workers' writers. A deferred one starts as a reader, and in WAL mode its
/// upgrade fails at once (`SQLITE_BUSY_SNAPSHOT`, no busy wait) when another worker committed
/// in between, losing the batch (the likely cause of `test_two_workers_write_one_store`
/// rarely counting 198 of 200).
fn write_batch(conn: &mut Connection, batch: Vec<Record>) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for record in batch {
        write(&tx, record)?;
    }
    tx.commit()
}

fn bump(conn: &Connection, route: &str, column: &str) -> rusqlite::Result<()> {
    conn.execute("INSERT OR IGNORE INTO counts (route) VALUES (?1)", [route])?;
    let sql = format!("UPDATE counts SET {column} = {column} + 1 WHERE route = ?1");
    conn.execute(&sql, [route]).map(drop)
}

fn latency(conn: &Connection, route: &str, side: &str, us: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO latency (route, side, bucket, n) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (route, side, bucket) DO UPDATE SET n = n + 1",
        params![route, side, bucket_of(us)],
    )
    .map(drop)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn write(conn: &Connection, record: Record) -> rusqlite::Result<()> {
    match record {
        Record::Compared {
            route,
            primary_us,
            shadow_us,
            diff,
        } => {
            bump(conn, &route, "compared")?;
            latency(conn, &route, "primary", primary_us)?;
            latency(conn, &route, "shadow", shadow_us)?;
            match diff {
                None => bump(conn, &route, "matched"),
                Some(diff) => {
                    bump(conn, &route, "differed")?;
                    write_diff(conn, &route, &diff)
                }
            }
        }
        Record::ShadowFailed { route, primary_us } => {
            latency(conn, &route, "primary", primary_us)?;
            bump(conn, &route, "shadow_failed")
        }
        Record::Skipped { route } => bump(conn, &route, "skipped"),
        Record::Canary { route } => bump(conn, &route, "canary"),
        Record::Rollback { route, detail } => {
            bump(conn, &route, "rollbacks")?;
            conn.execute(
                "INSERT INTO events (route, at, kind, detail) VALUES (?1, ?2, 'rollback', ?3)",
                params![route, now(), detail],
            )
            .map(drop)
        }
    }
}

fn write_diff(conn: &Connection, route: &str, diff: &Diff) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO diffs (route, at, path, request, primary_response, shadow_response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            route,
            now(),
            diff.path,
            diff.request,
            diff.primary,
            diff.shadow
        ],
    )?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO diff_paths (route, path, n, last_id) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (route, path) DO UPDATE SET n = n + 1, last_id = ?3",
        params![route, diff.path, id],
    )?;
    conn.execute(
        "DELETE FROM diffs WHERE route = ?1 AND id <= ?2 - ?3",
        params![route, id, SAMPLE_PER_ROUTE],
    )
    .map(drop)
}
