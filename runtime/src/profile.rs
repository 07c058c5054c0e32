//! `--profile DIR` (`[server] profile`): where this worker process writes its profiles, set
//! once at the start of a worker and read by the Python and WebAssembly hosts.
//!
//! Owns: the process-wide target (directory and worker index) and the file names
//! (`worker-N.pstats`, `worker-N-wasm.json`). Off by default: then `target()` is `None` and
//! nothing else happens — no profiler installed, no clock read. Must not touch: how either
//! host profiles (`python::profile`, `wasm::profile`), when files are written (the worker's
//! drain).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where one worker's profiles go.
#[derive(Debug)]
pub struct Target {
    pub dir: PathBuf,
    pub index: usize,
}

static TARGET: OnceLock<Target> = OnceLock::new();

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
}
