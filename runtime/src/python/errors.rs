//! `wsgi.errors` and the formatting of Python exceptions for the log.
//!
//! Owns: the `ErrorStream` object apps write to (each line becomes a log event with target
//! `wsgi.errors`) and `format_exception`, the one way Python tracebacks reach the log.
//! Must not touch: responses — callers decide what status an error becomes.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyString;

/// The object behind `environ['wsgi.errors']`: a text stream whose lines go to the log.
#[pyclass(module = "wsrun")]
pub struct ErrorStream {
    pending: Mutex<String>,
}

impl ErrorStream {
    pub fn new() -> ErrorStream {
        ErrorStream {
            pending: Mutex::new(String::new()),
        }
    }

    fn emit_complete_lines(pending: &mut String) {
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            tracing::error!(target: "wsgi.errors", "{}", line.trim_end_matches(['\n', '\r']));
        }
    }
}

impl Default for ErrorStream {
    fn default() -> Self {
        Self::new()
    }
}

#[pymethods]
impl ErrorStream {
    fn write(&self, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        let text = match text.cast::<PyString>() {
            Ok(s) => s.to_string(),
            Err(_) => text.str()?.to_string(),
        };
        let count = text.chars().count();
        if let Ok(mut pending) = self.pending.lock() {
            pending.push_str(&text);
            Self::emit_complete_lines(&mut pending);
        }
        Ok(count)
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    fn flush(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            if !pending.is_empty() {
                tracing::error!(target: "wsgi.errors", "{}", pending.as_str());
                pending.clear();
            }
        }
    }
}

/// The exception with its traceback, as Python's `traceback` module prints it.
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        let joined = PyString::new(py, "").call_method1("join", (lines,))?;
        joined.extract::<String>()
    });
    match formatted {
        Ok(text) => text.trim_end().to_string(),
        Err(_) => err.to_string(),
    }
}
