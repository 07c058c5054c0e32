//! The calling thread's CPU clock.
//!
//! Owns: `cpu_time`, the one place that reads `CLOCK_THREAD_CPUTIME_ID`. Must not touch: what
//! the time is compared with (a guest's `cpu_time` budget in `wasm::guest_clock`, the event
//! loop's saturation in `server::loop_pressure`). Tested through both (guest_clock's budget
//! tests, loop_pressure's sleeping thread) and by the sleep/spin test below.

use std::time::Duration;

/// CPU time the calling thread has used so far (zero if the clock cannot be read).
pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::cpu_time;
    use std::time::{Duration, Instant};

    #[test]
    fn sleeping_costs_no_cpu_and_spinning_costs_at_most_its_wall_time() {
        let before_sleep = cpu_time();
        std::thread::sleep(Duration::from_millis(100));
        let slept = cpu_time() - before_sleep;
        assert!(
            slept < Duration::from_millis(20),
            "sleep used {slept:?} of CPU"
        );

        let cpu_start = cpu_time();
        let wall_start = Instant::now();
        while wall_start.elapsed() < Duration::from_millis(10) {
            std::hint::spin_loop();
        }
        let spun = cpu_time() - cpu_start;
        let wall = wall_start.elapsed();
        assert!(spun > Duration::ZERO, "spinning used no CPU");
        // The thread CPU clock (the scheduler's clock) and the monotonic clock (the clocksource,
        // slewed by NTP) are different clocks: measured here, CPU time over 10 ms of spinning
        // runs up to ~3 us ahead of wall time. So "at most its wall time" holds to a margin.
        let margin = Duration::from_millis(1);
        assert!(
            spun <= wall + margin,
            "spinning used {spun:?} of CPU in {wall:?}"
        );
    }
}
