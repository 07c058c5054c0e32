//! Compiling an untrusted handler file in a child process with hard limits.
//!
//! Owns: the hidden `wsrun __compile OUT` subcommand (`child_main`: reads a component from
//! stdin, compiles it with `engine::compile_engine`, writes the code to OUT through a
//! temporary name and a rename) and `compile`, which starts that child with `RLIMIT_CPU` and
//! `RLIMIT_AS` set, feeds it the bytes, kills it past a wall-clock limit, and names the limit a
//! child that died hit. Must not touch: the cache key, loading the code, linking, routes.
//!
//! Why a child: a 360 KB file of 20,000 nested `loop`s takes ~28 s of CPU and ~450 MB to
//! compile (`wsrun check`). In the worker that memory would stay with the worker and the CPU
//! would be the worker's; in a child the kernel enforces both limits and takes everything back
//! when it exits. The child inherits the calling thread's nice value (the watcher's is 10).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::engine::compile_engine;
use crate::config::ServerConfig;

/// The hidden subcommand (`wsrun __compile OUT`, component on stdin); not in `--help`.
pub const SUBCOMMAND: &str = "__compile";
/// The child's exit code for a file that does not compile (the reason is on its stderr).
const EXIT_INVALID: i32 = 3;
/// How often the parent looks whether the child is done.
const POLL: Duration = Duration::from_millis(5);
/// Most of the child's stderr kept for an error message.
const STDERR_MAX: u64 = 16 * 1024;

/// What one compile may cost (`[server]` `compile_timeout` and `compile_memory`).
#[derive(Clone, Copy, Debug)]
pub struct CompileLimits {
    /// CPU time (`RLIMIT_CPU`, whole seconds, rounded up).
    pub cpu: Duration,
    /// Address space (`RLIMIT_AS`).
    pub memory: u64,
}

impl CompileLimits {
    /// The `[server]` settings `compile_timeout` and `compile_memory`.
    pub fn of(server: &ServerConfig) -> CompileLimits {
        CompileLimits {
            cpu: server.compile_timeout,
            memory: server.compile_memory,
        }
    }

    /// The wall-clock limit: twice the CPU time plus 10 s, so a child niced behind busy
    /// workers is not killed for waiting, yet a child that sleeps (or is stopped) ends too.
    fn wall(&self) -> Duration {
        self.cpu_secs() * 2 + Duration::from_secs(10)
    }

    fn cpu_secs(&self) -> Duration {
        Duration::from_secs(self.cpu.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// `wsrun __compile OUT`: compiles the component on stdin into OUT.
pub fn child_main(args: Vec<OsString>) -> ExitCode {
    let [out] = args.as_slice() else {
        eprintln!("usage: wsrun {SUBCOMMAND} OUT < component.wasm");
        return ExitCode::from(2);
    };
    match compile_stdin(Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_INVALID as u8)
        }
    }
}

fn compile_stdin(out: &Path) -> Result<(), String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let engine = compile_engine()?;
    let code = engine
        .precompile_component(&bytes)
        .map_err(|e| format!("{e:#}"))?;
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, code)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", out.display())
        })
}

/// Compiles `bytes` into `out` in a child process within `limits`. The error says what was
/// wrong: the file (`does not compile: ...`) or the limit it hit (`...; refused`).
pub fn compile(bytes: &[u8], out: &Path, limits: CompileLimits) -> Result<(), String> {
    let mut child = spawn(out, limits)?;
    // Read stderr on its own thread, so a chatty child never blocks on a full pipe.
    let stderr = child.stderr.take().map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.take(STDERR_MAX).read_to_string(&mut text);
            text
        })
    });
    if let Some(mut stdin) = child.stdin.take() {
        // A child that died early (a limit) closes the pipe: its status says why.
        let _ = stdin.write_all(bytes);
    }
    let waited = wait(&mut child, limits.wall());
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    match waited {
        Some(status) => outcome(status, stderr.trim(), limits),
        None => Err(format!(
            "compiling took more than {} s (wall clock); refused",
            limits.wall().as_secs()
        )),
    }
}

fn spawn(out: &Path, limits: CompileLimits) -> Result<Child, String> {
    let cpu = limits.cpu_secs().as_secs() as libc::rlim_t;
    let memory = limits.memory as libc::rlim_t;
    let mut command = Command::new(self_exe());
    command
        .arg0("wsrun")
        .arg(SUBCOMMAND)
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec this only makes async-signal-safe system calls on the
    // child itself. The soft CPU limit sends SIGXCPU, the hard one (1 s later) SIGKILL.
    unsafe {
        command.pre_exec(move || {
            set_limit(libc::RLIMIT_CPU, cpu, cpu + 1)?;
            set_limit(libc::RLIMIT_AS, memory, memory)?;
            set_limit(libc::RLIMIT_CORE, 0, 0)?;
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn().map_err(|e| match e.raw_os_error() {
        // The limit is too small to even load the binary.
        Some(libc::ENOMEM) => memory_refusal(limits),
        _ => format!("cannot start the compiler process: {e}"),
    })
}

fn memory_refusal(limits: CompileLimits) -> String {
    format!(
        "compiling needed more than {} MiB of memory; refused",
        limits.memory >> 20
    )
}

/// This very binary, even if its file was replaced since it started.
fn self_exe() -> PathBuf {
    PathBuf::from("/proc/self/exe")
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct it is given.
    match unsafe { libc::setrlimit(resource, &limit) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The child's status, or `None` after killing it at `wall`.
fn wait(child: &mut Child, wall: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if started.elapsed() < wall => std::thread::sleep(POLL),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn outcome(status: ExitStatus, stderr: &str, limits: CompileLimits) -> Result<(), String> {
    if status.success() {
        return Ok(());
    }
    let cpu = format!(
        "compiling took more than {} s of CPU; refused",
        limits.cpu_secs().as_secs()
    );
    let memory = memory_refusal(limits);
    let out_of_memory = is_out_of_memory(stderr);
    match (status.code(), status.signal()) {
        (Some(EXIT_INVALID), _) if !out_of_memory => Err(format!("does not compile: {stderr}")),
        _ if out_of_memory => Err(memory),
        (_, Some(libc::SIGXCPU | libc::SIGKILL)) => Err(cpu),
        // Under RLIMIT_AS a failed stack or loader mapping shows as SIGSEGV.
        (_, Some(libc::SIGSEGV)) => Err(format!("{memory} (the compiler process died of SIGSEGV)")),
        _ => Err(format!("the compiler process failed ({status}): {stderr}")),
    }
}

/// An allocation refused under `RLIMIT_AS`, as Rust or wasmtime reports it.
fn is_out_of_memory(stderr: &str) -> bool {
    [
        "memory allocation of",
        "Cannot allocate memory",
        "out of memory",
        "failed to map segment",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}
