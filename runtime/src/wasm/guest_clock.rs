//! How long one guest instance has computed, and how it ended.
//!
//! Owns: `GuestClock`, shared (one `Arc` per request) by the store's epoch callback, the lanes
//! and the response body: the ticks the guest ran through (`lanes` moves it to the slow lane
//! after `FAST_SLICES`), its running time against the route's `cpu_time` budget, and whether
//! the instance ended with its response body unfinished (so the body is cut, not ended).
//! Must not touch: scheduling, stores or responses; it only counts and remembers.
//!
//! Running time is the time from each resumption to the next epoch callback, each such stretch
//! counted up to `MAX_STRETCH`: waiting for a turn after a yield never counts, and a stretch
//! that also waited on the host (a body write, an outgoing request) counts at most two ticks.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One epoch tick, in nanoseconds; a slice counts when the guest ran at least this long.
const TICK_NANOS: u64 = super::engine::TICK.as_nanos() as u64;
/// The most one stretch (resumption to epoch callback) adds to the running time.
const MAX_STRETCH: u64 = 2 * TICK_NANOS;

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
        let ran = self
            .ran
            .fetch_add(stretch.min(MAX_STRETCH), Ordering::Relaxed);
        ran.saturating_add(stretch.min(MAX_STRETCH)) <= self.budget
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_running_stretches_capped() {
        let clock = GuestClock::new(Duration::from_millis(10));
        clock.resumed();
        std::thread::sleep(Duration::from_millis(3));
        assert!(clock.tick(), "about 3 ms of a 10 ms budget");
        assert_eq!(clock.slices(), 1);
        // A long stretch (a wait on the host) counts two ticks at most: 3 + 4 ms.
        std::thread::sleep(Duration::from_millis(30));
        assert!(clock.tick());
        assert!(!clock.over_budget());
        clock.resumed();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!clock.tick(), "3 + 4 + 4 ms is past 10 ms");
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
