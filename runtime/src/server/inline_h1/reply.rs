//! Writing one reply of the inline path: its head, then its body as the body yields it.
//!
//! Owns: putting a reply's head and body into the connection's output buffer, writing the
//! buffer out when the body must be waited for or much is buffered, sending a large file body
//! with sendfile(2) (`FileRegion::sendfile_cached`) instead, and what the reply left
//! to do (its size, whether it was whole, whether the connection may go on). Must not touch:
//! how head bytes and framing are spelled (`response`), the request, or the app.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::header::CONNECTION;
use http_body::{Body, Frame};
use socket2::SockRef;
use tokio::io::{AsyncWriteExt, Interest};

use super::response::{write_head, write_response_head, Framing, HeadParts};
use crate::body::{BoxError, FileRegion, ResponseBody};
use crate::python::Reply;
use crate::server::rejecting_io::{LastWord, RejectingIo};

/// Output is written once this much of it is buffered, even mid-response.
const FLUSH_AT: usize = 64 * 1024;

/// A file body at least this large goes out with sendfile(2); a smaller one is copied into the
/// output buffer and leaves with its head in one `write` (one syscall, not a write and a
/// sendfile, and no page-cache probes).
const SENDFILE_AT: u64 = 64 * 1024;

/// How a response went.
pub struct Sent {
    pub bytes: u64,
    pub complete: bool,
    pub keep_alive: bool,
}

/// Writes the head of `reply` into `output`; returns how its body is framed, the body, and
/// whether the response itself ends the connection.
fn start(output: &mut Vec<u8>, reply: Reply, closing: bool) -> (Framing, ResponseBody, bool) {
    match reply {
        Reply::App(head, body) => {
            let fields = HeadParts {
                status: head.status,
                reason: head.reason.as_deref().map(str::as_bytes),
                fields: head.headers.iter(),
                exact: body.size_hint().exact(),
            };
            // The app's `Connection: close` is kept as `head.close`, not among its fields.
            let framing = write_head(output, fields, closing || head.close);
            (framing, body, head.close)
        }
        Reply::Server(response) => {
            let closes = response
                .headers()
                .get_all(CONNECTION)
                .iter()
                .any(|value| has_close_token(value.as_bytes()));
            let framing = write_response_head(output, &response, closing);
            (framing, response.into_body(), closes)
        }
    }
}

/// Writes `reply` into `output`, flushing to `io` when the body is not ready yet or much is
/// buffered. The body (and what it holds, such as a request's deferred calls) is dropped
/// after its last byte was handed to the socket or buffered for the next flush.
pub async fn send<IO: LastWord>(
    io: &mut RejectingIo<IO>,
    reply: Reply,
    output: &mut Vec<u8>,
    closing: bool,
) -> Sent {
    let (mut framing, mut body, reply_closes) = start(output, reply, closing);
    let mut sent = Sent {
        bytes: 0,
        complete: false,
        keep_alive: false,
    };
    let plain = io.plain_socket().is_some();
    if let (ResponseBody::File(region), true) = (&mut body, plain) {
        let whole = Framing::Length(region.len());
        if region.len() >= SENDFILE_AT && framing == whole {
            match send_file(io, region, output).await {
                Ok(n) => {
                    sent.bytes = n;
                    framing.sent_directly(n);
                }
                Err(err) => {
                    tracing::debug!("sending a file: {err}");
                    return sent;
                }
            }
        }
    }
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
    sent.keep_alive = sent.complete && !reply_closes && !closing;
    if matches!(body, ResponseBody::Guarded(..)) {
        // What the body holds (a request's deferred calls) is released once the response
        // has left, as on hyper's path.
        let _ = flush(io, output).await;
    }
    sent
}

/// Writes what `output` holds, then `region` with sendfile(2) from the page cache, or read
/// chunk by chunk (off the event loop) where the cache misses; returns the file bytes sent.
/// Only for a plain socket (`RejectingIo::plain_socket`). The socket is corked meanwhile
/// (nginx's `tcp_nopush`): the head and the file leave in full segments, and uncorking pushes
/// the last one.
async fn send_file<IO: LastWord>(
    io: &mut RejectingIo<IO>,
    region: &mut FileRegion,
    output: &mut Vec<u8>,
) -> io::Result<u64> {
    set_cork(io, true);
    let sent = send_file_corked(io, region, output).await;
    set_cork(io, false);
    sent
}

fn set_cork<IO: LastWord>(io: &RejectingIo<IO>, on: bool) {
    if let Some(socket) = io.plain_socket() {
        let _ = SockRef::from(socket).set_tcp_cork(on);
    }
}

async fn send_file_corked<IO: LastWord>(
    io: &mut RejectingIo<IO>,
    region: &mut FileRegion,
    output: &mut Vec<u8>,
) -> io::Result<u64> {
    flush(io, output).await?;
    let mut sent = 0u64;
    while !region.is_empty() {
        let Some(socket) = io.plain_socket() else {
            return Err(io::Error::other("sendfile needs the plain socket"));
        };
        socket.writable().await?;
        let fd = socket.as_raw_fd();
        match socket.try_io(Interest::WRITABLE, || region.sendfile_cached(fd)) {
            Ok(Some(n)) => sent += n as u64,
            Ok(None) => {
                let Some(chunk) = poll_fn(|cx| region.poll_chunk(cx)).await else {
                    break;
                };
                let chunk = chunk.map_err(io::Error::other)?;
                io.write_all(&chunk).await?;
                sent += chunk.len() as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(sent)
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

/// Writes what `output` holds to `io`, and empties it. Over TLS the stream is flushed too
/// (the TLS layer may hold records back when the socket would block); on a plain socket
/// that is a no-op.
pub async fn flush<IO: LastWord>(io: &mut RejectingIo<IO>, output: &mut Vec<u8>) -> io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    let written = io.write_all(output).await;
    output.clear();
    written?;
    if io.plain_socket().is_none() {
        io.flush().await?;
    }
    Ok(())
}
