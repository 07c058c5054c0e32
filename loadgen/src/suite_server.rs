//! The wsrun server `--suite` loads: this very binary (`/proc/self/exe`) started with the
//! suite's wsrun.toml on a free loopback port, waited for until both halves (Python and
//! WebAssembly) answer, and stopped with SIGTERM (then SIGKILL after a grace period) when the
//! suite ends or fails.
//!
//! Owns: the child process, its log file and its state directory. Must not touch: the load,
//! the store, output.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer (the WebAssembly compile comes first).
const READY_WITHIN: Duration = Duration::from_secs(90);
/// How long SIGTERM may take before SIGKILL.
const STOP_WITHIN: Duration = Duration::from_secs(15);
/// What must answer 200 before the suite starts.
const READY_PATHS: [&str; 2] = ["/hello", "/wasm/hello"];

/// A running suite server; stopped when dropped.
pub struct SuiteServer {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl SuiteServer {
    /// Starts `exe -c CONFIG` on a free port, state in `state_dir`, and waits until it answers.
    pub fn start(
        exe: &Path,
        config: &Path,
        state_dir: &Path,
        wasmtime: &str,
    ) -> Result<SuiteServer, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("--suite: {}: {e}", state_dir.display()))?;
        let addr = free_port()?;
        let log = state_dir.join("server.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("--suite: {}: {e}", log.display()))?;
        let child = Command::new(exe)
            .arg("-c")
            .arg(config)
            .arg("--bind")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(state_dir)
            .args(["--log-level", "warn"])
            .env("WSRUN_BENCH_WASMTIME", wasmtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("--suite: cannot start {}: {e}", exe.display()))?;
        let mut server = SuiteServer { child, addr, log };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "--suite: the server exited ({status}) before it answered:\n{}",
                    self.log_tail()
                ));
            }
            if READY_PATHS
                .iter()
                .all(|p| status_of(self.addr, p) == Some(200))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "--suite: the server did not answer {READY_PATHS:?} with 200 within {}s:\n{}",
                    READY_WITHIN.as_secs(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines the server logged, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, a grace period, then SIGKILL. Returns how it ended.
    pub fn stop(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("had already exited ({status})");
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet
            // (try_wait above saw it running), so the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_WITHIN;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("stopped ({status})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!("killed after {}s", STOP_WITHIN.as_secs())
    }
}

impl Drop for SuiteServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on now (the kernel's pick, released at once).
fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("--suite: no free port: {e}"))
}

/// The status of `GET path`, or `None` when there is no answer yet.
fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
