//! `wsgi.input`: the spooled request body as a Python file-like object.
//!
//! Owns: `read`, `readline`, `readlines` and iteration over a `SpooledBody` (memory or an
//! unlinked temp file), all sharing one position so mixed calls stay correct, and `b""` past
//! the end. Must not touch: how the body was received (see `spool`), or anything else in the
//! environ. `release` drops the body (and its file) once the response is over, even if the
//! app kept a reference to the environ.

use std::io;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::spool::SpooledBody;

const LINE_SCAN_BLOCK: usize = 8 * 1024;

/// The object behind `environ['wsgi.input']`.
#[pyclass(module = "wsrun")]
pub struct Input {
    body: SpooledBody,
    pos: u64,
}

impl Input {
    pub fn new(body: SpooledBody) -> Input {
        Input { body, pos: 0 }
    }

    fn remaining(&self) -> u64 {
        self.body.len().saturating_sub(self.pos)
    }

    /// Number of bytes a read of `size` (negative or None: all) returns from here.
    fn clamp(&self, size: Option<i64>) -> usize {
        let remaining = self.remaining();
        match size {
            Some(n) if n >= 0 => (n as u64).min(remaining) as usize,
            _ => remaining as usize,
        }
    }

    fn take_bytes<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        if let SpooledBody::Memory(bytes) = &self.body {
            let start = self.pos as usize;
            let out = PyBytes::new(py, &bytes[start..start + n]);
            self.pos += n as u64;
            return Ok(out);
        }
        let pos = self.pos;
        let body = &self.body;
        let out = PyBytes::new_with(py, n, |buf| {
            let got = body.read_at(pos, buf).map_err(to_py_err)?;
            if got != n {
                return Err(PyOSError::new_err("spooled request body ended early"));
            }
            Ok(())
        })?;
        self.pos += n as u64;
        Ok(out)
    }

    /// Length of the next line (up to and including `\n`), at most `limit` bytes.
    fn line_len(&self, limit: usize) -> io::Result<usize> {
        if let SpooledBody::Memory(bytes) = &self.body {
            let start = self.pos as usize;
            let window = &bytes[start..start + limit];
            return Ok(memchr::memchr(b'\n', window).map_or(limit, |i| i + 1));
        }
        let mut scanned = 0usize;
        let mut block = [0u8; LINE_SCAN_BLOCK];
        while scanned < limit {
            let want = (limit - scanned).min(LINE_SCAN_BLOCK);
            let got = self
                .body
                .read_at(self.pos + scanned as u64, &mut block[..want])?;
            if got == 0 {
                break;
            }
            if let Some(i) = memchr::memchr(b'\n', &block[..got]) {
                return Ok(scanned + i + 1);
            }
            scanned += got;
        }
        Ok(scanned)
    }

    fn next_line<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<i64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = self.clamp(size);
        let len = self.line_len(limit).map_err(to_py_err)?;
        self.take_bytes(py, len)
    }
}

fn to_py_err(err: io::Error) -> PyErr {
    PyOSError::new_err(format!("reading the spooled request body: {err}"))
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.clamp(size);
        self.take_bytes(py, n)
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<i64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.next_line(py, size)
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let lines = PyList::empty(py);
        let limit = hint.filter(|h| *h > 0).map(|h| h as u64);
        let mut total = 0u64;
        while self.remaining() > 0 {
            let line = self.next_line(py, None)?;
            total += line.as_bytes().len() as u64;
            lines.append(line)?;
            if limit.is_some_and(|l| total >= l) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        self.next_line(py, None).map(Some)
    }

    fn readable(&self) -> bool {
        true
    }

    /// Drops the body (closing its spool file). Called by the server when the response is over.
    pub fn release(&mut self) {
        self.body = SpooledBody::Empty;
        self.pos = 0;
    }
}
