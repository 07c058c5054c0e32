//! Reading a request body as a stream.
//!
//! Owns [`Body`]: the incoming body's wasi resources (`input-stream`,
//! `incoming-body` and the `incoming-request` they belong to) and their drop
//! order (stream, then body, then request: the host refuses to drop a parent
//! while a child lives). Reads block on `input-stream.blocking-read`, at most
//! [`READ_CHUNK`] bytes at a time; nothing is buffered unless the caller asks
//! for the whole body. It must not touch the response side.

use std::io::{self, Read};

use wasi::http::types::{IncomingBody, IncomingRequest};
use wasi::io::streams::{InputStream, StreamError};

/// The largest chunk one read asks the host for: 64 KiB.
pub const READ_CHUNK: usize = 64 * 1024;

/// A request body, read as it streams in from the host.
///
/// Use [`Body::read_chunk`] for chunk-at-a-time processing, the
/// [`std::io::Read`] impl to hand the body to any reader-based API, or
/// [`Body::read_all`] when the whole body is wanted in memory.
pub struct Body {
    source: Source,
}

enum Source {
    /// The live body of a request from the host.
    Wasi(WasiBody),
    /// An in-memory body (tests, or a request built with `Request::new`).
    Memory { data: Vec<u8>, pos: usize },
    /// Nothing left to read.
    Done,
    /// The host did not hand the body over: every read fails with this.
    Failed(&'static str),
}

/// Field order is drop order: the stream must go before its body, the body
/// before its request.
struct WasiBody {
    stream: InputStream,
    _body: IncomingBody,
    _request: IncomingRequest,
}

impl Body {
    /// Takes ownership of the request and its body; a body the host will not
    /// hand over reads as an error.
    pub(crate) fn from_wasi(request: IncomingRequest) -> Self {
        let Ok(body) = request.consume() else {
            return Self::failed("request body was already consumed");
        };
        let Ok(stream) = body.stream() else {
            return Self::failed("request body stream was already taken");
        };
        Self {
            source: Source::Wasi(WasiBody {
                stream,
                _body: body,
                _request: request,
            }),
        }
    }

    fn failed(reason: &'static str) -> Self {
        Self {
            source: Source::Failed(reason),
        }
    }

    /// A body holding `data` in memory.
    pub fn from_bytes(data: impl Into<Vec<u8>>) -> Self {
        Self {
            source: Source::Memory {
                data: data.into(),
                pos: 0,
            },
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self {
            source: Source::Done,
        }
    }

    /// The next chunk of the body (at most [`READ_CHUNK`] bytes, never empty),
    /// or `None` at the end. Blocks until data arrives.
    pub fn read_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.next_chunk(READ_CHUNK)
    }

    /// Reads the rest of the body into memory. Only for bodies known to be
    /// small enough; prefer [`Body::read_chunk`] or the `Read` impl otherwise.
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk(READ_CHUNK)? {
            if all.is_empty() {
                all = chunk;
            } else {
                all.extend_from_slice(&chunk);
            }
        }
        Ok(all)
    }

    /// Reads the rest of the body as UTF-8 text.
    pub fn read_all_string(&mut self) -> io::Result<String> {
        String::from_utf8(self.read_all()?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Whether the end of the body has been reached.
    pub fn is_done(&self) -> bool {
        matches!(self.source, Source::Done)
    }

    /// Up to `max` bytes (at least 1), or `None` at the end.
    fn next_chunk(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let max = max.clamp(1, READ_CHUNK);
        let chunk = match &mut self.source {
            Source::Done => None,
            Source::Failed(reason) => return Err(io::Error::other(*reason)),
            Source::Memory { data, pos } => {
                let end = data.len().min(*pos + max);
                let chunk = data[*pos..end].to_vec();
                *pos = end;
                (!chunk.is_empty()).then_some(chunk)
            }
            Source::Wasi(live) => loop {
                match live.stream.blocking_read(max as u64) {
                    Ok(bytes) if bytes.is_empty() => continue,
                    Ok(bytes) => break Some(bytes),
                    Err(StreamError::Closed) => break None,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(io::Error::other(format!(
                            "reading request body: {}",
                            e.to_debug_string()
                        )));
                    }
                }
            },
        };
        if chunk.is_none() {
            // Releases the wasi resources (in the right order) as soon as possible.
            self.source = Source::Done;
        }
        Ok(chunk)
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Asking for at most `buf.len()` bytes means a chunk always fits: no
        // carry-over buffer is needed.
        match self.next_chunk(buf.len())? {
            Some(chunk) => {
                buf[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
            None => Ok(0),
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.source {
            Source::Wasi(_) => "streaming",
            Source::Memory { .. } => "memory",
            Source::Done => "done",
            Source::Failed(_) => "failed",
        };
        f.debug_struct("Body").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Body, READ_CHUNK};
    use std::io::Read;

    #[test]
    fn chunks_are_bounded() {
        let data: Vec<u8> = (0..(READ_CHUNK * 2 + 10)).map(|i| i as u8).collect();
        let mut body = Body::from_bytes(data.clone());
        let sizes: Vec<usize> = std::iter::from_fn(|| body.read_chunk().unwrap())
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [READ_CHUNK, READ_CHUNK, 10]);
        assert!(body.is_done());
        assert_eq!(body.read_chunk().unwrap(), None);
    }

    #[test]
    fn read_impl_and_read_all_mix() {
        let mut body = Body::from_bytes(b"hello, body".to_vec());
        let mut head = [0u8; 5];
        body.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"hello");
        assert_eq!(body.read_all_string().unwrap(), ", body");
        assert_eq!(body.read(&mut head).unwrap(), 0);
    }

    #[test]
    fn empty_body() {
        let mut body = Body::empty();
        assert_eq!(body.read_chunk().unwrap(), None);
        assert!(body.read_all().unwrap().is_empty());
    }
}
