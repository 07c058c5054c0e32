//! A byte range of an open file, read in Rust chunk by chunk (never through Python), without
//! blocking the event loop.
//!
//! Owns: `FileRegion` and how its bytes leave the file: read chunk by chunk, first with
//! `preadv2(RWF_NOWAIT)`, which returns what the page cache holds and refuses (EAGAIN) rather
//! than waiting for the disk; on a miss, or on a file system that does not take the flag, the
//! chunk is read on tokio's blocking pool and the body waits for it. Or sent with sendfile(2)
//! straight to a socket (`sendfile_cached`, for a connection that owns its socket: the inline
//! path), only for a window of the file the page cache holds, so the event loop never waits
//! for the disk. Must not touch: response framing, headers, sockets' readiness, or what the
//! file is.
//!
//! hyper's path cannot take sendfile: hyper owns the connection's socket and its write buffer,
//! so a body can only hand it bytes.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

/// The error type of body chunks (as `body::BoxError`, which re-exports this module's type).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A region of a file, sent chunk by chunk.
pub struct FileRegion {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    chunk_size: usize,
    /// A chunk being read on the blocking pool.
    pending: Option<JoinHandle<io::Result<BytesMut>>>,
    /// `RWF_NOWAIT` is worth trying (cleared when the file system refuses the flag).
    nowait: bool,
    /// sendfile may send up to here without probing the page cache again.
    cached_until: u64,
}

impl FileRegion {
    /// 128 KiB, as before reads left the event loop: large enough that a chunk costs one
    /// syscall per 128 KiB, small enough that a slow client holds little memory.
    pub const DEFAULT_CHUNK: usize = 128 * 1024;

    pub fn new(file: File, offset: u64, len: u64) -> FileRegion {
        FileRegion::shared(Arc::new(file), offset, len)
    }

    /// A region of a file other regions also read (the parts of a multipart body).
    pub fn shared(file: Arc<File>, offset: u64, len: u64) -> FileRegion {
        FileRegion {
            file,
            offset,
            remaining: len,
            chunk_size: Self::DEFAULT_CHUNK,
            pending: None,
            nowait: true,
            cached_until: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The next chunk; `None` at the end of the region.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = self
            .chunk_size
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if self.pending.is_none() {
            if self.nowait {
                match read_nowait(&self.file, want, self.offset) {
                    Ok(buf) => return Poll::Ready(Some(self.advance(Ok(buf)))),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) if refuses_nowait(&err) => self.nowait = false,
                    Err(err) => return Poll::Ready(Some(self.advance(Err(err)))),
                }
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                // Outside a runtime (a unit test polling by hand): read in place.
                let read = read_blocking(&self.file, want, self.offset);
                return Poll::Ready(Some(self.advance(read)));
            };
            let (file, offset) = (self.file.clone(), self.offset);
            self.pending = Some(runtime.spawn_blocking(move || read_blocking(&file, want, offset)));
        }
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Pending;
        };
        let joined = match std::pin::Pin::new(pending).poll(cx) {
            Poll::Ready(joined) => joined,
            Poll::Pending => return Poll::Pending,
        };
        self.pending = None;
        let read = joined.unwrap_or_else(|e| Err(io::Error::other(e)));
        Poll::Ready(Some(self.advance(read)))
    }

    /// Sends the next bytes of the region to `socket` with sendfile(2) when the page cache
    /// holds them: `Ok(Some(n))` sent `n` bytes; `Ok(None)` sent nothing because the next window
    /// is not (known to be) cached, and the caller reads it with `poll_chunk` instead (off the
    /// event loop on a miss; that read brings it into the cache); `WouldBlock` when the socket
    /// is full. The cache is probed with a one-byte `RWF_NOWAIT` read at each end of the
    /// window: a page in the middle evicted between the two is the one way a call could still
    /// wait for the disk.
    pub fn sendfile_cached(&mut self, socket: RawFd) -> io::Result<Option<usize>> {
        if self.remaining == 0 || self.pending.is_some() {
            return Ok(None);
        }
        if self.offset >= self.cached_until {
            let window = SENDFILE_WINDOW.min(self.remaining);
            let last = self.offset + window - 1;
            if !self.nowait
                || !page_cached(&self.file, self.offset)?
                || !page_cached(&self.file, last)?
            {
                return Ok(None);
            }
            self.cached_until = self.offset + window;
        }
        let count = usize::try_from(self.cached_until - self.offset).unwrap_or(usize::MAX);
        let mut offset =
            libc::off_t::try_from(self.offset).map_err(|_| io::Error::other("offset too large"))?;
        // SAFETY: both descriptors are open for the call (`socket` is the caller's, the file is
        // ours); `offset` is a valid off_t the kernel advances.
        let n = unsafe { libc::sendfile(socket, self.file.as_raw_fd(), &mut offset, count) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            let err = format!("file ended {} bytes early", self.remaining);
            self.remaining = 0;
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, err));
        }
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(Some(n))
    }

    /// Moves past a chunk read at `offset` (or ends the region on an error).
    fn advance(&mut self, read: io::Result<BytesMut>) -> Result<Bytes, BoxError> {
        match read {
            Ok(buf) if buf.is_empty() => {
                let err = format!("file ended {} bytes early", self.remaining);
                self.remaining = 0;
                Err(err.into())
            }
            Ok(buf) => {
                self.offset += buf.len() as u64;
                self.remaining -= buf.len() as u64;
                Ok(buf.freeze())
            }
            Err(err) => {
                self.remaining = 0;
                Err(Box::new(err))
            }
        }
    }
}

/// Up to `want` bytes at `offset` if the page cache holds them; `WouldBlock` if it does not.
fn read_nowait(file: &File, want: usize, offset: u64) -> io::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(want);
    let spare = buf.spare_capacity_mut();
    let iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: want,
    };
    // SAFETY: the iovec points at `want` bytes of `buf`'s spare capacity, alive for the call.
    let n = unsafe { preadv2_nowait(file, iov, offset)? };
    // SAFETY: preadv2 initialised the first `n` bytes (at most `want`) of the spare capacity.
    unsafe { buf.set_len(n) };
    Ok(buf)
}

/// One `preadv2(RWF_NOWAIT)` into `iov`'s buffer; the count read, at most `iov.iov_len`.
///
/// # Safety
/// `iov.iov_base` must point at `iov.iov_len` writable bytes that outlive the call.
unsafe fn preadv2_nowait(file: &File, iov: libc::iovec, offset: u64) -> io::Result<usize> {
    let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    // SAFETY: the caller's iovec points at `iov_len` writable bytes that outlive the call; the
    // descriptor is open for as long as `file` is borrowed.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0).min(iov.iov_len))
}

/// How much sendfile sends between two probes of the page cache: 2 MiB, nginx's default
/// `sendfile_max_chunk`.
const SENDFILE_WINDOW: u64 = 2 * 1024 * 1024;

/// Whether the page holding byte `offset` is in the page cache (a one-byte `RWF_NOWAIT` read).
fn page_cached(file: &File, offset: u64) -> io::Result<bool> {
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&raw mut byte).cast(),
        iov_len: 1,
    };
    // SAFETY: the iovec points at `byte`, which outlives the call.
    match unsafe { preadv2_nowait(file, iov, offset) } {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock || refuses_nowait(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Whether `err` means the kernel or file system does not take `RWF_NOWAIT` at all.
fn refuses_nowait(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::ENOSYS)
    )
}

/// Up to `want` bytes at `offset`, waiting for the disk if need be.
fn read_blocking(file: &File, want: usize, offset: u64) -> io::Result<BytesMut> {
    let mut buf = BytesMut::zeroed(want);
    let n = loop {
        match file.read_at(&mut buf, offset) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn drain(mut region: FileRegion) -> Vec<u8> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(chunk)) = region.poll_chunk(&mut cx) {
            out.extend_from_slice(&chunk.expect("a chunk"));
        }
        out
    }

    #[test]
    fn a_region_reads_exactly_its_bytes() {
        let mut file = tempfile::tempfile().expect("a temp file");
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).expect("written");
        let whole = FileRegion::new(file.try_clone().expect("dup"), 0, data.len() as u64);
        assert_eq!(drain(whole), data);
        let part = FileRegion::new(file, 1000, 300_000);
        assert_eq!(drain(part), &data[1000..301_000]);
    }

    #[test]
    fn a_file_shorter_than_its_region_is_an_error() {
        let mut file = tempfile::tempfile().expect("a temp file");
        file.write_all(b"short").expect("written");
        let mut region = FileRegion::new(file, 0, 10);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let first = region.poll_chunk(&mut cx);
        assert!(matches!(first, Poll::Ready(Some(Ok(ref b))) if b.as_ref() == b"short"));
        assert!(matches!(
            region.poll_chunk(&mut cx),
            Poll::Ready(Some(Err(_)))
        ));
        assert!(matches!(region.poll_chunk(&mut cx), Poll::Ready(None)));
    }
}
