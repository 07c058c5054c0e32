//! Response bodies: the one `ResponseBody` type every handler hands to the front end.
//!
//! Owns: the body variants (whole bytes, a file region read in Rust, a stream of chunks from a
//! handler, a chain of bodies) and their `http_body::Body` implementation; reading file regions
//! without blocking the event loop (`file_region`). Must not touch: Python, routing or
//! connection state — handlers build these, the server sends them.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

pub use crate::file_region::FileRegion;

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
    /// Bodies sent one after the other (a `multipart/byteranges` body: part heads and file
    /// regions).
    Chain(VecDeque<ResponseBody>),
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

    pub fn chain(bodies: impl IntoIterator<Item = ResponseBody>) -> ResponseBody {
        ResponseBody::Chain(bodies.into_iter().collect())
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
            ResponseBody::File(region) => region
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|r| r.map(Frame::data))),
            ResponseBody::Stream(source) => source
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|r| r.map(Frame::data))),
            ResponseBody::Guarded(body, _) => Pin::new(body.as_mut()).poll_frame(cx),
            ResponseBody::Chain(bodies) => loop {
                let Some(first) = bodies.front_mut() else {
                    return Poll::Ready(None);
                };
                match Pin::new(first).poll_frame(cx) {
                    Poll::Ready(None) => {
                        bodies.pop_front();
                    }
                    other => return other,
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Empty => true,
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::File(region) => region.is_empty(),
            ResponseBody::Stream(_) => false,
            ResponseBody::Guarded(body, _) => body.is_end_stream(),
            ResponseBody::Chain(bodies) => bodies.iter().all(ResponseBody::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Empty => SizeHint::with_exact(0),
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::File(region) => SizeHint::with_exact(region.len()),
            ResponseBody::Stream(_) => SizeHint::default(),
            ResponseBody::Guarded(body, _) => body.size_hint(),
            ResponseBody::Chain(bodies) => {
                let exact = bodies.iter().map(|b| b.size_hint().exact()).sum();
                match exact {
                    Some(n) => SizeHint::with_exact(n),
                    None => SizeHint::default(),
                }
            }
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
