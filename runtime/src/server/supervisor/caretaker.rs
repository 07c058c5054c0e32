//! A new master image that could not start after a reload's `execv` (the file changed again
//! after the check, an address of the new configuration is taken, ...): the old workers go on
//! serving under it, never zero workers.
//!
//! Owns: that degraded master ([`keep_old_workers`]): it reports the error in the status
//! file, reaps the old workers, stops them on `SIGTERM` / `SIGINT` / `SIGQUIT`, and on `SIGHUP`
//! tries the reload again (it re-executes itself with the same handover). It cannot fork: a
//! worker that dies is not replaced, and when none is left it exits with code 1. Must not
//! touch: the normal master loop (`mod.rs`), sockets (the descriptors stay open, by number).

use std::time::{Duration, Instant};

use libc::{c_int, pid_t, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM};
use tracing::{error, info, warn};

use super::exec::exec_self;
use super::notes::note_signals;
use super::reload_state::ReloadSetup;
use super::signals::{send_signal, Signals};
use crate::control_files::{ControlFiles, ReloadState, ReloadStatus};
use crate::handover::{Handover, Inherited};

/// Longest sleep between two looks at the workers (as the master's loop).
const TICK: Duration = Duration::from_millis(100);
/// Extra time a stopping worker gets after its grace period before `SIGKILL` (as the master).
const KILL_MARGIN: Duration = Duration::from_secs(1);
/// How long the old workers get to drain when the degraded master is stopped (the new
/// configuration's grace period is unknown here; this is the default one).
const GRACE: Duration = Duration::from_secs(30);

/// Runs the degraded master until its workers are gone; returns the exit code. `why` is
/// the error that stopped the new image.
pub fn keep_old_workers(mut handover: Handover, inherited: Inherited, why: &str) -> i32 {
    let files = ControlFiles::new(&handover.state_dir);
    let message = format!("the new master could not start ({why}); the old workers keep serving");
    error!("reload {}: {message}", handover.generation);
    let status = ReloadStatus {
        generation: handover.generation,
        state: ReloadState::Error,
        message,
    };
    if let Err(e) = files.write_status(&status) {
        warn!("cannot write {}: {e}", files.status_path().display());
    }
    let signals = match Signals::block(&note_signals()) {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot block signals: {e}");
            return 1;
        }
    };
    let mut workers: Vec<pid_t> = handover.workers.iter().map(|w| w.pid).collect();
    loop {
        reap(&mut workers);
        if workers.is_empty() {
            error!("every worker of the previous configuration has exited; stopping");
            files.remove_pid();
            return 1;
        }
        match signals.wait(TICK).map(|(sig, _)| sig) {
            Some(SIGHUP) => {
                handover.generation += 1;
                handover.pending = false;
                // Only the workers still running cross the exec.
                handover.workers.retain(|w| workers.contains(&w.pid));
                retry(&mut handover, &inherited, &files);
            }
            Some(sig @ (SIGTERM | SIGINT | SIGQUIT)) => {
                let grace = if sig == SIGQUIT {
                    Duration::ZERO
                } else {
                    GRACE
                };
                stop(&mut workers, &signals, grace);
                files.remove_pid();
                return 0;
            }
            _ => {}
        }
    }
}

/// Re-executes this image with the handover: the reload is tried again.
fn retry(handover: &mut Handover, inherited: &Inherited, files: &ControlFiles) {
    info!(
        "received SIGHUP; trying reload {} again",
        handover.generation
    );
    let status = ReloadStatus {
        generation: handover.generation,
        state: ReloadState::Running,
        message: String::new(),
    };
    let _ = files.write_status(&status);
    let setup = ReloadSetup {
        argv: std::env::args_os().collect(),
        cwd: handover.cwd.clone(),
        state_dir: handover.state_dir.clone(),
        outgoing: inherited.outgoing(),
        handover: None,
    };
    handover.fds = setup.outgoing.fds().clone();
    let error = exec_self(&setup, handover);
    error!("cannot restart the master: {error}");
}

/// Removes the workers that have exited.
fn reap(workers: &mut Vec<pid_t>) {
    loop {
        let mut status: c_int = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        workers.retain(|w| *w != pid);
    }
}

/// `SIGTERM`s the workers, `SIGKILL`s those left after `grace` + 1 s, waits for them.
fn stop(workers: &mut Vec<pid_t>, signals: &Signals, grace: Duration) {
    for pid in workers.iter() {
        send_signal(*pid, SIGTERM);
    }
    let kill_at = Instant::now() + grace + KILL_MARGIN;
    let give_up = kill_at + Duration::from_secs(5);
    let mut killed = false;
    while !workers.is_empty() && Instant::now() < give_up {
        if !killed && Instant::now() >= kill_at {
            workers.iter().for_each(|pid| send_signal(*pid, SIGKILL));
            killed = true;
        }
        let _ = signals.wait(TICK);
        reap(workers);
    }
}
