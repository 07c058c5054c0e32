//! `--mode slow`: slowloris. N connections each trickle a request head (`--slow-part head`,
//! header lines without the blank line) or a body (`--slow-part body`, after a head announcing a
//! large Content-Length) at `--slow-rate` bytes per second, and watch for the server cutting
//! them: a write error, EOF or a reset, or a response (typically 408) followed by a close.
//!
//! Owns: the trickling connections and the cut report. Must not touch: saturate mode, output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::args::SlowPart;
use crate::http1::parse_head;
use crate::plan::{Plan, Stop};

/// The run length when `-n` was given (a request count means nothing here).
const DEFAULT_RUN: Duration = Duration::from_secs(10);
/// The Content-Length announced by a trickled body: far more than a run sends.
const BODY_ANNOUNCED: u64 = 1 << 30;

/// What the server did to the trickling connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlowReport {
    pub part: String,
    pub rate_bytes_per_s: u64,
    pub connections: u64,
    pub connect_errors: u64,
    /// Connections the server closed or reset before the run ended.
    pub cut: u64,
    /// Connections still open at the end.
    pub open_at_end: u64,
    /// Seconds from connect to cut: min, median, max (zero when none was cut).
    pub cut_after_s: [f64; 3],
    /// Status codes of responses sent before cutting (e.g. 408).
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

enum Fate {
    ConnectError,
    Cut {
        after: Duration,
        status: Option<u16>,
    },
    Open,
}

pub async fn run(plan: Arc<Plan>) -> (SlowReport, Duration) {
    let length = match plan.stop {
        Stop::Duration(d) => d,
        Stop::Requests(_) => DEFAULT_RUN,
    };
    let start = Instant::now();
    let end = start + length;
    let tasks: Vec<_> = (0..plan.connections)
        .map(|_| {
            let plan = Arc::clone(&plan);
            tokio::spawn(async move { trickle(&plan, end).await })
        })
        .collect();
    let mut report = SlowReport {
        part: format!("{:?}", plan.slow_part).to_lowercase(),
        rate_bytes_per_s: plan.slow_rate,
        connections: plan.connections as u64,
        ..SlowReport::default()
    };
    let mut cuts = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Fate::ConnectError) | Err(_) => report.connect_errors += 1,
            Ok(Fate::Open) => report.open_at_end += 1,
            Ok(Fate::Cut { after, status }) => {
                cuts.push(after.as_secs_f64());
                if let Some(s) = status {
                    *report.statuses.entry(s).or_insert(0) += 1;
                }
            }
        }
    }
    report.cut = cuts.len() as u64;
    cuts.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (cuts.first(), cuts.last()) {
        report.cut_after_s = [*first, cuts[cuts.len() / 2], *last];
    }
    (report, start.elapsed())
}

/// One trickling connection, until the server cuts it or the run ends.
async fn trickle(plan: &Plan, end: Instant) -> Fate {
    let Ok(Ok(mut stream)) =
        tokio::time::timeout_at(end.into(), TcpStream::connect(plan.target.addr)).await
    else {
        return Fate::ConnectError;
    };
    let connected = Instant::now();
    let (opening, filler) = opening_bytes(plan);
    if stream.write_all(&opening).await.is_err() {
        return Fate::Cut {
            after: connected.elapsed(),
            status: None,
        };
    }
    let tick = Duration::from_secs_f64(1.0 / plan.slow_rate as f64);
    let mut next = Instant::now() + tick;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent = 0usize;
    loop {
        if Instant::now() >= end {
            return Fate::Open;
        }
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => return Fate::Cut { after: connected.elapsed(), status: status_of(&seen) },
            },
            _ = tokio::time::sleep_until(next.min(end).into()) => {
                if Instant::now() >= end {
                    return Fate::Open;
                }
                let byte = filler[sent % filler.len()];
                sent += 1;
                if stream.write_all(&[byte]).await.is_err() {
                    return Fate::Cut { after: connected.elapsed(), status: status_of(&seen) };
                }
                next += tick;
            }
        }
    }
}

/// What is sent at once, and the bytes then trickled one at a time (repeating).
fn opening_bytes(plan: &Plan) -> (Vec<u8>, &'static [u8]) {
    let t = &plan.target;
    match plan.slow_part {
        SlowPart::Head => {
            let head = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", t.path, t.authority);
            (head.into_bytes(), b"X-Slow: aaaaaaaaaa\r\n")
        }
        SlowPart::Body => {
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {BODY_ANNOUNCED}\r\n\r\n",
                t.path, t.authority
            );
            (head.into_bytes(), b"x")
        }
    }
}

fn status_of(seen: &[u8]) -> Option<u16> {
    parse_head(seen).ok().flatten().map(|h| h.status)
}
