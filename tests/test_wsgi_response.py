"""start_response rules, write(), iterables and close(), file_wrapper, framing, app errors."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.http import parse_response, parse_responses, raw_exchange, read_response
from support.launcher import Server
from support.paths import APPS, WAIT, wait_for


@pytest.fixture(scope="module", params=["inline", "threads"])
def probe(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The probe app run both ways: on the event-loop thread (default) and on --threads 4."""
    extra = ["--threads", "4"] if request.param == "threads" else []
    srv = Server(tmp_path_factory.mktemp("probe"), name="probe")
    try:
        srv.start(["probe:app", "--pythonpath", str(APPS), *extra])
        yield srv
    finally:
        srv.stop()


PROBE_SRC = (APPS / "probe.py").read_bytes()


def _raw_get(srv: Server, path: str, version: str = "HTTP/1.1") -> tuple[bytes, bool]:
    host = "Host: x\r\n" if version == "HTTP/1.1" else ""
    close = "Connection: close\r\n" if version == "HTTP/1.1" else ""
    res = raw_exchange(srv.port, f"GET {path} {version}\r\n{host}{close}\r\n".encode(), timeout=5)
    return res.data, res.closed


def _still_serving(srv: Server) -> None:
    r = requests.get(srv.url + "/framing/cl", timeout=WAIT)
    assert r.status_code == 200 and r.content == b"0123456789"


# --------------------------------------------------------------------------- start_response


def test_second_start_response_without_exc_info_raises(probe: Server) -> None:
    r = requests.get(probe.url + "/sr/double", timeout=WAIT)
    assert r.status_code == 200
    assert r.text.startswith("raised "), r.text


def test_start_response_with_exc_info_before_body_replaces(probe: Server) -> None:
    r = requests.get(probe.url + "/sr/replace", timeout=WAIT)
    assert r.status_code == 503
    assert r.headers.get("X-Replaced") == "1"
    assert "X-First" not in r.headers
    assert r.text == "replaced"


def test_start_response_with_exc_info_after_headers_reraises(probe: Server) -> None:
    r = requests.get(probe.url + "/sr/after", timeout=WAIT)
    assert r.status_code == 200
    assert r.text == "first;reraised"


def test_app_never_calling_start_response_is_500(probe: Server) -> None:
    r = requests.get(probe.url + "/sr/none", timeout=WAIT)
    assert r.status_code == 500
    _still_serving(probe)


# --------------------------------------------------------------------------- write()


@pytest.mark.parametrize("kind", ["crlf", "ctl", "wide"])
def test_a_header_value_that_could_break_the_head_is_refused(probe: Server, kind: str) -> None:
    data, _ = _raw_get(probe, f"/sr/value?v={kind}")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    assert body.startswith(b"refused: "), data
    assert b"x-value" not in head.lower() and b"injected" not in head.lower(), head


@pytest.mark.parametrize(("kind", "raw"), [("latin1", b"caf\xe9"), ("tab", b"a\tb")])
def test_a_header_value_in_latin1_or_with_a_tab_is_sent_as_is(
    probe: Server, kind: str, raw: bytes
) -> None:
    data, _ = _raw_get(probe, f"/sr/value?v={kind}")
    head, _, body = data.partition(b"\r\n\r\n")
    assert body == b"accepted", data
    assert b"\r\nx-value: " + raw + b"\r\n" in head.lower() + b"\r\n", head


@pytest.mark.parametrize("kind", ["plus", "list", "wide"])
def test_a_content_length_that_is_not_digits_is_refused(probe: Server, kind: str) -> None:
    data, _ = _raw_get(probe, f"/sr/value?h=Content-Length&v={kind}")
    head, _, body = data.partition(b"\r\n\r\n")
    assert body.startswith(b"refused: "), data
    assert head.lower().count(b"content-length") == 1, head


def test_a_content_length_of_digits_frames_the_body(probe: Server) -> None:
    data, _ = _raw_get(probe, "/sr/value?h=Content-Length&v=eight")
    head, _, body = data.partition(b"\r\n\r\n")
    assert body == b"accepted" and b"\r\ncontent-length: 8" in head.lower(), data


def test_every_header_name_comes_out_as_given_and_hop_by_hop_ones_are_dropped(
    probe: Server,
) -> None:
    # 60 requests on one connection, each with 40 header names made for it: 2,400 name objects
    # through the server's cache of parsed names (a slot per address, 128 slots), freed and
    # their addresses reused between requests. Any name served from a stale entry, or a
    # hop-by-hop field let through (an app's `Transfer-Encoding: chunked` would break the
    # framing), fails here.
    hop_by_hop = ["keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"]
    with socket.create_connection(("127.0.0.1", probe.port), timeout=WAIT) as sock:
        for n in range(60):
            sock.sendall(f"GET /sr/names?n={n}&k=40 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            res = read_response(sock, timeout=WAIT)
            assert res.status == 200 and res.body == f"names {n}".encode(), res
            mine = [(k.lower(), v) for k, v in res.headers if k.lower().startswith("x-n")]
            assert mine == [(f"x-n{n}-{i}", f"v{n}-{i}") for i in range(40)], res.headers
            names = {k.lower() for k, _ in res.headers}
            assert not names & set(hop_by_hop), res.headers
            assert res.header("content-length") == str(len(res.body)) and not res.chunked


def test_write_callable_then_iterable(probe: Server) -> None:
    r = requests.get(probe.url + "/write", timeout=WAIT)
    assert r.status_code == 200 and r.text == "one,two,three"


def test_write_callable_only(probe: Server) -> None:
    r = requests.get(probe.url + "/write-only", timeout=WAIT)
    assert r.status_code == 200 and r.text == "only-write"


# --------------------------------------------------------------------------- iterables


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("list", "abc"),
        ("tuple", "abc"),
        ("gen", "abc"),
        ("custom", "abc"),
        ("empty", ""),
        ("empties", "abc"),
    ],
)
def test_iterable_kinds(probe: Server, kind: str, body: str) -> None:
    r = requests.get(probe.url + f"/iter/{kind}", timeout=WAIT)
    assert r.status_code == 200
    assert r.text == body


def test_close_called_on_custom_iterable(probe: Server) -> None:
    token = uuid.uuid4().hex
    r = requests.get(probe.url + "/iter/custom", params={"token": token}, timeout=WAIT)
    assert r.text == "abc"
    assert wait_for(lambda: f"close {token}" in probe.closes())
    assert probe.closes().count(f"close {token}") == 1


def test_close_called_when_iteration_raises(probe: Server) -> None:
    token = uuid.uuid4().hex
    raw_exchange(
        probe.port,
        f"GET /close/error?token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    )
    assert wait_for(lambda: f"close {token}" in probe.closes())
    _still_serving(probe)


def test_close_called_when_client_disconnects_mid_stream(probe: Server) -> None:
    token = uuid.uuid4().hex
    s = socket.create_connection(("127.0.0.1", probe.port), timeout=5)
    try:
        s.sendall(
            f"GET /stream?n=400&delay=0.01&size=4096&token={token} HTTP/1.1\r\n"
            f"Host: x\r\n\r\n".encode()
        )
        first = s.recv(1024)
        assert first.startswith(b"HTTP/1.1 200")
    finally:
        s.close()
    assert wait_for(lambda: f"close {token}" in probe.closes()), (
        "close() must be called when the client goes away mid-stream"
    )
    _still_serving(probe)


def test_streaming_response_arrives_progressively(probe: Server, tmp_path: Path) -> None:
    gate = tmp_path / "stream-gate"
    with socket.create_connection(("127.0.0.1", probe.port), timeout=WAIT) as s:
        # The generator yields its first chunk, then waits for the gate, which the test opens
        # only once that chunk has arrived: a server that buffered the body never sends it.
        s.sendall(
            f"GET /stream?n=20&delay=0&size=10&gate={gate} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        first = b""
        while b"000000" not in first:
            chunk = s.recv(4096)
            assert chunk, f"closed early: {first!r}"
            first += chunk
        assert first.startswith(b"HTTP/1.1 200")
        assert b"000001" not in first and b"0\r\n\r\n" not in first
        gate.touch()
        whole = first
        while not whole.endswith(b"0\r\n\r\n"):
            chunk = s.recv(65536)
            assert chunk, f"closed before the last chunk: {whole[-200:]!r}"
            whole += chunk
        assert b"000019" in whole


# --------------------------------------------------------------------------- file_wrapper


@pytest.mark.parametrize("with_cl", [True, False])
def test_file_wrapper_real_file(probe: Server, with_cl: bool) -> None:
    token = uuid.uuid4().hex
    params = {"token": token}
    if with_cl:
        params["cl"] = "1"
    # identity: the app's own framing is under test, not the server's compression.
    headers = {"Accept-Encoding": "identity"}
    r = requests.get(probe.url + "/file", params=params, headers=headers, timeout=WAIT)
    assert r.status_code == 200
    assert r.content == PROBE_SRC
    if with_cl:
        assert r.headers["Content-Length"] == str(len(PROBE_SRC))
    assert wait_for(lambda: f"close file {token}" in probe.closes()), "file must be closed"


def test_file_wrapper_file_like_without_fileno(probe: Server) -> None:
    r = requests.get(probe.url + "/filelike", timeout=WAIT)
    assert r.status_code == 200
    assert r.content == b"file-like-object:" + b"x" * 20000


def test_file_wrapper_head(probe: Server) -> None:
    res = raw_exchange(
        probe.port,
        b"HEAD /file?cl=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /framing/cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head, nxt = parse_responses(res.data, ["HEAD", "GET"])
    assert head.header("content-length") == str(len(PROBE_SRC))
    assert nxt.body == b"0123456789"


# --------------------------------------------------------------------------- framing


def test_framing_app_content_length(probe: Server) -> None:
    r = parse_response(_raw_get(probe, "/framing/cl")[0])
    assert r.header("content-length") == "10"
    assert r.header("transfer-encoding") is None
    assert r.body == b"0123456789"


def test_framing_single_chunk_gets_content_length(probe: Server) -> None:
    r = parse_response(_raw_get(probe, "/framing/single")[0])
    assert r.header("content-length") == str(len(b"single-chunk-body"))
    assert r.header("transfer-encoding") is None
    assert r.body == b"single-chunk-body"


def test_framing_generator_chunked_on_http11(probe: Server) -> None:
    r = parse_response(_raw_get(probe, "/framing/gen")[0])
    assert (r.header("transfer-encoding") or "").lower() == "chunked"
    assert r.header("content-length") is None
    assert r.body == b"gen-erated-body" and r.complete


def test_framing_generator_close_delimited_on_http10(probe: Server) -> None:
    data, closed = _raw_get(probe, "/framing/gen", "HTTP/1.0")
    assert closed
    r = parse_response(data)
    assert r.status == 200
    assert r.header("transfer-encoding") is None
    assert r.body == b"gen-erated-body"


# --------------------------------------------------------------------------- errors


def test_exception_before_start_is_500_with_traceback(probe: Server) -> None:
    r = requests.get(probe.url + "/error/before", timeout=WAIT)
    assert r.status_code == 500
    assert "probe-boom-before" not in r.text, "no traceback to the client without --debug"
    assert wait_for(lambda: "probe-boom-before" in probe.log())
    assert "Traceback" in probe.log()
    _still_serving(probe)


def test_exception_after_start_cuts_connection(probe: Server) -> None:
    token = uuid.uuid4().hex
    data, closed = _raw_get(probe, f"/error/after?token={token}")
    assert closed
    r = parse_response(data)
    assert r.status == 200
    assert r.chunked
    assert not r.complete, "the client must see an incomplete chunked body"
    assert r.body.startswith(b"partial-body")
    assert wait_for(lambda: "probe-boom-after" in probe.log())
    assert wait_for(lambda: f"close {token}" in probe.closes())
    _still_serving(probe)


def test_exception_after_start_with_content_length_cuts_connection(probe: Server) -> None:
    data, closed = _raw_get(probe, "/error/after-cl")
    assert closed
    r = parse_response(data)
    assert r.status == 200
    assert not r.complete and r.body == b"0123456789"
    assert wait_for(lambda: "probe-boom-after-cl" in probe.log())
    _still_serving(probe)


def test_wsgi_errors_go_to_log(probe: Server) -> None:
    mark = uuid.uuid4().hex
    r = requests.get(probe.url + "/errors", params={"mark": mark}, timeout=WAIT)
    assert r.text == "logged"
    expected = [
        f"{x} {mark}"
        for x in ("probe-errors-write", "probe-errors-lines-a", "probe-errors-lines-b")
    ]
    assert wait_for(lambda: all(x in probe.stderr() for x in expected)), probe.stderr()[-2000:]
