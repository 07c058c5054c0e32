//! Process signal plumbing for the supervisor: signal sets and masks, dispositions, sending
//! signals, and naming how a worker ended.
//!
//! Owns: the unsafe libc calls around signals. Must not touch: worker bookkeeping (see `mod.rs`).

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::time::Duration;

use libc::{c_int, pid_t, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use tracing::warn;

/// The signals the master blocks and waits for, besides the workers' notes (`recycle`).
pub(super) const SIGNALS: [c_int; 5] = [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD];

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    Code(i32),
    Signal(c_int),
    Other(c_int),
}

impl Exit {
    pub(super) fn from_status(status: c_int) -> Self {
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Other(status)
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(sig) => write!(f, "signal {}", SignalName(sig)),
            Exit::Other(status) => write!(f, "wait status {status:#x}"),
        }
    }
}

/// Displays a signal number as its name (`SIGKILL`), or as the number when unknown.
pub(super) struct SignalName(pub(super) c_int);

/// Names of the signals a worker is likely to die from.
#[rustfmt::skip]
pub(super) const SIGNAL_NAMES: [(c_int, &str); 19] = [
    (libc::SIGHUP, "SIGHUP"), (libc::SIGINT, "SIGINT"), (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"), (libc::SIGTRAP, "SIGTRAP"), (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"), (libc::SIGFPE, "SIGFPE"), (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"), (libc::SIGSEGV, "SIGSEGV"), (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"), (libc::SIGALRM, "SIGALRM"), (libc::SIGTERM, "SIGTERM"),
    (libc::SIGCHLD, "SIGCHLD"), (libc::SIGXCPU, "SIGXCPU"), (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGSYS, "SIGSYS"),
];

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match SIGNAL_NAMES.iter().find(|(sig, _)| *sig == self.0) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The master's blocked signal set, waited on with `sigtimedwait`.
pub(super) struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks [`SIGNALS`] in the calling thread and makes sure `SIGCHLD` is not ignored (an
    /// inherited `SIG_IGN` would let the kernel reap workers before we see how they ended).
    pub(super) fn block(notes: &[c_int]) -> io::Result<Self> {
        set_default_disposition(SIGCHLD)?;
        let mut all = SIGNALS.to_vec();
        all.extend(notes);
        let set = change_signal_mask(libc::SIG_BLOCK, &all)?;
        Ok(Signals { set })
    }

    /// Waits up to `timeout` for one of the blocked signals and returns it with the pid of its
    /// sender; `None` on timeout.
    pub(super) fn wait(&self, timeout: Duration) -> Option<(c_int, pid_t)> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `set`, `info` and `ts` are valid for the call.
        let sig = unsafe { libc::sigtimedwait(&self.set, info.as_mut_ptr(), &ts) };
        if sig > 0 {
            // SAFETY: sigtimedwait filled `info` for the signal it returned; every signal
            // here is sent by `kill` or the kernel's SIGCHLD, both of which set `si_pid`.
            let pid = unsafe { info.assume_init_ref().si_pid() };
            return Some((sig, pid));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => {}
            _ => {
                warn!("sigtimedwait failed: {err}");
                std::thread::sleep(timeout);
            }
        }
        None
    }
}

/// A `sigset_t` holding `signals`.
pub(super) fn signal_set(signals: &[c_int]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only writes into it.
    unsafe {
        if libc::sigemptyset(set.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        for &sig in signals {
            if libc::sigaddset(set.as_mut_ptr(), sig) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(set.assume_init())
    }
}

/// Sets the disposition of `sig` to `SIG_DFL`.
pub(super) fn set_default_disposition(sig: c_int) -> io::Result<()> {
    set_disposition(sig, libc::SIG_DFL)
}

/// Ignores `SIGXFSZ` in this process and the workers it forks: a write past a file-size
/// limit (`RLIMIT_FSIZE`) then fails with `EFBIG`, which the spooler answers as a full disk
/// (507), instead of killing the worker and every request it holds.
pub fn ignore_file_size_signal() -> io::Result<()> {
    set_disposition(libc::SIGXFSZ, libc::SIG_IGN)
}

fn set_disposition(sig: c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    // SAFETY: `action` is fully initialised; a null old-action pointer is allowed.
    if unsafe { libc::sigaction(sig, &action, ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `sigprocmask(how, signals)`; returns the set it built from `signals`.
pub(super) fn change_signal_mask(how: c_int, signals: &[c_int]) -> io::Result<libc::sigset_t> {
    let set = signal_set(signals)?;
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    if unsafe { libc::sigprocmask(how, &set, ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(set)
}

/// Sends `sig` to worker `pid`; a worker that is already gone is not an error.
pub(super) fn send_signal(pid: pid_t, sig: c_int) {
    if pid <= 0 {
        return; // never signal a process group or every process
    }
    // SAFETY: kill has no memory-safety requirements.
    if unsafe { libc::kill(pid, sig) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            warn!(pid, "cannot send {} to worker: {err}", SignalName(sig));
        }
    }
}
