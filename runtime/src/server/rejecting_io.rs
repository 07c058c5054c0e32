//! The client socket as both connection loops see it: the strict `guard` on the read side, and
//! on the write side the guard's refusal (`400 Bad Request`, `431`, ...) written before the
//! connection closes, after every earlier pipelined response.
//!
//! Owns: `RejectingIo`. Must not touch: parsing, requests or responses (it only passes bytes
//! through and writes the refusal the guard made).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::guard::GuardedIo;

/// The guarded socket, plus: when hyper closes the connection after the guard refused a
/// request head, the refusal (e.g. `400 Bad Request`) is written first.
pub struct RejectingIo {
    inner: GuardedIo<TcpStream>,
    pending: Option<(Vec<u8>, usize)>,
}

impl RejectingIo {
    pub fn new(inner: GuardedIo<TcpStream>) -> RejectingIo {
        RejectingIo {
            inner,
            pending: None,
        }
    }

    /// The socket, for writes that bypass the byte stream (sendfile of a file region).
    pub fn socket(&self) -> &TcpStream {
        self.inner.get_ref()
    }

    fn poll_write_rejection(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_none() {
            self.pending = self.inner.take_rejection().map(|r| (r.to_http_bytes(), 0));
        }
        while let Some((bytes, written)) = &mut self.pending {
            if *written >= bytes.len() {
                self.pending = Some((Vec::new(), 0));
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => break,
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(_)) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for RejectingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RejectingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.poll_write_rejection(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl Drop for RejectingIo {
    /// If hyper ended without a clean shutdown, still tell the client why (best effort: the
    /// refusal is small and the socket buffer is empty by then).
    fn drop(&mut self) {
        if self.pending.is_none() {
            if let Some(rejection) = self.inner.take_rejection() {
                let _ = self.inner.get_mut().try_write(&rejection.to_http_bytes());
            }
        }
    }
}
