//! The command line of `wsrun jobs`: `list`, `show ID`, `retry ID`, `purge [--pending]`, each
//! with `-c wsrun.toml` or `--state-dir DIR` to find the job journal, or `--jobs-backend URL`
//! (or the file's `[jobs] backend`) for a PostgreSQL store.
//!
//! Owns: the clap definitions (`JobsArgs`, `JobsAction`), `JobsArgs::backend`, and
//! `JobsArgs::state_dir`, which
//! resolves the state directory the way a server run does (the file's `[server] state_dir`
//! relative to the file; the default `.wsrun` relative to `chdir` or the working directory).
//! Must not touch: the journal or how its contents are shown (`services::admin`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::error::{ConfigError, CLI_FILE};
use super::jobs::PostgresBackend;
use super::model::Config;
use super::server::ServerConfig;
use super::toml_file;

/// `wsrun jobs ...`: inspect and repair the durable job journal of a state directory.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub action: JobsAction,
    /// Find the state directory through this wsrun.toml (its [server] state_dir)
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The state directory holding jobs.sqlite3 (wins over -c) [default: .wsrun]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// The PostgreSQL job store to use instead (postgres://...; wins over -c's [jobs] backend)
    #[arg(long, value_name = "URL", global = true)]
    pub jobs_backend: Option<String>,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum JobsAction {
    /// Pending and dead-letter jobs, their counts, and the durable timers
    List {
        /// Show at most this many jobs of each kind (pending, dead)
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Every field of one job, with its headers and body
    Show {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Make a dead job pending again (attempts reset), or a pending job due now
    Retry {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Delete the dead-letter jobs (and the pending ones with --pending)
    Purge {
        /// Also delete jobs that are still pending
        #[arg(long)]
        pending: bool,
    },
}

impl JobsArgs {
    /// The state directory to read, made absolute against the working directory.
    pub fn state_dir(&self) -> Result<PathBuf, ConfigError> {
        let cwd = std::env::current_dir().map_err(|e| {
            let msg = format!("cannot read the current directory: {e}");
            ConfigError::new(CLI_FILE, None, None, msg)
        })?;
        self.state_dir_in(&cwd)
    }

    /// The PostgreSQL store to act on: `--jobs-backend`, else the `-c` file's `[jobs]
    /// backend`; `None` for the SQLite journal of `state_dir`.
    pub fn backend(&self) -> Result<Option<PostgresBackend>, ConfigError> {
        let cwd = std::env::current_dir().map_err(|e| {
            let msg = format!("cannot read the current directory: {e}");
            ConfigError::new(CLI_FILE, None, None, msg)
        })?;
        self.backend_in(&cwd)
    }

    fn backend_in(&self, cwd: &Path) -> Result<Option<PostgresBackend>, ConfigError> {
        let mut config = Config::default();
        if let Some(file) = &self.config {
            let shown = file.display().to_string();
            toml_file::apply_file(&cwd.join(file), &shown, &mut config)?;
        }
        config
            .jobs
            .apply_backend_flag(self.jobs_backend.as_deref())?;
        Ok(config.jobs.backend)
    }

    fn state_dir_in(&self, cwd: &Path) -> Result<PathBuf, ConfigError> {
        resolve_state_dir(self.config.as_deref(), self.state_dir.as_deref(), cwd)
    }
}

/// The state directory a server run with `-c config` / `--state-dir state_dir` uses,
/// absolute: the flag (against `cwd`), else the file's `[server] state_dir` (a relative one
/// against the file's `chdir` or `cwd`), else the default.
pub(crate) fn resolve_state_dir(
    config: Option<&Path>,
    state_dir: Option<&Path>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = state_dir {
        return Ok(cwd.join(dir));
    }
    let Some(file) = config else {
        return Ok(cwd.join(ServerConfig::default().state_dir));
    };
    let mut loaded = Config::default();
    let shown = file.display().to_string();
    toml_file::apply_file(&cwd.join(file), &shown, &mut loaded)?;
    // A relative default resolves where the server runs: after its `chdir`, if any.
    let base = loaded
        .server
        .chdir
        .clone()
        .unwrap_or_else(|| cwd.to_path_buf());
    Ok(base.join(&loaded.server.state_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_comes_from_the_flag_the_file_or_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cwd = dir.path();
        std::fs::create_dir_all(cwd.join("conf/app")).expect("mkdir");
        std::fs::write(cwd.join("conf/a.toml"), "[server]\nstate_dir = \"st\"\n").expect("write");
        std::fs::write(cwd.join("conf/b.toml"), "[server]\nchdir = \"app\"\n").expect("write");
        std::fs::write(cwd.join("conf/bad.toml"), "[jobs]\nlease = 0\n").expect("write");
        let args = |config: Option<&str>, state_dir: Option<&str>| JobsArgs {
            action: JobsAction::List { limit: 1 },
            config: config.map(PathBuf::from),
            state_dir: state_dir.map(PathBuf::from),
            jobs_backend: None,
        };
        let resolve = |a: JobsArgs| a.state_dir_in(cwd);
        assert_eq!(resolve(args(None, None)), Ok(cwd.join(".wsrun")));
        assert_eq!(resolve(args(None, Some("x"))), Ok(cwd.join("x")));
        assert_eq!(
            resolve(args(Some("conf/a.toml"), Some("/abs"))),
            Ok(PathBuf::from("/abs"))
        );
        assert_eq!(
            resolve(args(Some("conf/a.toml"), None)),
            Ok(cwd.join("conf/st"))
        );
        assert_eq!(
            resolve(args(Some("conf/b.toml"), None)),
            Ok(cwd.join("conf/app/.wsrun"))
        );
        let e = resolve(args(Some("conf/bad.toml"), None)).expect_err("bad file");
        assert_eq!(
            e.to_string(),
            "conf/bad.toml:2: key `jobs.lease`: must be more than zero"
        );
    }
}
