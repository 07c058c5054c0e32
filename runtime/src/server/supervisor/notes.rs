//! The notes a worker sends its master ("I am ready", "recycle me") and how they travel.
//!
//! Owns: [`MasterLink`] (the worker's end) and the signals that carry the notes. Must not
//! touch: what the master does with a note (`recycle`) or when a worker sends one
//! (`server::recycle`).
//!
//! Each note is a real-time signal sent with `kill` to the master's pid (`ready_signal`,
//! `recycle_signal`): real-time signals queue (two workers' notes are never merged into one,
//! as two `SIGUSR1`s would be), and the master's `sigtimedwait` reads the sender's pid from
//! the signal's `siginfo`, so the master knows which worker spoke without a pipe or shared
//! memory.

use super::signals::send_signal;
use libc::{c_int, pid_t};

/// "My accept loops run" (worker to master).
pub(super) fn ready_signal() -> c_int {
    libc::SIGRTMIN() + 1
}

/// "Start my replacement, then stop me" (worker to master).
pub(super) fn recycle_signal() -> c_int {
    libc::SIGRTMIN() + 2
}

/// The notes' signals, which the master blocks and waits for.
pub(super) fn note_signals() -> [c_int; 2] {
    [ready_signal(), recycle_signal()]
}

/// A worker's way to its master: the master's pid, captured before the fork.
#[derive(Debug, Clone, Copy)]
pub struct MasterLink {
    master: pid_t,
}

impl MasterLink {
    pub(super) fn new(master: pid_t) -> Self {
        MasterLink { master }
    }

    /// The master's pid, as captured before the fork.
    pub(super) fn master_pid(&self) -> pid_t {
        self.master
    }

    /// Tells the master this worker accepts connections.
    pub fn ready(&self) {
        self.note(ready_signal());
    }

    /// Asks the master to replace this worker (repeat it until stopped).
    pub fn recycle_me(&self) {
        self.note(recycle_signal());
    }

    fn note(&self, sig: c_int) {
        // SAFETY: getppid has no requirements. A worker whose master is gone (re-parented)
        // must not signal whatever process adopted it.
        if unsafe { libc::getppid() } == self.master {
            send_signal(self.master, sig);
        }
    }
}
