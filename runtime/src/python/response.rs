//! Calling a WSGI app and turning what it returns into a response head plus a body plan.
//!
//! Owns: the app call, PEP 3333's result handling (lists and tuples joined at once, files and
//! `wsgi.file_wrapper` sent from Rust, any other iterable pulled until its first non-empty
//! chunk), `close()` for results that are fully consumed here, and the Fapws-script leniency
//! (str, bytes, open files). Must not touch: threads, the connection, or response framing —
//! `Outcome` says what to send, the caller decides how.

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::{PyAssertionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::errors::format_exception;
use super::file_wrapper::{open_region, FileWrapper};
use super::input::Input;
use super::start_response::{Head, StartResponse};
use crate::body::FileRegion;

/// What an app produced, ready to send.
pub struct Outcome {
    pub head: Head,
    pub body: BodyPlan,
}

pub enum BodyPlan {
    Full(Bytes),
    File(FileRegion),
    /// More chunks to pull from a Python iterator; `first` is already pulled.
    Iter(PendingIter),
}

/// A Python iterator mid-way, with what is needed to finish it properly.
pub struct PendingIter {
    pub iterator: Py<PyAny>,
    /// The object returned by the app, whose `close()` must run at the end.
    pub result: Py<PyAny>,
    pub first: Bytes,
    pub lenient: bool,
    pub input: Py<Input>,
}

/// How an app call failed before its response started; becomes a 500.
pub struct AppError {
    pub traceback: String,
}

/// Runs `app(environ, start_response)` and collects its head and body plan.
pub fn run_app(
    py: Python<'_>,
    app: &Py<PyAny>,
    environ: Bound<'_, PyAny>,
    input: &Bound<'_, Input>,
    lenient: bool,
) -> Result<Outcome, AppError> {
    let start_response = Bound::new(py, StartResponse::new()).map_err(|e| app_error(py, &e))?;
    let result = app
        .bind(py)
        .call1((environ, start_response.clone()))
        .map_err(|e| app_error(py, &e))?;
    let planned = plan_body(py, &result, &start_response, input, lenient);
    let body = match planned {
        Ok(body) => body,
        Err(err) => {
            close_result(py, &result);
            return Err(app_error(py, &err));
        }
    };
    if !matches!(body, BodyPlan::Iter(_)) {
        close_result(py, &result);
    }
    let mut sr = start_response.borrow_mut();
    let Some(head) = sr.head.take() else {
        let err = PyAssertionError::new_err("the app returned without calling start_response");
        return Err(app_error(py, &err));
    };
    let written = std::mem::take(&mut sr.written);
    drop(sr);
    Ok(Outcome {
        head,
        body: prepend_written(written, body),
    })
}

fn app_error(py: Python<'_>, err: &PyErr) -> AppError {
    AppError {
        traceback: format_exception(py, err),
    }
}

fn plan_body(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
    input: &Bound<'_, Input>,
    lenient: bool,
) -> PyResult<BodyPlan> {
    if let Ok(bytes) = result.cast::<PyBytes>() {
        return Ok(BodyPlan::Full(share_bytes(bytes)));
    }
    if let Ok(list) = result.cast::<PyList>() {
        return join_chunks(list.iter(), lenient).map(BodyPlan::Full);
    }
    if let Ok(tuple) = result.cast::<PyTuple>() {
        return join_chunks(tuple.iter(), lenient).map(BodyPlan::Full);
    }
    if let Ok(wrapper) = result.cast::<FileWrapper>() {
        let filelike = wrapper.borrow().filelike.clone_ref(py);
        if let Some(region) = open_region(filelike.bind(py)) {
            return Ok(BodyPlan::File(region));
        }
    }
    if lenient {
        if let Ok(text) = result.cast::<PyString>() {
            return Ok(BodyPlan::Full(Bytes::copy_from_slice(
                text.to_str()?.as_bytes(),
            )));
        }
        if result.hasattr("fileno")? && result.hasattr("read")? {
            if let Some(region) = open_region(result) {
                return Ok(BodyPlan::File(region));
            }
        }
    }
    pull_first(result, start_response, input, lenient)
}

/// Pulls chunks until the first non-empty one (headers wait for it, PEP 3333) or the end.
fn pull_first(
    result: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
    input: &Bound<'_, Input>,
    lenient: bool,
) -> PyResult<BodyPlan> {
    let iterator = result.try_iter()?;
    for item in iterator.clone() {
        let chunk = chunk_bytes(&item?, lenient)?;
        if chunk.is_empty() {
            continue;
        }
        start_response.borrow_mut().headers_sent = true;
        return Ok(BodyPlan::Iter(PendingIter {
            iterator: iterator.into_any().unbind(),
            result: result.clone().unbind(),
            first: chunk,
            lenient,
            input: input.clone().unbind(),
        }));
    }
    Ok(BodyPlan::Full(Bytes::new()))
}

fn join_chunks<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    lenient: bool,
) -> PyResult<Bytes> {
    let mut single: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    for item in items {
        let chunk = chunk_bytes(&item, lenient)?;
        match single.take() {
            None if joined.is_empty() => single = Some(chunk),
            previous => {
                if let Some(previous) = previous {
                    joined.extend_from_slice(&previous);
                }
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(single.unwrap_or_else(|| joined.freeze()))
}

/// One body chunk: bytes (or, for Fapws scripts, str encoded as UTF-8).
pub fn chunk_bytes(item: &Bound<'_, PyAny>, lenient: bool) -> PyResult<Bytes> {
    if let Ok(bytes) = item.cast::<PyBytes>() {
        return Ok(share_bytes(bytes));
    }
    if lenient {
        if let Ok(text) = item.cast::<PyString>() {
            return Ok(Bytes::copy_from_slice(text.to_str()?.as_bytes()));
        }
    }
    let kind = item
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    Err(PyTypeError::new_err(format!(
        "response body items must be bytes, not {kind}"
    )))
}

/// Below this size a copy is cheaper than sharing the Python object.
const SHARE_THRESHOLD: usize = 4096;

/// The bytes of a Python `bytes` object: copied when small, shared (no copy) when large.
fn share_bytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < SHARE_THRESHOLD {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(SharedPyBytes {
        ptr: data.as_ptr(),
        len: data.len(),
        _owner: bytes.clone().unbind(),
    })
}

/// Keeps a Python `bytes` object alive while hyper writes its buffer. A `bytes` object's
/// buffer never moves or changes while a reference is held, so it may be read without the GIL;
/// dropping it without the GIL defers the decref to pyo3's pool.
struct SharedPyBytes {
    ptr: *const u8,
    len: usize,
    _owner: Py<PyBytes>,
}

// SAFETY: the pointer targets the immutable buffer of `_owner`, which this value keeps alive;
// `Py<T>` itself is Send.
unsafe impl Send for SharedPyBytes {}

impl AsRef<[u8]> for SharedPyBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the type's comment: valid, immutable, alive for as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

fn prepend_written(written: Vec<Bytes>, body: BodyPlan) -> BodyPlan {
    if written.is_empty() {
        return body;
    }
    let mut prefix = BytesMut::new();
    for chunk in &written {
        prefix.extend_from_slice(chunk);
    }
    match body {
        BodyPlan::Full(rest) => {
            prefix.extend_from_slice(&rest);
            BodyPlan::Full(prefix.freeze())
        }
        BodyPlan::Iter(mut pending) => {
            prefix.extend_from_slice(&pending.first);
            pending.first = prefix.freeze();
            BodyPlan::Iter(pending)
        }
        // write() data before a file: send it as the head of an iterated body is not possible
        // without copying the file; PEP 3333 apps do not mix them, so keep the file and log.
        BodyPlan::File(region) => {
            tracing::warn!("write() data discarded: the app also returned a file");
            BodyPlan::File(region)
        }
    }
}

/// Calls `result.close()` if it has one; errors are logged, never raised.
pub fn close_result(py: Python<'_>, result: &Bound<'_, PyAny>) {
    // The common results have no close(); skip the attribute lookup (and its exception).
    if result.is_exact_instance_of::<PyList>()
        || result.is_exact_instance_of::<PyTuple>()
        || result.is_exact_instance_of::<PyBytes>()
        || result.is_exact_instance_of::<PyString>()
    {
        return;
    }
    match result.hasattr(pyo3::intern!(py, "close")) {
        Ok(true) => {
            if let Err(err) = result.call_method0(pyo3::intern!(py, "close")) {
                tracing::error!(
                    "close() of the app's response failed:\n{}",
                    format_exception(py, &err)
                );
            }
        }
        Ok(false) => {}
        Err(err) => tracing::error!("close() lookup failed:\n{}", format_exception(py, &err)),
    }
}
