//! Where guest code runs: on the worker's event loop first, on a low-priority thread later.
//!
//! Owns: `SlowLane`, one background thread per worker (its own event loop, nice 5) that
//! takes over guests which keep computing, and `run_in_lanes`, which polls a guest on the
//! event loop until it has used `FAST_SLICES` epoch ticks and then hands the still-running
//! future to the slow lane. A well-behaved handler finishes in the fast lane with no thread
//! hop; a spinning or memory-hungry one stops competing with everyone else's requests for the
//! worker's thread, and the kernel gives its thread a smaller share than the worker's.
//! Must not touch: what a guest does, its limits or its response.
//!
//! Moving is safe because a wasmtime async call is a `Send` future that may be polled from
//! any thread; timers and channels it waits on stay with the loop that created them.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// Epoch ticks a guest may use on the event loop before it moves to the slow lane.
pub const FAST_SLICES: u32 = 2;

/// The slow lane's nice value (weight 335 against the worker's 1024), chosen by measurement
/// (`bench/wasm.sh noisy`, good tenant's p99 noisy / req/s): 19 let a starved slow thread that
/// held a lock the worker needed (instance pool, mmap lock) stall it for 100s of ms; 10 gave
/// 7.4 ms / 16.9k but a 1 GiB upload-digest timed out when other processes loaded the machine;
/// 0 gave 10.7 ms / 9.9k (just inside the 11.7 ms target); 5 gives 8.3 ms / 15.2k and finishes
/// that upload with two CPU hogs running.
const SLOW_LANE_NICE: libc::c_int = 5;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long a guest has computed, in epoch slices: a tick counts only when the guest ran
/// through it, not when it passed while the guest waited for its turn after a yield (under
/// load that wait can be longer than a tick, and a quick handler must not look slow).
pub struct GuestClock {
    started: Instant,
    slices: AtomicU32,
    /// When the guest last got the thread back (nanoseconds since `started`).
    resumed_at: AtomicU64,
}

impl GuestClock {
    pub fn new() -> Arc<GuestClock> {
        Arc::new(GuestClock {
            started: Instant::now(),
            slices: AtomicU32::new(0),
            resumed_at: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Called from the epoch callback, just before the guest yields.
    pub fn tick(&self) {
        let ran = self
            .now()
            .saturating_sub(self.resumed_at.load(Ordering::Relaxed));
        if ran >= TICK_NANOS {
            self.slices.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Called when the guest runs again after a yield.
    pub fn resumed(&self) {
        self.resumed_at.store(self.now(), Ordering::Relaxed);
    }

    fn slices(&self) -> u32 {
        self.slices.load(Ordering::Relaxed)
    }
}

/// One epoch tick, in nanoseconds; a slice counts when the guest ran at least this long.
const TICK_NANOS: u64 = super::engine::TICK.as_nanos() as u64;

/// The background thread that finishes long-running guests.
#[derive(Clone)]
pub struct SlowLane {
    jobs: UnboundedSender<Job>,
}

impl SlowLane {
    pub fn start() -> Result<SlowLane, String> {
        let (jobs, mut queue) = unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the slow lane: {e}"))?;
        std::thread::Builder::new()
            .name("wsrun-slow-lane".to_string())
            .spawn(move || {
                // SAFETY: setpriority on this thread's own id only changes its nice value.
                unsafe {
                    let tid = libc::gettid() as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, SLOW_LANE_NICE);
                }
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job);
                    }
                });
            })
            .map_err(|e| format!("cannot start the slow lane: {e}"))?;
        Ok(SlowLane { jobs })
    }

    fn take(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }
}

/// Runs `guest` on the current event loop until it finishes or has seen `FAST_SLICES` ticks
/// (counted in `clock` by the store's epoch callback), then finishes it on the slow lane.
/// `done` receives the output either way. Every instance starts on the event loop: starting
/// known-slow routes directly on the slow lane was tried and made things worse, because the
/// low-priority thread then did the instance set-up and tear-down, which take locks (the
/// instance pool's, the kernel's mmap lock) the event loop also needs.
pub async fn run_in_lanes<T: Send + 'static>(
    mut guest: Pin<Box<dyn Future<Output = T> + Send>>,
    clock: Arc<GuestClock>,
    lane: SlowLane,
    done: tokio::sync::oneshot::Sender<T>,
) {
    let finished = poll_fn(|cx| match guest.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if clock.slices() >= FAST_SLICES => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await;
    if let Some(output) = finished {
        let _ = done.send(output);
        return;
    }
    let job: Job = Box::pin(async move {
        let output = guest.await;
        let _ = done.send(output);
    });
    if let Err(job) = lane.take(job) {
        // The slow lane is gone (shutting down): finish here.
        job.await;
    }
}
