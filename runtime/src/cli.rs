//! The program: from command-line arguments to a running (or checked) server.
//!
//! Owns: the start-up sequence and its exit codes — 2 for a configuration error (nothing
//! bound), 1 for an app that fails to load or an address that cannot be bound, 0 after a
//! clean drain. Must not touch: how any step works inside.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::config::{self, Cli, Config};
use crate::handover::{Handover, Inherited};
use crate::python::services as python_services;
use crate::python::{interpreter, loader};
use crate::reload_client;
use crate::router::Router;
use crate::server::{self, Handler};
use crate::services::{self, StartupServices};
use crate::wasm::{self, CompileLimits, WasmHost};

pub fn main() -> ExitCode {
    // The compile child (`wasm::compile_child`): hidden, and before clap so it is not in --help.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == wasm::COMPILE_SUBCOMMAND) {
        return wasm::compile_child_main(args.collect());
    }
    // A reload's new image: read (and unset) the handover before anything else runs.
    let handover = match Handover::from_env() {
        Ok(handover) => handover,
        Err(message) => {
            eprintln!("wsrun: error: {message}");
            return ExitCode::from(1);
        }
    };
    let inherited = match &handover {
        // SAFETY: read from the environment at the start of `main`: the numbers are the
        // descriptors the previous image left open for this one, owned by nothing else.
        Some(h) => unsafe { Inherited::adopt(h) },
        None => Inherited::default(),
    };
    let cli = Cli::parse();
    match &cli.command {
        Some(config::Command::Jobs(args)) => return services::admin::main(args),
        Some(config::Command::Reload(args)) => return reload_client::main(args),
        Some(config::Command::Migrate(args)) => return crate::migrate::main(args),
        Some(config::Command::Bench(args)) => return wsrun_loadgen::main(args, bench_versions()),
        _ => {}
    }
    let launch = server::Launch {
        argv: std::env::args_os().collect(),
        cwd: match &handover {
            Some(h) => h.cwd.clone(),
            None => std::env::current_dir().unwrap_or_default(),
        },
        handover,
        inherited,
    };
    let mut config = match config::load(&cli) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("wsrun: error: {err}");
            return failed(launch, 2, &err.to_string());
        }
    };
    // Certificates and keys are read and checked before anything is bound.
    if let Err(err) = server::tls::check(&config) {
        eprintln!("wsrun: error: {err}");
        return failed(launch, 2, &err.to_string());
    }
    init_logging(&config.server.log_level);
    match prepare(&cli, &mut config) {
        Ok(Prepared::Checked(router)) => {
            println!(
                "wsrun: configuration OK ({} route(s))",
                router.routes().count()
            );
            ExitCode::SUCCESS
        }
        Ok(Prepared::Ready(router, startup)) => {
            exit_code(server::run(Arc::new(config), router, startup, launch))
        }
        Err(message) => {
            eprintln!("wsrun: error: {message}");
            failed(launch, 1, &message)
        }
    }
}

/// A start-up failure: exit with `code`, or after a reload's exec keep the old workers
/// serving (`server::Launch::failed`), logging as it goes.
fn failed(launch: server::Launch, code: i32, message: &str) -> ExitCode {
    if launch.handover.is_some() {
        init_logging("info");
    }
    exit_code(launch.failed(code, message))
}

/// The versions `wsrun bench` records with each run. wasmtime is pinned with `=` in
/// runtime/Cargo.toml; keep this in step with it.
fn bench_versions() -> wsrun_loadgen::Versions {
    // SAFETY: Py_GetVersion returns a pointer to a static NUL-terminated string and may be
    // called before the interpreter is initialised (it is documented as such).
    let python = unsafe { std::ffi::CStr::from_ptr(pyo3::ffi::Py_GetVersion()) };
    let python = python.to_string_lossy();
    wsrun_loadgen::Versions {
        wsrun: env!("CARGO_PKG_VERSION").to_string(),
        python: python
            .split_whitespace()
            .next()
            .unwrap_or("unknown")
            .to_string(),
        wasmtime: "48.0.8".to_string(),
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// What `prepare` leaves: a checked configuration, or a router and the master's start-up
/// services, which `server::run` stops before it forks.
enum Prepared {
    Checked(Router<Handler>),
    Ready(Router<Handler>, StartupServices),
}

/// Interpreter, apps and router: everything that must work before anything is bound.
fn prepare(cli: &Cli, config: &mut Config) -> Result<Prepared, String> {
    if let Some(dir) = &config.server.chdir {
        std::env::set_current_dir(dir).map_err(|e| format!("--chdir {}: {e}", dir.display()))?;
    }
    interpreter::initialize(&config.server.pythonpath)?;
    let args = cli.run_args();
    let fixed = loader::CommandLineFixed {
        bind: config.server.bind.is_some(),
        max_body_size: args.server.max_body_size.is_some(),
        debug: args.server.debug,
    };
    // `wsrun check` imports the apps too; what they queue then goes to a scratch journal, so
    // checking a configuration never changes the real one.
    let scratch = match cli.is_check() {
        true => Some(tempfile::tempdir().map_err(|e| format!("cannot make a scratch dir: {e}"))?),
        false => None,
    };
    let startup_dir = scratch
        .as_ref()
        .map_or(config.server.state_dir.clone(), |d| d.path().to_path_buf());
    // Calls the apps make while they are imported go to the master's start-up services.
    let mut jobs = config.jobs.clone();
    if scratch.is_some() {
        jobs.backend = None; // a check never touches a shared database either
    }
    let startup = StartupServices::start(&startup_dir, &config.server.node, &jobs)?;
    python_services::install(startup.services())?;
    let router = match load_and_route(config, fixed, &startup) {
        Ok(router) => router,
        Err(message) => {
            startup.stop();
            return Err(message);
        }
    };
    if cli.is_check() {
        startup.stop(); // before the scratch directory goes
        check_wasm(config)?;
        return Ok(Prepared::Checked(router));
    }
    if let Err(message) = startup.sync_config_timers(&config.timers) {
        startup.stop();
        return Err(message);
    }
    Ok(Prepared::Ready(router, startup))
}

/// Imports the apps, builds the router, and checks the routes that timers and the calls
/// made during the imports name.
fn load_and_route(
    config: &mut Config,
    fixed: loader::CommandLineFixed,
    startup: &StartupServices,
) -> Result<Router<Handler>, String> {
    let apps = loader::load_apps(config, fixed)?;
    let router = server::build_router(config, &apps)?;
    config::check_timer_routes(config, |path| router.serves("", path))
        .map_err(|e| e.to_string())?;
    let unrouted = startup.unrouted(&RouterCheck(router.shape()));
    if !unrouted.is_empty() {
        return Err(format!(
            "jobs or timers queued while importing the apps: {}",
            unrouted.join("; ")
        ));
    }
    Ok(router)
}

/// A router's shape as the services' route check (paths as callers write them, decoded as a
/// request's are: `Router::serves`).
struct RouterCheck(Router<()>);

impl services::RouteCheck for RouterCheck {
    fn serves(&self, host: &str, path: &str) -> bool {
        self.0.serves(host, path)
    }

    fn max_body_size(&self, host: &str, path: &str) -> Option<u64> {
        self.0.max_body_size(host, path)
    }
}

/// `wsrun check`: compiles and links every wasm route's file (and the watched directory's).
fn check_wasm(config: &Config) -> Result<(), String> {
    let mut files: Vec<std::path::PathBuf> = config
        .routes
        .iter()
        .filter_map(|r| match &r.target {
            config::RouteTarget::Wasm { file } => Some(file.clone()),
            _ => None,
        })
        .collect();
    if let Some(dir) = &config.watch {
        files.extend(wasm::handler_files(dir)?);
    }
    if files.is_empty() {
        return Ok(());
    }
    let limits = CompileLimits::of(&config.server);
    let host = WasmHost::start(config.max_wasm_memory(), None, u64::MAX, limits)?;
    let errors: Vec<String> = files
        .iter()
        .filter_map(|file| host.check_file(file).err())
        .collect();
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("\nwsrun: error: ")),
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSRUN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
