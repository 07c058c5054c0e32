//! `--mode flood`: connection attempts faster than the server accepts. `-c` attempts are kept
//! in flight for the run; every accepted connection is held open (idle) until the end, up to
//! what the file-descriptor limit allows. Meanwhile a probe sends one normal request every
//! `PROBE_EVERY` on a fresh connection and times its first response byte.
//!
//! Owns: the attempts, the held connections, the probe and the flood report. Must not touch:
//! saturate or slow mode, output.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::plan::{Plan, Stop};

const DEFAULT_RUN: Duration = Duration::from_secs(10);
/// How often the probe request is sent during the flood.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// File descriptors left free for the probe, the store and the runtime.
const FD_RESERVE: u64 = 64;

/// What the flood met.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FloodReport {
    pub attempts: u64,
    pub accepted: u64,
    pub refused: u64,
    pub reset: u64,
    /// Attempts that did not complete within --timeout (a full backlog drops the SYN).
    pub timed_out: u64,
    pub other_errors: u64,
    /// Accepted connections held open at once, at most.
    pub held_max: u64,
    pub probes: u64,
    pub probe_failures: u64,
    /// Time to first byte of the probe requests, ms: min, median, max.
    pub probe_ttfb_ms: [f64; 3],
}

#[derive(Default)]
struct Counts {
    attempts: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    timed_out: AtomicU64,
    other: AtomicU64,
}

pub async fn run(plan: Arc<Plan>) -> (FloodReport, Duration) {
    let length = match plan.stop {
        Stop::Duration(d) => d,
        Stop::Requests(_) => DEFAULT_RUN,
    };
    let start = Instant::now();
    let end = start + length;
    let counts = Arc::new(Counts::default());
    let held = Arc::new(Mutex::new(Vec::new()));
    let cap = hold_capacity(plan.connections);
    let attackers: Vec<_> = (0..plan.connections)
        .map(|_| {
            let (plan, counts, held) = (Arc::clone(&plan), Arc::clone(&counts), Arc::clone(&held));
            tokio::spawn(async move { attack(&plan, end, &counts, &held, cap).await })
        })
        .collect();
    let probe = tokio::spawn(probe_loop(Arc::clone(&plan), end));
    let mut held_max = 0;
    for task in attackers {
        held_max = held_max.max(task.await.unwrap_or(0));
    }
    let ttfbs = probe.await.unwrap_or_default();
    if let Ok(mut held) = held.lock() {
        held.clear();
    }
    (report(&counts, held_max, &ttfbs), start.elapsed())
}

fn report(counts: &Counts, held_max: u64, ttfbs: &[Option<f64>]) -> FloodReport {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut ok: Vec<f64> = ttfbs.iter().flatten().copied().collect();
    ok.sort_by(f64::total_cmp);
    let probe_ttfb_ms = match (ok.first(), ok.last()) {
        (Some(a), Some(b)) => [*a, ok[ok.len() / 2], *b],
        _ => [0.0; 3],
    };
    FloodReport {
        attempts: get(&counts.attempts),
        accepted: get(&counts.accepted),
        refused: get(&counts.refused),
        reset: get(&counts.reset),
        timed_out: get(&counts.timed_out),
        other_errors: get(&counts.other),
        held_max,
        probes: ttfbs.len() as u64,
        probe_failures: ttfbs.iter().filter(|t| t.is_none()).count() as u64,
        probe_ttfb_ms,
    }
}

/// One attempt after another until the end; returns the most connections held at once.
async fn attack(
    plan: &Plan,
    end: Instant,
    counts: &Counts,
    held: &Mutex<Vec<TcpStream>>,
    cap: usize,
) -> u64 {
    let mut most = 0;
    while Instant::now() < end {
        counts.attempts.fetch_add(1, Ordering::Relaxed);
        let limit = (Instant::now() + plan.timeout).min(end);
        match tokio::time::timeout_at(limit.into(), TcpStream::connect(plan.target.addr)).await {
            Ok(Ok(stream)) => {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                let Ok(mut held) = held.lock() else {
                    return most;
                };
                if held.len() >= cap {
                    held.remove(0);
                }
                held.push(stream);
                most = most.max(held.len() as u64);
            }
            Ok(Err(e)) => {
                let counter = match e.kind() {
                    ErrorKind::ConnectionRefused => &counts.refused,
                    ErrorKind::ConnectionReset => &counts.reset,
                    ErrorKind::TimedOut => &counts.timed_out,
                    _ => &counts.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            Err(_) if Instant::now() < end => {
                counts.timed_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                counts.attempts.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    most
}

/// A normal request every `PROBE_EVERY`; each entry its TTFB in ms, or None when it failed.
async fn probe_loop(plan: Arc<Plan>, end: Instant) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    let mut next = Instant::now() + PROBE_EVERY;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let limit = (Instant::now() + plan.timeout).min(end + plan.timeout);
        let ttfb = tokio::time::timeout_at(limit.into(), probe(&plan))
            .await
            .ok()
            .flatten();
        out.push(ttfb);
        next = (next + PROBE_EVERY).max(Instant::now());
    }
    out
}

async fn probe(plan: &Plan) -> Option<f64> {
    let sent = Instant::now();
    let mut stream = TcpStream::connect(plan.target.addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    stream.write_all(&plan.request).await.ok()?;
    let mut byte = [0u8; 1];
    match stream.read(&mut byte).await {
        Ok(1) => Some(sent.elapsed().as_secs_f64() * 1000.0),
        _ => None,
    }
}

/// How many accepted connections may be held: raises the soft descriptor limit to the hard one,
/// then leaves `FD_RESERVE` free (and room for the attempts in flight).
fn hold_capacity(in_flight: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the `rlimit` struct we pass by pointer.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &raised) {
                0 => lim.rlim_max,
                _ => lim.rlim_cur,
            }
        } else {
            1024
        }
    };
    (soft.saturating_sub(FD_RESERVE + in_flight as u64 + 1)).max(1) as usize
}
