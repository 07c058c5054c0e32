//! Worker recycling, the master's side.
//!
//! Owns: what the master does with a worker's notes ("I am ready", "recycle me"). Must not
//! touch: when a worker wants recycling (`max_requests`, `max_rss`: the worker decides, see
//! `server::recycle`), how notes travel (`notes`), sockets, or the crash back-off (`mod.rs`).
//!
//! A worker repeats "recycle me" every second until it is stopped, so a refused request (fork
//! failure, a replacement that died before it was ready) is retried.
//!
//! What the master does, so that a recycle drops no request:
//! 1. "recycle me" from an active worker: fork a replacement for the same index (at most one
//!    at a time); the old worker goes on serving.
//! 2. "ready" from that replacement (sent once its accept loops run): `SIGTERM` the old
//!    worker, which drains (finishes its in-flight requests) within the grace period.
//!
//! Both workers of an index accept from the same listening socket, which the master holds
//! across worker generations (see `server::run`): connections waiting in its accept queue
//! when the old worker stops are accepted by the new one instead of being reset. The old
//! worker's exit then counts as a stop, not a crash: no back-off.

use libc::{c_int, pid_t};
use tracing::{info, warn};

use super::notes::{ready_signal, recycle_signal};
use super::Master;

impl Master<'_, '_, '_> {
    /// Handles a note from worker `pid`; `false` if `sig` is not a note.
    pub(super) fn on_note(&mut self, sig: c_int, pid: pid_t) -> bool {
        if sig == ready_signal() {
            self.on_ready(pid);
        } else if sig == recycle_signal() {
            self.on_recycle_request(pid);
        } else {
            return false;
        }
        true
    }

    /// Starts a replacement for `pid` unless it is stopping or one is already on its way.
    fn on_recycle_request(&mut self, pid: pid_t) {
        let Some(old) = self.workers.iter().find(|w| w.pid == pid) else {
            return;
        };
        let index = old.index;
        let pending = self.workers.iter().any(|w| w.replaces == Some(pid));
        if old.stop.is_some() || pending || self.rolling.is_some() {
            return;
        }
        match self.start_worker(index) {
            Ok(new) => {
                info!(
                    pid,
                    index, "worker {index} (pid {pid}) asked to be recycled; starting pid {new}"
                );
                if let Some(worker) = self.workers.iter_mut().find(|w| w.pid == new) {
                    worker.replaces = Some(pid);
                }
            }
            Err(e) => warn!(
                pid,
                index, "cannot fork a replacement for worker {index} (pid {pid}): {e}"
            ),
        }
    }

    /// Marks `pid` ready; when it replaces a worker, that worker is stopped now.
    fn on_ready(&mut self, pid: pid_t) {
        let Some(new) = self.workers.iter_mut().find(|w| w.pid == pid) else {
            return;
        };
        let (index, replaces) = (new.index, new.replaces.take());
        let Some(old) = replaces else {
            return;
        };
        if self
            .workers
            .iter()
            .any(|w| w.pid == old && w.stop.is_none())
        {
            info!(
                pid = old,
                index, "worker {index} (pid {old}) recycled: pid {pid} serves in its place"
            );
            self.retire(old);
        }
    }

    /// Called when worker `pid` of `index` ended without being asked to: whether a restart is
    /// still needed (`false` when the other half of a recycle keeps the index served).
    pub(super) fn needs_restart_after_crash(
        &mut self,
        pid: pid_t,
        replaces: Option<pid_t>,
    ) -> bool {
        if let Some(old) = replaces {
            // A replacement died before it was ready: the old worker still serves, and asks
            // again within a second.
            if self
                .workers
                .iter()
                .any(|w| w.pid == old && w.stop.is_none())
            {
                warn!(
                    pid,
                    "the replacement (pid {pid}) of pid {old} died before it was ready"
                );
                return false;
            }
            return true;
        }
        // The old worker died while its replacement was starting: the replacement takes over.
        match self.workers.iter_mut().find(|w| w.replaces == Some(pid)) {
            Some(replacement) => {
                replacement.replaces = None;
                false
            }
            None => true,
        }
    }
}
