//! Streaming a Python iterator's remaining chunks to the client.
//!
//! Owns: the two ways a `PendingIter` is finished — `InlineIter`, pulled on the event-loop
//! thread whenever hyper wants the next chunk (one worker thread, no hops), and `pump`, run on
//! a Python thread that pushes chunks into a bounded channel (for `--threads N`). Both call
//! `close()` exactly once, also when the client goes away, and release the request body.
//! Must not touch: how the response head was built, or the connection.

use std::task::{Context, Poll};

use bytes::Bytes;
use pyo3::prelude::*;
use tokio::sync::mpsc;

use super::errors::format_exception;
use super::response::{chunk_bytes, close_result, PendingIter};
use crate::body::{BoxError, ChunkSource};

/// Why a stream stopped early.
fn stream_error(py: Python<'_>, err: &PyErr) -> BoxError {
    let traceback = format_exception(py, err);
    tracing::error!("app failed while streaming its response (connection cut):\n{traceback}");
    "the app raised while streaming its response".into()
}

/// Advances the iterator once: `Ok(None)` at its end.
fn next_chunk(py: Python<'_>, pending: &PendingIter) -> PyResult<Option<Bytes>> {
    let iterator = pending.iterator.bind(py);
    loop {
        // SAFETY-free: PyIter_Next through pyo3's `call_method0("__next__")` would raise
        // StopIteration; use the builtin `next` protocol instead.
        let item = unsafe {
            let raw = pyo3::ffi::PyIter_Next(iterator.as_ptr());
            Bound::from_owned_ptr_or_opt(py, raw)
        };
        match item {
            Some(item) => {
                let chunk = chunk_bytes(&item, pending.lenient)?;
                if !chunk.is_empty() {
                    return Ok(Some(chunk));
                }
            }
            None => {
                return match PyErr::take(py) {
                    Some(err) => Err(err),
                    None => Ok(None),
                }
            }
        }
    }
}

/// Closes the app's result, releases the request body, and drops the iterator's references
/// while the GIL is held (a `Py` dropped without it is queued in pyo3's pool and decremented
/// at the next GIL acquisition: a mutex and a vector per request for nothing).
fn finish(py: Python<'_>, pending: PendingIter) {
    close_result(py, pending.result.bind(py));
    if let Ok(mut input) = pending.input.bind(py).try_borrow_mut() {
        input.release();
    }
    drop(pending);
}

/// A Python iterator pulled on the event-loop thread (the default, one-thread mode).
pub struct InlineIter {
    pending: Option<PendingIter>,
    first: Option<Bytes>,
    /// A chunk was just handed out: yield once so hyper writes it before the app runs again
    /// (PEP 3333: a block must not be delayed; and an error after it must not swallow it).
    must_flush: bool,
}

impl InlineIter {
    pub fn new(mut pending: PendingIter) -> InlineIter {
        let first = std::mem::take(&mut pending.first);
        InlineIter {
            pending: Some(pending),
            first: Some(first),
            must_flush: false,
        }
    }

    fn close(&mut self) {
        if let Some(pending) = self.pending.take() {
            Python::attach(move |py| finish(py, pending));
        }
    }
}

impl ChunkSource for InlineIter {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if let Some(first) = self.first.take() {
            self.must_flush = true;
            return Poll::Ready(Some(Ok(first)));
        }
        if self.must_flush {
            self.must_flush = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let Some(pending) = self.pending.take() else {
            return Poll::Ready(None);
        };
        // One GIL acquisition per chunk; the last one also closes the iterator.
        let (next, unfinished) = Python::attach(move |py| {
            match next_chunk(py, &pending).map_err(|e| stream_error(py, &e)) {
                Ok(Some(chunk)) => (Ok(Some(chunk)), Some(pending)),
                ended => {
                    finish(py, pending);
                    (ended, None)
                }
            }
        });
        self.pending = unfinished;
        match next {
            Ok(Some(chunk)) => {
                self.must_flush = true;
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok(None) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }
}

impl Drop for InlineIter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Chunks sent from a Python thread.
pub struct ChannelChunks {
    receiver: mpsc::Receiver<Result<Bytes, BoxError>>,
    /// An error that arrived right behind data: held for one poll so hyper writes the data
    /// first (the client must see the partial body before the connection is cut).
    held_error: Option<BoxError>,
}

impl ChannelChunks {
    pub fn new(receiver: mpsc::Receiver<Result<Bytes, BoxError>>) -> ChannelChunks {
        ChannelChunks {
            receiver,
            held_error: None,
        }
    }
}

impl ChunkSource for ChannelChunks {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if let Some(error) = self.held_error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(Err(error))) => {
                self.held_error = Some(error);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }
}

/// Drives `pending` to its end on the current (Python) thread, sending each chunk into
/// `sender`; waits for room without holding the GIL. Stops early if the client is gone.
pub fn pump(py: Python<'_>, pending: PendingIter, sender: mpsc::Sender<Result<Bytes, BoxError>>) {
    let mut chunk = Some(pending.first.clone());
    while let Some(data) = chunk.take() {
        if py.detach(|| sender.blocking_send(Ok(data))).is_err() {
            break; // client went away
        }
        match next_chunk(py, &pending) {
            Ok(next) => chunk = next,
            Err(err) => {
                let error = stream_error(py, &err);
                let _ = py.detach(|| sender.blocking_send(Err(error)));
            }
        }
    }
    finish(py, pending);
}
