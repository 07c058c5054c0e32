//! The master's reload bookkeeping, as values: what a reload needs ([`ReloadSetup`], built by
//! `server::run`) and where it stands ([`Reload`]: the generation, a coalesced `SIGHUP`, the
//! check child), with the pid and status files it keeps current.
//!
//! Owns: that state and its control files (`crate::control_files`). Must not touch: what a
//! reload does (`reload`), workers or sockets.

use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;

use libc::pid_t;
use tracing::warn;

use crate::control_files::{ControlFiles, ReloadState, ReloadStatus};
use crate::handover::{HandedWorker, Handover, Outgoing};

/// What the master needs to reload itself, built by `server::run`.
#[derive(Debug)]
pub struct ReloadSetup {
    /// The master's `argv` (the program name first), given again to the check and the exec.
    pub argv: Vec<OsString>,
    /// The directory wsrun started in (relative arguments resolve there).
    pub cwd: PathBuf,
    /// The absolute state directory (control files live there).
    pub state_dir: PathBuf,
    /// The descriptors to hand to the next image (listeners, admin, metrics, ...).
    pub outgoing: Outgoing,
    /// What the previous image handed over, when this one was started by a reload.
    pub handover: Option<Handover>,
}

/// The master's reload state.
#[derive(Debug)]
pub(super) struct Reload {
    pub(super) setup: ReloadSetup,
    pub(super) files: ControlFiles,
    /// The generation of the configuration new workers get; counts reload attempts.
    pub(super) generation: u64,
    /// A `SIGHUP` arrived during a reload: start another one after it.
    pub(super) pending: bool,
    pub(super) checking: Option<Checking>,
}

/// A running `wsrun check` child.
#[derive(Debug)]
pub(super) struct Checking {
    pub(super) pid: pid_t,
    pub(super) output: File,
}

impl Reload {
    /// The reload state of a master image; writes the pid file and, on a fresh start, a
    /// status of generation 0.
    pub(super) fn new(mut setup: ReloadSetup) -> (Reload, Vec<HandedWorker>) {
        let files = ControlFiles::new(&setup.state_dir);
        if let Err(e) = files.write_pid() {
            warn!("cannot write {}: {e}", files.pid_path().display());
        }
        let (generation, pending, workers) = match setup.handover.take() {
            Some(h) => (h.generation, h.pending, h.workers),
            None => (0, false, Vec::new()),
        };
        let reload = Reload {
            setup,
            files,
            generation,
            pending,
            checking: None,
        };
        if workers.is_empty() {
            reload.status(ReloadState::Ok, "");
        }
        (reload, workers)
    }

    pub(super) fn status(&self, state: ReloadState, message: &str) {
        let status = ReloadStatus {
            generation: self.generation,
            state,
            message: message.to_string(),
        };
        if let Err(e) = self.files.write_status(&status) {
            warn!("cannot write {}: {e}", self.files.status_path().display());
        }
    }

    /// The pid file goes when the master exits.
    pub(super) fn remove_pid(&self) {
        self.files.remove_pid();
    }
}
