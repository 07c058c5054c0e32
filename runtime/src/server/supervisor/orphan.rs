//! A worker noticing that its master died (`SIGKILL`, the OOM killer): it drains and exits
//! instead of serving on as an orphan beside the next wsrun on the same `SO_REUSEPORT` port.
//!
//! Owns: arming the parent-death signal right after `fork()` ([`arm_parent_death`]) and the
//! parent check ([`MasterLink::master_gone`]) that backs it up. Must not touch: how a worker
//! drains (`server::worker`, which turns `SIGTERM` or a failed check into its normal drain).
//!
//! Two lines of defence, because each has a gap:
//! - `PR_SET_PDEATHSIG(SIGTERM)`: the kernel sends the worker `SIGTERM` when the *thread* that
//!   forked it ends. The master forks from its main thread, which lives as long as the process
//!   does, and a reload's `execv` keeps both the pid and that thread (the master is single-
//!   threaded when it execs), so a reload is not a death and adopted workers keep their signal.
//!   The master may die between `fork()` and `prctl`, which then arms nothing: the worker
//!   compares `getppid()` with the master's pid right after arming and gives up at once.
//! - the parent check: `getppid()` no longer being the master's pid (re-parented to init or
//!   a subreaper), looked at every [`PARENT_CHECK`] by the worker's signal thread; it covers a
//!   death signal lost or never armed (a master thread other than the forking one ending
//!   does not fire it; a future change forking from another thread would).
//!
//! A death signal is not proof of death: when `SIGKILL` ends the master, its forking thread may
//! exit before the others (the last one tearing down the address space), and the kernel then
//! re-parents the worker to a surviving thread of the master, so `getppid()` still names it,
//! and signals again when the last thread ends. The worker drains on the first signal and
//! keeps checking while it drains (`server::worker`).

use std::io;
use std::time::Duration;

use libc::pid_t;

use super::notes::MasterLink;

/// How often a worker's signal thread checks that its master is still its parent.
pub const PARENT_CHECK: Duration = Duration::from_millis(500);

/// Arms `SIGTERM` as this (new worker) process's parent-death signal; `Ok(false)` when
/// `master` is already gone (this process was re-parented before the signal was armed).
pub(super) fn arm_parent_death(master: pid_t) -> io::Result<bool> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and ignores the other arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(!parent_is_not(master))
}

/// `getppid()` differs from `master`.
fn parent_is_not(master: pid_t) -> bool {
    // SAFETY: getppid has no requirements.
    unsafe { libc::getppid() != master }
}

impl MasterLink {
    /// The master that forked this worker is no longer its parent: it died.
    pub fn master_gone(&self) -> bool {
        parent_is_not(self.master_pid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_parent_is_not_gone_and_another_pid_is() {
        // SAFETY: getppid has no requirements.
        let parent = unsafe { libc::getppid() };
        assert!(!parent_is_not(parent));
        assert!(parent_is_not(parent + 1));
        assert!(!MasterLink::new(parent).master_gone());
        assert!(MasterLink::new(parent + 1).master_gone());
    }
}
