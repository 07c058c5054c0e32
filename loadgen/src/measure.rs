//! One measured load run, shared by `wsrun bench URL` and every scenario of `--suite`: plan,
//! drive the mode with progress shown, build the record, store it, report it.
//!
//! Owns: that sequence and the `Failure` kinds a command exits with (2 for a bad flag or URL,
//! 1 for a store or report failure). Must not touch: text output, the server `--suite` starts.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::runtime::Runtime;

use crate::args::{LoadArgs, Mode};
use crate::machine::{self, Versions};
use crate::plan::{self, Plan, Stop};
use crate::run::{self, Outcome, RunRecord};
use crate::store::Store;
use crate::{progress, saturate, slow, submit};

/// Why a command failed.
pub enum Failure {
    /// A bad flag or URL: exit 2.
    Usage(String),
    /// The store, the board or the suite's server failed: exit 1.
    Run(String),
}

/// A run, and the board's status when it was reported.
pub struct Measured {
    pub record: RunRecord,
    pub reported: Option<u16>,
}

/// A single-threaded runtime for the client (the generator's speed was measured on one).
pub fn runtime() -> Result<Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(format!("cannot start the runtime: {e}")))
}

/// Opens the store unless `--no-store`; before any load, so a bad `--db` sends nothing.
pub fn open_store(load: &LoadArgs, db: &std::path::Path) -> Result<Option<Store>, Failure> {
    match load.no_store {
        true => Ok(None),
        false => Store::open(db)
            .map(Some)
            .map_err(|e| Failure::Run(e.to_string())),
    }
}

/// Plans, runs, records, stores (when `store` is given) and reports (`--report`) one run.
pub fn measure(
    load: &LoadArgs,
    runtime: &Runtime,
    store: Option<&mut Store>,
    versions: Versions,
) -> Result<Measured, Failure> {
    let plan = Arc::new(plan::build(load).map_err(|e| Failure::Usage(e.to_string()))?);
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (outcome, elapsed) = runtime.block_on(drive(Arc::clone(&plan), load.json));
    let mut record = run::record(
        &plan,
        outcome,
        elapsed,
        started_at,
        machine::describe(versions),
    );
    if let Some(store) = store {
        record.id = Some(
            store
                .save(&record)
                .map_err(|e| Failure::Run(e.to_string()))?,
        );
    }
    let reported = match &load.report {
        Some(url) => Some(
            runtime
                .block_on(submit::submit(url, &record))
                .map_err(Failure::Run)?,
        ),
        None => None,
    };
    Ok(Measured { record, reported })
}

/// Runs the plan's mode with progress shown.
async fn drive(plan: Arc<Plan>, quiet: bool) -> (Outcome, Duration) {
    let shared = saturate::Shared::new(&plan);
    let done = Arc::new(AtomicU64::new(0));
    let shown_stop = match (plan.mode, plan.stop) {
        (Mode::Saturate, stop) => stop,
        (_, Stop::Duration(d)) => Stop::Duration(d),
        (_, Stop::Requests(_)) => Stop::Duration(Duration::from_secs(10)),
    };
    let _progress =
        progress::Progress::start(shown_stop, counter(&shared, &done, plan.mode), quiet);
    match plan.mode {
        Mode::Saturate => {
            let out = saturate::run(plan, shared).await;
            (Outcome::Load(out.stats), out.elapsed)
        }
        Mode::Slow => {
            let (report, elapsed) = slow::run(plan).await;
            (Outcome::Slow(report), elapsed)
        }
        Mode::Flood => {
            let (report, elapsed) = crate::flood::run(plan).await;
            (Outcome::Flood(report), elapsed)
        }
    }
}

/// The counter the progress line shows: responses in saturate mode, nothing otherwise.
fn counter(shared: &Arc<saturate::Shared>, idle: &Arc<AtomicU64>, mode: Mode) -> Arc<AtomicU64> {
    match mode {
        Mode::Saturate => saturate::Shared::done_counter(shared),
        _ => Arc::clone(idle),
    }
}

/// The record as one line of JSON (`--json`).
pub fn json_line(record: &RunRecord) -> Result<String, Failure> {
    serde_json::to_string(record)
        .map(|s| s + "\n")
        .map_err(|e| Failure::Run(format!("encoding the run: {e}")))
}
