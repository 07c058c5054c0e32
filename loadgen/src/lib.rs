//! `wsrun-loadgen`: the load generator behind `wsrun bench`.
//!
//! Owns: the entry point `main` (one run, `history` or `compare`) and its exit codes — 2 for a
//! bad URL or flag (nothing sent), 1 for a store or report failure, 0 otherwise (requests that
//! failed are data in the run, not a failed command). Must not touch: the wsrun server; the
//! binary passes its versions in and nothing else crosses.
//!
//! Module map (one way down: `args` → `plan` → the modes → `run` → `store`/`output`/`submit`):
//! - `args`: clap definitions, flattened into wsrun's CLI.
//! - `plan`: flags checked into a `Plan` (target, request bytes, stop, rate).
//! - `http1`: the keep-alive HTTP/1.1 client and response parser.
//! - `saturate`: N connections as fast as they go, or at `--rate` (no coordinated omission).
//! - `slow`: slowloris heads or bodies; what the server cut and when.
//! - `flood`: connection attempts faster than accept; the probe's time to first byte.
//! - `stats`: HDR histogram, status and error counts.
//! - `machine`: CPU, kernel, OS, memory, versions, git commit.
//! - `run`: the run record (JSON schema 1).
//! - `store`: SQLite (`--db`), `PRAGMA user_version` schema.
//! - `compare`, `output`, `progress`, `submit`: comparison, summary text, progress, `--report`.

pub mod args;
mod compare;
mod flood;
mod http1;
mod machine;
mod output;
mod plan;
mod progress;
mod run;
mod saturate;
mod slow;
mod stats;
mod store;
mod submit;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use args::BenchArgs;
pub use machine::Versions;

use args::{BenchAction, Mode};
use plan::{Plan, Stop};
use run::{Outcome, RunRecord};
use store::Store;

/// `wsrun bench ...`.
pub fn main(args: &BenchArgs, versions: Versions) -> ExitCode {
    let result = match &args.action {
        Some(BenchAction::History { limit }) => history(args, *limit),
        Some(BenchAction::Compare { a, b }) => compare(args, *a, *b),
        None => load(args, versions),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(message)) => {
            eprintln!("wsrun bench: error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("wsrun bench: error: {message}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// A bad flag or URL: exit 2.
    Usage(String),
    /// The store or the board failed: exit 1.
    Run(String),
}

fn history(args: &BenchArgs, limit: usize) -> Result<String, Failure> {
    let store = Store::open(&args.db).map_err(|e| Failure::Run(e.to_string()))?;
    let runs = store.list(limit).map_err(|e| Failure::Run(e.to_string()))?;
    Ok(output::history(&runs))
}

fn compare(args: &BenchArgs, a: i64, b: i64) -> Result<String, Failure> {
    let store = Store::open(&args.db).map_err(|e| Failure::Run(e.to_string()))?;
    let load = |id| store.load(id).map_err(|e| Failure::Usage(e.to_string()));
    Ok(compare::compare(&load(a)?, &load(b)?))
}

/// One load run: plan, run, record, store, report, print.
fn load(args: &BenchArgs, versions: Versions) -> Result<String, Failure> {
    let load = &args.load;
    let plan = Arc::new(plan::build(load).map_err(|e| Failure::Usage(e.to_string()))?);
    // Opened first, so a bad --db fails before the load is sent.
    let mut store = match load.no_store {
        true => None,
        false => Some(Store::open(&args.db).map_err(|e| Failure::Run(e.to_string()))?),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(format!("cannot start the runtime: {e}")))?;
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
    if let Some(store) = &mut store {
        record.id = Some(
            store
                .save(&record)
                .map_err(|e| Failure::Run(e.to_string()))?,
        );
    }
    let mut text = match load.json {
        true => json_line(&record)?,
        false => output::summary(&record),
    };
    if let Some(url) = &load.report {
        let status = runtime
            .block_on(submit::submit(url, &record))
            .map_err(Failure::Run)?;
        if !load.json {
            text.push_str(&format!("  reported to {url}: {status}\n"));
        }
    }
    if let (Some(id), false) = (record.id, load.json) {
        text.push_str(&format!("  stored as run {id} in {}\n", args.db.display()));
    }
    Ok(text)
}

/// Runs the plan's mode with progress shown.
async fn drive(plan: Arc<Plan>, quiet: bool) -> (Outcome, Duration) {
    let shared = saturate::Shared::new(&plan);
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
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
            let (report, elapsed) = flood::run(plan).await;
            (Outcome::Flood(report), elapsed)
        }
    }
}

/// The counter the progress line shows: responses in saturate mode, nothing otherwise.
fn counter(
    shared: &Arc<saturate::Shared>,
    idle: &Arc<std::sync::atomic::AtomicU64>,
    mode: Mode,
) -> Arc<std::sync::atomic::AtomicU64> {
    match mode {
        Mode::Saturate => saturate::Shared::done_counter(shared),
        _ => Arc::clone(idle),
    }
}

fn json_line(record: &RunRecord) -> Result<String, Failure> {
    serde_json::to_string(record)
        .map(|s| s + "\n")
        .map_err(|e| Failure::Run(format!("encoding the run: {e}")))
}
