//! The migration store: `state_dir/migrate.sqlite3`, its schema, and the one writer thread
//! per worker process that fills it.
//!
//! Owns: the schema (`counts` per route, `latency` as a log-bucket histogram per route and
//! side, `diff_paths` (every difference counted by its path), `diffs` (a bounded sample,
//! `SAMPLE_PER_ROUTE` newest per route), `events` (rollbacks)), `Record` and `Recorder`:
//! requests hand records to a bounded channel (`try_send`: a full channel drops the record
//! rather than wait), and the writer thread (at nice 10, like the shadow thread) lets them
//! gather for `GATHER`, then writes them in one transaction, counts and latencies summed per
//! route and bucket (`Totals`). The file is in
//! WAL mode with a busy timeout, so several workers write at once without "database is
//! locked". Must not touch: what is compared or reported (`compare`, `report`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};

use super::latency::bucket_of;
use super::mirror::SkipReason;

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
CREATE TABLE IF NOT EXISTS skips (
  route TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (route, reason));
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
    /// A request that should have been mirrored and was not, and why.
    Skipped { route: String, reason: SkipReason },
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

/// How long the writer lets records gather after the first one before it writes them. It
/// sleeps meanwhile (a record sent then does not wake it), so at any request rate the thread
/// wakes at most about 1 / `GATHER` times a second and writes one transaction each time.
const GATHER: Duration = Duration::from_millis(10);

/// The writer's nice value, as the shadow thread's: its work follows from mirrored requests
/// and must yield the CPU to the event loop that serves the clients.
const WRITER_NICE: libc::c_int = 10;

fn write_loop(mut conn: Connection, rx: Receiver<Record>) {
    crate::thread_nice::lower_this_thread(WRITER_NICE);
    while let Ok(first) = rx.recv() {
        std::thread::sleep(GATHER);
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
/// rarely counting 198 of 200). Counts and latencies are summed first and written once per
/// route and bucket (`Totals`); differences and events are rows of their own.
fn write_batch(conn: &mut Connection, batch: Vec<Record>) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut totals = Totals::default();
    for record in batch {
        totals.add(&tx, record)?;
    }
    totals.write(&tx)?;
    tx.commit()
}

/// A route's counters, in the order of `counts`' columns after `route`.
#[derive(Default)]
struct Counts([i64; 7]);

/// The counters of `counts`, as indexes into `Counts`.
#[derive(Clone, Copy)]
enum Counter {
    Compared,
    Matched,
    Differed,
    ShadowFailed,
    Skipped,
    Canary,
    Rollbacks,
}

/// Adds a batch's counts to each route's row (one statement per route).
const ADD_COUNTS: &str = "INSERT INTO counts
  (route, compared, matched, differed, shadow_failed, skipped, canary, rollbacks)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
  ON CONFLICT (route) DO UPDATE SET compared = compared + excluded.compared,
    matched = matched + excluded.matched, differed = differed + excluded.differed,
    shadow_failed = shadow_failed + excluded.shadow_failed,
    skipped = skipped + excluded.skipped, canary = canary + excluded.canary,
    rollbacks = rollbacks + excluded.rollbacks";

/// Adds a batch's skips for one reason.
const ADD_SKIPS: &str = "INSERT INTO skips (route, reason, n) VALUES (?1, ?2, ?3)
  ON CONFLICT (route, reason) DO UPDATE SET n = n + excluded.n";

/// Adds a batch's measurements to one histogram bucket.
const ADD_LATENCY: &str = "INSERT INTO latency (route, side, bucket, n) VALUES (?1, ?2, ?3, ?4)
  ON CONFLICT (route, side, bucket) DO UPDATE SET n = n + excluded.n";

/// What one batch adds to the counters and histograms, summed before it is written.
#[derive(Default)]
struct Totals {
    counts: HashMap<String, Counts>,
    latency: HashMap<(String, &'static str, i64), i64>,
    skips: HashMap<(String, SkipReason), i64>,
}

impl Totals {
    fn count(&mut self, route: &str, counter: Counter) {
        self.counts.entry(route.to_string()).or_default().0[counter as usize] += 1;
    }

    fn measure(&mut self, route: &str, side: &'static str, us: u64) {
        *self
            .latency
            .entry((route.to_string(), side, bucket_of(us)))
            .or_default() += 1;
    }

    /// Sums `record`; a difference or an event is written at once (it needs its row id).
    fn add(&mut self, conn: &Connection, record: Record) -> rusqlite::Result<()> {
        match record {
            Record::Compared {
                route,
                primary_us,
                shadow_us,
                diff,
            } => {
                self.count(&route, Counter::Compared);
                self.measure(&route, "primary", primary_us);
                self.measure(&route, "shadow", shadow_us);
                match diff {
                    None => self.count(&route, Counter::Matched),
                    Some(diff) => {
                        self.count(&route, Counter::Differed);
                        write_diff(conn, &route, &diff)?;
                    }
                }
            }
            Record::ShadowFailed { route, primary_us } => {
                self.measure(&route, "primary", primary_us);
                self.count(&route, Counter::ShadowFailed);
            }
            Record::Skipped { route, reason } => {
                self.count(&route, Counter::Skipped);
                *self.skips.entry((route, reason)).or_default() += 1;
            }
            Record::Canary { route } => self.count(&route, Counter::Canary),
            Record::Rollback { route, detail } => {
                self.count(&route, Counter::Rollbacks);
                conn.execute(
                    "INSERT INTO events (route, at, kind, detail) VALUES (?1, ?2, 'rollback', ?3)",
                    params![route, now(), detail],
                )?;
            }
        }
        Ok(())
    }

    fn write(self, conn: &Connection) -> rusqlite::Result<()> {
        let mut add_counts = conn.prepare_cached(ADD_COUNTS)?;
        for (route, Counts(c)) in &self.counts {
            add_counts.execute(params![route, c[0], c[1], c[2], c[3], c[4], c[5], c[6]])?;
        }
        let mut add_skips = conn.prepare_cached(ADD_SKIPS)?;
        for ((route, reason), n) in &self.skips {
            add_skips.execute(params![route, reason.as_str(), n])?;
        }
        let mut add_latency = conn.prepare_cached(ADD_LATENCY)?;
        for ((route, side, bucket), n) in &self.latency {
            add_latency.execute(params![route, side, bucket, n])?;
        }
        Ok(())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn compared(route: &str, us: u64, differs: bool) -> Record {
        Record::Compared {
            route: route.to_string(),
            primary_us: us,
            shadow_us: us * 2,
            diff: differs.then(|| {
                Box::new(Diff {
                    path: "$.name".into(),
                    request: "GET /a".into(),
                    primary: "{}".into(),
                    shadow: "{}".into(),
                })
            }),
        }
    }

    /// A mixed batch for two routes adds up to the same counts and histogram as one
    /// record at a time did, and a second batch adds to the first.
    #[test]
    fn a_batch_is_summed_per_route_and_bucket() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut conn = open(&dir.path().join(FILE)).expect("open the store");
        let batch = || {
            vec![
                compared("/a", 100, false),
                compared("/a", 100, true),
                compared("/b", 5000, false),
                Record::ShadowFailed {
                    route: "/a".into(),
                    primary_us: 100,
                },
                Record::Skipped {
                    route: "/b".into(),
                    reason: SkipReason::LoopBusy,
                },
                Record::Skipped {
                    route: "/b".into(),
                    reason: SkipReason::InFlight,
                },
                Record::Skipped {
                    route: "/b".into(),
                    reason: SkipReason::LoopBusy,
                },
                Record::Canary { route: "/b".into() },
                Record::Rollback {
                    route: "/b".into(),
                    detail: "5xx".into(),
                },
            ]
        };
        write_batch(&mut conn, batch()).expect("first batch");
        write_batch(&mut conn, batch()).expect("second batch");
        let counts = |route: &str| -> Vec<i64> {
            conn.query_row(
                "SELECT compared, matched, differed, shadow_failed, skipped, canary, rollbacks \
                 FROM counts WHERE route = ?1",
                [route],
                |r| (0..7).map(|i| r.get(i)).collect(),
            )
            .expect("counts row")
        };
        assert_eq!(counts("/a"), [4, 2, 2, 2, 0, 0, 0]);
        assert_eq!(counts("/b"), [2, 2, 0, 0, 6, 2, 2]);
        let skips = |reason: SkipReason| -> i64 {
            conn.query_row(
                "SELECT n FROM skips WHERE route = '/b' AND reason = ?1",
                [reason.as_str()],
                |r| r.get(0),
            )
            .unwrap_or(0)
        };
        assert_eq!(skips(SkipReason::LoopBusy), 4);
        assert_eq!(skips(SkipReason::InFlight), 2);
        assert_eq!(skips(SkipReason::Uncopyable), 0);
        let measured = |route: &str, side: &str, us: u64| -> i64 {
            conn.query_row(
                "SELECT n FROM latency WHERE route = ?1 AND side = ?2 AND bucket = ?3",
                params![route, side, bucket_of(us)],
                |r| r.get(0),
            )
            .expect("latency row")
        };
        assert_eq!(measured("/a", "primary", 100), 6);
        assert_eq!(measured("/a", "shadow", 200), 4);
        assert_eq!(measured("/b", "shadow", 10_000), 2);
        let rows = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .expect("row count")
        };
        assert_eq!((rows("diffs"), rows("events")), (2, 2));
    }
}
