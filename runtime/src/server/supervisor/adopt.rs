//! The workers a new master image takes over from the image it replaced (a reload's `execv`).
//!
//! Owns: turning the handover's worker list into the master's bookkeeping, and starting the
//! rolling restart that replaces them. Must not touch: the handover's format
//! (`crate::handover`) or how the replacement proceeds (`rolling`).
//!
//! `execv` keeps the pid, so the adopted workers are still this process's children: they are
//! reaped with `waitpid` and signalled as if this image had forked them, and a worker's notes
//! (sent to the master's pid) arrive here; a note or `SIGCHLD` that came during the exec waits
//! in the signal mask, which the exec keeps too.

use std::time::Instant;

use tracing::info;

use super::progress::Rolling;
use super::{Master, Stopping, Worker, KILL_MARGIN};
use crate::handover::HandedWorker;

impl Master<'_, '_, '_> {
    /// Takes over `adopted` (nothing to do on a fresh start) and starts replacing them.
    pub(super) fn adopt(&mut self, adopted: Vec<HandedWorker>) {
        if adopted.is_empty() {
            return;
        }
        let now = Instant::now();
        // The rolling restart decides when each index gets its new worker.
        for slot in &mut self.slots {
            slot.restart_at = None;
        }
        let kill_at = now + self.settings.graceful_timeout + KILL_MARGIN;
        for handed in &adopted {
            let stop = handed.stopping.then_some(Stopping {
                kill_at,
                killed: false,
            });
            self.workers.push(Worker {
                pid: handed.pid,
                index: handed.index,
                started: now,
                stop,
                replaces: None,
                generation: handed.generation,
            });
        }
        info!(
            "reload {}: took over {} worker(s) of the previous configuration; replacing them",
            self.reload.generation,
            adopted.len()
        );
        self.rolling = Some(Rolling::new());
    }
}
