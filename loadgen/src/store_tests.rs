//! Tests of `store` (kept apart so the module stays readable).
use std::time::Duration;

use super::*;
use crate::machine::Machine;
use crate::plan::{Plan, Stop};
use crate::run::{record, Outcome};
use crate::stats::Stats;

/// A scratch database path, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wsrun-loadgen-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir.join("sub").join("bench.sqlite3"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent().and_then(|p| p.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn sample(requests: u64) -> RunRecord {
    let args = ["bench", "http://127.0.0.1:1/x", "-n", "5"];
    let plan: Plan = {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            bench: crate::args::BenchArgs,
        }
        crate::plan::build(&Wrap::parse_from(args).bench.load).unwrap()
    };
    assert_eq!(plan.stop, Stop::Requests(5));
    let mut stats = Stats::new();
    for i in 0..requests {
        stats.record(Duration::from_micros(100 + i), 200, 10, 10);
    }
    record(
        &plan,
        Outcome::Load(stats),
        Duration::from_secs(1),
        1_700_000_000,
        Machine::default(),
    )
}

#[test]
fn saved_runs_are_listed_newest_first_and_load_back_whole() {
    let path = Scratch::new("roundtrip");
    let mut store = Store::open(&path.0).unwrap();
    let first = sample(3);
    let a = store.save(&first).unwrap();
    let b = store.save(&sample(7)).unwrap();
    let listed = store.list(10).unwrap();
    assert_eq!(listed.iter().map(|l| l.id).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(listed[0].requests, 7);
    let loaded = store.load(a).unwrap();
    assert_eq!(loaded.id, Some(a));
    assert_eq!(
        RunRecord {
            id: None,
            ..loaded.clone()
        },
        first
    );
    assert_eq!(loaded.histogram.iter().map(|[_, n]| n).sum::<u64>(), 3);
    assert!(store.load(99).unwrap_err().0.contains("no run 99"));
}

#[test]
fn a_newer_schema_is_refused() {
    let path = Scratch::new("newer");
    drop(Store::open(&path.0).unwrap());
    let conn = Connection::open(&path.0).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA + 1)
        .unwrap();
    drop(conn);
    let err = Store::open(&path.0).err().unwrap();
    assert!(err.0.contains("newer"), "{err}");
}
