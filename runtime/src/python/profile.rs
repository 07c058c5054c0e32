//! `--profile` for Python routes: a cProfile profiler on every thread that runs app calls (the
//! worker's event-loop thread with `--threads 1`, each executor thread's jobs otherwise), merged and
//! written as one `pstats` file (`DIR/worker-N.pstats`, loadable with `pstats`/snakeviz) when
//! the worker drains; a recycled worker's successor adds its stats to the file (`accumulate`).
//!
//! Owns: the profilers (kept in a small Python module of its own, `_wsrun_profile`). Must not
//! touch: the app calls themselves; when profiling is off nothing here runs.

use std::ffi::CStr;
use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::PyModule;

/// The profilers and the merge; in Python, since cProfile's results are Python objects.
const CODE: &CStr = c"
import cProfile
import pstats
import threading

# One profiler per OS thread: an executor thread's Python thread state is made afresh for each
# job, so the profiler is found by the thread's id and enabled around every job.
_profilers = {}
_lock = threading.Lock()


def start():
    ident = threading.get_ident()
    with _lock:
        profiler = _profilers.get(ident)
        if profiler is None:
            profiler = _profilers[ident] = cProfile.Profile()
    profiler.enable()


def stop():
    profiler = _profilers.get(threading.get_ident())
    if profiler is not None:
        profiler.disable()


def dump(path, accumulate):
    merged = None
    with _lock:
        for profiler in _profilers.values():
            profiler.disable()
            profiler.create_stats()
            if not profiler.stats:
                continue
            if merged is None:
                merged = pstats.Stats(profiler)
            else:
                merged.add(profiler)
    if merged is None:
        return 0
    if accumulate:
        try:
            merged.add(str(path))
        except Exception as err:
            import sys
            print(f'--profile: {path} is replaced: {err!r}', file=sys.stderr)
    merged.dump_stats(path)
    return merged.total_calls
";

const MODULE: &CStr = c"_wsrun_profile";

fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    if let Ok(existing) = py.import("_wsrun_profile") {
        return Ok(existing);
    }
    let module = PyModule::from_code(py, CODE, c"<wsrun profile>", MODULE)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("_wsrun_profile", &module)?;
    Ok(module)
}

/// Starts (or resumes) profiling the calling thread's Python code. With `--threads 1` the
/// worker's event-loop thread keeps its thread state, so it is called once; an executor
/// thread calls it around every job (`stop` after).
pub fn start(py: Python<'_>) {
    if let Err(err) = module(py).and_then(|m| m.call_method0("start")) {
        tracing::warn!("--profile: cannot start cProfile: {err}");
    }
}

/// Pauses the calling thread's profiler.
pub fn stop(py: Python<'_>) {
    if let Err(err) = module(py).and_then(|m| m.call_method0("stop")) {
        tracing::warn!("--profile: cannot stop cProfile: {err}");
    }
}

/// Stops the profilers and writes their merged stats to `path`, added to the file's own with
/// `accumulate` (a predecessor's in this worker slot).
pub fn dump(path: &Path, accumulate: bool) {
    let written = Python::attach(|py| {
        module(py)
            .and_then(|m| m.call_method1("dump", (path, accumulate)))
            .and_then(|calls| calls.extract::<u64>())
    });
    match written {
        Ok(0) => tracing::info!("--profile: no Python calls to write to {}", path.display()),
        Ok(calls) => tracing::info!("--profile: {calls} Python calls in {}", path.display()),
        Err(err) => tracing::warn!("--profile: cannot write {}: {err}", path.display()),
    }
}
