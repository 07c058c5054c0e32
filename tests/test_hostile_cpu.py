"""Hostile tenant, compute (issue 11, findings 7 and 8): the slow lane is shared fairly between
tenants, a tenant without `max_concurrency` is capped at 100 instances, `cpu_time` stops a
spinner with a 500 naming the budget, and a response whose instance ends before finishing its
body is cut (no chunked terminator, or short of its Content-Length), never passed off as whole.

All against the real `hostile` component on one worker; durations are measured in
`bench/fairness.py`, never asserted here.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from support.http import recv_until_closed
from support.launcher import Server
from support.paths import WAIT
from support.wasm import hello_body, state_args, wasm_handler

SPINNING = "hostile: spinning"
STREAMED = "hostile: streamed"
#: Millions of rounds of the hostile spin loop: a fixed amount of computing (~0.3-1 s alone).
WORK = 150


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile-cpu")
    hostile, hello, probe = (wasm_handler(n) for n in ("hostile", "hello", "probe"))
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "spinner"
hosts = ["a.test"]
timeout = "25s"
cpu_time = "20s"

  [[tenant.route]]
  prefix = "/h"
  wasm = "{hostile}"

[[tenant]]
name = "victim"
hosts = ["b.test"]
timeout = "25s"
cpu_time = "20s"

  [[tenant.route]]
  prefix = "/h"
  wasm = "{hostile}"

  [[tenant.route]]
  prefix = "/hello"
  wasm = "{hello}"

[[tenant]]
name = "budget"
hosts = ["c.test"]
timeout = "20s"
cpu_time = "500ms"

  [[tenant.route]]
  prefix = "/h"
  wasm = "{hostile}"

[[tenant]]
name = "streamer"
hosts = ["d.test"]
timeout = "1500ms"

  [[tenant.route]]
  prefix = "/h"
  wasm = "{hostile}"

[[tenant]]
name = "many"
hosts = ["m.test"]

  [[tenant.route]]
  prefix = "/one"
  wasm = "{probe}"

  [[tenant.route]]
  prefix = "/two"
  wasm = "{probe}"
"""
    )
    server = Server(tmp, name="hostile-cpu")
    try:
        server.start(["-c", str(cfg), *state_args(tmp)], cwd=tmp)
        yield server
    finally:
        server.stop()


def _get(srv: Server, host: str, path: str, timeout: float = WAIT) -> requests.Response:
    return requests.get(srv.url + path, headers={"Host": host}, timeout=timeout)


# --------------------------------------------------------------------------- fairness


def test_other_tenant_gets_its_share_beside_four_spinners(srv: Server) -> None:
    """A's four requests and B's one each compute the same amount. Taken guest by guest, the
    slow lane would finish B last (it starts last, at the same speed); taken tenant by tenant,
    B gets half the thread and finishes before any of A's."""
    order: list[str] = []
    lock = threading.Lock()
    statuses: list[int] = []

    def run(host: str, name: str) -> None:
        r = _get(srv, host, f"/h?attack=spin&work={WORK}")
        with lock:
            order.append(name)
            statuses.append(r.status_code)

    before = srv.log_count(SPINNING)
    spinners = [threading.Thread(target=run, args=("a.test", f"a{i}")) for i in range(4)]
    for t in spinners:
        t.start()
    assert srv.wait_log(SPINNING, count=before + 4), "A's four spinners must be running"
    hellos = [_get(srv, "b.test", "/hello") for _ in range(5)]
    victim = threading.Thread(target=run, args=("b.test", "b"))
    victim.start()
    victim.join(timeout=WAIT)
    for t in spinners:
        t.join(timeout=WAIT)
    assert statuses == [200] * 5, statuses
    assert order[0] == "b", f"B must finish before A's spinners: {order}"
    assert all((h.status_code, h.text) == (200, hello_body(0)) for h in hellos)


# --------------------------------------------------------------------------- cpu_time


def test_cpu_time_stops_a_spinner_with_a_named_error(srv: Server) -> None:
    r = _get(srv, "c.test", "/h?attack=spin")
    assert r.status_code == 500, r.text
    assert "tenant `budget` handler `hostile` on /h exceeded its CPU budget of 500ms" in r.text
    line = "tenant `budget` handler `hostile` on /h: exceeded its CPU budget of 500ms (cpu_time)"
    assert srv.wait_log(line), srv.log()[-3000:]
    # Bounded work under the budget is untouched.
    ok = _get(srv, "c.test", "/h?attack=spin&work=1")
    assert (ok.status_code, ok.text) == (200, "worked 1\n")


# --------------------------------------------------------------------------- tenant cap


def test_tenant_without_max_concurrency_is_capped_at_100(srv: Server) -> None:
    """100 sleepers over the tenant's two routes (each route's own cap is 100) fill the
    tenant's default cap; the 101st is refused, another tenant is served."""
    results: list[int] = []
    lock = threading.Lock()

    def sleeper(path: str) -> None:
        r = _get(srv, "m.test", f"{path}?sleep_ms=6000")
        with lock:
            results.append(r.status_code)

    before = srv.log_count("probe: sleeping 6000 ms")
    threads = [
        threading.Thread(target=sleeper, args=("/one" if i % 2 else "/two",)) for i in range(100)
    ]
    for t in threads:
        t.start()
    assert srv.wait_log("probe: sleeping 6000 ms", count=before + 100), "100 must be sleeping"
    refused = _get(srv, "m.test", "/one?sleep_ms=1")
    other = _get(srv, "b.test", "/hello")
    for t in threads:
        t.join(timeout=WAIT)
    assert refused.status_code == 503, refused.text
    assert "tenant `many`'s max_concurrency of 100 is reached" in refused.text
    assert refused.headers.get("Retry-After") == "1"
    assert (other.status_code, other.text) == (200, hello_body(0))
    assert results == [200] * 100
    assert srv.wait_log("tenant `many` handler `probe` on /one: 503, tenant `many`'s")


# --------------------------------------------------------------------------- truncation


def _raw_get(srv: Server, host: str, path: str) -> tuple[bytes, bool]:
    """The raw bytes of one `Connection: close` GET until the server closes (or WAIT)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return recv_until_closed(sock, WAIT)


@pytest.mark.parametrize(
    ("host", "limit"),
    [
        ("d.test", "exceeded its timeout of 1.5s"),
        ("c.test", "exceeded its CPU budget of 500ms"),
    ],
    ids=["timeout", "cpu_time"],
)
def test_chunked_response_cut_when_instance_stops(srv: Server, host: str, limit: str) -> None:
    before = srv.log_count(limit)
    data, closed = _raw_get(srv, host, "/h?attack=stream-then-spin&bytes=3000")
    assert closed, "the server must close the connection"
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower(), head
    assert body.count(b"x") == 3000, body[:200]
    assert not body.endswith(b"0\r\n\r\n"), "no chunked terminator on a cut response"
    assert srv.wait_log(limit, count=before + 1), srv.log()[-3000:]


def test_clients_see_the_cut_as_an_error(srv: Server) -> None:
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = _get(srv, "d.test", "/h?attack=stream-then-spin&bytes=100").content
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=WAIT)
    try:
        conn.request("GET", "/h?attack=stream-then-spin&bytes=5000", headers={"Host": "d.test"})
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()


def test_content_length_response_closed_short(srv: Server) -> None:
    path = "/h?attack=stream-then-spin&bytes=2000&length=100000"
    data, closed = _raw_get(srv, "d.test", path)
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"content-length: 100000" in head.lower(), head
    assert len(body) == 2000, len(body)
    with pytest.raises(requests.exceptions.RequestException):
        _ = _get(srv, "d.test", path).content


def test_finished_bodies_are_unchanged(srv: Server) -> None:
    """A guest that finishes its body still ends it properly (and is reused over keep-alive)."""
    with requests.Session() as s:
        for _ in range(3):
            r = s.get(srv.url + "/hello", headers={"Host": "b.test"}, timeout=WAIT)
            assert (r.status_code, r.text) == (200, hello_body(0))
        r = s.get(srv.url + "/h?attack=spin&work=1", headers={"Host": "b.test"}, timeout=WAIT)
        assert (r.status_code, r.text) == (200, "worked 1\n")
    data, closed = _raw_get(srv, "b.test", "/hello")
    assert closed and data.endswith(hello_body(0).encode()), data
