//! Strict RFC 9112 framing validation of the inbound HTTP/1.1 byte stream.
//!
//! [`GuardedIo`] sits between the client socket and hyper. It owns *framing*: it follows
//! message boundaries itself (head, then a Content-Length or chunked body, then the next head,
//! so keep-alive and pipelining work), buffers each request head until its final CRLFCRLF,
//! validates the whole head, and only then lets hyper read it. Body bytes are passed through
//! as soon as their framing is known to be valid; chunk-size lines, chunk CRLFs and trailers
//! are validated on the way (a trailer field that `field_rules` forbids stops the body).
//!
//! What it must not touch: it never interprets routes, never looks at the content of bodies,
//! and never writes to the client. A rejected head is reported through
//! [`GuardedIo::take_rejection`]; the connection code writes [`Rejection::to_http_bytes`].
//! The write half is a plain pass-through. Before the first read, the connection code may
//! read ahead and look at the first bytes (is it HTTP/2's preface?): `read_ahead` leaves them
//! buffered and unchecked, to be checked when read, or handed back by `into_parts`.
//!
//! Files: `scan` (limits, rejections and the parse state, shared by the guard and its grammar),
//! `grammar` (pure checks of lines and fields), this file (buffering and framing over the I/O).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::field_rules::{is_forbidden_trailer, FORBIDDEN_TRAILER_REASON};

mod grammar;
mod scan;
use grammar::*;
pub(crate) use grammar::{is_valid_host, parse_decimal};
use scan::*;
pub use scan::{GuardLimits, Rejection};

/// A client connection whose read side only yields bytes of validly framed requests.
///
/// Reads return validated bytes in order; after a rejected head they return EOF forever
/// (see [`GuardedIo::take_rejection`]); after bad chunked framing they return
/// `io::ErrorKind::InvalidData` forever. Writes go straight to the inner IO.
pub struct GuardedIo<IO> {
    io: IO,
    limits: GuardLimits,
    /// Read-ahead storage: `[pos, ready)` is validated and not yet released,
    /// `[ready, end)` has been received but not yet validated.
    buf: Vec<u8>,
    pos: usize,
    ready: usize,
    end: usize,
    state: State,
    head: HeadScan,
    /// Offset (from the current line start) where the LF search resumes.
    scan: usize,
    halt: Option<Fail>,
    rejection: Option<Rejection>,
    eof: bool,
    clock: HeadClock,
}

/// When the request head now being received started to arrive (`None` while no head is in
/// progress), and when the last complete one did. Shared with the connection, which enforces
/// the header-read timeout with it: one timer per connection instead of one per request; the
/// metrics time a request from its head's start with it (no second clock read).
#[derive(Debug, Clone, Default)]
pub struct HeadClock(std::rc::Rc<HeadTimes>);

#[derive(Debug, Default)]
pub struct HeadTimes {
    current: std::cell::Cell<Option<std::time::Instant>>,
    last: std::cell::Cell<Option<std::time::Instant>>,
}

impl HeadClock {
    /// A clock already running: a new connection owes its first head from now on.
    pub fn started_now() -> HeadClock {
        let clock = HeadClock::default();
        clock.0.current.set(Some(std::time::Instant::now()));
        clock
    }

    /// When the head in progress started, if one is.
    pub fn head_started(&self) -> Option<std::time::Instant> {
        self.0.current.get()
    }

    /// When the last complete head started to arrive (a new connection's first: when it was
    /// accepted).
    pub fn last_head_started(&self) -> Option<std::time::Instant> {
        self.0.last.get()
    }

    fn start(&self, at: std::time::Instant) {
        self.0.current.set(Some(at));
    }

    fn head_done(&self) {
        if let Some(at) = self.0.current.take() {
            self.0.last.set(Some(at));
        }
    }

    /// No head is in progress any more (HTTP/2: the first request arrived; later ones are
    /// framed by h2, with no per-head clock).
    pub fn stop(&self) {
        self.head_done();
    }
}

impl<IO> GuardedIo<IO> {
    /// Wraps a fresh connection; the first bytes must start a request.
    pub fn new(io: IO, limits: GuardLimits) -> Self {
        Self::with_clock(io, limits, HeadClock::default())
    }

    /// Like `new`, reporting head progress on `clock`.
    pub fn with_clock(io: IO, limits: GuardLimits, clock: HeadClock) -> Self {
        Self {
            io,
            limits,
            buf: vec![0; INITIAL_BUF],
            pos: 0,
            ready: 0,
            end: 0,
            state: State::Head,
            head: HeadScan::default(),
            scan: 0,
            halt: None,
            rejection: None,
            eof: false,
            clock,
        }
    }

    /// The rejection of a bad request head, if one happened (taken at most once).
    pub fn take_rejection(&mut self) -> Option<Rejection> {
        self.rejection.take()
    }

    /// The inner IO, to write to it. Reading from it directly bypasses (and desynchronizes)
    /// the guard.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The inner IO. Reading from it directly bypasses (and desynchronizes) the guard.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// The inner IO; bytes buffered but not yet released are dropped.
    pub fn into_inner(self) -> IO {
        self.io
    }

    /// The bytes read ahead (`read_ahead`) and not yet released to the reader, unchecked.
    pub fn read_ahead_bytes(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    /// The inner IO and the bytes read ahead of the reader, for a protocol the guard does not
    /// check (HTTP/2 with prior knowledge, recognised from the first bytes).
    pub fn into_parts(self) -> (IO, Vec<u8>) {
        let unread = self.read_ahead_bytes().to_vec();
        (self.io, unread)
    }

    /// Moves to `next`; entering `Head` starts a fresh head scan.
    fn set_state(&mut self, next: State) {
        if self.state == State::Head {
            self.clock.head_done(); // the head is complete
        }
        self.state = next;
        self.scan = 0;
        if next == State::Head {
            self.head = HeadScan::default();
        }
    }

    /// Accounts for `n` body bytes released (from the buffer or read directly).
    fn consumed(&mut self, n: u64) {
        let next = match self.state {
            State::Length(rem) if rem > n => State::Length(rem - n),
            State::ChunkData(rem) if rem > n => State::ChunkData(rem - n),
            State::Length(_) => State::Head,
            State::ChunkData(_) => State::ChunkCrlf,
            _ => return,
        };
        self.set_state(next);
    }

    /// Validates as much buffered input as possible, recording a halt on violation.
    fn run(&mut self) {
        if self.state == State::Head && self.end > self.ready && self.clock.head_started().is_none()
        {
            self.clock.start(std::time::Instant::now());
        }
        loop {
            let step = match self.state {
                State::Head => self.step_head(),
                State::Length(rem) | State::ChunkData(rem) => Ok(self.step_data(rem)),
                State::ChunkSize | State::Trailers => self.step_body_line(),
                State::ChunkCrlf => self.step_chunk_crlf(),
            };
            match step {
                Ok(true) => {}
                Ok(false) => return,
                Err(failure) => {
                    if let Fail::Head(rejection) = failure {
                        self.rejection = Some(rejection);
                    }
                    self.halt = Some(failure);
                    return;
                }
            }
        }
    }

    fn step_data(&mut self, rem: u64) -> bool {
        let avail = (self.end - self.ready) as u64;
        if avail == 0 {
            return false;
        }
        let n = avail.min(rem);
        self.ready += n as usize; // n <= avail, which came from a usize
        self.consumed(n);
        true
    }

    fn step_head(&mut self) -> Result<bool, Fail> {
        loop {
            let start = self.head.line_start;
            let raw = self.buf.get(self.ready + start..self.end).unwrap_or(&[]);
            let limit = self.limits.max_header_size.saturating_sub(start);
            let (line, used) = match find_line(raw, &mut self.scan, limit) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(false),
                Err(LineErr::BareLf) => return Err(bad("bare LF in request head")),
                Err(LineErr::TooLong) => return Err(fail(431, "request header section too large")),
            };
            let head = &mut self.head;
            if !head.seen_request_line {
                if line.is_empty() {
                    head.leading_empty += 1;
                    if head.leading_empty > MAX_LEADING_EMPTY_LINES {
                        return Err(bad("too many empty lines before the request-line"));
                    }
                    self.drop_leading_crlf();
                    continue;
                }
                check_request_line(line, head)?;
                head.seen_request_line = true;
            } else if line.is_empty() {
                let size = start + used;
                head.bytes = size;
                let next = finish_head(head)?;
                self.ready += size;
                self.set_state(next);
                return Ok(true);
            } else {
                head.fields += 1;
                if head.fields > self.limits.max_headers {
                    return Err(fail(431, "too many header fields"));
                }
                let (name, value) = parse_field(line).map_err(bad)?;
                check_header(name, value, head)?;
            }
            head.line_start = start + used;
        }
    }

    /// Drops the CRLF at `ready` (an empty line before a request-line).
    fn drop_leading_crlf(&mut self) {
        if self.ready == self.pos {
            self.pos += 2;
            self.ready += 2;
        } else {
            self.buf.copy_within(self.ready + 2..self.end, self.ready);
            self.end -= 2;
        }
        self.scan = 0;
    }

    fn step_chunk_crlf(&mut self) -> Result<bool, Fail> {
        match self.buf.get(self.ready..self.end).unwrap_or(&[]) {
            [] | [b'\r'] => Ok(false),
            [b'\r', b'\n', ..] => {
                self.ready += 2;
                self.set_state(State::ChunkSize);
                Ok(true)
            }
            _ => Err(Fail::Body("chunk data not followed by CRLF")),
        }
    }

    /// A chunk-size line or a trailer line, each released once validated.
    fn step_body_line(&mut self) -> Result<bool, Fail> {
        let trailer = self.state == State::Trailers;
        let limit = match trailer {
            true => self.limits.max_header_size.saturating_sub(self.head.bytes),
            false => MAX_CHUNK_LINE + 2,
        };
        let raw = self.buf.get(self.ready..self.end).unwrap_or(&[]);
        let (line, used) = match find_line(raw, &mut self.scan, limit) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(false),
            Err(LineErr::BareLf) => return Err(Fail::Body("bare LF in chunked body")),
            Err(LineErr::TooLong) if trailer => {
                return Err(Fail::Body("trailer section too large"))
            }
            Err(LineErr::TooLong) => return Err(Fail::Body("chunk-size line too long")),
        };
        let next = if !trailer {
            match parse_chunk_line(line).map_err(Fail::Body)? {
                0 => State::Trailers,
                size => State::ChunkData(size),
            }
        } else if line.is_empty() {
            State::Head
        } else {
            self.head.fields += 1;
            if self.head.fields > self.limits.max_headers {
                return Err(Fail::Body("too many trailer fields"));
            }
            let (name, _) = parse_field(line).map_err(Fail::Body)?;
            if is_forbidden_trailer(name) {
                return Err(Fail::Body(FORBIDDEN_TRAILER_REASON));
            }
            self.head.bytes = self.head.bytes.saturating_add(used);
            State::Trailers
        };
        self.ready += used;
        self.set_state(next);
        Ok(true)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> GuardedIo<IO> {
    /// Reads once more into the read-ahead buffer, to look at the first bytes before they are
    /// checked (`read_ahead_bytes`); they are checked and released as ever when read. `false`
    /// at end of stream.
    pub async fn read_ahead(&mut self) -> io::Result<bool> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await?;
        Ok(!self.eof)
    }

    /// Reads more input into the read-ahead buffer (sets `eof` on end of stream).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.ready -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len().saturating_mul(2).max(INITIAL_BUF);
            self.buf.resize(grown, 0);
        }
        let mut rb = ReadBuf::new(self.buf.get_mut(self.end..).unwrap_or(&mut []));
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        if self.end == self.buf.len() && self.buf.len() < FULL_READ_AHEAD {
            // A read that filled the buffer: the client sends more than heads (bodies,
            // pipelining), so later reads take more at a time.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Poll::Ready(Ok(()))
    }

    /// Reads body bytes straight into `dst`, at most `rem` of them.
    fn poll_direct(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
        rem: u64,
    ) -> Poll<io::Result<()>> {
        let limit = usize::try_from(rem)
            .unwrap_or(usize::MAX)
            .min(dst.remaining());
        let n = {
            let mut sub = dst.take(limit);
            let origin = sub.filled().as_ptr();
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut sub))?;
            if sub.filled().as_ptr() != origin {
                return Poll::Ready(Err(io::Error::other("inner reader swapped the buffer")));
            }
            sub.filled().len()
        };
        // SAFETY: `sub` covered the start of `dst`'s unfilled region (same pointer, checked
        // above), and the inner reader filled - hence initialized - its first `n` bytes.
        unsafe { dst.assume_init(n) };
        dst.advance(n);
        if n == 0 {
            self.eof = true;
        } else {
            self.consumed(n as u64);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if dst.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.halt.is_none() {
                this.run();
            }
            if this.ready > this.pos {
                let n = (this.ready - this.pos).min(dst.remaining());
                dst.put_slice(this.buf.get(this.pos..this.pos + n).unwrap_or(&[]));
                this.pos += n;
                if this.pos == this.end {
                    (this.pos, this.ready, this.end) = (0, 0, 0);
                }
                return Poll::Ready(Ok(()));
            }
            match this.halt {
                Some(Fail::Head(_)) => return Poll::Ready(Ok(())),
                Some(Fail::Body(reason)) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, reason)))
                }
                None if this.eof => return Poll::Ready(Ok(())),
                None => {}
            }
            if this.ready == this.end {
                if let State::Length(rem) | State::ChunkData(rem) = this.state {
                    return this.poll_direct(cx, dst, rem);
                }
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
