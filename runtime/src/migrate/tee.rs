//! A copy of the primary's response body for the comparison, taken while it goes to the
//! client.
//!
//! Owns: `tee`, which returns the body to send (unchanged in what the client receives) and a
//! receiver of the copy: whole bodies (`Full`, also under `Guarded`) are copied at once;
//! any other body is wrapped in a `ChunkSource` that copies each chunk as it passes, up to
//! `limit` bytes. The copy is `None` past the limit and carries the moment the body was
//! complete (the primary's latency ends there, whenever the comparison runs); the receiver
//! errors when the body fails or the client leaves before its end. Must not touch: what is
//! compared or when.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::Body;
use tokio::sync::oneshot;

use crate::body::{BoxError, ChunkSource, ResponseBody};

/// The copy of a body, once it is complete.
pub type Copy = oneshot::Receiver<Copied>;

/// A complete body's copy: `body` is `None` when it was larger than the limit; `done` is when
/// its last byte was handed on.
pub struct Copied {
    pub body: Option<Vec<u8>>,
    pub done: Instant,
}

/// Sends the copy of a body that is complete now.
fn finish(tx: oneshot::Sender<Copied>, body: Option<Vec<u8>>) {
    let _ = tx.send(Copied {
        body,
        done: Instant::now(),
    });
}

/// `length`: the response's Content-Length, when it has one (hyper stops polling a body once
/// that many bytes are out, so the copy is complete then); `head`: a HEAD request (no body
/// goes out: the copy is empty).
pub fn tee(
    body: ResponseBody,
    limit: u64,
    length: Option<u64>,
    head: bool,
) -> (ResponseBody, Copy) {
    let (tx, rx) = oneshot::channel();
    if head {
        finish(tx, Some(Vec::new()));
        return (body, rx);
    }
    let bounded = |b: &[u8]| (b.len() as u64 <= limit).then(|| b.to_vec());
    let body = match body {
        ResponseBody::Empty | ResponseBody::Full(None) => {
            finish(tx, Some(Vec::new()));
            body
        }
        ResponseBody::Full(Some(bytes)) => {
            finish(tx, bounded(&bytes));
            ResponseBody::Full(Some(bytes))
        }
        ResponseBody::Guarded(inner, guard) => match *inner {
            ResponseBody::Full(Some(bytes)) => {
                finish(tx, bounded(&bytes));
                ResponseBody::Guarded(Box::new(ResponseBody::Full(Some(bytes))), guard)
            }
            other => streamed(
                ResponseBody::Guarded(Box::new(other), guard),
                limit,
                length,
                tx,
            ),
        },
        other => streamed(other, limit, length, tx),
    };
    (body, rx)
}

fn streamed(
    inner: ResponseBody,
    limit: u64,
    length: Option<u64>,
    tx: oneshot::Sender<Copied>,
) -> ResponseBody {
    ResponseBody::Stream(Box::new(Tee {
        inner,
        copy: Some(Vec::new()),
        seen: 0,
        limit,
        length,
        tx: Some(tx),
    }))
}

struct Tee {
    inner: ResponseBody,
    copy: Option<Vec<u8>>,
    seen: u64,
    limit: u64,
    length: Option<u64>,
    tx: Option<oneshot::Sender<Copied>>,
}

impl ChunkSource for Tee {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        loop {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    if let Some(tx) = self.tx.take() {
                        finish(tx, self.copy.take());
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    self.tx = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    self.keep(&data);
                    return Poll::Ready(Some(Ok(data)));
                }
            }
        }
    }
}

impl Tee {
    fn keep(&mut self, data: &Bytes) {
        self.seen += data.len() as u64;
        if let Some(copy) = &mut self.copy {
            if (copy.len() + data.len()) as u64 > self.limit {
                self.copy = None;
            } else {
                copy.extend_from_slice(data);
            }
        }
        if self.length == Some(self.seen) {
            if let Some(tx) = self.tx.take() {
                finish(tx, self.copy.take());
            }
        }
    }
}
