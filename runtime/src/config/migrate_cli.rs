//! The command line of `wsrun migrate`: `report [--json]` and `show ID`, each with
//! `-c wsrun.toml` or `--state-dir DIR` to find the migration store.
//!
//! Owns: the clap definitions (`MigrateArgs`, `MigrateAction`) and `MigrateArgs::state_dir`
//! (resolved as a server run resolves it, through `jobs_cli::resolve_state_dir`). Must not
//! touch: the store or how its contents are shown (`crate::migrate::report`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::error::{ConfigError, CLI_FILE};
use super::jobs_cli::resolve_state_dir;

/// `wsrun migrate ...`: what shadow traffic and canaries found.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: MigrateAction,
    /// Find the state directory through this wsrun.toml (its [server] state_dir)
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The state directory holding migrate.sqlite3 (wins over -c) [default: .wsrun]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum MigrateAction {
    /// Per route: match rate, both sides' p50/p99, top differences by JSON path, rollbacks
    Report {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// One recorded difference in full: the request and both responses
    Show {
        #[arg(value_name = "ID")]
        id: i64,
    },
}

impl MigrateArgs {
    /// The state directory to read, made absolute against the working directory.
    pub fn state_dir(&self) -> Result<PathBuf, ConfigError> {
        let cwd = std::env::current_dir().map_err(|e| {
            let msg = format!("cannot read the current directory: {e}");
            ConfigError::new(CLI_FILE, None, None, msg)
        })?;
        resolve_state_dir(self.config.as_deref(), self.state_dir.as_deref(), &cwd)
    }
}
