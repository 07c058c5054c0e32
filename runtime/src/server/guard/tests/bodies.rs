//! Guard tests on what follows a head: bad chunked framing turns into `InvalidData` after the
//! bytes before it, trailers count toward the head limits, EOF mid-message is a plain EOF, the
//! rejection's response bytes, and how the guard holds heads, streams body bytes and reuses
//! its buffer. The harness is the parent module's.

use super::*;

#[tokio::test]
async fn bad_chunked_framing_is_a_body_error() {
    let cases: &[(&str, &str)] = &[
        ("5\r\nhello\r\n", "0x5\r\n"),
        ("", " 5\r\nhello\r\n0\r\n\r\n"),
        ("", "+5\r\nhello\r\n0\r\n\r\n"),
        ("", "\r\n"),
        ("", "5 \r\nhello\r\n0\r\n\r\n"),
        ("", "5;\r\nhello\r\n0\r\n\r\n"),
        ("", "5;a=\r\nhello\r\n0\r\n\r\n"),
        ("", "5;a=\"x\r\nhello\r\n0\r\n\r\n"),
        ("", "5;a=\"x\x01\"\r\nhello\r\n0\r\n\r\n"),
        ("", "5;a b\r\nhello\r\n0\r\n\r\n"),
        ("", "5;=b\r\nhello\r\n0\r\n\r\n"),
        ("", "5\nhello\r\n0\r\n\r\n"),
        ("", "5\r\r\nhello\r\n0\r\n\r\n"),
        ("", "10000000000000000\r\n"),
        ("", "00000000000000001\r\nx\r\n0\r\n\r\n"),
        ("5\r\nhello", "XY\r\n0\r\n\r\n"),
        ("5\r\nhello", "\n0\r\n\r\n"),
        ("5\r\nhello\r\n0\r\n", " folded: x\r\n\r\n"),
        ("5\r\nhello\r\n0\r\nA: 1\r\n", "NoColon\r\n\r\n"),
        ("0\r\n", "A: 1\n\r\n"),
        ("0\r\n", "A: \x7f\r\n\r\n"),
    ];
    for (good, bad) in cases {
        let input = chunked(&format!("{good}{bad}"));
        body_error(&input, HEAD_LEN + good.len()).await;
    }
    let long_ext = format!("1;x={}\r\n", "a".repeat(MAX_CHUNK_LINE));
    body_error(&chunked(&long_ext), HEAD_LEN).await;
    let ok_ext = format!("1;x={}\r\na\r\n0\r\n\r\n", "a".repeat(MAX_CHUNK_LINE - 4));
    accept(&chunked(&ok_ext)).await;
}

#[tokio::test]
async fn trailers_count_toward_limits() {
    let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
    let limits = GuardLimits {
        max_header_size: 1024,
        max_headers: 4,
    };
    let mut ok = head.to_vec();
    ok.extend_from_slice(b"A: 1\r\nB: 2\r\n\r\n");
    let o = outcomes(&ok, limits).await;
    assert_eq!((o.out, o.err, o.rejection), (ok.clone(), None, None));
    let mut many = head.to_vec();
    many.extend_from_slice(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    let o = outcomes(&many, limits).await;
    assert_eq!(o.out, &many[..head.len() + 12]);
    assert_eq!(
        (o.err, o.rejection),
        (Some(io::ErrorKind::InvalidData), None)
    );
    let mut big = head.to_vec();
    big.extend_from_slice(format!("A: {}\r\n\r\n", "v".repeat(1024)).as_bytes());
    let o = outcomes(&big, limits).await;
    assert_eq!(
        (o.out.len(), o.err),
        (head.len(), Some(io::ErrorKind::InvalidData))
    );
}

#[tokio::test]
async fn eof_mid_message_is_plain_eof() {
    let chunk_head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mid_data = format!("{chunk_head}5\r\nab");
    let mid_size = format!("{chunk_head}5");
    for (input, released) in [
        (&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], 0),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HT", 27),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
            50,
        ),
        (mid_data.as_bytes(), mid_data.len()),
        (mid_size.as_bytes(), chunk_head.len()),
    ] {
        let o = outcomes(input, LIMITS).await;
        assert_eq!(
            (o.out.as_slice(), o.err, o.rejection),
            (&input[..released], None, None)
        );
    }
}

#[tokio::test]
async fn rejection_response_bytes() {
    let r = Rejection {
        status: 431,
        reason: "too many header fields",
    };
    let expected = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; \
                    charset=utf-8\r\nContent-Length: 23\r\nConnection: close\r\n\r\n\
                    too many header fields\n";
    assert_eq!(String::from_utf8(r.to_http_bytes()).unwrap(), expected);
    for (status, text) in [
        (400, " Bad Request\r\n"),
        (405, " Method Not Allowed\r\n"),
        (414, " URI Too Long\r\n"),
        (501, " Not Implemented\r\n"),
        (505, " HTTP Version Not Supported\r\n"),
    ] {
        let bytes = Rejection {
            status,
            reason: "x",
        }
        .to_http_bytes();
        assert!(String::from_utf8(bytes)
            .unwrap()
            .starts_with(&format!("HTTP/1.1 {status}{text}")));
    }
}

/// Polls once without a runtime, collecting everything released until `Pending`/EOF.
fn pump(guard: &mut GuardedIo<Feed>) -> Vec<u8> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut storage = [0u8; 64];
    loop {
        let mut rb = ReadBuf::new(&mut storage);
        match Pin::new(&mut *guard).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => out.extend_from_slice(rb.filled()),
            _ => return out,
        }
    }
}

#[test]
fn heads_are_held_and_chunk_data_streams() {
    let mut feed = Feed::new(b"", usize::MAX);
    feed.closed = false;
    let mut guard = GuardedIo::new(feed, LIMITS);
    fn push(g: &mut GuardedIo<Feed>, bytes: &[u8]) -> Vec<u8> {
        g.get_mut().data.extend_from_slice(bytes);
        pump(g)
    }
    let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n";
    assert_eq!(push(&mut guard, head), b"");
    assert_eq!(
        push(&mut guard, b"\r\n1"),
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!(push(&mut guard, b"0;a=b"), b"");
    assert_eq!(push(&mut guard, b"\r\n0123"), b"10;a=b\r\n0123");
    assert_eq!(push(&mut guard, b"4567"), b"4567");
    assert_eq!(push(&mut guard, b"89abcdef\r"), b"89abcdef");
    assert_eq!(push(&mut guard, b"\n0\r\nT: 1\r\n"), b"\r\n0\r\nT: 1\r\n");
    assert_eq!(push(&mut guard, b"\r\nGET / HTTP/1.1\r\n"), b"\r\n");
    assert_eq!(guard.take_rejection(), None);
}

#[tokio::test]
async fn body_bytes_are_read_directly_and_buffer_is_reused() {
    let body = vec![b'z'; 1 << 20];
    let mut input = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut guard = GuardedIo::new(Feed::new(&input, 64 * 1024), LIMITS);
    let mut out = Vec::new();
    guard.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, input);
    assert!(
        guard.get_mut().largest_read > FULL_READ_AHEAD,
        "body must bypass the guard buffer"
    );
    assert!(guard.buf.len() <= FULL_READ_AHEAD);

    let one = b"GET /some/path HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    let many = one.repeat(2000);
    let mut guard = GuardedIo::new(Feed::new(&many, 1000), LIMITS);
    let mut out = Vec::new();
    guard.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, many);
    assert!(
        guard.buf.len() <= FULL_READ_AHEAD,
        "no growth past the read-ahead size in the steady state"
    );
    assert_eq!(guard.into_inner().at, many.len());
}

#[tokio::test]
async fn the_buffer_grows_only_for_reads_that_fill_it() {
    // Heads alone, each read a few hundred bytes: the buffer stays at its first size.
    let one = b"GET /some/path HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    let heads = one.repeat(500);
    let mut guard = GuardedIo::new(Feed::new(&heads, one.len()), LIMITS);
    let mut out = Vec::new();
    guard.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, heads);
    assert_eq!(guard.buf.len(), INITIAL_BUF);

    // A client that has more to send than the buffer holds (pipelined heads arriving in
    // large reads): it doubles read after read, up to the read-ahead size and no further.
    let mut guard = GuardedIo::new(Feed::new(&heads, 64 * 1024), LIMITS);
    let mut out = Vec::new();
    guard.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, heads);
    assert_eq!(guard.buf.len(), FULL_READ_AHEAD);
}

#[tokio::test]
async fn writes_pass_through() {
    let (client, server) = tokio::io::duplex(1024);
    let mut guard = GuardedIo::new(server, LIMITS);
    let mut client = client;
    assert_eq!(
        guard.is_write_vectored(),
        guard.get_mut().is_write_vectored()
    );
    guard.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
    let parts = [io::IoSlice::new(b"a"), io::IoSlice::new(b"bc")];
    let n = guard.write_vectored(&parts).await.unwrap();
    guard.flush().await.unwrap();
    guard.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(&got[..17], b"HTTP/1.1 200 OK\r\n");
    assert_eq!(&got[17..], &b"abc"[..n]);

    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    drop(client);
    let mut read = Vec::new();
    guard.read_to_end(&mut read).await.unwrap();
    assert_eq!(read, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

#[tokio::test]
async fn bytes_read_ahead_are_still_checked_or_handed_back() {
    // Read ahead, then read: the head passes the guard as if nothing had looked at it.
    let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut guard = GuardedIo::new(Feed::new(head, 5), LIMITS);
    assert!(guard.read_ahead().await.unwrap());
    assert!(guard.read_ahead().await.unwrap());
    assert_eq!(guard.read_ahead_bytes(), &head[..10]);
    let mut out = Vec::new();
    guard.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, head);

    // A bad head read ahead is refused when read, as ever: nothing released, a 400.
    let bad = b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n";
    let mut guard = GuardedIo::new(Feed::new(bad, bad.len()), LIMITS);
    assert!(guard.read_ahead().await.unwrap());
    let mut out = Vec::new();
    guard.read_to_end(&mut out).await.unwrap();
    assert!(out.is_empty());
    assert_eq!(guard.take_rejection().map(|r| r.status), Some(400));

    // Handed back unchecked (for HTTP/2): every byte read ahead, none lost.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04";
    let mut guard = GuardedIo::new(Feed::new(preface, 16), LIMITS);
    assert!(guard.read_ahead().await.unwrap());
    assert!(guard.read_ahead().await.unwrap());
    let (inner, read) = guard.into_parts();
    assert_eq!(read, preface);
    assert_eq!(inner.at, preface.len());

    // End of stream.
    let mut guard = GuardedIo::new(Feed::new(b"", 16), LIMITS);
    assert!(!guard.read_ahead().await.unwrap());
}
