//! Tests of `http1` (kept apart so the module stays readable).
use super::*;

#[test]
fn head_with_content_length() {
    let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello")
        .unwrap()
        .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.len, 39);
    assert_eq!(head.framing, Framing::Length(13));
    assert!(head.keep_alive);
}

#[test]
fn partial_head_is_none() {
    assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
}

#[test]
fn chunked_wins_and_close_is_seen() {
    let raw =
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n";
    let head = parse_head(raw).unwrap().unwrap();
    assert_eq!(
        (head.status, head.framing, head.keep_alive),
        (404, Framing::Chunked, false)
    );
}

#[test]
fn http10_without_length_reads_to_close() {
    let head = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
    assert_eq!(
        (head.framing, head.keep_alive),
        (Framing::UntilClose, false)
    );
}

#[test]
fn garbage_is_an_error() {
    assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
    assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
}

#[test]
fn chunk_sizes_are_hex_with_extensions() {
    assert_eq!(chunk_size("1a").unwrap(), 26);
    assert_eq!(chunk_size("0;ext=1").unwrap(), 0);
    assert!(chunk_size("zz").is_err());
}

/// A server on a real socket answering three pipelined-style exchanges: Content-Length,
/// chunked with a trailer, then a body until close.
#[tokio::test]
async fn exchanges_over_a_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\nrest of it",
        ];
        let mut buf = [0u8; 1024];
        for answer in answers {
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /"));
            s.write_all(answer).await.unwrap();
        }
    });
    let mut conn = Conn::connect(addr).await.unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let r = conn.exchange(req, false).await.unwrap();
    assert_eq!((r.status, r.bytes, r.reusable), (200, 43, true));
    let r = conn.exchange(req, false).await.unwrap();
    assert_eq!((r.status, r.reusable), (500, true));
    let r = conn.exchange(req, false).await.unwrap();
    assert_eq!((r.status, r.reusable), (201, false));
    server.await.unwrap();
}
