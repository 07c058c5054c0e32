"""HTTP/1.x connection behaviour: keep-alive, 1.0 keep-alive, pipelining, 100-continue,
chunked bodies both ways, HEAD."""

from __future__ import annotations

import json
import socket

from support.http import (
    parse_response,
    parse_responses,
    raw_exchange,
    read_response,
    recv_until_closed,
)
from support.launcher import Launcher, Server


def _env(body: bytes) -> dict[str, object]:
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


def test_http11_keep_alive_reuses_connection(probe: Server) -> None:
    probe.reset_calls()
    with socket.create_connection(("127.0.0.1", probe.port), timeout=3) as s:
        ports = []
        for i in range(3):
            s.sendall(f"GET /env?i={i} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            r = read_response(s)
            assert r.status == 200
            assert r.header("connection") in (None, "keep-alive")
            env = _env(r.body)
            assert env["QUERY_STRING"] == f"i={i}"
            ports.append(env["REMOTE_PORT"])
        assert len(set(ports)) == 1, "all three requests must come over the same connection"
    assert len(probe.calls()) == 3


def test_http11_connection_close_closes(probe: Server) -> None:
    res = raw_exchange(
        probe.port, b"GET /framing/cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert res.closed
    r = parse_response(res.data)
    assert r.status == 200 and r.body == b"0123456789"


def test_http10_without_keep_alive_closes(probe: Server) -> None:
    res = raw_exchange(probe.port, b"GET /framing/cl HTTP/1.0\r\n\r\n")
    assert res.closed, "an HTTP/1.0 request without keep-alive must be answered then closed"
    r = parse_response(res.data)
    assert r.status == 200 and r.body == b"0123456789"


def test_http10_keep_alive_on_request(probe: Server) -> None:
    with socket.create_connection(("127.0.0.1", probe.port), timeout=3) as s:
        s.sendall(b"GET /framing/cl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r1 = read_response(s)
        assert r1.status == 200 and r1.body == b"0123456789"
        assert (r1.header("connection") or "").lower() == "keep-alive"
        s.sendall(b"GET /env HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r2 = read_response(s)
        assert r2.status == 200
        assert _env(r2.body)["SERVER_PROTOCOL"] == "HTTP/1.0"
        # without keep-alive on the last one, the server closes after answering
        s.sendall(b"GET /framing/cl HTTP/1.0\r\n\r\n")
        rest, closed = recv_until_closed(s, 3)
        assert closed
        assert parse_response(rest).status == 200


def test_pipelining_answers_in_order(probe: Server) -> None:
    probe.reset_calls()
    reqs = (
        b"GET /env?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /framing/gen HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
        b"HEAD /framing/cl HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /env?n=6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    res = raw_exchange(probe.port, reqs, timeout=5)
    assert res.closed
    rs = parse_responses(res.data, ["GET", "POST", "GET", "POST", "HEAD", "GET"])
    assert [r.status for r in rs] == [200] * 6, res.data[:2000]
    assert _env(rs[0].body)["QUERY_STRING"] == "n=1"
    assert rs[1].body == b"hello"
    assert rs[2].body == b"gen-erated-body"
    assert rs[3].body == b"abc"
    assert rs[4].body == b"" and rs[4].header("content-length") == "10"
    assert _env(rs[5].body)["QUERY_STRING"] == "n=6"
    assert len(probe.calls()) == 6


def test_pipelining_many_small_requests(probe: Server) -> None:
    n = 50
    reqs = (
        b"".join(f"GET /env?n={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(n - 1))
        + f"GET /env?n={n - 1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    res = raw_exchange(probe.port, reqs, timeout=8)
    rs = parse_responses(res.data)
    assert len(rs) == n
    assert [_env(r.body)["QUERY_STRING"] for r in rs] == [f"n={i}" for i in range(n)]


def test_expect_100_continue(probe: Server) -> None:
    with socket.create_connection(("127.0.0.1", probe.port), timeout=3) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        s.settimeout(3)
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 100"), first
        s.sendall(b"hello")
        r = read_response(s)
        assert r.status == 200 and r.body == b"hello"


def test_expect_100_continue_over_limit_gets_413_without_100(launcher: Launcher) -> None:
    srv = launcher.probe("--max-body-size", "1000")
    res = raw_exchange(
        srv.port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
        timeout=3,
    )
    assert b"100 Continue" not in res.data
    assert res.data.startswith(b"HTTP/1.1 413"), res.data
    assert srv.calls() == []


def test_chunked_request_body_with_extensions_and_trailers(probe: Server) -> None:
    body = (
        b"5;name=value\r\nhello\r\n"
        b'6;q="quoted ext"\r\n world\r\n'
        b"A\r\n0123456789\r\n"
        b"0\r\nX-Trailer: yes\r\n\r\n"
    )
    res = raw_exchange(
        probe.port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + body,
    )
    r = parse_response(res.data)
    assert r.status == 200
    assert r.body == b"hello world0123456789"
    assert r.header("x-env-content-length") == "'21'"


def test_chunked_response_on_http11(probe: Server) -> None:
    res = raw_exchange(
        probe.port, b"GET /framing/gen HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    r = parse_response(res.data)
    assert r.status == 200
    assert r.chunked and r.header("content-length") is None
    assert r.body == b"gen-erated-body" and r.complete


def test_head_has_get_headers_and_no_body(probe: Server) -> None:
    for path in ("/framing/cl", "/framing/single"):
        get = parse_response(
            raw_exchange(
                probe.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            ).data
        )
        # HEAD pipelined before a GET: any body bytes after the HEAD would corrupt the 2nd answer
        res = raw_exchange(
            probe.port,
            f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
            f"GET /framing/cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
        )
        head, after = parse_responses(res.data, ["HEAD", "GET"])
        assert head.status == 200
        assert head.header("content-length") == get.header("content-length") == str(len(get.body))
        assert head.header("content-type") == get.header("content-type")
        assert after.status == 200 and after.body == b"0123456789"


def test_head_via_http_client(probe: Server) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", probe.port, timeout=3)
    conn.request("HEAD", "/framing/cl")
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Length") == "10"
    assert r.read() == b""
    conn.request("GET", "/framing/cl")
    r2 = conn.getresponse()
    assert r2.read() == b"0123456789"
    conn.close()
