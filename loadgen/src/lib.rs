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
//! - `measure`: one run from plan to store and report (`URL` and every `--suite` scenario).
//! - `suite`, `suite_server`: `--suite`: starts wsrun with examples/bench-suite/ and runs its
//!   scenarios against it.
//! - `run`: the run record (JSON schema 1).
//! - `store`: SQLite (`--db`), `PRAGMA user_version` schema.
//! - `compare`, `output`, `progress`, `submit`: comparison, summary text, progress, `--report`.

pub mod args;
mod compare;
mod flood;
mod http1;
mod machine;
mod measure;
mod output;
mod plan;
mod progress;
mod run;
mod saturate;
mod slow;
mod stats;
mod store;
mod submit;
mod suite;
mod suite_server;

use std::process::ExitCode;

pub use args::BenchArgs;
pub use machine::Versions;

use args::BenchAction;
use measure::Failure;
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

/// One load run (or, with `--suite`, the suite's runs): measure, then print.
fn load(args: &BenchArgs, versions: Versions) -> Result<String, Failure> {
    if args.load.suite {
        return suite::main(args, versions);
    }
    let load = &args.load;
    let mut store = measure::open_store(load, &args.db)?;
    let runtime = measure::runtime()?;
    let measured = measure::measure(load, &runtime, store.as_mut(), versions)?;
    let record = &measured.record;
    let mut text = match load.json {
        true => measure::json_line(record)?,
        false => output::summary(record),
    };
    if let (Some(url), Some(status), false) = (&load.report, measured.reported, load.json) {
        text.push_str(&format!("  reported to {url}: {status}\n"));
    }
    if let (Some(id), false) = (record.id, load.json) {
        text.push_str(&format!("  stored as run {id} in {}\n", args.db.display()));
    }
    Ok(text)
}
