//! Drives the request-stream guard (`wsrun::server::guard::GuardedIo`) over an in-memory
//! client, without a runtime: the client never blocks, so every poll is ready.
//!
//! Owns: feeding bytes in pieces of a chosen size and collecting what the guard releases, how
//! the stream ended, and the rejection. Must not touch: properties (the targets check them).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wsrun::server::guard::{GuardLimits, GuardedIo, Rejection};

pub const LIMITS: GuardLimits = GuardLimits {
    max_header_size: 16 * 1024,
    max_headers: 100,
};

/// A client that sends `data` at most `step` bytes per read, then closes.
struct Feed {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Feed {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = (this.data.len() - this.at)
            .min(this.step)
            .min(buf.remaining());
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Feed {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What the guard made of one client stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The bytes released to the HTTP parser, in order.
    pub out: Vec<u8>,
    /// How reading ended: `None` for EOF, else the error kind and message.
    pub err: Option<(io::ErrorKind, String)>,
    pub rejection: Option<Rejection>,
}

/// Reads the guarded stream to its end; `step` is the client's write size, `read_size` the
/// size of the parser's reads.
pub fn drive(input: &[u8], step: usize, read_size: usize) -> Outcome {
    let feed = Feed {
        data: input.to_vec(),
        at: 0,
        step: step.max(1),
    };
    let mut guard = GuardedIo::new(feed, LIMITS);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut space = vec![0u8; read_size.max(1)];
    let err = loop {
        let mut buf = ReadBuf::new(&mut space);
        match Pin::new(&mut guard).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => break None,
            Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
            Poll::Ready(Err(e)) => break Some((e.kind(), e.to_string())),
            Poll::Pending => break Some((io::ErrorKind::WouldBlock, "pending".into())),
        }
        if out.len() > input.len() {
            break Some((
                io::ErrorKind::Other,
                "released more bytes than were sent".into(),
            ));
        }
    };
    Outcome {
        out,
        err,
        rejection: guard.take_rejection(),
    }
}

/// A short name for how the stream ended, used as the fuzz outcome class.
pub fn class(o: &Outcome) -> String {
    match (&o.rejection, &o.err) {
        (Some(r), _) => format!("reject {} {}", r.status, r.reason),
        (None, Some((_, msg))) => format!("error {msg}"),
        (None, None) => "eof".into(),
    }
}
