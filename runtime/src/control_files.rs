//! The files in `state_dir` through which `wsrun reload` talks to a running master.
//!
//! Owns: `wsrun.pid` (the master's pid: written when the master starts, removed when it
//! exits) and `wsrun.reload` (the state of the latest reload: its generation, `running`,
//! `ok` or `error`, and the error's text), their names, format and atomic writes. Must not
//! touch: when a reload happens (`server::supervisor`) or how the client waits
//! (`reload_client`).
//!
//! `wsrun.reload` is one JSON object, replaced atomically (written beside, then renamed), so
//! a reader never sees half a file.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const PID_FILE: &str = "wsrun.pid";
const STATUS_FILE: &str = "wsrun.reload";

/// Where a reload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadState {
    /// Checking the new configuration, or replacing the workers.
    Running,
    /// Every worker runs the new configuration.
    Ok,
    /// Nothing changed (or the new workers did not come up and the old ones still serve).
    Error,
}

/// The content of `wsrun.reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Counts reload attempts since the master started (1 is the first).
    pub generation: u64,
    pub state: ReloadState,
    /// The error (the file, line and key of a configuration error), or empty.
    #[serde(default)]
    pub message: String,
}

/// The control files of one state directory.
#[derive(Debug, Clone)]
pub struct ControlFiles {
    dir: PathBuf,
}

impl ControlFiles {
    pub fn new(state_dir: &Path) -> ControlFiles {
        ControlFiles {
            dir: state_dir.to_path_buf(),
        }
    }

    pub fn pid_path(&self) -> PathBuf {
        self.dir.join(PID_FILE)
    }

    pub fn status_path(&self) -> PathBuf {
        self.dir.join(STATUS_FILE)
    }

    /// Records this process as the running master.
    pub fn write_pid(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        replace(&self.pid_path(), &format!("{}\n", std::process::id()))
    }

    /// Removes the pid file if it still names this process.
    pub fn remove_pid(&self) {
        if self.read_pid() == Some(std::process::id() as i32) {
            let _ = std::fs::remove_file(self.pid_path());
        }
    }

    /// The pid the pid file names, if it exists and parses.
    pub fn read_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.pid_path()).ok()?;
        text.trim().parse().ok().filter(|pid| *pid > 0)
    }

    pub fn write_status(&self, status: &ReloadStatus) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        // Plain data: serialising cannot fail.
        let text = serde_json::to_string(status).unwrap_or_default();
        replace(&self.status_path(), &text)
    }

    /// The latest status, if any was written.
    pub fn read_status(&self) -> Option<ReloadStatus> {
        let text = std::fs::read_to_string(self.status_path()).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Writes `text` to `path` atomically: a sibling file, then a rename over `path`.
fn replace(path: &Path, text: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_and_status_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = ControlFiles::new(&dir.path().join("state"));
        assert_eq!(files.read_pid(), None);
        files.write_pid().expect("pid");
        assert_eq!(files.read_pid(), Some(std::process::id() as i32));
        let status = ReloadStatus {
            generation: 2,
            state: ReloadState::Error,
            message: "wsrun.toml:3: key `server.workers`: not a number".into(),
        };
        files.write_status(&status).expect("status");
        assert_eq!(files.read_status(), Some(status));
        files.remove_pid();
        assert_eq!(files.read_pid(), None);
    }
}
