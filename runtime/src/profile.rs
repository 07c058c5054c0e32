//! `--profile DIR` (`[server] profile`): where this worker process writes its profiles, set
//! once at the start of a worker and read by the Python and WebAssembly hosts.
//!
//! Owns: the process-wide target (directory and worker index) and the file names
//! (`worker-N.pstats`, `worker-N-wasm.json`), and whether a worker adds to its slot's files
//! or replaces them: a worker recycled (max_requests, max_rss, a crash) is followed by another
//! with the same index, which adds its figures to a file written since the master started (or
//! was reloaded, which re-executes it); an older file, from an earlier run, is replaced. Off by default: then `target()` is `None` and
//! nothing else happens — no profiler installed, no clock read. Must not touch: how either
//! host profiles (`python::profile`, `wasm::profile`), when files are written (the worker's
//! drain).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

/// Where one worker's profiles go.
#[derive(Debug)]
pub struct Target {
    pub dir: PathBuf,
    pub index: usize,
}

static TARGET: OnceLock<Target> = OnceLock::new();

/// When the master started: set before the first fork, so every worker inherits it.
static SERVER_STARTED: OnceLock<SystemTime> = OnceLock::new();

/// Called by the master once, before it forks its workers.
pub fn mark_server_start() {
    let _ = SERVER_STARTED.set(SystemTime::now());
}

/// Turns profiling on for this process (a worker, after fork). Later calls change nothing.
pub fn enable(dir: &Path, index: usize) {
    let _ = TARGET.set(Target {
        dir: dir.to_path_buf(),
        index,
    });
}

/// The target when profiling is on.
pub fn target() -> Option<&'static Target> {
    TARGET.get()
}

impl Target {
    /// The Python profile: `DIR/worker-N.pstats`.
    pub fn pstats_path(&self) -> PathBuf {
        self.dir.join(format!("worker-{}.pstats", self.index))
    }

    /// The WebAssembly route times: `DIR/worker-N-wasm.json`.
    pub fn wasm_path(&self) -> PathBuf {
        self.dir.join(format!("worker-{}-wasm.json", self.index))
    }

    /// Whether a profile at `path` is a predecessor's in this slot during this server run
    /// (added to) rather than left from an earlier run (replaced).
    pub fn accumulates(&self, path: &Path) -> bool {
        let Some(started) = SERVER_STARTED.get() else {
            return false;
        };
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .is_ok_and(|written| written >= *started)
    }
}
