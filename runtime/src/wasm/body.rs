//! Bodies across the guest boundary, streamed both ways.
//!
//! Owns: `GuestRequestBody` (a spooled request body — memory or temp file — as the
//! `http_body::Body` wasi:http reads the guest's `incoming-body` from, file bodies read
//! 64 KiB at a time) and `GuestResponseBody` (the guest's `outgoing-body` as the server's
//! `ChunkSource`, so its chunks go to the socket as the guest writes them, with backpressure,
//! and an error — a cut connection, not an end — when its instance ended without finishing
//! it). Must not touch: instances, limits or headers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::guest_clock::GuestClock;
use crate::body::{BoxError, ChunkSource};
use crate::spool::SpooledBody;

const FILE_CHUNK: u64 = 64 * 1024;

/// A spooled request body as the guest reads it.
pub struct GuestRequestBody {
    spooled: SpooledBody,
    offset: u64,
}

impl GuestRequestBody {
    pub fn new(spooled: SpooledBody) -> GuestRequestBody {
        GuestRequestBody { spooled, offset: 0 }
    }

    fn remaining(&self) -> u64 {
        self.spooled.len().saturating_sub(self.offset)
    }
}

impl Body for GuestRequestBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let remaining = this.remaining();
        if remaining == 0 {
            return Poll::Ready(None);
        }
        let chunk = match &this.spooled {
            SpooledBody::Empty => return Poll::Ready(None),
            SpooledBody::Memory(bytes) => Ok(bytes.clone()),
            SpooledBody::File { .. } => {
                let mut buf = BytesMut::zeroed(remaining.min(FILE_CHUNK) as usize);
                this.spooled
                    .read_at(this.offset, &mut buf)
                    .map(|n| buf.split_to(n).freeze())
            }
        };
        Poll::Ready(Some(match chunk {
            Ok(bytes) if bytes.is_empty() => Err(internal("the spooled body ended early")),
            Ok(bytes) => {
                this.offset += bytes.len() as u64;
                Ok(Frame::data(bytes))
            }
            Err(err) => Err(internal(&format!("reading the spooled body: {err}"))),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

fn internal(message: &str) -> wasmtime_wasi_http::Error {
    wasmtime_wasi_http::Error::InternalError(Some(message.to_string()))
}

/// The guest's response body, as the server streams it. Dropping it (sent, or the client
/// gone) drops `_keep_running`, which lets the instance be stopped. wasi:http ends the stream
/// the same way whether the guest finished the body or its instance was dropped half-way;
/// `clock` says which (set before the instance's store is dropped), and a body whose instance
/// ended mid-body ends with an error, so the client sees a cut, not a complete response.
pub struct GuestResponseBody {
    body: HyperOutgoingBody,
    _keep_running: tokio::sync::oneshot::Sender<()>,
    clock: Arc<GuestClock>,
}

impl GuestResponseBody {
    pub fn new(
        body: HyperOutgoingBody,
        keep_running: tokio::sync::oneshot::Sender<()>,
        clock: Arc<GuestClock>,
    ) -> GuestResponseBody {
        GuestResponseBody {
            body,
            _keep_running: keep_running,
            clock,
        }
    }
}

impl ChunkSource for GuestResponseBody {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        loop {
            return match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) if self.clock.body_cut() => Poll::Ready(Some(Err(
                    "the instance ended before finishing its response body".into(),
                ))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(err))) => {
                    Poll::Ready(Some(Err(format!("guest response body: {err:?}").into())))
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    // Trailers: HTTP/1.1 responses here are sent without them.
                    Err(_) => continue,
                },
            };
        }
    }
}
