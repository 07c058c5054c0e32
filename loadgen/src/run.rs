//! The run record: what one `wsrun bench` run did and measured, as printed by `--json`, stored
//! in SQLite and POSTed by `--report`. JSON schema version `SCHEMA_VERSION`; a field is only
//! ever added, and a removal or change of meaning bumps the version.
//!
//! Owns: the record's shape and building it from a mode's outcome. Must not touch: sockets,
//! the store's tables, text output.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flood::FloodReport;
use crate::machine::Machine;
use crate::plan::{Plan, Stop};
use crate::slow::SlowReport;
use crate::stats::{Errors, Latency, Stats};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    /// Set by the store once saved (absent from `--json` of an unstored run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub scenario: String,
    pub mode: String,
    pub target: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_at: u64,
    pub settings: Settings,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub transfer_bytes_per_s: f64,
    pub latency_ms: Latency,
    /// Status code (as a string key) to count.
    pub statuses: BTreeMap<String, u64>,
    pub errors: Errors,
    /// `[latency_us, count]` per non-empty histogram bucket.
    pub histogram: Vec<[u64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<SlowReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodReport>,
    pub machine: Machine,
}

/// The flags that shaped the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub connections: u64,
    pub method: String,
    pub body_size: u64,
    pub post_clients: u64,
    pub rate: Option<f64>,
    pub keepalive: bool,
    pub requests: Option<u64>,
    pub duration_s: Option<f64>,
}

/// What a mode hands over to be recorded.
pub enum Outcome {
    Load(Stats),
    Slow(SlowReport),
    Flood(FloodReport),
}

pub fn record(
    plan: &Plan,
    outcome: Outcome,
    elapsed: Duration,
    started_at: u64,
    machine: Machine,
) -> RunRecord {
    let (stats, slow, flood) = match outcome {
        Outcome::Load(stats) => (stats, None, None),
        Outcome::Slow(report) => (Stats::new(), Some(report), None),
        Outcome::Flood(report) => (Stats::new(), None, Some(report)),
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    let requests = stats.responses();
    RunRecord {
        schema: SCHEMA_VERSION,
        id: None,
        scenario: plan.scenario.clone(),
        mode: plan.mode.name().to_string(),
        target: plan.target.url.clone(),
        started_at,
        settings: settings(plan),
        duration_s: elapsed.as_secs_f64(),
        requests,
        requests_per_s: requests as f64 / secs,
        bytes_read: stats.bytes_read,
        bytes_written: stats.bytes_written,
        transfer_bytes_per_s: (stats.bytes_read + stats.bytes_written) as f64 / secs,
        latency_ms: stats.latency(),
        statuses: stats
            .statuses
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect(),
        errors: stats.errors,
        histogram: stats.buckets(),
        slow,
        flood,
        machine,
    }
}

fn settings(plan: &Plan) -> Settings {
    let (requests, duration_s) = match plan.stop {
        Stop::Requests(n) => (Some(n), None),
        Stop::Duration(d) => (None, Some(d.as_secs_f64())),
    };
    Settings {
        connections: plan.connections as u64,
        method: plan.method.clone(),
        body_size: plan.body_size,
        post_clients: plan.post_clients as u64,
        rate: plan.rate,
        keepalive: plan.keepalive,
        requests,
        duration_s,
    }
}
