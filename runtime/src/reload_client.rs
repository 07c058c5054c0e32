//! `wsrun reload`: asks the running master to reload its configuration and reports the outcome.
//!
//! Owns: finding the master (`state_dir/wsrun.pid`), sending it `SIGHUP`, waiting for the
//! status of the reload that signal causes (`state_dir/wsrun.reload`) and the exit code:
//! 0 applied, 1 not applied (the error printed: file, line and key of a configuration error),
//! 2 no running master. Must not touch: what the master does (`server::supervisor::reload`).
//!
//! Which status answers this signal: the master numbers reload attempts. If the latest status
//! is generation `g` (done, or still running: a `SIGHUP` during a reload is coalesced into one
//! more reload after it), the reload that reads the file as it is now is generation `g + 1`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::config::ReloadArgs;
use crate::control_files::{ControlFiles, ReloadState, ReloadStatus};

/// How often the status file is read while waiting.
const POLL: Duration = Duration::from_millis(20);

pub fn main(args: &ReloadArgs) -> ExitCode {
    let (state_dir, timeout) = match (args.state_dir(), args.timeout()) {
        (Ok(dir), Ok(timeout)) => (dir, timeout),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("wsrun: error: {err}");
            return ExitCode::from(1);
        }
    };
    let files = ControlFiles::new(&state_dir);
    let Some(pid) = files.read_pid().filter(|pid| alive(*pid)) else {
        eprintln!(
            "wsrun: error: no running wsrun master (no live pid in {})",
            files.pid_path().display()
        );
        return ExitCode::from(2);
    };
    let target = files.read_status().map_or(1, |s| s.generation + 1);
    // SAFETY: kill has no memory-safety requirements; `pid` is positive (`read_pid`).
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let err = std::io::Error::last_os_error();
        eprintln!("wsrun: error: cannot signal the master (pid {pid}): {err}");
        return ExitCode::from(2);
    }
    match wait_for(&files, target, pid, timeout) {
        Ok(status) if status.state == ReloadState::Ok => {
            println!(
                "wsrun: configuration reloaded (reload {})",
                status.generation
            );
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("wsrun: error: {}", status.message);
            eprintln!("wsrun: the running configuration is unchanged");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("wsrun: error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Waits for a finished status of generation `target` or later.
fn wait_for(
    files: &ControlFiles,
    target: u64,
    pid: i32,
    timeout: Duration,
) -> Result<ReloadStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = files.read_status() {
            if status.generation >= target && status.state != ReloadState::Running {
                return Ok(status);
            }
        }
        if !alive(pid) {
            return Err(format!("the master (pid {pid}) exited during the reload"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the reload was not done within {}",
                crate::config::format_duration(timeout)
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid, 0) == 0 }
}
