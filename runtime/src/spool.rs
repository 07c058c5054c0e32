//! Request-body spooling: read the whole body before a handler runs.
//!
//! Owns: pulling a hyper request body to its end, keeping it in memory up to a threshold and
//! in an unlinked temporary file past it, enforcing the size limit (413) and the body-read
//! allowance (slow POST). Must not touch: routing, handlers or response writing — callers turn
//! a `SpoolError` into a status.
//!
//! Temporary files are created already unlinked (`tempfile::tempfile_in`), so they vanish when
//! the last descriptor closes, whatever happens: client abort, handler crash or process death.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::field_rules::{is_forbidden_trailer, FORBIDDEN_TRAILER_REASON};

/// Limits that govern one request's body.
#[derive(Debug, Clone)]
pub struct SpoolLimits {
    pub max_body_size: u64,
    pub memory_threshold: u64,
    pub dir: PathBuf,
    /// Base allowance for the whole body.
    pub body_timeout: Duration,
    /// Each `min_rate` bytes received extend the allowance by one second.
    pub min_rate: u64,
}

/// A complete request body.
#[derive(Debug)]
pub enum SpooledBody {
    Empty,
    Memory(Bytes),
    File { file: File, len: u64 },
}

impl SpooledBody {
    pub fn len(&self) -> u64 {
        match self {
            SpooledBody::Empty => 0,
            SpooledBody::Memory(bytes) => bytes.len() as u64,
            SpooledBody::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len();
        if offset >= len {
            return Ok(0);
        }
        let want = buf.len().min((len - offset) as usize);
        match self {
            SpooledBody::Empty => Ok(0),
            SpooledBody::Memory(bytes) => {
                let start = offset as usize;
                buf[..want].copy_from_slice(&bytes[start..start + want]);
                Ok(want)
            }
            SpooledBody::File { file, .. } => {
                let mut done = 0;
                while done < want {
                    match file.read_at(&mut buf[done..want], offset + done as u64)? {
                        0 => break,
                        n => done += n,
                    }
                }
                Ok(done)
            }
        }
    }
}

/// Why a body could not be spooled.
#[derive(Debug)]
pub enum SpoolError {
    /// The body passed the limit (bytes).
    TooLarge(u64),
    /// The body did not arrive within its allowance.
    TimedOut,
    /// The body's framing was invalid (bad chunking); the message says how.
    Malformed(String),
    /// The client went away before the body ended.
    ClientGone,
    /// The server could not write the spool file.
    Io(io::Error),
}

/// What a failed spool write says about the storage, for the status the request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No room: a full disk, a quota or a file-size limit (507).
    Full,
    /// The spool directory is gone, unwritable or read-only (503).
    Unavailable,
    /// Anything else (500).
    Other,
}

impl SpoolError {
    /// For `Io` errors, which storage fault caused them; `None` for the other kinds.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        let SpoolError::Io(err) = self else {
            return None;
        };
        Some(match err.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => StorageFault::Full,
            Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::EROFS) => {
                StorageFault::Unavailable
            }
            _ => StorageFault::Other,
        })
    }
}

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpoolError::TooLarge(limit) => write!(f, "request body is larger than {limit} bytes"),
            SpoolError::TimedOut => write!(f, "request body was not received in time"),
            SpoolError::Malformed(why) => write!(f, "malformed request body: {why}"),
            SpoolError::ClientGone => write!(f, "client closed the connection mid-body"),
            SpoolError::Io(err) => write!(f, "could not spool the request body: {err}"),
        }
    }
}

/// Reads `body` to its end under `limits`. `declared_len` is the request's Content-Length.
pub async fn spool<B>(
    mut body: B,
    declared_len: Option<u64>,
    limits: &SpoolLimits,
) -> Result<SpooledBody, SpoolError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(len) = declared_len {
        if len > limits.max_body_size {
            return Err(SpoolError::TooLarge(limits.max_body_size));
        }
    }
    let started = Instant::now();
    let mut sink = Sink::new(declared_len, limits);
    loop {
        let deadline = allowance_deadline(started, sink.received, limits);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(SpoolError::TimedOut),
            Ok(None) => break,
            Ok(Some(Err(err))) => return Err(classify_body_error(err.into())),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(data) => sink.push(data, limits)?,
            // Trailers (HTTP/2; the HTTP/1 guard refused forbidden ones before hyper saw
            // them): a forbidden field refuses the request, the others are dropped.
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    check_trailers(&trailers)?;
                }
            }
        }
    }
    sink.finish()
}

fn check_trailers(trailers: &http::HeaderMap) -> Result<(), SpoolError> {
    match trailers
        .keys()
        .any(|name| is_forbidden_trailer(name.as_str().as_bytes()))
    {
        true => Err(SpoolError::Malformed(FORBIDDEN_TRAILER_REASON.to_string())),
        false => Ok(()),
    }
}

fn allowance_deadline(started: Instant, received: u64, limits: &SpoolLimits) -> Instant {
    let rate = limits.min_rate.max(1);
    let earned = Duration::from_secs_f64(received as f64 / rate as f64);
    started + limits.body_timeout + earned.min(Duration::from_secs(24 * 3600))
}

fn classify_body_error(err: Box<dyn std::error::Error + Send + Sync>) -> SpoolError {
    if let Some(hyper_err) = err.downcast_ref::<hyper::Error>() {
        if hyper_err.is_incomplete_message() {
            return SpoolError::ClientGone;
        }
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    let mut innermost = err.to_string();
    while let Some(e) = source {
        if let Some(io_err) = e.downcast_ref::<io::Error>() {
            if io_err.kind() != io::ErrorKind::InvalidData {
                return SpoolError::ClientGone;
            }
        }
        innermost = e.to_string();
        source = e.source();
    }
    SpoolError::Malformed(innermost)
}

/// Where received bytes go: memory first, then the spool file.
struct Sink {
    received: u64,
    first: Option<Bytes>,
    memory: BytesMut,
    file: Option<File>,
}

impl Sink {
    fn new(declared_len: Option<u64>, limits: &SpoolLimits) -> Sink {
        let capacity = match declared_len {
            Some(len) if len <= limits.memory_threshold => len as usize,
            _ => 0,
        };
        Sink {
            received: 0,
            first: None,
            memory: BytesMut::with_capacity(capacity),
            file: None,
        }
    }

    fn push(&mut self, data: Bytes, limits: &SpoolLimits) -> Result<(), SpoolError> {
        let new_total = self.received.saturating_add(data.len() as u64);
        if new_total > limits.max_body_size {
            return Err(SpoolError::TooLarge(limits.max_body_size));
        }
        self.received = new_total;
        if let Some(file) = &mut self.file {
            return file.write_all(&data).map_err(SpoolError::Io);
        }
        if new_total > limits.memory_threshold {
            return self.move_to_file(data, limits);
        }
        // Keep a lone first frame as-is: most small bodies arrive in one piece, no copy needed.
        if self.first.is_none() && self.memory.is_empty() {
            self.first = Some(data);
        } else {
            if let Some(first) = self.first.take() {
                self.memory.extend_from_slice(&first);
            }
            self.memory.extend_from_slice(&data);
        }
        Ok(())
    }

    fn move_to_file(&mut self, data: Bytes, limits: &SpoolLimits) -> Result<(), SpoolError> {
        let mut file = tempfile::tempfile_in(&limits.dir).map_err(SpoolError::Io)?;
        if let Some(first) = self.first.take() {
            file.write_all(&first).map_err(SpoolError::Io)?;
        }
        file.write_all(&self.memory).map_err(SpoolError::Io)?;
        self.memory = BytesMut::new();
        file.write_all(&data).map_err(SpoolError::Io)?;
        self.file = Some(file);
        Ok(())
    }

    fn finish(self) -> Result<SpooledBody, SpoolError> {
        if let Some(file) = self.file {
            return Ok(SpooledBody::File {
                file,
                len: self.received,
            });
        }
        if let Some(first) = self.first {
            return Ok(SpooledBody::Memory(first));
        }
        if self.memory.is_empty() {
            return Ok(SpooledBody::Empty);
        }
        Ok(SpooledBody::Memory(self.memory.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    fn limits(max: u64, threshold: u64) -> SpoolLimits {
        SpoolLimits {
            max_body_size: max,
            memory_threshold: threshold,
            dir: std::env::temp_dir(),
            body_timeout: Duration::from_secs(5),
            min_rate: 1,
        }
    }

    /// A body that yields the given parts as separate frames.
    fn chunks(parts: Vec<&'static [u8]>) -> impl Body<Data = Bytes, Error = io::Error> + Unpin {
        let frames: Vec<_> = parts
            .into_iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(FrameIter(frames.into_iter()))
    }

    struct FrameIter<I>(I);

    impl<I: Iterator + Unpin> futures_core::Stream for FrameIter<I> {
        type Item = I::Item;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<I::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }

    #[tokio::test]
    async fn small_body_stays_in_memory_without_copy() {
        let body = Full::new(Bytes::from_static(b"hello"));
        let spooled = spool(body, Some(5), &limits(100, 10))
            .await
            .expect("spools");
        assert!(matches!(spooled, SpooledBody::Memory(ref b) if &b[..] == b"hello"));
    }

    #[tokio::test]
    async fn body_past_threshold_goes_to_an_unlinked_file() {
        let body = chunks(vec![b"abcd", b"efgh", b"ij"]);
        let spooled = spool(body, None, &limits(100, 6)).await.expect("spools");
        assert!(matches!(spooled, SpooledBody::File { len: 10, .. }));
        let mut buf = [0u8; 16];
        let n = spooled.read_at(2, &mut buf).expect("reads");
        assert_eq!(&buf[..n], b"cdefghij");
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_refused_before_reading() {
        let body = Full::new(Bytes::from_static(b"x"));
        let err = spool(body, Some(1000), &limits(100, 10))
            .await
            .expect_err("too large");
        assert!(matches!(err, SpoolError::TooLarge(100)));
    }

    #[tokio::test]
    async fn streamed_body_over_limit_is_refused_as_it_passes() {
        let body = chunks(vec![b"0123456789", b"0123456789", b"x"]);
        let err = spool(body, None, &limits(20, 5))
            .await
            .expect_err("too large");
        assert!(matches!(err, SpoolError::TooLarge(20)));
    }

    #[tokio::test]
    async fn empty_body_is_empty() {
        let body = Full::new(Bytes::new());
        let spooled = spool(body, None, &limits(100, 10)).await.expect("spools");
        assert!(matches!(spooled, SpooledBody::Empty));
        assert!(spooled.is_empty());
    }
}
