//! Fapws3 scripts: the routes and settings a script registered through `fapws._evwsgi`.
//!
//! Owns: asking the embedded `fapws._evwsgi` module (only if the script imported it) for what
//! the script registered with `wsgi_cb`, `wsgi_gen_cb`, `start` and `set_debug`, as the same
//! `PATHS` / `SERVER` / `DEBUG` values a Fapws4-style script defines. Must not touch: how those
//! values become routes and config — the loader treats them exactly like a script's own.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::format_exception;

/// The script's settings with a Fapws3 registration filled in: `namespace` itself when it
/// defines `PATHS` or never imported `fapws._evwsgi`; otherwise a copy of it overlaid with
/// `PATHS`, `SERVER` and `DEBUG` from what the script registered.
pub fn with_registrations<'py>(
    namespace: Bound<'py, PyDict>,
    shown: &str,
) -> Result<Bound<'py, PyDict>, String> {
    let py = namespace.py();
    let failed = |e: PyErr| format!("{shown}: {}", format_exception(py, &e));
    if namespace.contains("PATHS").map_err(failed)? {
        return Ok(namespace);
    }
    let modules = py
        .import("sys")
        .and_then(|sys| sys.getattr("modules"))
        .map_err(failed)?;
    let Ok(evwsgi) = modules.get_item("fapws._evwsgi") else {
        return Ok(namespace); // the script never imported it
    };
    let registered = evwsgi
        .call_method0("_wsrun_settings")
        .and_then(|s| s.cast_into::<PyDict>().map_err(PyErr::from))
        .map_err(failed)?;
    let merged = namespace.copy().map_err(failed)?;
    merged.update(registered.as_mapping()).map_err(failed)?;
    Ok(merged)
}
