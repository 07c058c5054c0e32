//! The inline path: HTTP/1.1 keep-alive served without hyper, for the requests a Python app on
//! the event loop answers most (plain `GET`s).
//!
//! Owns: a connection's life while its requests are the inline path's — reading what the
//! `guard` has already validated into one buffer, taking each whole head from it (`request`),
//! routing it, calling the app through `service::run_handler` (the same call hyper's path
//! makes), and writing every response of the buffer's requests with one `write` (`response`).
//! The first request it does not serve (a body, another method or version, a WASM or static
//! route, ...) ends it: the connection goes to hyper with every byte from that request on, for
//! the rest of its life. Also the header-read and keep-alive timeouts, draining, and the
//! access log of its requests. Must not touch: the strict checks (`guard` made them before any
//! byte reaches here), routing rules (`router`), or what the app does (`python`).
//!
//! Why: hyper's general machinery (dispatcher, header maps both ways, encoder) was most of
//! the server's own 9% of a worker's CPU on a Flask endpoint, against bjoern's 2% (issue 12).

mod request;
mod response;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::header::CONNECTION;
use http::{Response, StatusCode};
use http_body::{Body, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::access_log::AccessRecord;
use super::connection_state::ConnectionState;
use super::handler::Handler;
use super::idle_clock::Expired;
use super::rejecting_io::RejectingIo;
use super::service::{request_host, run_handler, strip_job_headers, Target};
use crate::body::{plain, BoxError, ResponseBody};
use crate::http_path::percent_decode;
use crate::spool::SpooledBody;
use request::{Head, InlineHead};
use response::write_head;

/// The connection and the bytes read but not served, for hyper to go on with.
pub type Handover = (RejectingIo, Vec<u8>);

/// Output is written once this much of it is buffered, even mid-response.
const FLUSH_AT: usize = 64 * 1024;

/// Serves `io` while its requests are the inline path's. `None`: the connection is over;
/// `Some`: hyper serves the rest, starting with the handed-over bytes.
pub async fn serve(mut io: RejectingIo, state: &mut ConnectionState) -> Option<Handover> {
    let read_room = state.ctx.config.server.max_header_size.max(8192) + 1024;
    let mut input: Vec<u8> = Vec::with_capacity(read_room);
    let mut output: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut served = 0usize;
    let sleep = state.timer.sleep();
    tokio::pin!(sleep);
    loop {
        // Every whole head already read is answered before the next read (pipelining).
        loop {
            match request::parse(&input[served..]) {
                Head::Partial => break,
                Head::Other => {
                    flush(&mut io, &mut output).await.ok()?;
                    input.drain(..served);
                    return Some((io, input));
                }
                Head::Inline(head) => {
                    let len = head.len;
                    match answer(&mut io, state, *head, &mut output).await {
                        Answered::Continue => served += len,
                        Answered::Close => return close(io, &mut output).await,
                        Answered::NotInline => {
                            flush(&mut io, &mut output).await.ok()?;
                            input.drain(..served);
                            return Some((io, input));
                        }
                    }
                }
            }
        }
        flush(&mut io, &mut output).await.ok()?;
        input.drain(..served);
        served = 0;
        if *state.draining.borrow() {
            // Draining: every whole request read has been answered; a head still arriving
            // is not waited for (as hyper's graceful shutdown).
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
            changed = state.draining.changed() => {
                if changed.is_err() {
                    return close(io, &mut output).await; // the worker is gone: drain too
                }
            }
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

/// What answering one request left the connection to do.
enum Answered {
    Continue,
    Close,
    /// The request's route is not served here: hyper takes over before it.
    NotInline,
}

/// Routes one request and, when its route is a Python app, answers it into `output`.
async fn answer(
    io: &mut RejectingIo,
    state: &ConnectionState,
    head: InlineHead,
    output: &mut Vec<u8>,
) -> Answered {
    let InlineHead {
        mut parts,
        close: client_closes,
        ..
    } = head;
    let ctx = &state.ctx;
    let peer = state.peer;
    strip_job_headers(&mut parts.headers);
    let path = percent_decode(parts.uri.path().as_bytes());
    if path.contains(&0) {
        return Answered::NotInline; // hyper's path answers it (400)
    }
    let server_name = request_host(&parts, peer);
    let router = ctx.router();
    let record = ctx
        .access_log
        .is_some()
        .then(|| AccessRecord::from_parts(&parts, peer.remote));
    state.clock.request_started();
    let response = match router.find(&server_name, &path) {
        None => plain(StatusCode::NOT_FOUND, "Not Found\n"),
        Some(matched) if matches!(matched.route.handler, Handler::Python(_)) => {
            let target = Target {
                route: matched.route,
                path: path.into_owned(),
                path_info_start: matched.path_info_start,
                server_name,
            };
            run_handler(ctx, peer, target, parts, SpooledBody::Empty, None).await
        }
        Some(_) => {
            state.clock.response_finished();
            return Answered::NotInline;
        }
    };
    let status = response.status().as_u16();
    let closing = client_closes || *state.draining.borrow();
    let sent = send(io, response, output, closing).await;
    state.clock.response_finished();
    if let (Some(log), Some(record)) = (&ctx.access_log, &record) {
        log.write(record, status, sent.complete.then_some(sent.bytes));
    }
    if sent.keep_alive {
        Answered::Continue
    } else {
        Answered::Close
    }
}

/// How a response went.
struct Sent {
    bytes: u64,
    complete: bool,
    keep_alive: bool,
}

/// Writes `response` into `output`, flushing to `io` when the body is not ready yet or much is
/// buffered. The body (and what it holds, such as a request's deferred calls) is dropped
/// after its last byte was handed to the socket or buffered for the next flush.
async fn send(
    io: &mut RejectingIo,
    response: Response<ResponseBody>,
    output: &mut Vec<u8>,
    closing: bool,
) -> Sent {
    let app_closes = response
        .headers()
        .get_all(CONNECTION)
        .iter()
        .any(|value| has_close_token(value.as_bytes()));
    let mut framing = write_head(output, &response, closing);
    let mut body = response.into_body();
    let mut sent = Sent {
        bytes: 0,
        complete: false,
        keep_alive: false,
    };
    loop {
        let frame = match poll_now(&mut body) {
            Some(frame) => frame,
            None => {
                if flush(io, output).await.is_err() {
                    return sent;
                }
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        match frame {
            None => break,
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                sent.bytes += data.len() as u64;
                if !framing.append(output, &data) {
                    return sent;
                }
                if output.len() >= FLUSH_AT && flush(io, output).await.is_err() {
                    return sent;
                }
            }
            Some(Err(_)) => return sent, // the app failed mid-body: cut the connection
        }
    }
    sent.complete = framing.finish(output);
    sent.keep_alive = sent.complete && !app_closes && !closing;
    if matches!(body, ResponseBody::Guarded(..)) {
        // What the body holds (a request's deferred calls) is released once the response
        // has left, as on hyper's path.
        let _ = flush(io, output).await;
    }
    sent
}

/// The body's next frame if it is ready now; `None` when it would wait.
fn poll_now(body: &mut ResponseBody) -> Option<Option<Result<Frame<Bytes>, BoxError>>> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(body).poll_frame(&mut cx) {
        Poll::Ready(frame) => Some(frame),
        Poll::Pending => None,
    }
}

fn has_close_token(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

async fn flush(io: &mut RejectingIo, output: &mut Vec<u8>) -> io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    let written = io.write_all(output).await;
    output.clear();
    written
}

/// Writes what is buffered, then ends the connection (writing the guard's refusal first, if
/// it refused a head).
async fn close(mut io: RejectingIo, output: &mut Vec<u8>) -> Option<Handover> {
    if flush(&mut io, output).await.is_ok() {
        let _ = io.shutdown().await;
    }
    None
}
