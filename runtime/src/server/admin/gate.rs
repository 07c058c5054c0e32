//! The fork gate: the master's admin thread and `fork()` never overlap.
//!
//! Owns: `ForkGate`. The master forks workers while its admin thread may be serving a scrape;
//! a child forked while that thread held a lock (the allocator's, stderr's, SQLite's) would
//! inherit the lock held forever. So the admin thread does all its work (everything that
//! allocates, logs or opens files) inside `ForkGate::enter`, and the master closes the gate
//! around every fork; outside the gate the admin thread only blocks in `accept`/`read` on
//! stack buffers, which hold no lock. Must not touch: what either side does inside.
//!
//! A Dekker-style pair of flags (sequentially consistent): the admin thread raises `busy`
//! and then looks at `forking`; the forker raises `forking` and then waits for `busy` to
//! fall, so at most one of them goes ahead. Waits sleep 1 ms (a syscall, no lock).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

const WAIT: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
pub struct ForkGate {
    forking: AtomicBool,
    busy: AtomicBool,
}

/// The admin thread's pass through the gate; the gate reopens for forks when dropped.
pub struct Inside<'g>(&'g ForkGate);

impl ForkGate {
    /// Before `fork()`: waits until the admin thread is outside, and keeps it out.
    pub fn close(&self) {
        self.forking.store(true, SeqCst);
        while self.busy.load(SeqCst) {
            std::thread::sleep(WAIT);
        }
    }

    /// After `fork()` (in the master).
    pub fn open(&self) {
        self.forking.store(false, SeqCst);
    }

    /// The admin thread's way in: waits while a fork is under way.
    pub fn enter(&self) -> Inside<'_> {
        loop {
            self.busy.store(true, SeqCst);
            if !self.forking.load(SeqCst) {
                return Inside(self);
            }
            self.busy.store(false, SeqCst);
            std::thread::sleep(WAIT);
        }
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_admin_side_and_a_fork_never_overlap() {
        let gate = Arc::new(ForkGate::default());
        let overlap = Arc::new(AtomicBool::new(false));
        let inside = Arc::new(AtomicBool::new(false));
        let admin = {
            let (gate, inside) = (gate.clone(), inside.clone());
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    let _pass = gate.enter();
                    inside.store(true, SeqCst);
                    std::hint::spin_loop();
                    inside.store(false, SeqCst);
                }
            })
        };
        for _ in 0..200 {
            gate.close();
            if inside.load(SeqCst) {
                overlap.store(true, SeqCst);
            }
            gate.open();
        }
        admin.join().expect("the admin side ran");
        assert!(!overlap.load(SeqCst));
    }
}
