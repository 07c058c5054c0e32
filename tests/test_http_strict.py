"""Strict request parsing: each malformed request gets its 4xx/5xx, the connection is closed and
the app is never called. A valid request pipelined before a bad one is still answered first."""

from __future__ import annotations

import pytest

from support.http import parse_responses, raw_exchange, status_of
from support.launcher import Launcher, Server

POST = b"POST /echo HTTP/1.1\r\nHost: x\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"

CASES: list[tuple[str, bytes, int]] = [
    # --- framing conflicts
    (
        "cl-then-te",
        POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-then-cl",
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    ("two-different-cl", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("cl-list", POST + b"Content-Length: 5, 5\r\n\r\nhello", 400),
    ("cl-negative", POST + b"Content-Length: -1\r\n\r\nhello", 400),
    ("cl-plus", POST + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl-suffix", POST + b"Content-Length: 5x\r\n\r\nhello", 400),
    # --- chunk sizes
    ("chunk-size-zz", CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-0x", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-leading-space", CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-17-digits", CHUNKED + b"00000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    # --- chunk extensions
    ("chunk-ext-empty-name", CHUNKED + b"5;=x\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-unterminated", CHUNKED + b'5;a="unterminated\r\nhello\r\n0\r\n\r\n', 400),
    ("chunk-ext-space", CHUNKED + b"5;a b\r\nhello\r\n0\r\n\r\n", 400),
    # --- header syntax
    ("name-space-before-colon", b"GET / HTTP/1.1\r\nHost: x\r\nFoo : bar\r\n\r\n", 400),
    ("name-invalid-char", b"GET / HTTP/1.1\r\nHost: x\r\nFo@o: bar\r\n\r\n", 400),
    ("name-paren", b"GET / HTTP/1.1\r\nHost: x\r\nFo(o): bar\r\n\r\n", 400),
    ("value-nul", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("value-ctl", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
    ("value-del", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400),
    # --- Host
    ("missing-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("two-equal-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
    # --- singleton fields repeated (field_rules.rs), equal values too
    (
        "two-content-types",
        POST
        + b"Content-Type: text/plain\r\ncontent-type: text/html\r\nContent-Length: 5\r\n\r\nhello",
        400,
    ),
    ("two-auth", b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nAuthorization: a\r\n\r\n", 400),
    (
        "two-proxy-auth",
        b"GET / HTTP/1.1\r\nHost: x\r\nProxy-Authorization: a\r\nPROXY-AUTHORIZATION: b\r\n\r\n",
        400,
    ),
    (
        "two-ranges",
        b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n",
        400,
    ),
    (
        "two-if-modified-since",
        b"GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: a\r\nIf-Modified-Since: b\r\n\r\n",
        400,
    ),
    # --- forbidden trailer fields (RFC 9110 section 6.5.1)
    ("trailer-content-length", CHUNKED + b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", 400),
    ("trailer-te", CHUNKED + b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("trailer-host", CHUNKED + b"5\r\nhello\r\n0\r\nHost: evil\r\n\r\n", 400),
    ("trailer-auth", CHUNKED + b"5\r\nhello\r\n0\r\nX-Ok: 1\r\nAuthorization: a\r\n\r\n", 400),
    ("trailer-content-type", CHUNKED + b"5\r\nhello\r\n0\r\ncontent-type: a/b\r\n\r\n", 400),
    # --- request target
    ("target-relative", b"GET foo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-bad-absolute", b"GET http://[bad HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-raw-space", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-ctl", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-del", b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    # --- line endings
    ("bare-lf", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("bare-lf-in-headers", b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
    # --- version, codings, method
    ("http2-version", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (
        "te-gzip-chunked",
        POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        501,
    ),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_request_rejected(probe: Server, raw: bytes, expected: int) -> None:
    probe.reset_calls()
    res = raw_exchange(probe.port, raw, timeout=3)
    assert status_of(res.data) == expected, res.data[:300]
    assert res.closed, "the connection must be closed after a malformed request"
    assert probe.calls() == [], "the app must never see a malformed request"


BAD_AFTER_VALID = {
    "cl-then-te": CASES[0][1],
    "missing-host": b"GET / HTTP/1.1\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "chunk-size-zz": CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("bad", list(BAD_AFTER_VALID), ids=list(BAD_AFTER_VALID))
def test_valid_request_before_bad_one_is_answered_first(probe: Server, bad: str) -> None:
    probe.reset_calls()
    res = raw_exchange(
        probe.port,
        b"GET /framing/cl HTTP/1.1\r\nHost: x\r\n\r\n" + BAD_AFTER_VALID[bad],
        timeout=3,
    )
    assert res.closed
    rs = parse_responses(res.data, ["GET", "POST"])
    assert rs, res.data
    assert rs[0].status == 200 and rs[0].body == b"0123456789"
    assert len(rs) == 2 and rs[1].status == 400, res.data
    assert len(probe.calls()) == 1


def test_valid_requests_still_pass(probe: Server) -> None:
    """Controls: the strict parser accepts what is valid."""
    probe.reset_calls()
    ok = [
        POST + b"Content-Length: 5\r\nConnection: close\r\n\r\nhello",
        CHUNKED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        + b'5;a=b;c="d e"\r\nhello\r\n0\r\n\r\n',
        b"GET /x?q=a%20b HTTP/1.1\r\nHost: x\r\nX-Tab: a\tb\r\nConnection: close\r\n\r\n",
        b"GET /x HTTP/1.0\r\n\r\n",
        # list-valued fields may repeat; a trailer outside the forbidden list is dropped
        b"GET /x HTTP/1.1\r\nHost: x\r\nAccept: a/b\r\nAccept: c/d\r\nCookie: a=1\r\n"
        b"Cookie: b=2\r\nConnection: close\r\n\r\n",
        CHUNKED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        + b"5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n",
    ]
    for raw in ok:
        res = raw_exchange(probe.port, raw, timeout=3)
        assert status_of(res.data) == 200, (raw, res.data[:300])
    assert len(probe.calls()) == len(ok)


def test_head_over_max_header_size_gets_431(launcher: Launcher) -> None:
    srv = launcher.probe("--max-header-size", "2048")
    small = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 500 + b"\r\nConnection: close\r\n\r\n"
    assert status_of(raw_exchange(srv.port, small).data) == 200
    srv.reset_calls()
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n"
    res = raw_exchange(srv.port, big)
    assert status_of(res.data) == 431, res.data[:200]
    assert res.closed
    many = (
        b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(f"X-H{i}: {'b' * 40}\r\n".encode() for i in range(100))
        + b"\r\n"
    )
    res2 = raw_exchange(srv.port, many)
    assert status_of(res2.data) == 431, res2.data[:200]
    assert srv.calls() == []
