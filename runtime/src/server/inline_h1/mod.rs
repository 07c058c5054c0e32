//! The inline path: HTTP/1.1 keep-alive served without hyper, for the requests a Python app on
//! the event loop (`--threads 1`), a static route or a WASM route answers most (plain `GET`s).
//! Every HTTP/1.1 connection starts here; one to a Python app on worker threads goes to hyper
//! at its first request to it.
//!
//! Owns: a connection's life while its requests are the inline path's — reading what the
//! `guard` has already validated into one buffer, taking each whole head from it (`request`),
//! routing it, building the app's environ straight from the head's bytes and calling the app
//! (`WsgiHost::reply_now`), the static route (`head_parts`) or the WASM route (`wasm_get`,
//! awaiting its guest), and writing every response of the buffer's requests with one `write`
//! (`reply`, `response`; a large file with sendfile).
//! The first request it does not serve (a body, another method or version, a canary, ...)
//! ends it: the connection goes to hyper with every byte from that request on, for
//! the rest of its life. Also the header-read and keep-alive timeouts, draining, and the
//! access log and metrics of its requests. Must not touch: the strict checks (`guard` made them before any
//! byte reaches here), routing rules (`router`), or what the app does (`python`).
//!
//! Why: hyper's general machinery (dispatcher, header maps both ways, encoder) was most of
//! the server's own 9% of a worker's CPU on a Flask endpoint, against bjoern's 2% (issue 12),
//! and on a WASM hello it cost more than the guest's own code (issue 13).

mod head_parts;
mod mirrored;
mod reply;
mod request;
mod response;
mod wasm_get;

use std::borrow::Cow;
use std::time::Instant;

use http::{HeaderValue, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::access_log::AccessRecord;
use super::compress::{self, Negotiation};
use super::connection_state::ConnectionState;
use super::handler::Handler;
use super::handler_run::Site;
use super::idle_clock::Expired;
use super::migrating;
use super::peer::Peer;
use super::rejecting_io::{LastWord, RejectingIo};
use super::service::host_name;
use crate::body::plain;
use crate::http_path::percent_decode;
use crate::metrics::labels::UNROUTED;
use crate::python::{FieldSpan, RawGet, Reply};
use crate::router::Route;
use crate::spool::SpooledBody;
use reply::{flush, send};
use request::{Head, InlineHead};

/// The connection and the bytes read but not served, for hyper to go on with.
pub type Handover<IO> = (RejectingIo<IO>, Vec<u8>);

/// Serves `io` (a plain socket, or a TLS stream after its handshake) while its requests are
/// the inline path's. `None`: the connection is over; `Some`: hyper serves the rest, starting
/// with the handed-over bytes.
pub async fn serve<IO: LastWord>(
    mut io: RejectingIo<IO>,
    state: &mut ConnectionState,
) -> Option<Handover<IO>> {
    let read_room = state.ctx.config.server.max_header_size.max(8192) + 1024;
    let mut input: Vec<u8> = Vec::with_capacity(read_room);
    let mut output: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut served = 0usize;
    let mut fields: Vec<FieldSpan> = Vec::with_capacity(16);
    let sleep = state.timer.sleep();
    tokio::pin!(sleep);
    // One wait for the drain signal for the connection's whole life: a new `changed()` per
    // read would join and leave the signal's waiter list (two locks) on every request.
    let mut drain_signal = state.draining.clone();
    let drain_started = drain_signal.changed();
    tokio::pin!(drain_started);
    // Likewise one wait for an eviction (a `Notified` made and dropped per read is a lock on
    // the clock's waiter list each way).
    let clock = state.clock.clone();
    let evicted = clock.evicted();
    tokio::pin!(evicted);
    loop {
        // Every whole head already read is answered before the next read (pipelining).
        loop {
            let buf = &input[served..];
            let answered = match request::parse(buf, &mut fields) {
                Head::Partial => break,
                Head::Other => Answered::NotInline,
                Head::Inline(head) => {
                    let request = Request {
                        buf,
                        head,
                        fields: &fields,
                    };
                    match answer(&mut io, state, request, &mut output).await {
                        Answered::Continue => {
                            served += head.len;
                            continue;
                        }
                        other => other,
                    }
                }
            };
            if matches!(answered, Answered::Close) {
                return close(io, &mut output).await;
            }
            // The head at `served` is whole: hyper answers it even if a drain starts now.
            state.clock.request_pending();
            return hand_over(io, input, served, &mut output).await;
        }
        flush(&mut io, &mut output).await.ok()?;
        input.drain(..served);
        served = 0;
        if *state.draining.borrow() && !state.clock.fresh() {
            // Draining: every whole request read has been answered; a head still arriving
            // is not waited for (as hyper's graceful shutdown), except the first one of a
            // connection, which its client has most likely sent already (bounded by the
            // header timeout).
            return close(io, &mut output).await;
        }
        if input.capacity() - input.len() < read_room / 2 {
            input.reserve(read_room);
        }
        tokio::select! {
            biased;
            read = io.read_buf(&mut input) => match read {
                Ok(0) => return close(io, &mut output).await,
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!("connection from {}: {err}", state.peer.remote);
                    return None;
                }
            },
            // Whether the signal changed or its sender is gone (the worker is going), this
            // connection drains: what is buffered is answered, then it closes.
            _ = drain_started.as_mut(), if !state.clock.fresh() => {
                return close(io, &mut output).await
            }
            // Evicted to make room for a new connection: between requests here, by
            // construction (each request is answered before the next read).
            _ = evicted.as_mut() => return close(io, &mut output).await,
            _ = sleep.as_mut() => {
                match state.timer.fired(&state.clock, &state.head_clock, sleep.as_mut()) {
                    Expired::Head => {
                        tracing::debug!("{}: request head not received in time", state.peer.remote);
                        return None; // slowloris: drop the connection
                    }
                    Expired::Idle => return close(io, &mut output).await,
                    Expired::Neither => {}
                }
            }
        }
    }
}

/// Writes what is buffered and gives hyper the connection with the bytes from the first
/// request not served here on.
async fn hand_over<IO: LastWord>(
    mut io: RejectingIo<IO>,
    mut input: Vec<u8>,
    served: usize,
    output: &mut Vec<u8>,
) -> Option<Handover<IO>> {
    flush(&mut io, output).await.ok()?;
    input.drain(..served);
    Some((io, input))
}

/// One parsed head and the buffer it lies in.
struct Request<'a> {
    buf: &'a [u8],
    head: InlineHead,
    fields: &'a [FieldSpan],
}

impl<'a> Request<'a> {
    /// The value of field number `index`.
    fn value_of(&self, index: Option<u16>) -> Option<&'a [u8]> {
        let span = self.fields.get(usize::from(index?))?;
        Some(span.value(self.buf))
    }

    /// The `Host` value (found while the head was split).
    fn host(&self) -> Option<&'a [u8]> {
        self.value_of(self.head.host)
    }

    /// The first `Accept-Encoding` value (found while the head was split).
    fn accept_encoding(&self) -> Option<&'a [u8]> {
        self.value_of(self.head.accept_encoding)
    }

    fn field(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|span| span.name(self.buf).eq_ignore_ascii_case(name))
            .map(|span| span.value(self.buf))
    }
}

/// What answering one request left the connection to do.
enum Answered {
    Continue,
    Close,
    /// The request's route is not served here: hyper takes over before it.
    NotInline,
}

/// Routes one request and, when its route is a Python app, a static directory or a WASM
/// handler, answers it into `output`.
async fn answer<IO: LastWord>(
    io: &mut RejectingIo<IO>,
    state: &ConnectionState,
    request: Request<'_>,
    output: &mut Vec<u8>,
) -> Answered {
    let (ctx, peer) = (&state.ctx, state.peer);
    let target = request.head.target(request.buf);
    // `?` is ASCII, so its byte offset is a char boundary.
    let raw_path = memchr::memchr(b'?', target.as_bytes()).map_or(target, |at| &target[..at]);
    let path = percent_decode(raw_path.as_bytes());
    if path.contains(&0) {
        return Answered::NotInline; // hyper's path answers it (400)
    }
    let server_name = server_name(&request, peer);
    let router = ctx.router();
    state.clock.request_started();
    if let Some(m) = ctx.metrics {
        m.request_started();
    }
    // Only a JSON access line reads the clock here (for `duration_ms`).
    let started = ctx.access_log.as_ref().filter(|log| log.is_json());
    let started = started.map(|_| Instant::now());
    let Some(matched) = router.find(&server_name, &path) else {
        let response = plain(StatusCode::NOT_FOUND, "Not Found\n");
        let logged = Logged::new(state, &request, None, started);
        return respond(io, state, &request, Reply::Server(response), output, logged).await;
    };
    let (app, migrating) = match &matched.route.handler {
        // Apps on worker threads (`--threads` above 1) are served through hyper's path.
        Handler::Python(_) | Handler::Migrating(_) if !ctx.wsgi.runs_inline() => {
            not_inline(state);
            return Answered::NotInline;
        }
        Handler::Python(app) => (app, None),
        // A shadow of a Python route runs from here too; a canary needs hyper's path.
        Handler::Migrating(m) => match migrating::inline_primary(m) {
            Some(app) => (app, Some(m)),
            None => {
                not_inline(state);
                return Answered::NotInline;
            }
        },
        Handler::Static(dir) => {
            let Some(parts) = head_parts::parts(request.buf, target, request.fields) else {
                not_inline(state);
                return Answered::NotInline;
            };
            let rel = path.get(matched.path_info_start..).unwrap_or_default();
            let response = dir.serve(&parts, rel).await;
            let reply = compressed(state, &request, matched.route, Reply::Server(response));
            let logged = Logged::new(state, &request, Some(matched.route), started);
            return respond(io, state, &request, reply, output, logged).await;
        }
        Handler::Wasm(wasm_route) => {
            let arrival = wasm_get::Arrival {
                peer,
                script_name: matched.route.script_name(),
                server_name: &server_name,
            };
            let guest = wasm_get::request(arrival, request.buf, target, request.fields);
            let (Some(host), Some(guest)) = (&ctx.wasm, guest) else {
                not_inline(state);
                return Answered::NotInline;
            };
            // Noted before the guest runs: the handler version is the one it runs on.
            let logged = Logged::new(state, &request, Some(matched.route), started);
            let response = host.handle(wasm_route, guest).await;
            let reply = compressed(state, &request, matched.route, Reply::Server(response));
            return respond(io, state, &request, reply, output, logged).await;
        }
    };
    let label = matched.route.prefix.as_str();
    let shadow_plan = match migrating {
        Some(m) => {
            let head = mirrored::Head {
                buf: request.buf,
                target,
                fields: request.fields,
            };
            let site = || Site {
                script_name: matched.route.script_name(),
                path: path.to_vec(),
                path_info_start: matched.path_info_start,
                server_name: server_name.to_string(),
            };
            mirrored::plan(ctx, m, label, head, site)
        }
        None => None,
    };
    let environ_source = RawGet {
        head: request.buf,
        fields: request.fields,
        target,
        path: &path,
        path_info_start: matched.path_info_start,
        server_name: &server_name,
        server_port: peer.local.port(),
        remote: peer.remote,
        https: peer.tls,
    };
    let reply = ctx.wsgi.reply_now(
        app,
        matched.route.script_name(),
        &environ_source,
        SpooledBody::Empty,
    );
    let reply = match shadow_plan {
        Some(plan) => mirrored::start(ctx, peer, label, plan, reply),
        None => reply,
    };
    // Let the other connections whose requests are ready run their apps before this response
    // is written: the responses then leave back to back, and a client busy reading one finds
    // the next without being woken again (libev servers such as bjoern get this by writing on
    // the next loop turn).
    let reply = compressed(state, &request, matched.route, reply);
    tokio::task::yield_now().await;
    let logged = Logged::new(state, &request, Some(matched.route), started);
    respond(io, state, &request, reply, output, logged).await
}

/// Undoes `answer`'s start of a request that hyper's path serves instead (and counts).
fn not_inline(state: &ConnectionState) {
    let _ = state.clock.response_finished();
    if let Some(m) = state.ctx.metrics {
        m.request_abandoned();
    }
}

/// What the access log and the metrics get from routing: the route's metrics label slot, and
/// the access record (taken when the request was routed, as on hyper's path: a JSON line's
/// route, tenant and handler version are those it was routed to).
struct Logged {
    slot: u16,
    record: Option<AccessRecord>,
}

impl Logged {
    /// For `request` routed to `route` (`None`: no route matched); `started` is when its head
    /// had been read, for a JSON line.
    fn new(
        state: &ConnectionState,
        request: &Request<'_>,
        route: Option<&Route<Handler>>,
        started: Option<Instant>,
    ) -> Logged {
        let record = state.ctx.access_log.as_ref().map(|log| {
            let target = request.head.target(request.buf);
            let fields = (request.field(b"referer"), request.field(b"user-agent"));
            log.record_get(target, fields, state.peer.remote, route, started)
        });
        Logged {
            slot: route.map_or(UNROUTED, |r| r.metrics_slot()),
            record,
        }
    }
}

/// The reply, compressed by the same rules as on hyper's path (`compress::apply`) when the
/// request has an `Accept-Encoding` field; a request without one keeps the direct reply.
fn compressed(
    state: &ConnectionState,
    request: &Request<'_>,
    route: &Route<Handler>,
    reply: Reply,
) -> Reply {
    let server = &state.ctx.config.server;
    let Some(accept) = request.accept_encoding() else {
        return reply;
    };
    if compress::route_codecs(server, route).is_empty() {
        return reply;
    }
    let accept = HeaderValue::from_bytes(accept).ok();
    let negotiation = Negotiation::for_route(server, route, accept, false);
    Reply::Server(compress::apply(&negotiation, reply.into_response()))
}

/// SERVER_NAME: the `Host` field without its port (as `service::request_host`), else the local
/// address.
fn server_name<'a>(request: &Request<'a>, peer: Peer) -> Cow<'a, str> {
    // The guard passed only RFC 3986 host bytes (visible ASCII), so this reads the value as
    // hyper's path does (`HeaderValue::to_str`); the ASCII check is the one `str` needs.
    let host = request.host().and_then(request::ascii_str);
    match host {
        Some(host) => Cow::Borrowed(host_name(host)),
        None => Cow::Owned(peer.local_ip().to_string()),
    }
}

/// Writes `reply`, logs it, and says whether the connection goes on.
async fn respond<IO: LastWord>(
    io: &mut RejectingIo<IO>,
    state: &ConnectionState,
    request: &Request<'_>,
    reply: Reply,
    output: &mut Vec<u8>,
    logged: Logged,
) -> Answered {
    let closing = request.head.close || *state.draining.borrow();
    let status = match &reply {
        Reply::App(head, _) => head.status.as_u16(),
        Reply::Server(response) => response.status().as_u16(),
    };
    let sent = send(io, reply, output, closing).await;
    let finished = state.clock.response_finished();
    state.ctx.recycle.request_done();
    if let Some(m) = state.ctx.metrics {
        m.request_done(logged.slot, status, state.elapsed(finished));
    }
    if let (Some(log), Some(record)) = (&state.ctx.access_log, &logged.record) {
        log.write(record, status, sent.complete.then_some(sent.bytes));
    }
    if sent.keep_alive {
        Answered::Continue
    } else {
        Answered::Close
    }
}

/// Writes what is buffered, then ends the connection (writing the guard's refusal first, if
/// it refused a head).
async fn close<IO: LastWord>(
    mut io: RejectingIo<IO>,
    output: &mut Vec<u8>,
) -> Option<Handover<IO>> {
    if flush(&mut io, output).await.is_ok() {
        let _ = io.shutdown().await;
    }
    None
}
