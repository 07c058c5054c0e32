//! How much of the worker's event loop each share's guests took lately, and who must give way.
//!
//! Owns: `LoopUse`, one per `LaneShare` (a tenant, or an untenanted route): the wall time its
//! guests were polled on the event loop (instance set-up and tear-down and host calls
//! included), decaying with a half-life of `HALF_LIFE`, and whether it is `hot`: its polls are
//! long (`LONG_POLL` on average) and it took more than its fair part (1/n) of the time all
//! competing shares' guests spent on the loop; and the loop thread's ledger of the shares that
//! polled there recently (n) and of their total. A share alone on the loop is never hot, nor
//! one of quick requests, whatever it uses: pacing those would cost them latency for nothing.
//! A hot share's next poll on the loop waits `GIVE_WAY` times as long as its last one took
//! (`wait_until`). Must not touch: polling or pacing guests (`lanes` does that with what this
//! says) or the slow lane.
//!
//! Why: a guest yields at every epoch tick, but several guests of one tenant, each finishing
//! within its `FAST_SLICES`, ran back to back between two turns of another tenant's requests
//! (issue 11: four hostile requests of a few ms each queued ahead of the neighbour's every
//! time). Time is measured around each poll, not counted in ticks, so what the host does for a
//! guest (copying its body writes, faulting in and freeing its memory) counts too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How fast a share's recorded use fades: what it used this long ago counts half.
pub const HALF_LIFE: Duration = Duration::from_millis(32);
/// A share competes for the loop (counts in the fair part's 1/n) this long after its last poll.
const ACTIVE: Duration = Duration::from_millis(100);
/// A hot share leaves the loop to the others this many times as long as its last poll took
/// (at most 1/(1 + GIVE_WAY) of the loop while hot). Measured with `bench/hostile.py` (issue
/// 11, good tenant's p99 under attack against a ~13 ms target, 2026-12-02): 1 gave stack 5.0
/// and 9.7 ms, outgoing-bodies 9.3 and 6.8; 2 gave 7.7, 7.7 and 7.3, 7.9. Moving a hot
/// share's running guests to the slow lane at once as well did not help (7.1, 10.3 and 8.9,
/// 9.6 with 2): its thread then competes with the loop for the CPU.
const GIVE_WAY: u32 = 2;
/// A share whose polls take less than this on average never has to give way: polls this short
/// hardly delay anyone (a `hello` instance is set up, run and torn down in ~30 us).
const LONG_POLL: Duration = Duration::from_micros(250);
/// The ledger forgets shares idle for `ACTIVE` at most this often.
const PRUNE_EVERY: Duration = Duration::from_millis(10);

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The shares that polled a guest on this thread's loop, with when they last did.
    static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default());
}

#[derive(Default)]
struct Ledger {
    last_poll: HashMap<usize, Instant>,
    pruned_at: Option<Instant>,
    /// Every share's polls on this loop together.
    total: Decayed,
}

impl Ledger {
    /// Notes that share `id` polled for `len` until `now`; returns how many shares compete
    /// for the loop and their decayed total.
    fn polled(&mut self, id: usize, len: Duration, now: Instant) -> (usize, f64) {
        self.total.add(len, now);
        self.last_poll.insert(id, now);
        let due = self
            .pruned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PRUNE_EVERY);
        if due {
            self.last_poll
                .retain(|_, last| now.saturating_duration_since(*last) < ACTIVE);
            self.pruned_at = Some(now);
        }
        (self.last_poll.len(), self.total.nanos)
    }
}

/// A sum of nanoseconds and of polls that fades with `HALF_LIFE`, as of `at`.
#[derive(Default, Clone, Copy)]
struct Decayed {
    nanos: f64,
    polls: f64,
    at: Option<Instant>,
}

impl Decayed {
    fn add(&mut self, len: Duration, now: Instant) {
        if let Some(at) = self.at {
            let age = now.saturating_duration_since(at).as_secs_f64();
            let fade = (-age / HALF_LIFE.as_secs_f64()).exp2();
            self.nanos *= fade;
            self.polls *= fade;
        }
        self.at = Some(now);
        self.nanos += len.as_nanos() as f64;
        self.polls += 1.0;
    }
}

/// One share's recent use of the event loop.
pub struct LoopUse {
    id: usize,
    state: Mutex<UseState>,
}

#[derive(Default)]
struct UseState {
    used: Decayed,
    hot: bool,
    /// When its last poll on the loop ended, and how long that poll took.
    last_end: Option<Instant>,
    last_len: Duration,
}

impl UseState {
    /// Decides `hot` after a poll: `competing` shares whose polls total `total` (decayed).
    fn judge(&mut self, competing: usize, total: f64) {
        let long = self.used.nanos >= self.used.polls * LONG_POLL.as_nanos() as f64;
        let fair = total / competing as f64;
        self.hot = competing >= 2 && long && self.used.nanos > fair;
    }
}

impl Default for LoopUse {
    fn default() -> Self {
        LoopUse {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::default(),
        }
    }
}

impl LoopUse {
    fn lock(&self) -> std::sync::MutexGuard<'_, UseState> {
        // Nothing panics while holding it; a poisoned lock still holds valid numbers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a poll of one of the share's guests on the loop from `start` to `end`; true
    /// when the share is now over its fair part of the loop.
    pub fn record(&self, start: Instant, end: Instant) -> bool {
        let len = end.saturating_duration_since(start);
        let (competing, total) =
            LEDGER.with(|ledger| ledger.borrow_mut().polled(self.id, len, end));
        let mut state = self.lock();
        state.used.add(len, end);
        state.judge(competing, total);
        state.last_end = Some(end);
        state.last_len = len;
        state.hot
    }

    /// When a guest of this share may next be polled on the loop, if not now: a hot share
    /// leaves the loop to the others for `GIVE_WAY` times as long as its last poll there took,
    /// so at most one of its polls runs between two turns of everyone else. (A share stays hot
    /// until one of its polls finds it is not.)
    pub fn wait_until(&self, now: Instant) -> Option<Instant> {
        let state = self.lock();
        if !state.hot {
            return None;
        }
        let next = state.last_end? + state.last_len * GIVE_WAY;
        (next > now).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A fresh ledger (tests may share a thread).
    fn fresh() {
        LEDGER.with(|ledger| *ledger.borrow_mut() = Ledger::default());
    }

    #[test]
    fn a_share_alone_is_never_hot() {
        fresh();
        let alone = LoopUse::default();
        let t0 = Instant::now();
        for i in 0..100 {
            assert!(!alone.record(t0 + ms(i), t0 + ms(i + 1)), "poll {i}");
        }
        assert_eq!(alone.wait_until(t0 + ms(100)), None);
    }

    #[test]
    fn quick_polls_never_give_way() {
        fresh();
        let (busy, other) = (LoopUse::default(), LoopUse::default());
        let t0 = Instant::now();
        assert!(!other.record(t0, t0 + Duration::from_micros(10)));
        // 100 us polls back to back: nearly all of the loop, but each too short to matter.
        for i in 0..200 {
            let at = t0 + Duration::from_micros(20 + 100 * i);
            assert!(
                !busy.record(at, at + Duration::from_micros(100)),
                "poll {i}"
            );
        }
    }

    #[test]
    fn a_share_over_its_part_gives_way_and_recovers() {
        fresh();
        let (greedy, modest) = (LoopUse::default(), LoopUse::default());
        let t0 = Instant::now();
        let mut hot = false;
        // Every 5 ms: the greedy share polls 4 ms, the modest one 0.1 ms.
        for i in 0..40 {
            let at = t0 + ms(5 * i);
            hot = greedy.record(at, at + ms(4));
            let quick = at + ms(4);
            assert!(!modest.record(quick, quick + Duration::from_micros(100)));
        }
        assert!(hot, "4 ms in 5 is more than half the loop");
        let end = t0 + ms(5 * 39 + 4);
        // It waits twice as long as its last poll took.
        assert_eq!(greedy.wait_until(end), Some(end + ms(8)));
        assert_eq!(greedy.wait_until(end + ms(8)), None);
        assert_eq!(modest.wait_until(end), None);
        // Once the other share has used the loop more, it is no longer held back.
        for i in 0..20 {
            let at = end + ms(5 * i);
            modest.record(at, at + ms(4));
        }
        let at = end + ms(100);
        assert!(!greedy.record(at, at + ms(1)));
        assert_eq!(greedy.wait_until(at + ms(1)), None);
    }

    #[test]
    fn idle_shares_stop_competing() {
        fresh();
        let (a, b) = (LoopUse::default(), LoopUse::default());
        let t0 = Instant::now();
        assert!(!b.record(t0, t0 + ms(1)));
        // `b` polled lately: `a`, using the whole loop, is over its half.
        assert!(a.record(t0 + ms(1), t0 + ms(60)));
        // 200 ms later `b` has gone quiet: `a` is alone again.
        let later = t0 + ms(260);
        assert!(!a.record(later, later + ms(2)));
    }
}
