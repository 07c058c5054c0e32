//! Sending the response: all at once, or status and headers first and then a
//! streamed body.
//!
//! Owns [`Responder`] (the handler's one-shot right to answer, backed by the
//! wasi `response-outparam`) and [`BodyWriter`] (the `outgoing-body` and its
//! `output-stream`). Writes go through `blocking-write-and-flush` in pieces of
//! at most [`WRITE_CHUNK`] bytes, the limit that call allows. Must not read
//! the request, and must not decide what the client sees on a handler error
//! (that is `export`'s job).

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use wasi::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::{OutputStream, StreamError};

use crate::Error;
use crate::headers::Headers;
use crate::response::Response;

/// The most bytes one `blocking-write-and-flush` call may carry: 4096.
pub const WRITE_CHUNK: usize = 4096;

/// Where the host's `response-outparam` waits until someone answers. Shared by
/// the [`Responder`] and the export glue, which answers `500` if the handler
/// did not.
pub(crate) type Slot = Rc<RefCell<Option<ResponseOutparam>>>;

/// The handler's right to send exactly one response.
///
/// Either [`Responder::send`] a complete [`Response`], or
/// [`Responder::start`] one and stream its body through the returned
/// [`BodyWriter`]. If the handler returns without doing either, the client
/// gets `500 internal error`.
pub struct Responder {
    slot: Slot,
}

impl Responder {
    pub(crate) fn new(slot: Slot) -> Self {
        Self { slot }
    }

    /// Sends `response` with its whole body, adding `content-length` when the
    /// response has none (except for 1xx, 204 and 304 responses).
    pub fn send(self, response: Response) -> Result<(), Error> {
        let (status, mut headers, body) = response.into_parts();
        let bodiless = status < 200 || status == 204 || status == 304;
        if !headers.contains("content-length") && !bodiless {
            headers.insert("content-length", body.len().to_string());
        }
        let mut writer = self.start(status, headers)?;
        writer.write_all(&body)?;
        writer.finish()
    }

    /// Sends status and headers now and returns a writer for the body. Set
    /// `content-length` in `headers` if the size is known; otherwise the body
    /// is sent chunked. Call [`BodyWriter::finish`] when done.
    pub fn start(self, status: u16, headers: Headers) -> Result<BodyWriter, Error> {
        let declared = headers
            .get("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let fields = Fields::from_list(headers.as_list())
            .map_err(|e| Error::msg(format!("response headers refused by host: {e:?}")))?;
        let response = OutgoingResponse::new(fields);
        response
            .set_status_code(status)
            .map_err(|()| Error::msg(format!("invalid response status {status}")))?;
        let body = response
            .body()
            .map_err(|()| Error::msg("response body already taken"))?;
        let outparam = self
            .slot
            .borrow_mut()
            .take()
            .ok_or_else(|| Error::msg("response already sent"))?;
        ResponseOutparam::set(outparam, Ok(response));
        let stream = body
            .write()
            .map_err(|()| Error::msg("response body stream already taken"))?;
        Ok(BodyWriter {
            stream: Some(stream),
            body: Some(body),
            written: 0,
            declared,
        })
    }
}

/// The body of a response whose status and headers are already sent.
///
/// Implements [`std::io::Write`]; every write is passed to the host in pieces
/// of at most [`WRITE_CHUNK`] bytes and blocks until the host has taken them
/// (back-pressure from a slow client reaches the handler here).
///
/// Call [`BodyWriter::finish`] at the end. A writer dropped without `finish`
/// leaves the body unfinished, which tells the host the response is
/// incomplete (the client sees a broken connection, not a short body); that is
/// also what happens when a handler fails half-way through.
pub struct BodyWriter {
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
    written: u64,
    /// The `content-length` sent with the headers, if any.
    declared: Option<u64>,
}

impl BodyWriter {
    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Flushes and completes the body (`outgoing-body.finish`, no trailers).
    /// Fails if the host rejects the body, e.g. when fewer or more bytes were
    /// written than a `content-length` header announced.
    ///
    /// Once every byte a `content-length` announced is written, the host may
    /// already have sent them all and closed the stream; the response is then
    /// complete, so a closed stream at this point is not an error.
    pub fn finish(mut self) -> Result<(), Error> {
        let complete = self.declared == Some(self.written);
        let result = self.close();
        if complete { Ok(()) } else { result }
    }

    fn close(&mut self) -> Result<(), Error> {
        if let Some(stream) = self.stream.take() {
            stream.blocking_flush().map_err(stream_error)?;
            // The stream is a child of the body: it must be gone before finish.
            drop(stream);
        }
        let body = self
            .body
            .take()
            .ok_or_else(|| Error::msg("response body already finished"))?;
        OutgoingBody::finish(body, None)
            .map_err(|e| Error::msg(format!("finishing response body: {e:?}")))
    }

    fn stream(&self) -> io::Result<&OutputStream> {
        self.stream
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "response body finished"))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let stream = self.stream()?;
        write_in_chunks(buf, WRITE_CHUNK, |piece| {
            stream.blocking_write_and_flush(piece).map_err(stream_error)
        })?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream()?.blocking_flush().map_err(stream_error)
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        // Child before parent; an unfinished body marks the response incomplete.
        drop(self.stream.take());
        drop(self.body.take());
    }
}

/// Feeds `buf` to `sink` in order, in pieces of at most `limit` bytes.
fn write_in_chunks(
    buf: &[u8],
    limit: usize,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    buf.chunks(limit.max(1)).try_for_each(&mut sink)
}

fn stream_error(err: StreamError) -> io::Error {
    match err {
        StreamError::Closed => io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the client is gone (response stream closed)",
        ),
        StreamError::LastOperationFailed(e) => {
            io::Error::other(format!("writing response body: {}", e.to_debug_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{WRITE_CHUNK, write_in_chunks};

    #[test]
    fn pieces_respect_the_limit_and_order() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut pieces = Vec::new();
        write_in_chunks(&data, WRITE_CHUNK, |p| {
            pieces.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        let sizes: Vec<usize> = pieces.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
        assert_eq!(pieces.concat(), data);
    }

    #[test]
    fn empty_buffer_writes_nothing_and_errors_stop() {
        let mut calls = 0;
        write_in_chunks(&[], WRITE_CHUNK, |_| {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 0);
        let err = write_in_chunks(&[0; 9000], WRITE_CHUNK, |_| {
            calls += 1;
            Err(std::io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(calls, 1);
    }
}
