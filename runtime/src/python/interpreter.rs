//! Interpreter set-up: start CPython once per process and make the embedded package importable.
//!
//! Owns: `Py_Initialize` (through pyo3), `sys.path` (`--chdir`, `--pythonpath`, the working
//! directory), line-buffered stdio, and the meta-path finder that serves the `python/` tree
//! compiled into the binary (`wsrun`, `fapws4`, ...). Must not touch: apps, requests, sockets.

use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_python.rs"));
}

/// Python source of the finder that imports modules from the embedded file table.
const EMBEDDED_FINDER: &str = r#"
import importlib.abc
import importlib.machinery
import sys


class WsrunEmbeddedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the Python package tree compiled into the wsrun binary."""

    def __init__(self, files):
        self.modules = {}
        for rel, source in files.items():
            if not rel.endswith(".py"):
                continue
            parts = rel[:-3].split("/")
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            self.modules[".".join(parts)] = (rel, source, is_package)

    def find_spec(self, fullname, path=None, target=None):
        entry = self.modules.get(fullname)
        if entry is None:
            return None
        rel, _source, is_package = entry
        spec = importlib.machinery.ModuleSpec(
            fullname, self, origin="<wsrun>/" + rel, is_package=is_package
        )
        if is_package:
            spec.submodule_search_locations = []
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        rel, source, _is_package = self.modules[module.__spec__.name]
        exec(compile(source, "<wsrun>/" + rel, "exec"), module.__dict__)


sys.meta_path.insert(0, WsrunEmbeddedFinder(EMBEDDED_FILES))
"#;

/// Starts the interpreter (idempotent) and prepares `sys` for serving apps.
pub fn initialize(pythonpath: &[impl AsRef<Path>]) -> Result<(), String> {
    Python::initialize();
    Python::attach(|py| {
        prepare(py, pythonpath).map_err(|err| super::errors::format_exception(py, &err))
    })
}

fn prepare(py: Python<'_>, pythonpath: &[impl AsRef<Path>]) -> PyResult<()> {
    let sys = py.import("sys")?;
    let path = sys.getattr("path")?.cast_into::<PyList>()?;
    // Like gunicorn: the working directory first, then each --pythonpath entry before it.
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    path.insert(0, cwd)?;
    for entry in pythonpath.iter().rev() {
        path.insert(0, entry.as_ref().display().to_string())?;
    }
    sys.setattr("argv", PyList::new(py, ["wsrun"])?)?;
    for stream in ["stdout", "stderr"] {
        let stream = sys.getattr(stream)?;
        if stream.hasattr("reconfigure")? {
            let kwargs = PyDict::new(py);
            kwargs.set_item("line_buffering", true)?;
            stream.call_method("reconfigure", (), Some(&kwargs))?;
        }
    }
    super::services::register(py)?;
    install_embedded_finder(py)
}

fn install_embedded_finder(py: Python<'_>) -> PyResult<()> {
    let files = PyDict::new(py);
    for (rel, source) in embedded::FILES {
        files.set_item(rel, source)?;
    }
    let globals = PyDict::new(py);
    globals.set_item("EMBEDDED_FILES", files)?;
    let code = std::ffi::CString::new(EMBEDDED_FINDER).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("finder source has a NUL: {e}"))
    })?;
    py.run(&code, Some(&globals), None)
}

/// Calls around `fork()`, as CPython's own `os.fork` makes them: the GIL is taken before the
/// fork and held across it, then released on both sides once the interpreter is consistent.
pub mod fork {
    use std::sync::Mutex;

    use pyo3::ffi;

    static HELD: Mutex<Option<ffi::PyGILState_STATE>> = Mutex::new(None);

    pub fn before() {
        // SAFETY: the interpreter is initialised; this thread takes the GIL and keeps it.
        let state = unsafe { ffi::PyGILState_Ensure() };
        unsafe { ffi::PyOS_BeforeFork() };
        if let Ok(mut held) = HELD.lock() {
            *held = Some(state);
        }
    }

    pub fn after_in_parent() {
        unsafe { ffi::PyOS_AfterFork_Parent() };
        release();
    }

    pub fn after_in_child() {
        unsafe { ffi::PyOS_AfterFork_Child() };
        release();
    }

    fn release() {
        let state = HELD.lock().ok().and_then(|mut held| held.take());
        if let Some(state) = state {
            // SAFETY: pairs with the `PyGILState_Ensure` in `before`, on the same thread.
            unsafe { ffi::PyGILState_Release(state) };
        }
    }
}
