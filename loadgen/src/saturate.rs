//! `--mode saturate`: N keep-alive connections, each sending its next request as soon as the
//! last response ended; with `--rate R`, requests at fixed intended times instead (R/N per
//! second on each connection), latency counted from the intended send time so a stall shows up
//! in the percentiles (no coordinated omission).
//!
//! Owns: the per-connection loop, the stop condition, reconnecting after an error or a close.
//! Must not touch: the wire format (`http1`), output and storage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::timeout_at;

use crate::http1::{Conn, ExchangeError};
use crate::plan::{Plan, Stop};
use crate::stats::Stats;

/// Pause after a failed connect, so a refusing server is counted, not spun on.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Shared between the connections and the progress line.
pub struct Shared {
    /// Requests still to start (`-n`); unused with `-d`.
    budget: AtomicU64,
    /// Responses and errors so far (the progress line reads it).
    done: Arc<AtomicU64>,
}

impl Shared {
    pub fn new(plan: &Plan) -> Arc<Shared> {
        let budget = match plan.stop {
            Stop::Requests(n) => n,
            Stop::Duration(_) => u64::MAX,
        };
        Arc::new(Shared {
            budget: AtomicU64::new(budget),
            done: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The counter of finished requests, for the progress line.
    pub fn done_counter(shared: &Arc<Shared>) -> Arc<AtomicU64> {
        Arc::clone(&shared.done)
    }

    /// Claims one request; false when `-n` is used up.
    fn take(&self) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The merged figures and how long the run took.
pub struct Outcome {
    pub stats: Stats,
    pub elapsed: Duration,
}

/// Runs the plan's connections to the end; call inside a tokio runtime.
pub async fn run(plan: Arc<Plan>, shared: Arc<Shared>) -> Outcome {
    let start = Instant::now();
    let deadline = match plan.stop {
        Stop::Duration(d) => Some(start + d),
        Stop::Requests(_) => None,
    };
    let tasks: Vec<_> = (0..plan.connections)
        .map(|index| {
            let plan = Arc::clone(&plan);
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { connection(&plan, index, &shared, start, deadline).await })
        })
        .collect();
    let mut stats = Stats::new();
    for task in tasks {
        if let Ok(s) = task.await {
            stats.merge(&s);
        }
    }
    let elapsed = match deadline {
        Some(d) => d.min(Instant::now()) - start,
        None => start.elapsed(),
    };
    Outcome { stats, elapsed }
}

/// One connection's loop.
async fn connection(
    plan: &Plan,
    index: usize,
    shared: &Shared,
    start: Instant,
    deadline: Option<Instant>,
) -> Stats {
    let mut stats = Stats::new();
    let request = plan.request_for(index);
    let head_only = index >= plan.post_clients && plan.method == "HEAD";
    let schedule = plan
        .rate
        .map(|rate| Schedule::new(rate, plan.connections, index, start));
    let mut conn: Option<Conn> = None;
    let mut sent: u64 = 0;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) || !shared.take() {
            return stats;
        }
        let intended = match &schedule {
            Some(s) => s.at(sent),
            None => Instant::now(),
        };
        sent += 1;
        if deadline.is_some_and(|d| intended >= d) {
            return stats;
        }
        // Only a future send time is waited for: a `sleep_until` of the past still goes through
        // the timer driver (about 1 ms), which held saturate mode to 0.33x wrk (bench/loadgen.sh).
        if intended > Instant::now() {
            tokio::time::sleep_until(intended.into()).await;
        }
        let limit = Instant::now() + plan.timeout;
        let cut = deadline.map_or(limit, |d| d.min(limit));
        let c = match conn.take() {
            Some(c) => c,
            None => match timeout_at(cut.into(), Conn::connect(plan.target.addr)).await {
                Ok(Ok(c)) => c,
                Ok(Err(_)) => {
                    stats.errors.connect += 1;
                    shared.done.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                    continue;
                }
                Err(_) => {
                    count_cut(&mut stats, cut, limit, |e| e.connect += 1);
                    shared.done.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
        };
        conn = exchange(c, request, head_only, intended, cut, limit, &mut stats).await;
        shared.done.fetch_add(1, Ordering::Relaxed);
        if !plan.keepalive {
            conn = None;
        }
    }
}

/// One request on `c`; gives the connection back when it may be reused.
async fn exchange(
    mut c: Conn,
    request: &[u8],
    head_only: bool,
    intended: Instant,
    cut: Instant,
    limit: Instant,
    stats: &mut Stats,
) -> Option<Conn> {
    match timeout_at(cut.into(), c.exchange(request, head_only)).await {
        Ok(Ok(response)) => {
            stats.record(
                intended.elapsed(),
                response.status,
                response.bytes,
                request.len() as u64,
            );
            response.reusable.then_some(c)
        }
        Ok(Err(ExchangeError::Write(_))) => {
            stats.errors.write += 1;
            None
        }
        Ok(Err(ExchangeError::Read(_))) => {
            stats.errors.read += 1;
            None
        }
        Err(_) => {
            count_cut(stats, cut, limit, |e| e.timeout += 1);
            None
        }
    }
}

/// A wait cut short by the run's end is not an error; one cut by `--timeout` is.
fn count_cut(
    stats: &mut Stats,
    cut: Instant,
    limit: Instant,
    count: impl Fn(&mut crate::stats::Errors),
) {
    if cut >= limit {
        count(&mut stats.errors);
    }
}

/// Intended send times of one connection under `--rate`.
struct Schedule {
    first: Instant,
    interval: Duration,
}

impl Schedule {
    /// Connection `index` of `connections` sharing `rate` requests per second: each sends every
    /// `connections / rate` seconds, the connections staggered evenly over one interval.
    fn new(rate: f64, connections: usize, index: usize, start: Instant) -> Schedule {
        let interval = Duration::from_secs_f64(connections as f64 / rate);
        let offset = interval.mul_f64(index as f64 / connections as f64);
        Schedule {
            first: start + offset,
            interval,
        }
    }

    fn at(&self, k: u64) -> Instant {
        self.first + self.interval.mul_f64(k as f64)
    }
}
