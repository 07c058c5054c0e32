//! The gunicorn-style master process: forks the worker processes, replaces the ones that die,
//! reloads the configuration on `SIGHUP` and stops them on `SIGTERM` / `SIGINT` / `SIGQUIT`.
//!
//! This module owns process management only: it never touches sockets, Python or HTTP. The
//! caller loads the configuration and the application *before* calling [`supervise`], which
//! takes the master's start-up services by value and stops them before forking; every
//! worker is a `fork()` of that state and runs the caller's `worker_main` (which binds its own
//! `SO_REUSEPORT` listener and builds its own runtime). Python's fork bookkeeping is the
//! caller's business too, through [`ForkHooks`].
//!
//! Signals in the master are blocked and taken synchronously with `sigtimedwait`, so there are
//! no signal handlers and no async-signal-safety concerns; the loop wakes at least every
//! 100 ms to handle restart back-offs and kill deadlines.
//!
//! - `SIGTERM` / `SIGINT`: graceful stop: `SIGTERM` to the workers, `SIGKILL` to those still
//!   running after the grace period + 1 s; exit code 0. A `SIGINT` or `SIGQUIT` during the
//!   stop cuts the remaining grace to 1 s.
//! - `SIGQUIT`: quick stop: as above with no grace (`SIGKILL` after 1 s).
//! - `SIGHUP`: configuration reload (`reload`): check the configuration in a child, then
//!   `execv` the master in place; the new image adopts the running workers (still its children:
//!   the pid is the same) and replaces them index by index, each new worker ready before the
//!   old one drains (`rolling`). A configuration with an error changes nothing.
//! - `SIGCHLD`: reap; a worker that died unexpectedly is replaced (immediately, then with a
//!   back-off of 100 ms doubling to 5 s while the same index keeps dying within 2 s); a worker
//!   that exited with [`WORKER_BOOT_FAILED`] stops everything with exit code 1.
//! - a worker's notes ("ready", "recycle me"): see `recycle` (replacement first, then the old
//!   worker drains; not a crash).

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use libc::{c_int, pid_t, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM};
use tracing::{debug, error, info, warn};

use crate::config::format_duration;
use crate::services::StartupServices;

/// Callbacks run around every `fork()`; the Python host uses them for
/// `PyOS_BeforeFork` / `PyOS_AfterFork_Parent` / `PyOS_AfterFork_Child`.
///
/// `after_in_parent` also runs when `fork()` fails, as CPython's own `os.fork` does.
pub struct ForkHooks<'a> {
    /// Runs in the master just before `fork()`.
    pub before: &'a mut dyn FnMut(),
    /// Runs in the master just after `fork()`, whether it succeeded or not.
    pub after_in_parent: &'a mut dyn FnMut(),
    /// Runs in the new worker right after `fork()` (signal dispositions already reset, signals
    /// still blocked), before `worker_main`.
    pub after_in_child: &'a mut dyn FnMut(),
}

/// What [`supervise`] needs from the configuration.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    /// Number of worker processes (indexes `0..workers`); must be at least 1.
    pub workers: usize,
    /// How long a worker may take to finish after `SIGTERM`; it gets `SIGKILL` one second later.
    pub graceful_timeout: Duration,
}

/// Exit code a worker uses when it could not start (bind failed, app failed); the supervisor
/// then stops everything.
pub const WORKER_BOOT_FAILED: i32 = 3;

/// Longest the master sleeps between two looks at its deadlines.
const TICK: Duration = Duration::from_millis(100);
/// Extra time a stopping worker gets after its grace period before `SIGKILL`.
const KILL_MARGIN: Duration = Duration::from_secs(1);
/// How long the master still waits for workers after `SIGKILL` before giving up on them.
const REAP_AFTER_KILL: Duration = Duration::from_secs(5);
/// A worker that dies sooner than this after its start counts as a repeated failure.
const QUICK_DEATH: Duration = Duration::from_secs(2);
/// First restart delay of a crash-looping worker; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest restart delay of a crash-looping worker.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Exit code of a worker whose `worker_main` (or `after_in_child`) panicked.
const PANIC_EXIT: i32 = 101;

/// Runs the master loop until shutdown; returns the process exit code.
///
/// `worker_main(worker_index)` runs in the child and returns the child's exit code (the child
/// then calls `libc::_exit` with it — never returns into the parent's code; a panic there exits
/// with code 101). Returns 0 after a stop by signal, 1 when a worker exited with
/// [`WORKER_BOOT_FAILED`] or the master could not set itself up.
///
/// Preconditions: apart from the threads of `startup` (stopped here, before the first fork)
/// and the admin listener's thread (which `hooks.before` keeps out of every fork: see
/// `server::admin::gate`; it blocks every signal), the calling process has no other threads (they would not survive `fork()` and could
/// receive the signals meant for the master), and it has no other children whose
/// exit status it cares about (`waitpid(-1)` reaps them). The signals above stay blocked when
/// this returns: the caller is expected to exit with the returned code.
pub fn supervise(
    settings: &SupervisorSettings,
    startup: StartupServices,
    reload: ReloadSetup,
    hooks: ForkHooks<'_>,
    worker_main: &mut dyn FnMut(usize, MasterLink) -> i32,
) -> i32 {
    // The master's service threads end here, before the first fork: `startup` is consumed,
    // so nothing of it is left to cross a fork (each worker opens its own services).
    startup.stop();
    if settings.workers == 0 {
        error!("the number of workers must be at least 1");
        return 1;
    }
    let signals = match Signals::block(&notes::note_signals()) {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot block signals in the supervisor: {e}");
            return 1;
        }
    };
    let (reload, adopted) = Reload::new(reload);
    let mut master = Master::new(settings, hooks, worker_main, signals, reload);
    master.adopt(adopted);
    let code = master.run();
    master.reload.remove_pid();
    code
}

mod adopt;
mod caretaker;
mod exec;
mod notes;
mod orphan;
mod progress;
mod recycle;
mod reload;
mod reload_state;
mod rolling;
mod signals;
pub use caretaker::keep_old_workers;
pub use notes::MasterLink;
pub use orphan::PARENT_CHECK;
use progress::{Progress, Rolling};
use reload_state::Reload;
pub use reload_state::ReloadSetup;
pub use signals::ignore_file_size_signal;
use signals::*;

/// Restart delay after `failures` consecutive quick deaths (or fork failures) of one index:
/// none for the first, then 100 ms doubling up to 5 s.
fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let doublings = (failures - 2).min(16);
    BACKOFF_START
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

/// The body of a freshly forked worker: never returns into the master's code.
fn run_child(
    after_in_child: &mut dyn FnMut(),
    worker_main: &mut dyn FnMut(usize, MasterLink) -> i32,
    index: usize,
    link: MasterLink,
) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(|| {
        for sig in SIGNALS {
            // Cannot fail for these valid, catchable signals.
            let _ = set_default_disposition(sig);
        }
        // Before anything else: a master that dies from here on sends this worker SIGTERM
        // (held in the mask until the worker unblocks it); one already dead means exit now.
        match orphan::arm_parent_death(link.master_pid()) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(e) => warn!(index, "worker cannot arm its parent-death signal: {e}"),
        }
        after_in_child();
        if let Err(e) = change_signal_mask(libc::SIG_SETMASK, &[]) {
            error!(index, "worker cannot unblock signals: {e}");
            return WORKER_BOOT_FAILED;
        }
        worker_main(index, link)
    }))
    .unwrap_or(PANIC_EXIT);
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    crate::pgo_training::before_exit();
    // SAFETY: `_exit` ends the process at once; skipping the atexit handlers and stdio buffers
    // inherited from the master is intended (they belong to the master).
    unsafe { libc::_exit(code) }
}

/// One live worker process.
#[derive(Debug)]
struct Worker {
    pid: pid_t,
    index: usize,
    started: Instant,
    /// Set once the master asked this worker to stop; its exit is then expected.
    stop: Option<Stopping>,
    /// The worker this one replaces (a recycle, a reload), until this one is ready.
    replaces: Option<pid_t>,
    /// The reload generation whose configuration it runs.
    generation: u64,
}

/// A worker that was sent `SIGTERM`.
#[derive(Debug)]
struct Stopping {
    kill_at: Instant,
    killed: bool,
}

impl Worker {
    /// Sends `SIGTERM` (once) and sets the `SIGKILL` deadline, never extending an earlier one.
    fn stop(&mut self, kill_at: Instant) {
        match &mut self.stop {
            Some(stop) => stop.kill_at = stop.kill_at.min(kill_at),
            None => {
                send_signal(self.pid, SIGTERM);
                let killed = false;
                self.stop = Some(Stopping { kill_at, killed });
            }
        }
    }
}

/// Per-index restart bookkeeping.
#[derive(Debug, Clone)]
struct Slot {
    /// When to start a worker for this index (no active worker until then).
    restart_at: Option<Instant>,
    /// Consecutive quick deaths or fork failures, for the back-off.
    failures: u32,
}

/// The master's state.
struct Master<'s, 'h, 'w> {
    settings: &'s SupervisorSettings,
    hooks: ForkHooks<'h>,
    worker_main: &'w mut dyn FnMut(usize, MasterLink) -> i32,
    signals: Signals,
    /// What every forked worker gets to reach this process.
    link: MasterLink,
    workers: Vec<Worker>,
    slots: Vec<Slot>,
    rolling: Option<Rolling>,
    reload: Reload,
    boot_failed: bool,
}

impl<'s, 'h, 'w> Master<'s, 'h, 'w> {
    fn new(
        settings: &'s SupervisorSettings,
        hooks: ForkHooks<'h>,
        worker_main: &'w mut dyn FnMut(usize, MasterLink) -> i32,
        signals: Signals,
        reload: Reload,
    ) -> Self {
        let now = Instant::now();
        let first_start = Slot {
            restart_at: Some(now),
            failures: 0,
        };
        Master {
            settings,
            hooks,
            worker_main,
            signals,
            // SAFETY: getpid has no requirements.
            link: MasterLink::new(unsafe { libc::getpid() }),
            workers: Vec::with_capacity(settings.workers),
            slots: vec![first_start; settings.workers],
            rolling: None,
            reload,
            boot_failed: false,
        }
    }

    /// The master loop; returns the process exit code.
    fn run(&mut self) -> i32 {
        info!(
            "supervisor started (pid {}), starting {} workers",
            std::process::id(),
            self.slots.len()
        );
        loop {
            self.start_due_workers();
            let signal = self.signals.wait(TICK);
            let signal = match signal {
                Some((sig, pid)) if self.on_note(sig, pid) => None,
                other => other.map(|(sig, _)| sig),
            };
            self.reap();
            if self.boot_failed {
                error!("a worker could not start; stopping all workers");
                self.shutdown(self.settings.graceful_timeout);
                return 1;
            }
            match signal {
                Some(sig @ (SIGTERM | SIGINT)) => {
                    info!("received {}, stopping workers gracefully", SignalName(sig));
                    self.shutdown(self.settings.graceful_timeout);
                    return 0;
                }
                Some(SIGQUIT) => {
                    info!("received SIGQUIT, stopping workers now");
                    self.shutdown(Duration::ZERO);
                    return 0;
                }
                Some(SIGHUP) => self.on_reload_signal(),
                _ => {}
            }
            self.advance_rolling_restart();
            self.enforce_kill_deadlines();
        }
    }

    /// Starts a worker for every index whose (re)start time has come.
    fn start_due_workers(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            if self.slots[index].restart_at.is_none_or(|at| at > now) {
                continue;
            }
            self.slots[index].restart_at = None;
            if let Err(e) = self.start_worker(index) {
                error!(index, "cannot fork worker {index}: {e}");
                self.schedule_restart(index, true);
            }
        }
    }

    /// Forks worker `index` and records it.
    fn start_worker(&mut self, index: usize) -> io::Result<pid_t> {
        let pid = self.fork(index)?;
        info!(pid, index, "worker {index} started (pid {pid})");
        self.workers.push(Worker {
            pid,
            index,
            started: Instant::now(),
            stop: None,
            replaces: None,
            generation: self.reload.generation,
        });
        Ok(pid)
    }

    /// `fork()` wrapped in the hooks; the child runs [`run_child`] and never returns.
    fn fork(&mut self, index: usize) -> io::Result<pid_t> {
        (self.hooks.before)();
        // SAFETY: the master has no other threads (a documented precondition of `supervise`),
        // so the child gets a consistent copy; it only runs `run_child`, which never returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            run_child(
                &mut *self.hooks.after_in_child,
                &mut *self.worker_main,
                index,
                self.link,
            );
        }
        let fork_error = io::Error::last_os_error();
        (self.hooks.after_in_parent)();
        if pid < 0 {
            Err(fork_error)
        } else {
            Ok(pid)
        }
    }

    /// Plans the next start of worker `index`, backing off when it keeps failing quickly.
    fn schedule_restart(&mut self, index: usize, quick: bool) {
        let slot = &mut self.slots[index];
        slot.failures = if quick { slot.failures + 1 } else { 1 };
        let delay = backoff(slot.failures);
        if !delay.is_zero() {
            warn!(
                index,
                "worker {index} failed {} times in a row; next start in {}",
                slot.failures,
                format_duration(delay)
            );
        }
        slot.restart_at = Some(Instant::now() + delay);
    }

    /// Reaps every exited child without blocking.
    fn reap(&mut self) {
        loop {
            let mut status: c_int = 0;
            // SAFETY: `status` is a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                self.on_exit(pid, Exit::from_status(status));
                continue;
            }
            if pid < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => {}
                    _ => warn!("waitpid failed: {err}"),
                }
            }
            return;
        }
    }

    /// Handles the end of child `pid`.
    fn on_exit(&mut self, pid: pid_t, exit: Exit) {
        if self.on_check_exit(pid, exit) {
            return;
        }
        let Some(pos) = self.workers.iter().position(|w| w.pid == pid) else {
            debug!(pid, "reaped a child that is not a worker ({exit})");
            return;
        };
        let worker = self.workers.swap_remove(pos);
        let index = worker.index;
        if worker.stop.is_some() {
            info!(pid, index, "worker {index} (pid {pid}) stopped ({exit})");
        } else if exit == Exit::Code(WORKER_BOOT_FAILED) && !self.reload_spares(&worker) {
            error!(
                pid,
                index, "worker {index} (pid {pid}) failed to boot ({exit})"
            );
            self.boot_failed = true;
        } else if self.needs_restart_after_crash(pid, worker.replaces) && index < self.slots.len() {
            warn!(pid, index, %exit, "worker {index} (pid {pid}) died ({exit}); replacing it");
            self.schedule_restart(index, worker.started.elapsed() < QUICK_DEATH);
        } else {
            warn!(pid, index, %exit, "worker {index} (pid {pid}) died ({exit})");
        }
    }

    /// The worker currently serving `index` (not one being stopped), if any.
    fn active_worker(&self, index: usize) -> Option<pid_t> {
        self.workers
            .iter()
            .find(|w| w.index == index && w.stop.is_none())
            .map(|w| w.pid)
    }

    /// Sends `SIGTERM` to every worker not yet stopping and gives each at most
    /// `grace` + 1 s before `SIGKILL` (shortening earlier deadlines, never extending them).
    fn stop_workers(&mut self, grace: Duration) {
        let kill_at = Instant::now() + grace + KILL_MARGIN;
        for worker in &mut self.workers {
            worker.stop(kill_at);
        }
    }

    /// Sends `SIGTERM` to one worker, with the configured grace.
    fn retire(&mut self, pid: pid_t) {
        let kill_at = Instant::now() + self.settings.graceful_timeout + KILL_MARGIN;
        if let Some(worker) = self.workers.iter_mut().find(|w| w.pid == pid) {
            worker.stop(kill_at);
        }
    }

    /// Sends `SIGTERM` to a worker that replaces nobody any more, with no grace.
    fn retire_now(&mut self, pid: pid_t) {
        let kill_at = Instant::now() + KILL_MARGIN;
        if let Some(worker) = self.workers.iter_mut().find(|w| w.pid == pid) {
            worker.replaces = None;
            worker.stop(kill_at);
        }
    }

    /// `SIGKILL`s every stopping worker whose deadline has passed.
    fn enforce_kill_deadlines(&mut self) {
        let now = Instant::now();
        for worker in &mut self.workers {
            let Some(stop) = &mut worker.stop else {
                continue;
            };
            if stop.killed || now < stop.kill_at {
                continue;
            }
            let (pid, index) = (worker.pid, worker.index);
            warn!(
                pid,
                index, "worker {index} (pid {pid}) did not stop in time; sending SIGKILL"
            );
            send_signal(pid, SIGKILL);
            stop.killed = true;
        }
    }

    /// Stops every worker and waits for them; `SIGINT`/`SIGQUIT` meanwhile cut the grace to 0.
    fn shutdown(&mut self, grace: Duration) {
        self.rolling = None;
        self.abandon_check();
        self.stop_workers(grace);
        let give_up_at = Instant::now() + grace + KILL_MARGIN + REAP_AFTER_KILL;
        loop {
            self.reap();
            if self.workers.is_empty() {
                info!("all workers stopped");
                return;
            }
            if Instant::now() >= give_up_at {
                let pids: Vec<pid_t> = self.workers.iter().map(|w| w.pid).collect();
                error!(
                    ?pids,
                    "workers still running after SIGKILL; giving up on them"
                );
                return;
            }
            self.enforce_kill_deadlines();
            if let Some((sig @ (SIGINT | SIGQUIT), _)) = self.signals.wait(TICK) {
                info!(
                    "received {} while stopping; stopping workers now",
                    SignalName(sig)
                );
                self.stop_workers(Duration::ZERO);
            }
        }
    }

    /// Moves the reload's rolling restart on, if one is under way.
    fn advance_rolling_restart(&mut self) {
        let Some(mut rolling) = self.rolling.take() else {
            return;
        };
        match self.rolling_step(&mut rolling) {
            Progress::Going => self.rolling = Some(rolling),
            Progress::Done => self.reload_done(),
            Progress::Failed(message) => self.reload_failed(&message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_up_to_5s() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(7), Duration::from_millis(3200));
        assert_eq!(backoff(8), Duration::from_secs(5));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn exit_status_is_decoded_and_named() {
        // Linux wait status encoding: exit code in bits 8..16, terminating signal in bits 0..7.
        assert_eq!(Exit::from_status(3 << 8), Exit::Code(3));
        assert_eq!(
            Exit::from_status(libc::SIGKILL),
            Exit::Signal(libc::SIGKILL)
        );
        assert_eq!(Exit::Signal(libc::SIGKILL).to_string(), "signal SIGKILL");
        assert_eq!(Exit::Code(7).to_string(), "exit code 7");
        assert_eq!(SignalName(64).to_string(), "64");
    }
}
