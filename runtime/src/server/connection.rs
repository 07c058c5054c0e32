//! One client connection: which protocol serves it, and driving hyper until it ends.
//!
//! Owns: the connection's life — TLS first when the server has a certificate (then ALPN picks
//! HTTP/2 or HTTP/1.1), else on cleartext h2c when the client opens with HTTP/2's preface,
//! else HTTP/1.1 (cleartext or TLS): the inline path (`inline_h1`, while its requests are
//! plain `GET`s to Python apps on the event loop or to static routes), then hyper's HTTP/1.1
//! state machine for the rest of its life, behind the strict `guard`. Also hyper's HTTP/1.1
//! settings (keep-alive, head size), the header-read (or TLS handshake) and keep-alive
//! timeouts, eviction (the worker's, through the idle clock), graceful shutdown on drain, and
//! tracking each of hyper's responses to its end (access log, idle clock, the metrics: in
//! flight, then status and latency by route label). Must not touch: routing or handlers (see
//! `service`), HTTP/2
//! limits (`h2`), certificates (`tls`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::access_log::AccessRecord;
use super::connection_state::ConnectionState;
use super::context::WorkerContext;
use super::guard::{GuardLimits, GuardedIo, HeadClock};
use super::h2;
use super::idle_clock::{ConnectionTimer, Expired, IdleClock};
use super::inline_h1;
use super::peer::Peer;
use super::rejecting_io::{LastWord, RejectingIo};
use super::rewind::Rewind;
use super::service::serve;
use super::tls::{self, TlsAcceptor};
use crate::body::{BoxError, ResponseBody};
use crate::metrics::labels::UNROUTED;
use crate::metrics::WorkerMetrics;

/// While draining, how often a connection that has not started its first request yet looks
/// whether it has (only such connections poll, and only during a drain).
const FIRST_REQUEST_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Serves `stream` until the client leaves, a timeout fires, or the worker drains.
/// `clock` is the worker's handle on the connection: through it the worker may evict the
/// connection while it serves no request.
///
/// TLS, HTTP/2 and hyper's HTTP/1.1 are boxed where they start: a future holds room for its
/// largest state, so inline they made every connection's future ~11.6 KB (copied on each
/// spawn), where the common cleartext keep-alive one needs ~4.5 KB.
pub async fn serve_connection(
    stream: TcpStream,
    peer: Peer,
    ctx: Rc<WorkerContext>,
    draining: watch::Receiver<bool>,
    clock: Rc<IdleClock>,
) {
    let head_clock = HeadClock::started_now();
    let timer = ConnectionTimer::new(
        ctx.config.server.header_timeout,
        ctx.config.server.keepalive_timeout,
    );
    let state = ConnectionState {
        peer,
        timer,
        ctx,
        draining,
        head_clock,
        clock,
    };
    let header_timeout = state.ctx.config.server.header_timeout;
    if let Some(acceptor) = state.ctx.tls.clone() {
        return Box::pin(serve_tls(stream, acceptor, state)).await;
    }
    let mut guard = GuardedIo::with_clock(stream, guard_limits(&state), state.head_clock.clone());
    // h2c with prior knowledge? Bounded by the header-read timeout. A drain does not end the
    // wait: the connection's first request is still answered (its client has most likely sent
    // it already; closing now would reset it), as on both HTTP/1.1 loops.
    let sniff = tokio::time::timeout(header_timeout, opens_with_preface(&mut guard));
    let preface = tokio::select! {
        preface = sniff => preface,
        _ = state.clock.evicted() => return, // nothing sent yet: the cheapest to let go
    };
    match preface {
        Ok(Ok(true)) => {
            let (stream, read) = guard.into_parts();
            let io = TokioIo::new(Rewind::new(read, stream));
            return Box::pin(serve_h2(io, state)).await;
        }
        Ok(Ok(false)) => {}
        Ok(Err(_)) | Err(_) => return,
    }
    serve_http1(RejectingIo::new(guard), state).await;
}

/// Whether a cleartext client opens with HTTP/2's preface. The first bytes are read into the
/// guard's read-ahead (not peeked at, which would cost a second `recvfrom` on every
/// connection): HTTP/1.1 then reads them through the guard, HTTP/2 gets them back with the
/// socket. A strict beginning of the preface waits for more; end of stream is HTTP/1.1's to
/// close.
async fn opens_with_preface(guard: &mut GuardedIo<TcpStream>) -> std::io::Result<bool> {
    loop {
        if !guard.read_ahead().await? {
            return Ok(false);
        }
        match h2::preface_in(guard.read_ahead_bytes()) {
            h2::Preface::Whole => return Ok(true),
            h2::Preface::Not => return Ok(false),
            h2::Preface::Part => {}
        }
    }
}

/// The strict HTTP/1 guard's limits: the server's.
fn guard_limits(state: &ConnectionState) -> GuardLimits {
    let server = &state.ctx.config.server;
    GuardLimits {
        max_header_size: server.max_header_size,
        max_headers: server.max_headers,
    }
}

/// A TLS connection: the handshake within the header-read timeout, then HTTP/2 if ALPN chose
/// it, else HTTP/1.1 behind the guard as on a plain connection (the inline path, then hyper;
/// file bodies are copied through the TLS stream instead of sendfile).
async fn serve_tls(stream: TcpStream, acceptor: TlsAcceptor, state: ConnectionState) {
    let header_timeout = state.ctx.config.server.header_timeout;
    let handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream));
    let handshake = tokio::select! {
        handshake = handshake => handshake,
        _ = state.clock.evicted() => return,
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::debug!("{}: TLS handshake failed: {err}", state.peer.remote);
            return;
        }
        Err(_) => {
            tracing::debug!("{}: TLS handshake not done in time", state.peer.remote);
            return;
        }
    };
    if tls.get_ref().1.alpn_protocol() == Some(tls::ALPN_H2) {
        return Box::pin(serve_h2(TokioIo::new(tls), state)).await;
    }
    let io = RejectingIo::new(GuardedIo::with_clock(
        tls,
        guard_limits(&state),
        state.head_clock.clone(),
    ));
    serve_http1(io, state).await;
}

/// HTTP/1.1 over `io` (plain or TLS): the inline path while its requests are the inline
/// path's, then hyper for the rest of the connection.
async fn serve_http1<IO: LastWord + 'static>(io: RejectingIo<IO>, mut state: ConnectionState) {
    let (io, unserved) = match inline_h1::serve(io, &mut state).await {
        Some(handover) => handover,
        None => return,
    };
    Box::pin(serve_h1(Rewind::new(unserved, io), state)).await;
}

/// Serves the rest of the connection with hyper's HTTP/1.1; `io` starts at a request head.
async fn serve_h1<IO>(io: IO, state: ConnectionState)
where
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let service = {
        let (ctx, clock, peer) = (state.ctx.clone(), state.clock.clone(), state.peer);
        let head_clock = state.head_clock.clone();
        service_fn(move |req| {
            // The guard's clock already read when this request's head began to arrive.
            let started = head_clock.last_head_started();
            respond(ctx.clone(), clock.clone(), peer, req, started)
        })
    };
    let server = &state.ctx.config.server;
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
    drive(conn, |conn| conn.graceful_shutdown(), state).await;
}

/// Serves the connection with hyper's HTTP/2 (`io` starts at the client's preface).
async fn serve_h2<IO>(io: IO, state: ConnectionState)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let service = {
        let (ctx, clock, peer) = (state.ctx.clone(), state.clock.clone(), state.peer);
        let head_clock = state.head_clock.clone();
        service_fn(move |req| {
            // HTTP/2 frames its own requests: the head clock only bounds the first one.
            head_clock.stop();
            let started = ctx.metrics.is_some().then(Instant::now);
            respond(ctx.clone(), clock.clone(), peer, req, started)
        })
    };
    let conn = h2::builder(&state.ctx.config.server).serve_connection(io, service);
    tokio::pin!(conn);
    drive(conn, |conn| conn.graceful_shutdown(), state).await;
}

/// One request: the service's response, with its body tracked to its end.
async fn respond(
    ctx: Rc<WorkerContext>,
    clock: Rc<IdleClock>,
    peer: Peer,
    req: Request<Incoming>,
    started: Option<Instant>,
) -> Result<Response<TrackedBody>, Infallible> {
    clock.request_started();
    let mut in_flight = InFlight(ctx.metrics);
    if let Some(m) = ctx.metrics {
        m.request_started();
    }
    let mut record = ctx
        .access_log
        .as_ref()
        .map(|log| log.capture(&req, peer.remote));
    let label = record.as_mut().and_then(AccessRecord::route_label);
    let mut slot = UNROUTED;
    let response = serve(&ctx, peer, req, label, &mut slot).await;
    let status = response.status().as_u16();
    in_flight.0 = None; // `Finish` ends it now
    let finish = Finish {
        ctx,
        clock,
        record,
        status,
        slot,
        started,
        sent: 0,
        length: body_length(&response),
    };
    Ok(response.map(|body| TrackedBody {
        body,
        finish: Some(finish),
    }))
}

/// Runs a hyper connection (HTTP/1.1 or HTTP/2) to its end, shutting it down gracefully
/// (`shutdown`) on drain or keep-alive timeout, and dropping it on a header-read timeout.
async fn drive<C, E>(mut conn: Pin<&mut C>, shutdown: impl Fn(Pin<&mut C>), state: ConnectionState)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let ConnectionState {
        peer,
        mut draining,
        head_clock,
        clock,
        timer: timeouts,
        ..
    } = state;
    // Draining: hyper's graceful shutdown closes an idle connection at once, so it waits until
    // the connection's first request has started (a fresh connection's client has most
    // likely sent it already; the header timeout bounds the wait).
    let mut drain_seen = *draining.borrow();
    let mut evict_seen = false;
    let mut closing = drain_seen && !clock.fresh();
    if closing {
        shutdown(conn.as_mut());
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
                    shutdown(conn.as_mut());
                }
            }
            _ = tokio::time::sleep(FIRST_REQUEST_POLL), if drain_seen && !closing => {
                if !clock.fresh() {
                    closing = true;
                    shutdown(conn.as_mut());
                }
            }
            _ = clock.evicted(), if !evict_seen => {
                evict_seen = true;
                if clock.idle() {
                    tracing::debug!("{}: evicted to make room", peer.remote);
                    return;
                }
                if !closing {
                    closing = true; // a request started meanwhile: close after it
                    shutdown(conn.as_mut());
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
                        shutdown(conn.as_mut());
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

/// A request counted in flight until its response exists (then `Finish` ends it); dropped
/// before (the client went away while the handler ran), it ends the count uncounted.
struct InFlight(Option<WorkerMetrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = self.0 {
            m.request_abandoned();
        }
    }
}

/// Runs once per response, when its body ends or is dropped (client gone).
struct Finish {
    ctx: Rc<WorkerContext>,
    clock: Rc<IdleClock>,
    record: Option<AccessRecord>,
    status: u16,
    /// The route's metrics label slot, and when the request began (its head, or HTTP/2's
    /// dispatch when metrics are on).
    slot: u16,
    started: Option<Instant>,
    sent: u64,
    /// The body's length when known up front: hyper may drop such a body once that many
    /// bytes went out, without polling it to its end.
    length: Option<u64>,
}

impl Finish {
    fn run(self, complete: bool) {
        let finished = self.clock.response_finished();
        self.ctx.recycle.request_done();
        if let Some(m) = self.ctx.metrics {
            let elapsed = match self.started {
                Some(start) => finished
                    .unwrap_or_else(Instant::now)
                    .saturating_duration_since(start),
                None => std::time::Duration::ZERO,
            };
            m.request_done(self.slot, self.status, elapsed);
        }
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
