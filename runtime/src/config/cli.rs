//! The command line: `wsrun [OPTIONS] [TARGET]` and `wsrun check [OPTIONS] [TARGET]` (the
//! other subcommands' options: `jobs_cli`, `reload_cli`, and the `wsrun-loadgen` crate's for
//! `bench`).
//!
//! Owns: the clap definitions (`Cli`, `Command`, `RunArgs`) and `build_config`, which layers
//! defaults, then the `-c` TOML file, then the flags (flags win), then the TARGET into one
//! `Config`; `--wasm`, `--watch` and TARGET are read here, the `[server]` flags come from the
//! settings table (`server`). Must not touch: the TOML grammar (`toml_file`), value grammars
//! (`units`), sockets or the Python interpreter. Errors from flags name the file
//! `<command line>` and the flag.
//!
//! With `-c FILE`, the file's own directory goes on `server.pythonpath` after the entries the
//! file or `--pythonpath` gave (once), so an app next to its `wsrun.toml` imports.
//!
//! Relative paths given on the command line (TARGET script, `--chdir`, `--pythonpath`,
//! `--spool-dir`, `--state-dir`, `--access-log`) are made absolute against the working
//! directory wsrun started in, so a later `--chdir` cannot change what they point at.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use super::error::{ConfigError, CLI_FILE};
use super::jobs_cli::JobsArgs;
use super::migrate_cli::MigrateArgs;
use super::model::Config;
use super::reload_cli::ReloadArgs;
use super::route::{RouteConfig, RouteTarget};
use super::server::ServerFlags;
use super::toml_file;
use super::units::{normalize_prefix, parse_python_target};

/// Serve Python WSGI apps and sandboxed WebAssembly handlers from one server.
#[derive(Parser, Debug, Clone)]
#[command(name = "wsrun", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options and TARGET of a plain run (unused when a subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
}

// Parsed once per process and never moved around: the size of `Check(RunArgs)` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Validate the configuration and import the apps, without serving.
    Check(RunArgs),
    /// Inspect and repair the durable job journal: list, show ID, retry ID, purge [--pending]
    Jobs(JobsArgs),
    /// What shadow traffic and canaries found: report [--json], show ID
    Migrate(MigrateArgs),
    /// Make the running server re-read its configuration (exit 0 applied, 1 error, 2 no server)
    Reload(ReloadArgs),
    /// Load a URL and record the run (saturate, slow or flood); `history`; `compare A B`
    Bench(wsrun_loadgen::BenchArgs),
}

impl Cli {
    /// The options and TARGET of this run, whether given plainly or after `check`.
    pub fn run_args(&self) -> &RunArgs {
        match &self.command {
            Some(Command::Check(args)) => args,
            Some(
                Command::Jobs(_) | Command::Migrate(_) | Command::Reload(_) | Command::Bench(_),
            )
            | None => &self.run,
        }
    }

    /// True for `wsrun check ...`: build and validate the config, then exit without serving.
    pub fn is_check(&self) -> bool {
        matches!(self.command, Some(Command::Check(_)))
    }
}

/// Options shared by a run and `check`. Sizes, durations and addresses are kept as typed and
/// checked by `build_config`, so their errors name the flag.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    /// What to serve: `path/to/script.py` (a Fapws-style script) or `module:app` (a WSGI callable)
    #[arg(value_name = "TARGET")]
    pub target: Option<String>,
    /// Read settings and routes from this wsrun.toml (flags override it)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// One flag per `[server]` setting, generated from the table in `server.rs`.
    #[command(flatten)]
    pub server: ServerFlags,
    /// Serve a wasi:http component at a prefix: PREFIX=FILE, e.g. /api/v2=handlers/api.wasm (repeatable)
    #[arg(long = "wasm", value_name = "PREFIX=FILE")]
    pub wasm: Vec<String>,
    /// Serve every DIR/NAME.wasm at /NAME, reloading a file when it changes
    #[arg(long, value_name = "DIR")]
    pub watch: Option<PathBuf>,
    /// Keep jobs and timers in this PostgreSQL database, shared by several nodes (postgres://user:pass@host:port/db) [default: the SQLite journal in state_dir]
    #[arg(long, value_name = "URL")]
    pub jobs_backend: Option<String>,
}

/// Defaults, then the `-c` file, then flags, then the TARGET; see the module docs.
pub(crate) fn build_config(cli: &Cli) -> Result<Config, ConfigError> {
    let cwd = std::env::current_dir().map_err(|e| {
        ConfigError::new(
            CLI_FILE,
            None,
            None,
            format!("cannot read the current directory: {e}"),
        )
    })?;
    if cli.command.is_some() && cli.run != RunArgs::default() {
        let msg = "options and TARGET go after the subcommand: wsrun check [OPTIONS] [TARGET]";
        return Err(err("check", msg));
    }
    build(cli.run_args(), &cwd)
}

fn build(args: &RunArgs, cwd: &Path) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    // (file as shown, line) of a route at `/` declared in the file, if any.
    let mut file_root = None;
    if let Some(path) = &args.config {
        let shown = path.display().to_string();
        let root_line = toml_file::apply_file(&cwd.join(path), &shown, &mut config)?;
        file_root = root_line.map(|line| (shown, line));
    }
    args.server.apply(cwd, &mut config.server)?;
    config
        .jobs
        .apply_backend_flag(args.jobs_backend.as_deref())?;
    if let Some(file) = &args.config {
        add_config_dir(&cwd.join(file), &mut config.server.pythonpath);
    }
    apply_wasm_flags(args, cwd, &mut config)?;
    if let Some(target) = &args.target {
        apply_target(target, cwd, &mut config, file_root.as_ref())?;
    }
    if config.routes.is_empty() && config.script.is_none() && config.watch.is_none() {
        let message = match &args.config {
            Some(path) => format!(
                "nothing to serve: `{}` declares no [[route]] and no script or module:app was given",
                path.display()
            ),
            None => "nothing to serve: give a script, a module:app, --wasm, --watch or -c wsrun.toml"
                .to_string(),
        };
        return Err(ConfigError::new(CLI_FILE, None, None, message));
    }
    if let Some(admin) = &config.server.admin {
        if let Some(public) = admin.clashes_with(&config.server.bind_addrs()) {
            let message = format!(
                "the admin listener {} would share the public address {public}; give it its own port",
                admin.addr
            );
            return Err(admin.error(message));
        }
    }
    Ok(config)
}

fn err(flag: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::flag(flag, message)
}

/// Puts the config file's own directory on the Python import path, after the `pythonpath`
/// entries and only if it is not one of them already, so `python = "app:app"` in a
/// `wsrun.toml` next to `app.py` imports it. `file` is absolute (joined to the cwd).
fn add_config_dir(file: &Path, pythonpath: &mut Vec<PathBuf>) {
    let Some(dir) = file.parent() else {
        return;
    };
    if !pythonpath.iter().any(|p| p == dir) {
        pythonpath.push(dir.to_path_buf());
    }
}

/// `--wasm PREFIX=FILE` routes and `--watch DIR`.
fn apply_wasm_flags(args: &RunArgs, cwd: &Path, config: &mut Config) -> Result<(), ConfigError> {
    for spec in &args.wasm {
        let Some((prefix, file)) = spec.split_once('=') else {
            return Err(err(
                "--wasm",
                format!("`{spec}` is not PREFIX=FILE (e.g. /api/v2=handlers/api.wasm)"),
            ));
        };
        let prefix = normalize_prefix(prefix).map_err(|m| err("--wasm", m))?;
        let path = cwd.join(file);
        if !path.is_file() {
            return Err(err("--wasm", format!("`{file}` is not a file")));
        }
        if config
            .routes
            .iter()
            .any(|r| r.prefix == prefix && r.hosts.is_empty())
        {
            return Err(err("--wasm", format!("`{prefix}` is already routed")));
        }
        let target = RouteTarget::Wasm { file: path };
        config
            .routes
            .push(RouteConfig::new(prefix, Vec::new(), target));
    }
    if let Some(dir) = &args.watch {
        let dir = cwd.join(dir);
        if !dir.is_dir() {
            let msg = format!("`{}` is not a directory", dir.display());
            return Err(err("--watch", msg));
        }
        config.watch = Some(dir);
    }
    Ok(())
}

fn apply_target(
    target: &str,
    cwd: &Path,
    config: &mut Config,
    file_root: Option<&(String, usize)>,
) -> Result<(), ConfigError> {
    if target.ends_with(".py") {
        let path = cwd.join(target);
        if !path.is_file() {
            return Err(err("TARGET", format!("script `{target}` does not exist")));
        }
        config.script = Some(path);
        return Ok(());
    }
    if !target.contains(':') {
        return Err(err(
            "TARGET",
            format!(
                "`{target}` is neither a `.py` script nor `module:attr` (e.g. `{target}:application`)"
            ),
        ));
    }
    let route_target = parse_python_target(target).map_err(|m| err("TARGET", m))?;
    if let Some((file, line)) = file_root {
        return Err(err(
            "TARGET",
            format!(
                "`{target}` would be served at `/`, but {file}:{line} already routes `/`; \
                 drop the TARGET or that route"
            ),
        ));
    }
    if config
        .routes
        .iter()
        .any(|r| r.prefix == "/" && r.hosts.is_empty())
    {
        return Err(err(
            "TARGET",
            format!("`{target}` would be served at `/`, but --wasm already routes `/`"),
        ));
    }
    config
        .routes
        .push(RouteConfig::new("/".to_string(), Vec::new(), route_target));
    Ok(())
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
