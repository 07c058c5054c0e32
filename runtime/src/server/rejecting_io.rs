//! The client socket as both connection loops see it: the strict `guard` on the read side, and
//! on the write side the guard's refusal (`400 Bad Request`, `431`, ...) written before the
//! connection closes, after every earlier pipelined response.
//!
//! Owns: `RejectingIo` (over a plain socket, or a TLS stream for HTTP/1.1 over TLS) and
//! `LastWord`, how a refusal is still sent when the connection is dropped (and whether the
//! stream lends its plain socket, for sendfile). Must not touch:
//! parsing, requests or responses (it only passes bytes through and writes the refusal the
//! guard made).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::guard::GuardedIo;

/// A stream that can make a last, non-blocking attempt to write when it is dropped, and may
/// lend its plain socket for writes that bypass the byte stream.
pub trait LastWord: AsyncRead + AsyncWrite + Unpin {
    /// Writes what fits now, without waiting; errors are ignored.
    fn last_word(&mut self, bytes: &[u8]);

    /// The socket itself, when bytes written to it reach the client as they are (a plain
    /// connection: sendfile(2) of a file region may go straight to it); `None` over TLS.
    fn plain_socket(&self) -> Option<&TcpStream>;
}

impl LastWord for TcpStream {
    fn last_word(&mut self, bytes: &[u8]) {
        let _ = self.try_write(bytes);
    }

    fn plain_socket(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl LastWord for TlsStream<TcpStream> {
    /// Nothing: a TLS record cannot be written without waiting (a refusal over TLS is only
    /// sent on a clean shutdown, which hyper does after a refused head).
    fn last_word(&mut self, _: &[u8]) {}

    fn plain_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// The guarded socket, plus: when hyper closes the connection after the guard refused a
/// request head, the refusal (e.g. `400 Bad Request`) is written first.
pub struct RejectingIo<IO: LastWord = TcpStream> {
    inner: GuardedIo<IO>,
    pending: Option<(Vec<u8>, usize)>,
}

impl<IO: LastWord> RejectingIo<IO> {
    pub fn new(inner: GuardedIo<IO>) -> RejectingIo<IO> {
        RejectingIo {
            inner,
            pending: None,
        }
    }

    /// The plain socket, for writes that bypass the byte stream (sendfile of a file region on
    /// the inline path); `None` over TLS, where every byte goes through the TLS stream.
    pub fn plain_socket(&self) -> Option<&TcpStream> {
        self.inner.get_ref().plain_socket()
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

impl<IO: LastWord> AsyncRead for RejectingIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: LastWord> AsyncWrite for RejectingIo<IO> {
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

impl<IO: LastWord> Drop for RejectingIo<IO> {
    /// If hyper ended without a clean shutdown, still tell the client why (best effort: the
    /// refusal is small and the socket buffer is empty by then).
    fn drop(&mut self) {
        if self.pending.is_none() {
            if let Some(rejection) = self.inner.take_rejection() {
                self.inner.get_mut().last_word(&rejection.to_http_bytes());
            }
        }
    }
}
