//! A minimal keep-alive HTTP/1.1 client over a tokio `TcpStream`: writes pre-serialised
//! request bytes, reads one response (Content-Length, chunked, or until close) and reports its
//! status, size and whether the connection may be reused.
//!
//! Owns: the wire exchange of one request on one connection, and the response parser.
//! Must not touch: timing, counting, when to reconnect (the callers in `saturate`).
//!
//! Why not hyper's client (the suggestion): per request it builds a `Request`, a header
//! map and a body stream, and hands the connection to a separate task; this loop writes one
//! prepared buffer and parses the head in place with `httparse`. `bench/loadgen.sh` runs both
//! (hyper's as `loadgen/examples/hyper_client.rs`) beside `wrk -t1`: 0.94x wrk for this client,
//! 0.87x for hyper's (below the 0.9; bench/README.md has the run).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read buffer size; grows only for a head larger than this.
const READ_CHUNK: usize = 16 * 1024;
/// Most headers a response may have.
const MAX_HEADERS: usize = 64;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// What one exchange produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Bytes read for this response, head and body.
    pub bytes: u64,
    /// False when the server asked to close or the body ended at EOF.
    pub reusable: bool,
}

/// Why an exchange failed: the write or the read side (timeouts are the caller's).
#[derive(Debug)]
pub enum ExchangeError {
    Write(io::Error),
    Read(io::Error),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Write(e) => write!(f, "writing the request: {e}"),
            ExchangeError::Read(e) => write!(f, "reading the response: {e}"),
        }
    }
}

/// One client connection with its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` not yet consumed (a pipelined or early response would leave some).
    filled: usize,
}

impl Conn {
    pub async fn connect(addr: std::net::SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn::new(stream))
    }

    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: vec![0; READ_CHUNK],
            filled: 0,
        }
    }

    /// Writes `request`, reads one response to its end.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_only: bool,
    ) -> Result<Response, ExchangeError> {
        self.stream
            .write_all(request)
            .await
            .map_err(ExchangeError::Write)?;
        self.read_response(head_only)
            .await
            .map_err(ExchangeError::Read)
    }

    /// Reads one response; `head_only` for a HEAD request (no body follows).
    pub async fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let head = loop {
            if let Some(head) = parse_head(&self.buf[..self.filled])? {
                break head;
            }
            if self.filled == self.buf.len() {
                if self.buf.len() >= MAX_HEAD {
                    return Err(invalid("response head too large"));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            self.fill().await?;
        };
        self.consume(head.len);
        let no_body =
            head_only || head.status / 100 == 1 || head.status == 204 || head.status == 304;
        let (body, reusable) = match head.framing {
            _ if no_body => (0, head.keep_alive),
            Framing::Length(n) => (self.skip(n).await?, head.keep_alive),
            Framing::Chunked => (self.skip_chunked().await?, head.keep_alive),
            Framing::UntilClose => (self.skip_to_eof().await?, false),
        };
        Ok(Response {
            status: head.status,
            bytes: (head.len as u64) + body,
            reusable,
        })
    }

    /// Reads more bytes into `buf`; EOF is an error (a response was due).
    async fn fill(&mut self) -> io::Result<usize> {
        let n = self.stream.read(&mut self.buf[self.filled..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.filled += n;
        Ok(n)
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// Discards `n` body bytes.
    async fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        loop {
            let take = left.min(self.filled as u64) as usize;
            self.consume(take);
            left -= take as u64;
            if left == 0 {
                return Ok(n);
            }
            self.fill().await?;
        }
    }

    async fn skip_chunked(&mut self) -> io::Result<u64> {
        let mut total = 0;
        loop {
            let line = self.read_line().await?;
            total += line.len as u64;
            let size = chunk_size(&line.text)?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let trailer = self.read_line().await?;
                    total += trailer.len as u64;
                    if trailer.text.is_empty() {
                        return Ok(total);
                    }
                }
            }
            total += self.skip(size).await?;
            let crlf = self.read_line().await?;
            total += crlf.len as u64;
        }
    }

    async fn read_line(&mut self) -> io::Result<Line> {
        loop {
            if let Some(end) = self.buf[..self.filled]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.consume(end + 2);
                return Ok(Line { text, len: end + 2 });
            }
            if self.filled == self.buf.len() {
                return Err(invalid("chunk line too long"));
            }
            self.fill().await?;
        }
    }

    async fn skip_to_eof(&mut self) -> io::Result<u64> {
        let mut total = self.filled as u64;
        self.filled = 0;
        loop {
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }
}

struct Line {
    text: String,
    len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    pub framing: Framing,
    pub keep_alive: bool,
}

/// Parses a response head from the start of `buf`: `None` while incomplete.
pub fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("bad response head: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let mut keep_alive = response.version == Some(1);
    let mut framing = Framing::UntilClose;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
            framing = Framing::Length(n.ok_or_else(|| invalid("bad Content-Length"))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            framing = match last_token_is(h.value, b"chunked") {
                true => Framing::Chunked,
                false => Framing::UntilClose,
            };
        } else if h.name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                keep_alive = false;
            } else if has_token(h.value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
    }))
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .next_back()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The size of a chunk line `1a;ext=1`.
pub fn chunk_size(line: &str) -> io::Result<u64> {
    let hex = line.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| invalid("bad chunk size"))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
