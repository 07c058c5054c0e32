//! The body of a response to an outgoing request, as the guest reads it.
//!
//! Owns: `GuardedBody`, which holds the request's `OutboundPermit` until the body ends, fails
//! or is dropped, and enforces the time between frames (the guest's `between-bytes-timeout`,
//! never past the instance's deadline). Must not touch: connecting or the caps themselves.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::share::OutboundPermit;

/// A response body that frees its request's slots when done and times out between frames.
pub struct GuardedBody {
    incoming: Option<Incoming>,
    timer: Pin<Box<Sleep>>,
    between_bytes: Option<Duration>,
    deadline: Instant,
    permit: Option<OutboundPermit>,
}

impl GuardedBody {
    pub fn new(
        between_bytes: Option<Duration>,
        deadline: Instant,
        permit: OutboundPermit,
    ) -> GuardedBody {
        let mut body = GuardedBody {
            incoming: None,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            between_bytes,
            deadline,
            permit: Some(permit),
        };
        body.rearm();
        body
    }

    /// The guest's body: `incoming` under this guard.
    pub fn wrap(mut self, incoming: Incoming) -> WasiBody {
        self.incoming = Some(incoming);
        self.boxed_unsync()
    }

    /// The next frame is due by the guest's between-bytes limit, or by the deadline.
    fn rearm(&mut self) {
        let due = match self.between_bytes {
            Some(gap) => (Instant::now() + gap).min(self.deadline),
            None => self.deadline,
        };
        self.timer.as_mut().reset(due);
    }

    /// The body is over: its slots go back now, not when the guest drops the resource.
    fn finish(&mut self) {
        self.incoming = None;
        self.permit = None;
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        let Some(incoming) = this.incoming.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.rearm();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.finish();
                let err = if err.is_timeout() {
                    HttpError::HttpResponseTimeout
                } else {
                    HttpError::from(err)
                };
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.finish();
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
