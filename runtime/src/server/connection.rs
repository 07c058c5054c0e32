//! One client connection: the inline path first when it can, hyper's HTTP/1.1 state machine
//! otherwise, both behind the strict `guard`.
//!
//! Owns: the connection's life — which loop serves it (`inline_h1` while its requests are plain
//! `GET`s to Python apps on the event loop, then hyper for the rest of its life), hyper
//! settings (keep-alive, head size), the header-read and keep-alive timeouts, graceful shutdown
//! on drain, and tracking each of hyper's responses to its end (access log, idle clock). Must
//! not touch: routing or handlers (see `service`).

use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::access_log::AccessRecord;
use super::connection_state::ConnectionState;
use super::context::WorkerContext;
use super::guard::{GuardLimits, GuardedIo, HeadClock};
use super::idle_clock::{ConnectionTimer, Expired, IdleClock};
use super::inline_h1;
use super::peer::Peer;
use super::rejecting_io::RejectingIo;
use super::rewind::Rewind;
use super::service::serve;
use crate::body::{BoxError, ResponseBody};

/// While draining, how often a connection that has not started its first request yet looks
/// whether it has (only such connections poll, and only during a drain).
const FIRST_REQUEST_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Serves `stream` until the client leaves, a timeout fires, or the worker drains.
pub async fn serve_connection(
    stream: TcpStream,
    peer: Peer,
    ctx: Rc<WorkerContext>,
    draining: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let server = &ctx.config.server;
    let limits = GuardLimits {
        max_header_size: server.max_header_size,
        max_headers: server.max_headers,
    };
    let head_clock = HeadClock::started_now();
    let io = RejectingIo::new(GuardedIo::with_clock(stream, limits, head_clock.clone()));
    let mut state = ConnectionState {
        peer,
        timer: ConnectionTimer::new(server.header_timeout, server.keepalive_timeout),
        ctx,
        draining,
        head_clock,
        clock: Rc::new(IdleClock::new()),
    };
    let (io, unserved) = if state.ctx.wsgi.runs_inline() {
        match inline_h1::serve(io, &mut state).await {
            Some(handover) => handover,
            None => return,
        }
    } else {
        (io, Vec::new())
    };
    serve_with_hyper(Rewind::new(unserved, io), state).await;
}

/// Serves the rest of the connection with hyper; `io` starts at a request head.
async fn serve_with_hyper(io: Rewind<RejectingIo>, state: ConnectionState) {
    let ConnectionState {
        peer,
        ctx,
        mut draining,
        head_clock,
        clock,
        timer: timeouts,
    } = state;
    let server = &ctx.config.server;
    let service = {
        let (ctx, clock) = (ctx.clone(), clock.clone());
        service_fn(move |req| {
            let (ctx, clock) = (ctx.clone(), clock.clone());
            async move {
                clock.request_started();
                let mut record = ctx
                    .access_log
                    .as_ref()
                    .map(|log| log.capture(&req, peer.remote));
                let label = record.as_mut().and_then(AccessRecord::route_label);
                let response = serve(&ctx, peer, req, label).await;
                let status = response.status().as_u16();
                let finish = Finish {
                    ctx: ctx.clone(),
                    clock,
                    record,
                    status,
                    sent: 0,
                    length: body_length(&response),
                };
                Ok::<_, Infallible>(response.map(|body| TrackedBody {
                    body,
                    finish: Some(finish),
                }))
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The header-read timeout is enforced below with the guard's head clock.
        .header_read_timeout(None)
        .keep_alive(true)
        // EOF from the guard (a refused pipelined head) must not abort responses in flight.
        .half_close(true)
        // The guard enforces the header count; hyper's own limit would allocate per request.
        .max_buf_size(server.max_header_size.max(8192) + 1024)
        // Copy head and body into one buffer and `write` it, rather than `writev` of several:
        // measured (A/B, 3 rounds) +3% req/s on Python hello, +2-5% on the 10 KB echo, +1% on
        // WASM hello; a 300 MB streamed response stays at 3-4 GB/s on loopback.
        .writev(false);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // Draining: hyper's graceful shutdown closes an idle connection at once, so it waits until
    // the connection's first request has started (a fresh connection's client has most
    // likely sent it already; the header timeout bounds the wait).
    let mut drain_seen = *draining.borrow();
    let mut closing = drain_seen && !clock.fresh();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    let timer = timeouts.sleep();
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!("connection from {}: {err}", peer.remote);
                }
                return;
            }
            _ = draining.changed(), if !drain_seen => {
                drain_seen = true;
                if !closing && !clock.fresh() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep(FIRST_REQUEST_POLL), if drain_seen && !closing => {
                if !clock.fresh() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = timer.as_mut() => {
                match timeouts.fired(&clock, &head_clock, timer.as_mut()) {
                    Expired::Head => {
                        tracing::debug!("{}: request head not received in time", peer.remote);
                        return; // slowloris: drop the connection
                    }
                    Expired::Idle if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A response body's length when known up front: its exact size hint, else its
/// `Content-Length` (a WebAssembly guest's body gives no hint but its head says).
fn body_length(response: &http::Response<ResponseBody>) -> Option<u64> {
    response.body().size_hint().exact().or_else(|| {
        let value = response.headers().get(http::header::CONTENT_LENGTH)?;
        value.to_str().ok()?.parse().ok()
    })
}

/// Runs once per response, when its body ends or is dropped (client gone).
struct Finish {
    ctx: Rc<WorkerContext>,
    clock: Rc<IdleClock>,
    record: Option<AccessRecord>,
    status: u16,
    sent: u64,
    /// The body's length when known up front: hyper may drop such a body once that many
    /// bytes went out, without polling it to its end.
    length: Option<u64>,
}

impl Finish {
    fn run(self, complete: bool) {
        self.clock.response_finished();
        self.ctx.recycle.request_done();
        if let (Some(log), Some(record)) = (&self.ctx.access_log, &self.record) {
            log.write(record, self.status, complete.then_some(self.sent));
        }
    }
}

/// A response body that reports its end to the connection.
struct TrackedBody {
    body: ResponseBody,
    finish: Option<Finish>,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(finish), Some(data)) = (this.finish.as_mut(), frame.data_ref()) {
                    finish.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => {
                if let Some(finish) = this.finish.take() {
                    finish.run(true);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(finish) = this.finish.take() {
                    finish.run(false);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            let complete = self.body.is_end_stream() || finish.length == Some(finish.sent);
            finish.run(complete);
        }
    }
}
