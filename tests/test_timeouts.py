"""Header-read, body-read, keep-alive idle timeouts and the per-worker connection cap (at the cap\nthe oldest connection serving no request is evicted; 503 only when all are busy)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from support.http import parse_response, read_response, recv_until_closed, status_of
from support.launcher import Launcher, Server
from support.paths import wait_for


@pytest.fixture
def timed(launcher: Launcher) -> Server:
    return launcher.probe(
        "--header-timeout",
        "1s",
        "--body-timeout",
        "1s",
        "--body-min-rate",
        "1000",
        "--keepalive-timeout",
        "1s",
    )


def _connect(srv: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=5)


def test_half_head_then_stall_is_disconnected(timed: Server) -> None:
    with _connect(timed) as s:
        t0 = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        data, closed = recv_until_closed(s, 4)
        elapsed = time.monotonic() - t0
    assert closed, "a stalled head must be cut at the header timeout"
    assert 0.7 <= elapsed <= 2.5, elapsed
    assert status_of(data) in (0, 408), data
    assert timed.calls() == []


def _trickle_until_cut(
    s: socket.socket, pieces: Callable[[int], bytes], pause: float, sleep_first: bool
) -> float | None:
    """Sends one small piece per `pause` seconds (20 at most); returns when the server cut
    the connection (seconds since the first piece), or None if it never did."""
    t0 = time.monotonic()
    for i in range(20):
        if sleep_first:
            time.sleep(pause)
        try:
            s.sendall(pieces(i))
        except OSError:
            return time.monotonic() - t0
        s.settimeout(0.01 if sleep_first else pause)
        try:
            if s.recv(4096) == b"":
                return time.monotonic() - t0
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - t0
    return None


def test_slowloris_never_gets_past_header_timeout(timed: Server) -> None:
    with _connect(timed) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        cut_at = _trickle_until_cut(s, lambda i: f"X-Slow-{i}: {i}\r\n".encode(), 0.25, True)
    assert cut_at is not None, "a client trickling header lines must be cut"
    assert cut_at <= 2.5, cut_at
    assert timed.calls() == []


def test_slow_body_is_cut_and_app_not_called(timed: Server) -> None:
    with _connect(timed) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        cut_at = _trickle_until_cut(s, lambda _: b"x", 0.25, False)
    assert cut_at is not None, "a 1 byte/0.25 s upload must be cut by the body timeout"
    # allowance: 1 s + 1 s per 1000 bytes received (a few bytes here)
    assert 0.7 <= cut_at <= 2.5, cut_at
    assert timed.calls() == []


def test_body_at_good_rate_is_allowed_past_base_timeout(timed: Server) -> None:
    """3000 bytes over ~1.8 s: beyond the 1 s base, but the rate credit (1 s per 1000 bytes)
    keeps extending the allowance."""
    with _connect(timed) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
        for _ in range(6):
            s.sendall(b"y" * 500)
            time.sleep(0.3)
        r = read_response(s, timeout=3, method="POST")
    assert r.status == 200
    assert r.body == b"y" * 3000


def test_idle_keep_alive_connection_is_closed(timed: Server) -> None:
    with _connect(timed) as s:
        s.sendall(b"GET /framing/cl HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s).status == 200
        # a request inside the idle window still works
        time.sleep(0.4)
        s.sendall(b"GET /framing/cl HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s).status == 200
        t0 = time.monotonic()
        data, closed = recv_until_closed(s, 4)
        elapsed = time.monotonic() - t0
    assert closed, "an idle kept-alive connection must be closed after --keepalive-timeout"
    assert data == b"" or status_of(data) == 408
    assert 0.6 <= elapsed <= 2.5, elapsed


GET = b"GET /framing/cl HTTP/1.1\r\nHost: x\r\n\r\n"


def test_at_the_cap_the_oldest_idle_connection_makes_room(launcher: Launcher) -> None:
    srv = launcher.probe("--max-connections", "2", "--keepalive-timeout", "10s")
    a, b = _connect(srv), _connect(srv)
    try:
        for s in (a, b):
            s.sendall(GET)
            assert read_response(s).status == 200
        with _connect(srv) as c:  # a third: `a`, idle longest, is closed for it
            c.sendall(GET)
            assert read_response(c).status == 200
            data, closed = recv_until_closed(a, 3)
            assert closed and data == b"", data
            b.sendall(GET)  # `b` was left alone
            assert read_response(b).status == 200
    finally:
        a.close()
        b.close()


def test_at_the_cap_a_new_connection_gets_503_when_all_are_busy(launcher: Launcher) -> None:
    srv = launcher.probe("--max-connections", "2", "--threads", "2")
    busy = [_connect(srv), _connect(srv)]
    try:
        for s in busy:
            s.sendall(b"GET /sleep?s=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: len(srv.calls()) == 2), srv.calls()
        with _connect(srv) as c:
            c.sendall(GET)
            data, closed = recv_until_closed(c, 3)
        assert status_of(data) == 503, data
        assert closed
        for s in busy:  # the busy ones were not touched
            assert read_response(s, timeout=5).status == 200
    finally:
        for s in busy:
            s.close()


def test_slowloris_heads_make_room_for_normal_clients(launcher: Launcher) -> None:
    """Far more trickling heads than the cap: each new normal connection evicts one of them,
    and every normal request is served."""
    srv = launcher.probe("--max-connections", "100", "--header-timeout", "30s")
    slow: list[socket.socket] = []
    try:
        for _ in range(400):
            s = _connect(srv)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(s)
        for _ in range(50):
            with _connect(srv) as c:
                c.sendall(b"GET /framing/cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data, _ = recv_until_closed(c, 5)
            assert status_of(data) == 200, data[:200]
            assert parse_response(data).body == b"0123456789"
    finally:
        for s in slow:
            s.close()
