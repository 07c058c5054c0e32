//! Configuration reload, the master's side: `SIGHUP` (which `wsrun reload` sends).
//!
//! Owns: the reload sequence and its bookkeeping ([`Reload`]): a `SIGHUP` starts
//! `/proc/self/exe check <the master's own arguments>` as a child (it loads the configuration,
//! imports the apps and compiles the handlers, in the directory wsrun started in); if it fails,
//! its error is logged and written to the status file and nothing changes; if it passes, the
//! master `execv`s itself with the same arguments and a handover (`crate::handover`: the
//! listeners and other named descriptors, the workers, the generation), and the new image
//! adopts the workers and replaces them (`rolling`). A `SIGHUP` that arrives while a reload is
//! under way (checking, or replacing workers) is remembered and starts one more reload after
//! it, across the exec too (the state: `reload_state`; the exec: `exec`).
//! Must not touch: sockets (the caller registers their descriptors), the configuration's
//! content, or how workers are forked (`mod.rs`).

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use libc::{pid_t, SIGKILL};
use tracing::{error, info};

use super::exec::exec_self;
use super::reload_state::Checking;
use super::signals::{send_signal, Exit};
use super::Master;
use crate::control_files::ReloadState;
use crate::handover::{HandedWorker, Handover, ENV};

/// The subcommand that validates a configuration (`wsrun check`).
const CHECK_SUBCOMMAND: &str = "check";
/// The running program, whatever its path was.
const SELF_EXE: &str = "/proc/self/exe";
/// At most this many lines of a failed check's output go into the log and the status file
/// when it printed no `wsrun: error:` line.
const TAIL_LINES: usize = 10;

impl Master<'_, '_, '_> {
    /// `SIGHUP`: starts a reload, or remembers it for after the one under way.
    pub(super) fn on_reload_signal(&mut self) {
        if self.reload.checking.is_some() || self.rolling.is_some() {
            info!("received SIGHUP during a reload; reloading again once this one is done");
            self.reload.pending = true;
            return;
        }
        self.reload.generation += 1;
        let generation = self.reload.generation;
        info!("received SIGHUP; checking the configuration (reload {generation})");
        self.reload.status(ReloadState::Running, "");
        if let Err(e) = self.start_check() {
            self.reload_failed(&format!("cannot run `wsrun check`: {e}"));
        }
    }

    /// Starts the check child, its output (stdout and stderr) going to an unnamed file.
    fn start_check(&mut self) -> io::Result<()> {
        let output = tempfile::tempfile()?;
        let setup = &self.reload.setup;
        let child = Command::new(SELF_EXE)
            .arg0(setup.argv.first().cloned().unwrap_or_default())
            .arg(CHECK_SUBCOMMAND)
            .args(setup.argv.iter().skip(1))
            .current_dir(&setup.cwd)
            .env_remove(ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::from(output.try_clone()?))
            .stderr(Stdio::from(output.try_clone()?))
            .spawn()?;
        // Reaped by the master loop's `waitpid(-1)`, which hands it to `on_check_exit`.
        let pid = pid_t::try_from(child.id()).unwrap_or(-1);
        self.reload.checking = Some(Checking { pid, output });
        Ok(())
    }

    /// Whether `pid` was the check child; if so, acts on how it ended.
    pub(super) fn on_check_exit(&mut self, pid: pid_t, exit: Exit) -> bool {
        if self.reload.checking.as_ref().map(|c| c.pid) != Some(pid) {
            return false;
        }
        let Some(mut checking) = self.reload.checking.take() else {
            return false;
        };
        if exit == Exit::Code(0) {
            self.exec_new_image();
        } else {
            let message = check_error(&mut checking.output, exit);
            self.reload_failed(&message);
        }
        true
    }

    /// A reload that changed nothing (or stopped part-way: the old workers serve on).
    pub(super) fn reload_failed(&mut self, message: &str) {
        let generation = self.reload.generation;
        error!("reload {generation} failed, the running configuration stays: {message}");
        self.reload.status(ReloadState::Error, message);
        self.reload_next();
    }

    /// Every worker runs the new configuration.
    pub(super) fn reload_done(&mut self) {
        let generation = self.reload.generation;
        info!("reload {generation} applied: every worker runs the new configuration");
        self.reload.status(ReloadState::Ok, "");
        self.reload_next();
    }

    /// Starts the reload a `SIGHUP` asked for meanwhile, if any.
    fn reload_next(&mut self) {
        if std::mem::take(&mut self.reload.pending) {
            self.on_reload_signal();
        }
    }

    /// A stop while a check runs: the check is of no use any more.
    pub(super) fn abandon_check(&mut self) {
        if let Some(checking) = self.reload.checking.take() {
            send_signal(checking.pid, SIGKILL);
        }
    }

    /// Replaces this process with a new image of itself; returns only if `execv` failed.
    fn exec_new_image(&mut self) {
        let handover = Handover {
            generation: self.reload.generation,
            pending: self.reload.pending,
            cwd: self.reload.setup.cwd.clone(),
            state_dir: self.reload.setup.state_dir.clone(),
            workers: self.handed_workers(),
            fds: self.reload.setup.outgoing.fds().clone(),
        };
        info!(
            "reload {}: the configuration is valid; restarting the master in place",
            handover.generation
        );
        let error = exec_self(&self.reload.setup, &handover);
        self.reload_failed(&format!("cannot restart the master: {error}"));
    }

    fn handed_workers(&self) -> Vec<HandedWorker> {
        self.workers
            .iter()
            .map(|w| HandedWorker {
                pid: w.pid,
                index: w.index,
                generation: w.generation,
                stopping: w.stop.is_some(),
            })
            .collect()
    }
}

/// What a failed check said: its `wsrun: error:` lines (the file, line and key of a
/// configuration error), else the end of its output.
fn check_error(output: &mut File, exit: Exit) -> String {
    let mut text = String::new();
    let _ = output.rewind();
    let _ = output.read_to_string(&mut text);
    error_lines(&text).unwrap_or_else(|| format!("`wsrun check` ended with {exit}"))
}

fn error_lines(text: &str) -> Option<String> {
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("wsrun: error: "))
        .collect();
    if !errors.is_empty() {
        return Some(errors.join("\n"));
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    (!tail.is_empty()).then_some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_error_is_its_error_lines_or_its_last_lines() {
        let out = "INFO loading\nwsrun: error: a.toml:3: key `server.workers`: bad\n";
        assert_eq!(
            error_lines(out).as_deref(),
            Some("a.toml:3: key `server.workers`: bad")
        );
        let out: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let tail = error_lines(&out).unwrap_or_default();
        assert!(
            tail.starts_with("line 10\n") && tail.ends_with("line 19"),
            "{tail}"
        );
        assert_eq!(error_lines("\n"), None);
    }
}
