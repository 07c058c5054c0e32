//! `wsgi.file_wrapper`: lets an app hand a file to the server instead of iterating it.
//!
//! Owns: the `FileWrapper` object and `open_region`, which turns a wrapped real file into a
//! `FileRegion` the server reads in Rust (from the file's current position), so the bytes never
//! pass through Python. Anything that is not a plain file falls back to iteration in blocks.
//! Must not touch: response framing or the connection.

use std::fs::File;
use std::os::fd::BorrowedFd;

use pyo3::prelude::*;

use crate::body::FileRegion;

/// The object `environ['wsgi.file_wrapper'](filelike, blksize)` returns.
#[pyclass(module = "wsrun")]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        if block.is_truthy()? {
            Ok(Some(block.unbind()))
        } else {
            Ok(None)
        }
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if filelike.hasattr("close")? {
            filelike.call_method0("close")?;
        }
        Ok(())
    }
}

/// A region covering `filelike` from its current position to its end, when it is a regular
/// file with a descriptor. `None` means "iterate it instead".
pub fn open_region(filelike: &Bound<'_, PyAny>) -> Option<FileRegion> {
    let fd: i32 = filelike.call_method0("fileno").ok()?.extract().ok()?;
    if fd < 0 {
        return None;
    }
    // Flush Python-side buffers so the descriptor's view is current.
    if filelike.hasattr("flush").ok()? {
        let _ = filelike.call_method0("flush");
    }
    // SAFETY: the fd is open for the duration of this call (the file object owns it); we only
    // borrow it to duplicate, and the duplicate is ours to close.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed.try_clone_to_owned().ok()?;
    let file = File::from(owned);
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let position: u64 = match filelike.call_method0("tell") {
        Ok(pos) => pos.extract().ok()?,
        Err(_) => 0,
    };
    let len = meta.len().saturating_sub(position);
    Some(FileRegion::new(file, position, len))
}
