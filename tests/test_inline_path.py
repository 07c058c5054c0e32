"""The inline path (`server/inline_h1`): plain GETs to a Python app on the event loop are
served without hyper, anything else hands the connection to hyper. Both must answer alike,
and a connection must survive the hand-over with its requests in order."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from support.http import parse_responses, raw_exchange, read_response, recv_until_closed
from support.launcher import Launcher, Server
from support.wasm import wasm_handler

# `Content-Length: 0` on a GET is the simplest request the inline path leaves to hyper.
TO_HYPER = "Content-Length: 0\r\n"


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


def _one(port: int, request: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(request)
        r = read_response(s)
    headers = sorted((k.lower(), v) for k, v in r.headers if k.lower() != "date")
    return r.status, r.reason, headers, r.body


@pytest.mark.parametrize(
    "path", ["/framing/cl", "/framing/single", "/framing/gen", "/iter/gen", "/error/before"]
)
def test_inline_and_hyper_answer_alike(probe: Server, path: str) -> None:
    """The same request through each path: same status line, fields (but `date`) and body."""
    inline = _one(probe.port, _get(path))
    hyper = _one(probe.port, _get(path, TO_HYPER))
    assert inline == hyper
    assert inline[0] in (200, 500)


def test_inline_environ_matches_hypers(probe: Server) -> None:
    """The environ built from the raw head (inline) equals the one built from hyper's parsed
    request: repeated fields joined, cookies with "; ", `_` names and job-delivery fields
    dropped, the port off SERVER_NAME, the first Content-Type."""
    fields = (
        "Host: Example.test:8080\r\nX-Multi: a\r\nx-multi: b\r\nCookie: a=1\r\n"
        "Cookie: b=2\r\nX_Under: evil\r\nWsrun-Job-Id: 7\r\nwsrun-job-attempt: 2\r\n"
        "Content-Type: text/plain\r\nUser-Agent: t\xe9st\r\n"
    )

    def environ(extra: str) -> dict[str, str]:
        head = f"GET /env?q=%41&r HTTP/1.1\r\n{fields}{extra}\r\n".encode("latin-1")
        status, _, _, body = _one(probe.port, head)
        assert status == 200
        env = json.loads(body)
        assert isinstance(env, dict)
        # Only hyper's request has a body length (the `Content-Length: 0` that routes it there).
        env.get("__types__", {}).pop("CONTENT_LENGTH", None)
        skip = ("REMOTE_PORT", "CONTENT_LENGTH")
        return {k: v for k, v in env.items() if k not in skip and not k.startswith("wsgi.")}

    inline, hyper = environ(""), environ(TO_HYPER)
    assert inline == hyper
    assert inline["HTTP_X_MULTI"] == "a,b"
    assert inline["HTTP_COOKIE"] == "a=1; b=2"
    assert inline["SERVER_NAME"] == "Example.test"
    assert inline["QUERY_STRING"] == "q=%41&r"
    assert inline["CONTENT_TYPE"] == "text/plain"
    assert inline["HTTP_USER_AGENT"] == "t\xe9st"
    assert not any(k.startswith("HTTP_WSRUN") or k == "HTTP_X_UNDER" for k in inline)


def test_inline_response_carries_date_and_framing(probe: Server) -> None:
    with socket.create_connection(("127.0.0.1", probe.port), timeout=3) as s:
        s.sendall(_get("/framing/gen"))
        r = read_response(s)
    assert r.status == 200 and r.chunked and r.complete
    assert (r.header("date") or "").endswith(" GMT")
    assert r.body == b"gen-erated-body"


def test_one_connection_moves_from_inline_to_hyper_in_order(probe: Server) -> None:
    """Pipelined in one write: an inline GET, a POST (hyper's), then a GET (hyper's too now)."""
    post = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
    data = _get("/env?i=0") + post + _get("/env?i=2")
    res = raw_exchange(probe.port, data, until=lambda got: got.count(b"HTTP/1.1 200") >= 3)
    responses = parse_responses(res.data, ["GET", "POST", "GET"])
    assert [r.status for r in responses] == [200, 200, 200]
    first, echoed, last = responses
    assert echoed.body == b"abc"
    env0, env2 = json.loads(first.body), json.loads(last.body)
    assert env0["QUERY_STRING"] == "i=0" and env2["QUERY_STRING"] == "i=2"
    assert env0["REMOTE_PORT"] == env2["REMOTE_PORT"], "one connection throughout"


def test_pipelined_gets_then_a_malformed_head(probe: Server) -> None:
    """Every good request before a bad head is answered, then the guard's 400, then close."""
    bad = b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n"
    res = raw_exchange(probe.port, _get("/framing/cl") * 2 + bad)
    assert res.closed
    responses = parse_responses(res.data, ["GET", "GET", "GET"])
    assert [r.status for r in responses] == [200, 200, 400]
    assert responses[0].body == responses[1].body == b"0123456789"


def test_connection_close_is_answered_with_close(probe: Server) -> None:
    res = raw_exchange(probe.port, _get("/framing/cl", "Connection: close\r\n") + _get("/pid"))
    assert res.closed
    responses = parse_responses(res.data, ["GET", "GET"])
    assert len(responses) == 1, "nothing is served after Connection: close"
    assert responses[0].header("connection") == "close"


def test_many_pipelined_inline_gets_in_one_write(probe: Server) -> None:
    count = 200
    data = b"".join(_get(f"/env?i={i}") for i in range(count))
    res = raw_exchange(
        probe.port, data, timeout=10, until=lambda got: got.count(b"HTTP/1.1 200") >= count
    )
    responses = parse_responses(res.data, ["GET"] * count)
    queries = [json.loads(r.body)["QUERY_STRING"] for r in responses]
    assert queries == [f"i={i}" for i in range(count)]


def test_idle_inline_connection_is_closed_when_the_server_drains(launcher: Launcher) -> None:
    srv = launcher.probe("--graceful-timeout", "30s", "--keepalive-timeout", "60s")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(_get("/framing/cl"))
        assert read_response(s).status == 200
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        data, closed = recv_until_closed(s, 10)
    assert closed and data == b"", "an idle kept-alive connection is closed on drain"
    assert srv.wait_exit() == 0
    assert time.monotonic() - started < 10, "the drain must not wait for the graceful timeout"


@pytest.mark.parametrize("extra", ["", TO_HYPER], ids=["inline", "handed-to-hyper"])
def test_a_first_request_during_a_drain_is_answered(launcher: Launcher, extra: str) -> None:
    """A connection accepted before the drain whose first request arrives during it: a drain
    answers such a request, a GET to a WebAssembly route the inline path answers, and one it
    routes, then hands to hyper (`Content-Length: 0`); the hand-over must not make the
    connection look idle, which hyper's graceful shutdown would close at once with the request
    unread ("Remote end closed connection without response", seen as a flaky reload test)."""
    srv = launcher.start(
        ["--wasm", f"/={wasm_handler('hello')}", "--graceful-timeout", "30s"],
    )
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        time.sleep(0.3)  # accepted by the worker, no request yet
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the worker is draining
        s.sendall(_get("/", extra))
        data, closed = recv_until_closed(s, 10)
    responses = parse_responses(data, ["GET"])
    assert [r.status for r in responses] == [200], data[:300]
    assert closed
    assert srv.wait_exit() == 0


def test_with_app_threads_static_and_wasm_gets_stay_inline_and_the_app_on_its_threads(
    launcher: Launcher, tmp_path: Path
) -> None:
    """With `--threads 4` a connection still starts on the inline path, which answers static and
    WebAssembly GETs; its first GET to the app goes to hyper, and the app runs on one of its
    threads, never on the event loop. Pipelined in one write, every answer comes in order."""
    public = tmp_path / "public"
    public.mkdir()
    (public / "a.txt").write_bytes(b"static a\n")
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(f'[[route]]\nprefix = "/s"\nstatic = "{public}"\n')
    srv = launcher.probe(
        "-c", str(cfg), "--threads", "4", "--wasm", f"/echo={wasm_handler('echo')}"
    )
    paths = ["/s/a.txt", "/echo/1", "/thread", "/s/a.txt", "/echo/2"]
    data = b"".join(_get(path) for path in paths)
    res = raw_exchange(srv.port, data, until=lambda got: got.count(b"HTTP/1.1 200") >= 5)
    responses = parse_responses(res.data, ["GET"] * 5)
    assert [r.status for r in responses] == [200] * 5
    assert responses[0].body == responses[3].body == b"static a\n"
    assert responses[1].header("x-echo-path") == "/echo/1"
    assert responses[2].body == b"other", "a threaded app must not run on the event loop"
    assert responses[4].header("x-echo-path") == "/echo/2"
    # The same app with one thread runs on the event loop (the check above can tell).
    inline = launcher.probe("--threads", "1")
    with socket.create_connection(("127.0.0.1", inline.port), timeout=5) as s:
        s.sendall(_get("/thread"))
        assert read_response(s).body == b"main"
