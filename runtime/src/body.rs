//! Response bodies: the one `ResponseBody` type every handler hands to the front end.
//!
//! Owns: the body variants (whole bytes, a file region read in Rust, a stream of chunks from a
//! handler) and their `http_body::Body` implementation. Must not touch: Python, routing or
//! connection state — handlers build these, the server sends them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A source of body chunks that a handler drives (e.g. a Python iterator).
pub trait ChunkSource {
    /// Next chunk; `None` at the end. Errors cut the connection (headers are already out).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>>;
}

/// A response body.
pub enum ResponseBody {
    Empty,
    Full(Option<Bytes>),
    File(FileRegion),
    Stream(Box<dyn ChunkSource + Send>),
    /// A body with something that must live until it has been sent (and is dropped with it),
    /// e.g. the calls a Python request deferred until after its response.
    Guarded(Box<ResponseBody>, Box<dyn Send>),
}

impl ResponseBody {
    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        let bytes = bytes.into();
        if bytes.is_empty() {
            ResponseBody::Empty
        } else {
            ResponseBody::Full(Some(bytes))
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Empty => Poll::Ready(None),
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::File(region) => {
                Poll::Ready(region.next_chunk().map(|r| r.map(Frame::data)))
            }
            ResponseBody::Stream(source) => source
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|r| r.map(Frame::data))),
            ResponseBody::Guarded(body, _) => Pin::new(body.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Empty => true,
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::File(region) => region.remaining == 0,
            ResponseBody::Stream(_) => false,
            ResponseBody::Guarded(body, _) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Empty => SizeHint::with_exact(0),
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::File(region) => SizeHint::with_exact(region.remaining),
            ResponseBody::Stream(_) => SizeHint::default(),
            ResponseBody::Guarded(body, _) => body.size_hint(),
        }
    }
}

/// A plain-text response (the errors the server itself produces: 404, 413, 500...).
pub fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A byte range of an open file, read in Rust chunk by chunk (never through Python).
pub struct FileRegion {
    file: File,
    offset: u64,
    remaining: u64,
    chunk_size: usize,
}

impl FileRegion {
    pub const DEFAULT_CHUNK: usize = 128 * 1024;

    pub fn new(file: File, offset: u64, len: u64) -> FileRegion {
        FileRegion {
            file,
            offset,
            remaining: len,
            chunk_size: Self::DEFAULT_CHUNK,
        }
    }

    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        if self.remaining == 0 {
            return None;
        }
        let want = self.chunk_size.min(self.remaining as usize);
        let mut buf = BytesMut::zeroed(want);
        match self.file.read_at(&mut buf, self.offset) {
            Ok(0) => {
                let err = format!("file ended {} bytes early", self.remaining);
                self.remaining = 0;
                Some(Err(err.into()))
            }
            Ok(n) => {
                buf.truncate(n);
                self.offset += n as u64;
                self.remaining -= n as u64;
                Some(Ok(buf.freeze()))
            }
            Err(err) => {
                self.remaining = 0;
                Some(Err(Box::new(err)))
            }
        }
    }
}
