//! The calling thread's CPU clock.
//!
//! Owns: `cpu_time`, the one place that reads `CLOCK_THREAD_CPUTIME_ID`. Must not touch: what
//! the time is compared with (a guest's `cpu_time` budget in `wasm::guest_clock`, the event
//! loop's saturation in `server::loop_pressure`). Tested through both (guest_clock's budget
//! tests, loop_pressure's sleeping thread).

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
