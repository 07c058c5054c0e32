//! The command line of `wsrun reload`: `-c wsrun.toml` or `--state-dir DIR` to find the
//! running master, and how long to wait for the reload.
//!
//! Owns: the clap definition (`ReloadArgs`) and its state directory, resolved as for
//! `wsrun jobs` (`jobs_cli::resolve_state_dir`). Must not touch: the control files or the
//! signal (`crate::reload_client`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, CLI_FILE};
use super::jobs_cli::resolve_state_dir;
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
        resolve_state_dir(self.config.as_deref(), self.state_dir.as_deref(), &cwd)
    }

    pub fn timeout(&self) -> Result<Duration, ConfigError> {
        parse_duration(&self.timeout).map_err(|e| ConfigError::flag("--timeout", e.to_string()))
    }
}
