//! How long one guest instance has computed, and how it ended.
//!
//! Owns: `GuestClock`, shared (one `Arc` per request) by the store's epoch callback, the lanes
//! and the response body: the ticks the guest ran through (`lanes` moves it to the slow lane
//! after `FAST_SLICES`), its running time against the route's `cpu_time` budget, and whether
//! the instance ended with its response body unfinished (so the body is cut, not ended).
//! Must not touch: scheduling, stores or responses; it only counts and remembers.
//!
//! Running time is the thread's CPU time from each poll of the guest to its next epoch
//! callback: waiting for a turn, for the host (a body write, an outgoing request) or for the
//! kernel (a loaded machine) never counts. Quick handlers, which never reach a callback, never
//! read the CPU clock: it is read only once a guest has run through a tick (the first stretch,
//! before that, counts its wall time up to one tick).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One epoch tick, in nanoseconds; a slice counts when the guest ran at least this long.
const TICK_NANOS: u64 = super::engine::TICK.as_nanos() as u64;

/// The instance is still running.
const RUNNING: u8 = 0;
/// The instance ended with no response body left unfinished.
const ENDED: u8 = 1;
/// The instance ended while its response body was started but not finished.
const ENDED_MID_BODY: u8 = 2;

/// How long a guest has computed, in epoch slices and in running time: a tick counts only
/// when the guest ran through it, not when it passed while the guest waited for its turn after
/// a yield (under load that wait can be longer than a tick, and a quick handler must not look
/// slow).
pub struct GuestClock {
    started: Instant,
    slices: AtomicU32,
    /// When the guest last got the thread back (nanoseconds since `started`).
    resumed_at: AtomicU64,
    /// Running time so far, in nanoseconds.
    ran: AtomicU64,
    /// The thread's CPU time when the guest was last polled, once it has reached a callback
    /// (0 before: the CPU clock is not read for quick handlers).
    cpu_mark: AtomicU64,
    /// The route's `cpu_time`, in nanoseconds.
    budget: u64,
    end: AtomicU8,
}

impl GuestClock {
    pub fn new(cpu_time: Duration) -> Arc<GuestClock> {
        Arc::new(GuestClock {
            started: Instant::now(),
            slices: AtomicU32::new(0),
            resumed_at: AtomicU64::new(0),
            ran: AtomicU64::new(0),
            cpu_mark: AtomicU64::new(0),
            budget: u64::try_from(cpu_time.as_nanos()).unwrap_or(u64::MAX),
            end: AtomicU8::new(RUNNING),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Called from the epoch callback, just before the guest yields; false when the guest has
    /// now run past its CPU budget (the callback then stops it).
    pub fn tick(&self) -> bool {
        let stretch = self
            .now()
            .saturating_sub(self.resumed_at.load(Ordering::Relaxed));
        if stretch >= TICK_NANOS {
            self.slices.fetch_add(1, Ordering::Relaxed);
        }
        let cpu = thread_cpu_nanos();
        let mark = self.cpu_mark.swap(cpu, Ordering::Relaxed);
        let used = if mark == 0 {
            stretch.min(TICK_NANOS)
        } else {
            cpu.saturating_sub(mark)
        };
        let ran = self.ran.fetch_add(used, Ordering::Relaxed);
        ran.saturating_add(used) <= self.budget
    }

    /// Called each time the guest future is about to be polled (on whichever thread): the
    /// CPU time it uses from here to its next callback is its own.
    pub fn polled(&self) {
        if self.cpu_mark.load(Ordering::Relaxed) != 0 {
            self.cpu_mark.store(thread_cpu_nanos(), Ordering::Relaxed);
        }
    }

    /// Called when the guest runs again after a yield.
    pub fn resumed(&self) {
        self.resumed_at.store(self.now(), Ordering::Relaxed);
    }

    /// Epoch slices the guest ran through.
    pub fn slices(&self) -> u32 {
        self.slices.load(Ordering::Relaxed)
    }

    /// True once the guest has run past its CPU budget.
    pub fn over_budget(&self) -> bool {
        self.ran.load(Ordering::Relaxed) > self.budget
    }

    /// Called when the instance ends, before its store (and with it an unfinished response
    /// body's sender) is dropped.
    pub fn instance_ended(&self, body_unfinished: bool) {
        let end = if body_unfinished {
            ENDED_MID_BODY
        } else {
            ENDED
        };
        self.end.store(end, Ordering::Release);
    }

    /// True when the instance ended without finishing its response body: a body stream that
    /// ends now was cut short, not completed.
    pub fn body_cut(&self) -> bool {
        self.end.load(Ordering::Acquire) == ENDED_MID_BODY
    }
}

/// The calling thread's CPU time in nanoseconds (at least 1, so 0 can mean "not read").
fn thread_cpu_nanos() -> u64 {
    let nanos = crate::thread_clock::cpu_time().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_cpu_time_not_waits() {
        let clock = GuestClock::new(Duration::from_millis(30));
        clock.resumed();
        clock.polled();
        std::thread::sleep(Duration::from_millis(3));
        // The first callback counts the wall time, up to a tick.
        assert!(clock.tick());
        assert_eq!(clock.slices(), 1);
        // Then CPU time only: a wait (a sleep) costs nothing.
        clock.polled();
        std::thread::sleep(Duration::from_millis(50));
        assert!(clock.tick());
        assert!(!clock.over_budget());
        clock.polled();
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            n = std::hint::black_box(n.wrapping_add(1));
        }
        assert!(!clock.tick(), "60 ms of computing is past 30 ms");
        assert!(clock.over_budget());
    }

    #[test]
    fn the_end_says_whether_the_body_was_cut() {
        let clock = GuestClock::new(Duration::from_secs(1));
        assert!(!clock.body_cut());
        clock.instance_ended(false);
        assert!(!clock.body_cut());
        clock.instance_ended(true);
        assert!(clock.body_cut());
    }
}
