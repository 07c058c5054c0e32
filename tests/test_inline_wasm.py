"""WASM routes on the inline path (`server/inline_h1/wasm_get.rs`): a plain GET to a WASM route
is answered without hyper, and must be answered exactly as hyper's path answers it: the same
request reaches the guest (job-delivery fields dropped, `wsrun-script-name` set), the same
response reaches the client, and a connection keeps its requests in order when it moves on
to hyper."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from support.http import parse_responses, raw_exchange, read_response
from support.launcher import Launcher, Server
from support.wasm import wasm_handler


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    launcher = Launcher(tmp_path_factory.mktemp("inline-wasm"))
    try:
        yield launcher.probe(
            "--wasm",
            f"/echo={wasm_handler('echo')}",
            "--wasm",
            f"/jobs={wasm_handler('jobs')}",
        )
    finally:
        launcher.stop_all()


def _get(target: str, fields: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n".encode()


def _answer(srv: Server, request: bytes) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(request)
        r = read_response(s)
    fields = sorted((k.lower(), v) for k, v in r.headers if k.lower() != "date")
    return r.status, fields, r.body, r.chunked


def test_a_wasm_get_is_answered_inline_as_hyper_answers_it(srv: Server) -> None:
    """The inline GET against the same request in absolute form (which hyper's path serves):
    same status, fields but `date`, framing and body, from a guest that streams its answer."""
    inline = _answer(srv, _get("/echo/a%20b?q=1&r", "Content-Type: text/x-probe\r\n"))
    hyper = _answer(
        srv, _get("http://localhost/echo/a%20b?q=1&r", "Content-Type: text/x-probe\r\n")
    )
    assert inline == hyper
    status, fields, body, chunked = inline
    assert (status, body, chunked) == (200, b"", True)
    assert ("x-echo-method", "GET") in fields
    assert ("x-echo-path", "/echo/a%20b?q=1&r") in fields
    assert ("x-echo-script-name", "/echo") in fields
    assert ("content-type", "text/x-probe") in fields


def test_a_clients_job_fields_never_reach_a_wasm_get(srv: Server) -> None:
    """Only a job delivery carries `wsrun-job-id` / `wsrun-job-attempt`: a client's are
    dropped on the inline path as on hyper's, so a guest can trust them."""
    forged = "Wsrun-Job-Id: 99\r\nwsrun-job-attempt: 3\r\n"
    inline = _answer(srv, _get("/jobs/work", forged))
    hyper = _answer(srv, _get("http://localhost/jobs/work", forged))
    assert inline == hyper
    status, fields, body, _ = inline
    assert (status, body) == (200, b"job=- attempt=-")
    assert ("x-job-id", "-") in fields


def test_pipelined_wasm_gets_then_a_post_keep_their_order(srv: Server) -> None:
    """In one write: two inline WASM GETs, a POST (hyper's, with a body), then a GET (hyper's
    too now): four answers, in order, on one connection."""
    post = b"POST /echo/p HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
    data = _get("/echo/0") + _get("/jobs/work") + post + _get("/echo/3")
    res = raw_exchange(srv.port, data, until=lambda got: got.count(b"HTTP/1.1 200") >= 4)
    responses = parse_responses(res.data, ["GET", "GET", "POST", "GET"])
    assert [r.status for r in responses] == [200, 200, 200, 200]
    paths = [r.header("x-echo-path") for r in responses]
    assert paths == ["/echo/0", None, "/echo/p", "/echo/3"]
    assert responses[1].body == b"job=- attempt=-"
    assert responses[2].body == b"abc"


def test_pipelined_wasm_gets_then_a_malformed_head(srv: Server) -> None:
    """Every good request before a bad head is answered, then the guard's 400, then close:
    a guest that is still running when the bad head is read does not lose its answer."""
    bad = b"GET /echo/x HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n"
    res = raw_exchange(srv.port, _get("/echo/1") + _get("/jobs/work") + bad)
    assert res.closed
    responses = parse_responses(res.data, ["GET", "GET", "GET"])
    assert [r.status for r in responses] == [200, 200, 400]
    assert responses[0].header("x-echo-path") == "/echo/1"
    assert responses[1].body == b"job=- attempt=-"


def test_connection_close_on_a_wasm_get_ends_the_connection(srv: Server) -> None:
    res = raw_exchange(srv.port, _get("/echo/c", "Connection: close\r\n") + _get("/echo/d"))
    assert res.closed
    responses = parse_responses(res.data, ["GET", "GET"])
    assert len(responses) == 1, "nothing is served after Connection: close"
    assert responses[0].header("connection") == "close"
    assert responses[0].header("x-echo-path") == "/echo/c"
