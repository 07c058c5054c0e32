//! Whether the worker's event loop is saturated, for work it may shed: the share of wall time
//! the loop's thread spent running since it last looked.
//!
//! Owns: `LoopPressure`, read on the event loop (its measure is the calling thread's CPU
//! clock, `crate::thread_clock`), which looks again at most once per `WINDOW` and says the loop is pressed when its
//! thread ran for at least `BUSY_SHARE` of the wall time in each of the last `SUSTAINED`
//! windows: one busy window (a worker's first request opening the store, one slow request)
//! is a burst, not saturation. Must not touch: what is shed under pressure (`migrating` skips
//! mirroring; nothing else does).
//!
//! Why this measure: a loop that computes nearly all the time is one whose clients already
//! queue for it, and a mirrored request then takes CPU from them (its copy, its tee, and its
//! shadow's thread competing for the cores). Below saturation a request's mirroring costs the
//! clients nothing measurable, so then every sampled request is mirrored. CPU time, not time
//! out of `epoll_wait`: a loop slowed by other processes on its core is not pressed by its own
//! work, and shedding there would skip comparisons because of someone else's load (measured
//! with four busy processes on this 2-core machine, `test_two_workers_write_one_store`: with
//! tokio's busy time 19 of 200 requests were skipped; with CPU time none for pressure).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long one measure covers at least; between two measures the last answer holds.
const WINDOW: Duration = Duration::from_millis(20);

/// The loop's share of CPU time over a window at or above which it counts as saturated.
const BUSY_SHARE: f64 = 0.8;

/// How many windows in a row must be busy before the loop counts as saturated.
const SUSTAINED: u32 = 2;

/// The event loop's recent CPU share: one per worker, used from its loop thread only.
#[derive(Default)]
pub struct LoopPressure {
    since: Cell<Option<Mark>>,
    busy_windows: Cell<u32>,
}

/// A moment on both clocks: wall time, and the loop thread's CPU time so far.
#[derive(Clone, Copy)]
struct Mark {
    wall: Instant,
    cpu: Duration,
}

impl LoopPressure {
    /// Whether the calling (loop) thread ran for at least `BUSY_SHARE` of each of the last
    /// `SUSTAINED` windows.
    pub fn pressed(&self) -> bool {
        let wall = Instant::now();
        if self.within_window(wall) {
            return self.is_pressed();
        }
        let cpu = crate::thread_clock::cpu_time();
        self.look(Mark { wall, cpu })
    }

    fn within_window(&self, wall: Instant) -> bool {
        self.since
            .get()
            .is_some_and(|since| wall.duration_since(since.wall) < WINDOW)
    }

    /// Measures from the last mark to `now` (the first look only sets the mark).
    fn look(&self, now: Mark) -> bool {
        if let Some(since) = self.since.get() {
            let busy = busy_share(since, now) >= BUSY_SHARE;
            let run = if busy { self.busy_windows.get() + 1 } else { 0 };
            self.busy_windows.set(run.min(SUSTAINED));
        }
        self.since.set(Some(now));
        self.is_pressed()
    }

    fn is_pressed(&self) -> bool {
        self.busy_windows.get() >= SUSTAINED
    }
}

/// The share of wall time between two marks that the thread spent running.
fn busy_share(since: Mark, now: Mark) -> f64 {
    let wall = now.wall.duration_since(since.wall).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    now.cpu.saturating_sub(since.cpu).as_secs_f64() / wall
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(start: Instant, wall_ms: u64, cpu_ms: u64) -> Mark {
        Mark {
            wall: start + Duration::from_millis(wall_ms),
            cpu: Duration::from_millis(cpu_ms),
        }
    }

    #[test]
    fn a_loop_busy_most_of_a_window_is_pressed_until_a_quiet_one() {
        let (p, t) = (LoopPressure::default(), Instant::now());
        assert!(!p.look(mark(t, 0, 0))); // the first look only sets the mark
        assert!(!p.look(mark(t, 20, 19))); // one busy window is a burst
        assert!(p.look(mark(t, 45, 40))); // 21 of 25 ms: a second one in a row
        assert!(p.look(mark(t, 65, 60)));
        assert!(!p.look(mark(t, 90, 70))); // 10 of 25 ms
        assert!(!p.look(mark(t, 110, 90))); // busy again, but only once so far
        assert!(p.look(mark(t, 130, 110)));
        assert!(!p.look(mark(t, 1130, 130))); // a long quiet time
    }

    #[test]
    fn within_a_window_the_last_answer_holds() {
        let (p, t) = (LoopPressure::default(), Instant::now());
        p.look(mark(t, 0, 0));
        p.look(mark(t, 20, 20));
        assert!(p.within_window(t + Duration::from_millis(39)));
        assert!(!p.within_window(t + Duration::from_millis(40)));
    }

    #[test]
    fn the_share_is_cpu_time_over_wall_time() {
        let t = Instant::now();
        assert!((busy_share(mark(t, 0, 10), mark(t, 100, 90)) - 0.8).abs() < 1e-9);
        assert_eq!(busy_share(mark(t, 5, 5), mark(t, 5, 5)), 0.0);
    }

    #[test]
    fn a_thread_that_sleeps_is_not_pressed() {
        let p = LoopPressure::default();
        assert!(!p.pressed());
        std::thread::sleep(WINDOW * 3);
        assert!(!p.pressed());
    }
}
