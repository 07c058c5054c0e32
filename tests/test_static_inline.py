"""Static routes on the inline path (`server/inline_h1`): a plain GET to a static route is
answered without hyper, exactly as hyper's path answers it, and a large file leaves by
sendfile(2) (zero-copy) while a small one leaves with its head in one write."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.http import parse_responses, raw_exchange, read_response
from support.launcher import Server
from support.paths import WAIT

# `Content-Length: 0` on a GET is the simplest request the inline path leaves to hyper.
TO_HYPER = "Content-Length: 0\r\n"
BIG = 3 * 1024 * 1024 + 17  # several sendfile windows, and not a multiple of a page


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("static_inline")
    public = tmp / "public"
    (public / "dir").mkdir(parents=True)
    (public / "small.txt").write_bytes(b"hello static\n" * 40)
    (public / "big.bin").write_bytes(os.urandom(BIG))
    (public / "dir" / "index.html").write_bytes(b"<p>index</p>\n")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(f'[[route]]\nprefix = "/s"\nstatic = "{public}"\nmax_age = 30\n')
    server = Server(tmp, name="static_inline")
    server.start(["-c", str(cfg)])
    yield server
    server.stop()


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


def _one(port: int, request: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(request)
        r = read_response(s)
    headers = sorted((k.lower(), v) for k, v in r.headers if k.lower() != "date")
    return r.status, r.reason, headers, r.body


def _etag(port: int) -> str:
    _, _, headers, _ = _one(port, _get("/s/small.txt"))
    return dict(headers)["etag"]


@pytest.mark.parametrize(
    "path, extra",
    [
        ("/s/small.txt", ""),
        ("/s/small.txt", "Range: bytes=2-9\r\n"),
        ("/s/small.txt", "Range: bytes=9999-\r\n"),
        ("/s/small.txt", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n"),
        ("/s/small.txt", 'If-Match: "nope"\r\n'),
        ("/s/small.txt", "Accept-Encoding: gzip\r\n"),
        ("/s/big.bin", ""),
        ("/s/big.bin", "Range: bytes=1000-200000\r\n"),
        ("/s/dir", ""),
        ("/s/dir/?x=1", ""),
        ("/s/missing", ""),
        ("/s/%2e%2e/etc/passwd", ""),
    ],
)
def test_inline_and_hyper_answer_a_static_get_alike(srv: Server, path: str, extra: str) -> None:
    """Same status line, fields (but `date`) and body through either path."""
    inline = _one(srv.port, _get(path, extra))
    hyper = _one(srv.port, _get(path, extra + TO_HYPER))
    assert inline == hyper
    assert inline[0] in (200, 206, 301, 304, 308, 400, 404, 412, 416)


def test_if_none_match_gives_304_inline_as_on_hypers_path(srv: Server) -> None:
    extra = f"If-None-Match: {_etag(srv.port)}\r\n"
    inline = _one(srv.port, _get("/s/small.txt", extra))
    hyper = _one(srv.port, _get("/s/small.txt", extra + TO_HYPER))
    assert inline == hyper and inline[0] == 304 and inline[3] == b""


def _bytes_written(pid: int) -> int:
    """`wchar` of /proc/PID/io: what the process wrote through write-like file syscalls.
    sendfile(2) counts there; a socket `send`, as every other response goes out, does not."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "wchar":
            return int(value)
    raise AssertionError(f"no wchar in /proc/{pid}/io")


def test_a_large_file_leaves_by_sendfile_on_the_inline_path_only(srv: Server) -> None:
    """The inline path sends the big file with sendfile (the worker's wchar grows by the file's
    size); hyper's path copies it through userspace and sends it (wchar stays well below)."""
    (worker,) = srv.worker_pids()
    data = (srv.tmp / "public" / "big.bin").read_bytes()
    for extra, by_sendfile in (("", True), (TO_HYPER, False)):
        before = _bytes_written(worker)
        status, _, _, body = _one(srv.port, _get("/s/big.bin", extra))
        grown = _bytes_written(worker) - before
        assert status == 200
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
        if by_sendfile:
            assert grown >= BIG, f"wchar grew by {grown} only"
        else:
            assert grown < BIG // 2, f"wchar grew by {grown}"


def test_sendfile_to_a_slow_reader_sends_every_byte(srv: Server) -> None:
    """A client with a small receive buffer, reading in small pieces: the socket is full most
    of the time (sendfile meets EAGAIN and waits for room), and the file arrives whole."""
    data = (srv.tmp / "public" / "big.bin").read_bytes()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.settimeout(WAIT)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(_get("/s/big.bin", "Connection: close\r\n"))
        received = bytearray()
        while chunk := s.recv(4096):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert len(body) == len(data) and body == data


def test_pipelined_big_and_small_files_arrive_in_order(srv: Server) -> None:
    """Responses buffered before a sendfile body go out before it, those after it follow it."""
    small = (srv.tmp / "public" / "small.txt").read_bytes()
    data = (srv.tmp / "public" / "big.bin").read_bytes()
    sent = _get("/s/small.txt") + _get("/s/big.bin") + _get("/s/small.txt", "Connection: close\r\n")
    res = raw_exchange(srv.port, sent, timeout=WAIT)
    assert res.closed
    first, big, last = parse_responses(res.data, ["GET", "GET", "GET"])
    assert (first.status, big.status, last.status) == (200, 200, 200)
    assert first.body == small and last.body == small
    assert big.body == data
