//! The command line: `wsrun [OPTIONS] [TARGET]` and `wsrun check [OPTIONS] [TARGET]`.
//!
//! Owns: the clap definitions (`Cli`, `Command`, `RunArgs`) and `build_config`, which layers
//! defaults, then the `-c` TOML file, then the flags (flags win), then the TARGET into one
//! `Config`. Must not touch: the TOML grammar (`toml_file`), value grammars (`units`), sockets or
//! the Python interpreter. Errors from flags name the file `<command line>` and the flag.
//!
//! Relative paths given on the command line (TARGET script, `--chdir`, `--pythonpath`,
//! `--spool-dir`, `--state-dir`, `--access-log`) are made absolute against the working
//! directory wsrun started in, so a later `--chdir` cannot change what they point at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::units::LOG_LEVELS;
use super::units::{
    normalize_prefix, parse_bind, parse_duration, parse_log_level, parse_python_target, parse_size,
};
use super::{toml_file, Config, ConfigError, RouteConfig, RouteTarget, ServerConfig};

/// The `file` of every error that comes from a flag or the TARGET.
pub const CLI_FILE: &str = "<command line>";

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
    Jobs(super::jobs_cli::JobsArgs),
}

impl Cli {
    /// The options and TARGET of this run, whether given plainly or after `check`.
    pub fn run_args(&self) -> &RunArgs {
        match &self.command {
            Some(Command::Check(args)) => args,
            Some(Command::Jobs(_)) | None => &self.run,
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
    /// Listen on HOST:PORT, :PORT or PORT (repeatable; IPv6 as [::1]:8000) [default: 0.0.0.0:8888]
    #[arg(short = 'b', long = "bind", value_name = "ADDR")]
    pub bind: Vec<String>,
    /// Worker processes [default: 1]
    #[arg(short = 'w', long, value_name = "N")]
    pub workers: Option<usize>,
    /// Python executor threads per worker [default: 1]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Change to this directory before loading the app
    #[arg(long, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Add to the Python import path (repeatable; one value may list DIR:DIR:...)
    #[arg(long, value_name = "DIR")]
    pub pythonpath: Vec<PathBuf>,
    /// Largest request body accepted, e.g. 10MiB [default: 10MiB]
    #[arg(long, value_name = "SIZE")]
    pub max_body_size: Option<String>,
    /// Bodies larger than this are spooled to disk [default: 1MiB]
    #[arg(long, value_name = "SIZE")]
    pub spool_threshold: Option<String>,
    /// Directory for spooled request bodies [default: the system temp dir]
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Directory for durable state [default: .wsrun]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Time allowed for a whole request head [default: 10s]
    #[arg(long, value_name = "DUR")]
    pub header_timeout: Option<String>,
    /// Base time allowed for a request body [default: 20s]
    #[arg(long, value_name = "DUR")]
    pub body_timeout: Option<String>,
    /// Extra body time: one second per this many bytes received [default: 512]
    #[arg(long, value_name = "SIZE")]
    pub body_min_rate: Option<String>,
    /// Idle time allowed between requests on a kept-alive connection [default: 5s]
    #[arg(long, value_name = "DUR")]
    pub keepalive_timeout: Option<String>,
    /// Largest request head accepted [default: 16KiB]
    #[arg(long, value_name = "SIZE")]
    pub max_header_size: Option<String>,
    /// Open connections per worker [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// How long SIGTERM waits for in-flight requests [default: 30s]
    #[arg(long, value_name = "DUR")]
    pub graceful_timeout: Option<String>,
    /// Log level [default: info]
    #[arg(long, value_name = "LEVEL", value_parser = clap::builder::PossibleValuesParser::new(LOG_LEVELS))]
    pub log_level: Option<String>,
    /// Write an access log to PATH (`-` for stdout)
    #[arg(long, value_name = "PATH")]
    pub access_log: Option<String>,
    /// Debug mode: tracebacks in error responses
    #[arg(long)]
    pub debug: bool,
    /// Serve a wasi:http component at a prefix: PREFIX=FILE, e.g. /api/v2=handlers/api.wasm (repeatable)
    #[arg(long = "wasm", value_name = "PREFIX=FILE")]
    pub wasm: Vec<String>,
    /// Serve every DIR/NAME.wasm at /NAME, reloading a file when it changes
    #[arg(long, value_name = "DIR")]
    pub watch: Option<PathBuf>,
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
    apply_flags(args, cwd, &mut config.server)?;
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
    Ok(config)
}

fn err(flag: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(CLI_FILE, None, Some(flag), message)
}

fn size(flag: &str, value: &Option<String>, slot: &mut u64) -> Result<(), ConfigError> {
    if let Some(v) = value {
        *slot = parse_size(v).map_err(|m| err(flag, m))?;
    }
    Ok(())
}

fn duration(flag: &str, value: &Option<String>, slot: &mut Duration) -> Result<(), ConfigError> {
    if let Some(v) = value {
        *slot = parse_duration(v).map_err(|m| err(flag, m))?;
    }
    Ok(())
}

fn count(flag: &str, value: Option<usize>, slot: &mut usize) -> Result<(), ConfigError> {
    match value {
        Some(0) => Err(err(flag, "must be at least 1")),
        Some(n) => {
            *slot = n;
            Ok(())
        }
        None => Ok(()),
    }
}

fn apply_flags(args: &RunArgs, cwd: &Path, server: &mut ServerConfig) -> Result<(), ConfigError> {
    if !args.bind.is_empty() {
        let mut addrs = Vec::new();
        for b in &args.bind {
            let addr = parse_bind(b).map_err(|m| err("--bind", m))?;
            if addrs.contains(&addr) {
                return Err(err("--bind", format!("{addr} is given twice")));
            }
            addrs.push(addr);
        }
        server.bind = Some(addrs);
    }
    count("--workers", args.workers, &mut server.workers)?;
    count("--threads", args.threads, &mut server.threads)?;
    count(
        "--max-connections",
        args.max_connections,
        &mut server.max_connections,
    )?;
    if let Some(dir) = &args.chdir {
        let dir = cwd.join(dir);
        if !dir.is_dir() {
            return Err(err(
                "--chdir",
                format!("`{}` is not a directory", dir.display()),
            ));
        }
        server.chdir = Some(dir);
    }
    if !args.pythonpath.is_empty() {
        server.pythonpath = args
            .pythonpath
            .iter()
            .flat_map(|v| std::env::split_paths(v.as_os_str()).collect::<Vec<_>>())
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| cwd.join(p))
            .collect();
    }
    size(
        "--max-body-size",
        &args.max_body_size,
        &mut server.max_body_size,
    )?;
    size(
        "--spool-threshold",
        &args.spool_threshold,
        &mut server.spool_threshold,
    )?;
    size(
        "--body-min-rate",
        &args.body_min_rate,
        &mut server.body_min_rate,
    )?;
    let mut header_size = server.max_header_size as u64;
    size("--max-header-size", &args.max_header_size, &mut header_size)?;
    server.max_header_size = usize::try_from(header_size)
        .map_err(|_| err("--max-header-size", "is too large for this platform"))?;
    if let Some(dir) = &args.spool_dir {
        server.spool_dir = cwd.join(dir);
    }
    if let Some(dir) = &args.state_dir {
        server.state_dir = cwd.join(dir);
    }
    duration(
        "--header-timeout",
        &args.header_timeout,
        &mut server.header_timeout,
    )?;
    duration(
        "--body-timeout",
        &args.body_timeout,
        &mut server.body_timeout,
    )?;
    duration(
        "--keepalive-timeout",
        &args.keepalive_timeout,
        &mut server.keepalive_timeout,
    )?;
    duration(
        "--graceful-timeout",
        &args.graceful_timeout,
        &mut server.graceful_timeout,
    )?;
    if let Some(level) = &args.log_level {
        server.log_level = parse_log_level(level).map_err(|m| err("--log-level", m))?;
    }
    if let Some(log) = &args.access_log {
        if log.is_empty() {
            return Err(err(
                "--access-log",
                "is empty (use `-` for stdout or a file path)",
            ));
        }
        server.access_log = Some(if log == "-" {
            log.clone()
        } else {
            cwd.join(log).to_string_lossy().into_owned()
        });
    }
    if args.debug {
        server.debug = true;
    }
    Ok(())
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
