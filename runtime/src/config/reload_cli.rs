//! The command line of `wsrun reload`: `-c wsrun.toml` or `--state-dir DIR` to find the
//! running master, and how long to wait for the reload.
//!
//! Owns: the clap definition (`ReloadArgs`) and its state directory, resolved as for
//! `wsrun jobs` (`jobs_cli::resolve_state_dir`), or leniently from a file with a mistake.
//! Must not touch: the control files or the signal (`crate::reload_client`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, CLI_FILE};
use super::jobs_cli::resolve_state_dir;
use super::server::ServerConfig;
use super::units::parse_duration;

/// `wsrun reload`: make the running server re-read its configuration file.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ReloadArgs {
    /// The wsrun.toml the server runs with (finds its state directory)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server's state directory, holding wsrun.pid (wins over -c) [default: .wsrun]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long to wait for the reload to be applied
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    pub timeout: String,
}

impl ReloadArgs {
    /// The state directory, absolute.
    pub fn state_dir(&self) -> Result<PathBuf, ConfigError> {
        let cwd = std::env::current_dir().map_err(|e| {
            let msg = format!("cannot read the current directory: {e}");
            ConfigError::new(CLI_FILE, None, None, msg)
        })?;
        match resolve_state_dir(self.config.as_deref(), self.state_dir.as_deref(), &cwd) {
            Ok(dir) => Ok(dir),
            // A file with a mistake still names the master's state directory: the master
            // then checks it, logs the error and reports it back (nothing changes).
            Err(err) => self
                .config
                .as_ref()
                .and_then(|file| lenient_state_dir(&cwd.join(file), &cwd))
                .ok_or(err),
        }
    }

    pub fn timeout(&self) -> Result<Duration, ConfigError> {
        parse_duration(&self.timeout).map_err(|e| ConfigError::flag("--timeout", e.to_string()))
    }
}

/// `[server] state_dir` (else `chdir`/.wsrun, else `cwd`/.wsrun) read from a file that is
/// TOML but not a valid configuration; relative paths against the file's directory.
fn lenient_state_dir(file: &Path, cwd: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let server = table.get("server").and_then(|v| v.as_table());
    let dir = file.parent()?;
    let path = |key: &str| {
        let value = server.and_then(|s| s.get(key)).and_then(|v| v.as_str())?;
        Some(dir.join(value))
    };
    path("state_dir").or_else(|| {
        let base = path("chdir").unwrap_or_else(|| cwd.to_path_buf());
        Some(base.join(ServerConfig::default().state_dir))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_a_mistake_still_names_its_state_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("wsrun.toml");
        std::fs::write(&file, "[server]\nstate_dir = \"st\"\nworkers = \"many\"\n").expect("write");
        let args = ReloadArgs {
            config: Some(file),
            state_dir: None,
            timeout: "1s".into(),
        };
        assert_eq!(args.state_dir(), Ok(dir.path().join("st")));
    }
}
