//! The rolling restart that applies a reload: every worker of an older generation is replaced,
//! one index at a time, by a worker of the new configuration.
//!
//! Owns: the order and pace of the replacement: for index 0, 1, ... start the new
//! worker beside the old one, wait for its ready note (at most [`READY_TIMEOUT`]), and only then
//! `SIGTERM` the old ones of that index (they drain); when every index is done, stop the old
//! workers of indexes the new configuration no longer has. If a new worker dies or is not ready
//! in time, the restart stops there and the old workers go on serving: never zero workers.
//! Its state is a value (`progress`).
//! Must not touch: what triggers a reload or what happens after (`reload`), how notes travel
//! (`notes`), sockets.

use std::time::Instant;

use libc::pid_t;
use tracing::{info, warn};

use super::progress::{Progress, Rolling, Waiting, READY_TIMEOUT};
use super::{backoff, Master};
use crate::config::format_duration;

impl Master<'_, '_, '_> {
    /// One step of `rolling`; see the module docs.
    pub(super) fn rolling_step(&mut self, rolling: &mut Rolling) -> Progress {
        if let Some(waiting) = &rolling.waiting {
            let (new, index) = (waiting.new, waiting.index);
            match self.workers.iter().find(|w| w.pid == new) {
                None => {
                    return Progress::Failed(format!(
                        "the new worker {index} (pid {new}) exited before it was ready"
                    ))
                }
                Some(worker) if worker.replaces.is_some() => {
                    if Instant::now() < waiting.deadline {
                        return Progress::Going;
                    }
                    self.retire_now(new);
                    return Progress::Failed(format!(
                        "the new worker {index} (pid {new}) was not ready within {}",
                        format_duration(READY_TIMEOUT)
                    ));
                }
                Some(_) => {
                    // Ready (`on_ready` stopped the worker it replaced): stop any other old
                    // worker of this index too (a recycle's pair).
                    self.retire_older(|i| i == index);
                    rolling.waiting = None;
                    rolling.next += 1;
                }
            }
        }
        if Instant::now() < rolling.not_before {
            return Progress::Going;
        }
        while rolling.next < self.slots.len() {
            let index = rolling.next;
            let Some(old) = self.older_worker(index) else {
                // No old worker here (a new index, or one between restarts): start one now.
                if self.active_worker(index).is_none() && self.slots[index].restart_at.is_none() {
                    self.slots[index].restart_at = Some(Instant::now());
                }
                rolling.next += 1;
                continue;
            };
            match self.start_worker(index) {
                Ok(new) => {
                    rolling.fork_failures = 0;
                    if let Some(worker) = self.workers.iter_mut().find(|w| w.pid == new) {
                        worker.replaces = Some(old);
                    }
                    let deadline = Instant::now() + READY_TIMEOUT;
                    rolling.waiting = Some(Waiting {
                        new,
                        index,
                        deadline,
                    });
                }
                Err(e) => {
                    rolling.fork_failures += 1;
                    let delay = backoff(rolling.fork_failures + 1);
                    warn!(
                        index,
                        "cannot fork a new worker {index}: {e}; retrying in {}",
                        format_duration(delay)
                    );
                    rolling.not_before = Instant::now() + delay;
                }
            }
            return Progress::Going;
        }
        // Every index runs the new generation: what is left of the old one has no index now.
        let slots = self.slots.len();
        self.retire_older(|i| i >= slots);
        Progress::Done
    }

    /// An active worker of `index` from an older generation, if any.
    fn older_worker(&self, index: usize) -> Option<pid_t> {
        self.workers
            .iter()
            .find(|w| w.index == index && w.stop.is_none() && w.generation < self.reload.generation)
            .map(|w| w.pid)
    }

    /// Stops (`SIGTERM`, with the grace period) every active older worker whose index matches.
    fn retire_older(&mut self, index_matches: impl Fn(usize) -> bool) {
        let old: Vec<(pid_t, usize)> = self
            .workers
            .iter()
            .filter(|w| w.stop.is_none() && w.generation < self.reload.generation)
            .filter(|w| index_matches(w.index))
            .map(|w| (w.pid, w.index))
            .collect();
        for (pid, index) in old {
            info!(
                pid,
                index, "worker {index} (pid {pid}) of the previous configuration stops"
            );
            self.retire(pid);
        }
    }
}

impl Master<'_, '_, '_> {
    /// A new worker of a reload that could not boot does not stop the server: the worker it
    /// was to replace still serves, and the reload fails instead.
    pub(super) fn reload_spares(&self, worker: &super::Worker) -> bool {
        self.rolling.is_some() && worker.replaces.is_some()
    }
}
