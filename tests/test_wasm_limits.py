"""WASM limits and capabilities: memory cap, CPU/wall timeout, max_concurrency, traps that keep
their details in the log, outbound HTTP only to allowed origins, the route's env only, no
filesystem, guest stdout/stderr in the server log."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from support.http import free_port
from support.launcher import Launcher, Server
from support.paths import WAIT, wait_for
from support.wasm import SPINNING, state_args, wasm_handler

#: Paths the upstream origin was asked for.
UPSTREAM_HITS: list[str] = []


class _Upstream(BaseHTTPRequestHandler):
    """A tiny origin for outbound fetches: records hits, answers `200 upstream`."""

    def do_GET(self) -> None:
        UPSTREAM_HITS.append(self.path)
        body = b"upstream"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadingHTTPServer]:
    UPSTREAM_HITS.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _port(server: ThreadingHTTPServer) -> int:
    return int(server.server_address[1])


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, upstream: ThreadingHTTPServer
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("wasm-limits")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[route]]
prefix = "/bomb"
wasm = "{wasm_handler("memory-bomb")}"
memory = "32MiB"

[[route]]
prefix = "/loop"
wasm = "{wasm_handler("spin-loop")}"
timeout = "500ms"

[[route]]
prefix = "/busy"
wasm = "{wasm_handler("spin-loop")}"
timeout = "1500ms"
max_concurrency = 2

[[route]]
prefix = "/solo"
wasm = "{wasm_handler("huge-response")}"
timeout = "10s"
max_concurrency = 1

[[route]]
prefix = "/huge"
wasm = "{wasm_handler("huge-response")}"
timeout = "300ms"

[[route]]
prefix = "/tiny"
wasm = "{wasm_handler("echo")}"
max_body_size = 100

[[route]]
prefix = "/trap"
wasm = "{wasm_handler("trap")}"

[[route]]
prefix = "/probe"
wasm = "{wasm_handler("probe")}"

[[route]]
prefix = "/envy"
wasm = "{wasm_handler("probe")}"
env = {{ MODE = "staging", GREETING = "hi there" }}

[[route]]
prefix = "/out"
wasm = "{wasm_handler("probe")}"
allow_outbound = ["http://127.0.0.1:{_port(upstream)}"]
"""
    )
    server = Server(tmp, name="limits")
    try:
        # A secret in the server's own environment must never reach a guest.
        server.start(
            ["-c", str(cfg), *state_args(tmp)], cwd=tmp, env={"WSRUN_TEST_SECRET": "leaked"}
        )
        yield server
    finally:
        server.stop()


def _log_has(srv: Server, text: str) -> bool:
    return srv.wait_log(text)


def _still_serving(srv: Server) -> None:
    r = requests.get(srv.url + "/probe", timeout=WAIT)
    assert (r.status_code, r.text) == (200, "probe ok\n")


# --------------------------------------------------------------------------- memory, time


def test_memory_bomb_gets_500_naming_the_limit(srv: Server) -> None:
    r = requests.get(srv.url + "/bomb", timeout=WAIT)
    assert r.status_code == 500
    assert r.text == (
        "Internal Server Error: handler `memory-bomb` on /bomb exceeded its memory limit of 32 MiB\n"
    )
    assert _log_has(srv, "handler `memory-bomb` on /bomb: exceeded its memory limit of 32 MiB")
    _still_serving(srv)
    # And again: the limit holds for every instance, and the worker survives each one.
    assert requests.get(srv.url + "/bomb", timeout=WAIT).status_code == 500
    _still_serving(srv)


def test_spin_loop_times_out_with_504(srv: Server) -> None:
    started = time.monotonic()
    r = requests.get(srv.url + "/loop", timeout=WAIT)
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert r.text == (
        "Gateway Timeout: handler `spin-loop` on /loop exceeded its timeout of 500ms\n"
    )
    # Not before its timeout (how soon after it: bench/timings.py).
    assert elapsed >= 0.45, f"504 after {elapsed:.2f}s"
    _still_serving(srv)


def test_max_concurrency_turns_the_third_away(srv: Server) -> None:
    results: dict[int, requests.Response] = {}

    def hit(i: int) -> None:
        results[i] = requests.get(srv.url + "/busy", timeout=WAIT)

    spinning = srv.log_count(SPINNING)
    threads = [threading.Thread(target=hit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    assert srv.wait_log(SPINNING, count=spinning + 2), "both instances must be running"
    third = requests.get(srv.url + "/busy", timeout=WAIT)
    # The refusal is immediate, not queued: it came while both still ran to their 504.
    answered_first = results == {}
    for t in threads:
        t.join(timeout=WAIT)
    assert third.status_code == 503, third.text
    assert third.headers.get("Retry-After") == "1"
    assert "max_concurrency of 2" in third.text
    assert answered_first, "the refusal must be immediate, not queued behind a running one"
    assert sorted(r.status_code for r in results.values()) == [504, 504]
    # The slots are free again.
    r = requests.get(srv.url + "/busy", timeout=WAIT)
    assert r.status_code == 504


def test_client_gone_mid_stream_frees_its_instance(srv: Server) -> None:
    """A client that hangs up while a response streams frees the instance's slot at once."""
    request = f"GET /solo?mb=500 HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode()
    with socket.create_connection((srv.host, srv.port), timeout=5) as first:
        first.sendall(request)
        got = 0
        while got < 1 << 20:  # the instance is streaming, holding the route's only slot
            chunk = first.recv(65536)
            assert chunk, "the stream ended early"
            got += len(chunk)

    # Slot still taken: an immediate 503. Freed: the next request streams in its turn.
    def second_is_served() -> bool:
        r = requests.get(srv.url + "/solo?mb=1", timeout=WAIT)
        return r.status_code == 200 and len(r.content) == 1 << 20

    assert wait_for(second_is_served), "the gone client's instance kept its slot"
    _still_serving(srv)


def test_timeout_cuts_a_started_stream(srv: Server) -> None:
    """Past its timeout a response that has started is cut: never a complete-looking body."""
    total = 4096 * 1024 * 1024
    received = 0
    with requests.get(srv.url + "/huge?mb=4096", stream=True, timeout=WAIT) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(total)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in r.iter_content(1024 * 1024):
                received += len(chunk)
                time.sleep(0.01)  # a slow reader: the stream cannot finish in 300 ms
    assert 0 < received < total
    assert _log_has(srv, "handler `huge-response` on /huge: exceeded its timeout of 300ms")
    _still_serving(srv)


def test_route_max_body_size(srv: Server) -> None:
    ok = requests.post(srv.url + "/tiny", data=b"x" * 100, timeout=WAIT)
    assert (ok.status_code, ok.content) == (200, b"x" * 100)
    big = requests.post(srv.url + "/tiny", data=b"x" * 101, timeout=WAIT)
    assert big.status_code == 413


# --------------------------------------------------------------------------- traps


def test_trap_hides_guest_details(srv: Server) -> None:
    r = requests.get(srv.url + "/trap/some/where", timeout=WAIT)
    assert r.status_code == 500
    assert r.text == "Internal Server Error\n"
    assert "secret-internal-detail" not in r.text
    assert "secret-internal-detail" not in str(r.headers)
    assert _log_has(srv, "handler `trap` on /trap: trapped")
    log = srv.log()
    assert "wasm backtrace" in log
    leaked = [x for x in log.splitlines() if "secret-internal-detail" in x]
    assert any("handler `trap` on /trap stderr:" in x for x in leaked), log[-3000:]
    _still_serving(srv)


def test_sdk_error_goes_to_the_log_only(srv: Server) -> None:
    r = requests.get(srv.url + "/probe?fail=hush-hush-42", timeout=WAIT)
    assert r.status_code == 500
    assert "hush-hush-42" not in r.text
    assert _log_has(srv, "hush-hush-42")


# --------------------------------------------------------------------------- outbound


def test_outbound_refused_by_default(srv: Server, upstream: ThreadingHTTPServer) -> None:
    port = _port(upstream)
    before = len(UPSTREAM_HITS)
    r = requests.get(
        srv.url + "/probe", params={"fetch": f"http://127.0.0.1:{port}/x"}, timeout=WAIT
    )
    assert r.status_code == 502
    assert r.text.startswith("fetch error: ")
    assert "HttpRequestDenied" in r.text
    assert _log_has(
        srv,
        f"handler `probe` on /probe: outgoing request to http://127.0.0.1:{port} refused "
        "(not in allow_outbound)",
    )
    assert len(UPSTREAM_HITS) == before, "a refused request must not reach the origin"


def test_outbound_allowed_to_listed_origin_only(srv: Server, upstream: ThreadingHTTPServer) -> None:
    port = _port(upstream)
    r = requests.get(
        srv.url + "/out", params={"fetch": f"http://127.0.0.1:{port}/hello?x=1"}, timeout=WAIT
    )
    assert (r.status_code, r.text) == (200, "fetched 200")
    assert "/hello?x=1" in UPSTREAM_HITS
    # Same host, another port: a different origin.
    other = free_port()
    r = requests.get(srv.url + "/out", params={"fetch": f"http://127.0.0.1:{other}/"}, timeout=WAIT)
    assert r.status_code == 502 and "HttpRequestDenied" in r.text
    assert _log_has(srv, f"outgoing request to http://127.0.0.1:{other} refused")
    # Same port, another host name: also a different origin.
    r = requests.get(srv.url + "/out", params={"fetch": f"http://localhost:{port}/"}, timeout=WAIT)
    assert r.status_code == 502 and "HttpRequestDenied" in r.text


# --------------------------------------------------------------------------- what a guest sees


def test_env_is_the_routes_only(srv: Server) -> None:
    def env(prefix: str, name: str) -> str:
        r = requests.get(srv.url + prefix, params={"env": name}, timeout=WAIT)
        assert r.status_code == 200
        return r.text

    assert env("/envy", "MODE") == "staging"
    assert env("/envy", "GREETING") == "hi there"
    assert env("/envy", "*") == "GREETING=hi there\nMODE=staging\n"
    assert env("/envy", "PATH") == "<unset>"
    assert env("/envy", "WSRUN_TEST_SECRET") == "<unset>"
    # A route without `env` sees an empty environment.
    assert env("/probe", "*") == ""
    assert env("/probe", "MODE") == "<unset>"
    assert env("/probe", "HOME") == "<unset>"


def test_no_filesystem(srv: Server) -> None:
    r = requests.get(srv.url + "/probe?files", timeout=WAIT)
    assert (r.status_code, r.text) == (200, "no filesystem")


def test_guest_output_is_logged_with_the_route(srv: Server) -> None:
    marker = f"marker-{time.monotonic_ns()}"
    r = requests.get(srv.url + "/envy", params={"log": marker}, timeout=WAIT)
    assert (r.status_code, r.text) == (200, "logged")
    assert _log_has(srv, f"handler `probe` on /envy stdout: {marker}")
    assert _log_has(srv, f"handler `probe` on /envy stderr: stderr:{marker}")
    lines = [x for x in srv.log().splitlines() if marker in x]
    assert any(" INFO " in x and "stdout" in x for x in lines), lines
    assert any(" WARN " in x and "stderr" in x for x in lines), lines


def test_sleep_is_not_cpu(srv: Server) -> None:
    """A guest blocked on a clock pollable does not hold up other requests."""
    results: list[requests.Response] = []
    sleeping = srv.log_count("probe: sleeping 3000 ms")
    t = threading.Thread(
        target=lambda: results.append(requests.get(srv.url + "/probe?sleep_ms=3000", timeout=WAIT))
    )
    t.start()
    assert srv.wait_log("probe: sleeping 3000 ms", count=sleeping + 1), "the guest must be asleep"
    _still_serving(srv)
    # Order, not time: the other requests were answered while the guest still slept.
    assert results == [], "a request waited behind a sleeping guest"
    t.join(timeout=WAIT)
    assert results and (results[0].status_code, results[0].text) == (200, "slept")


def test_guest_log_lines_are_capped_at_4_kib(srv: Server) -> None:
    """README: a guest's stdout/stderr lines go into the log capped at 4 KiB."""
    marker = f"long-{time.monotonic_ns()}-"
    text = marker + "x" * (6000 - len(marker))
    r = requests.get(srv.url + "/envy", params={"log": text}, timeout=WAIT)
    assert (r.status_code, r.text) == (200, "logged")
    assert _log_has(srv, f"handler `probe` on /envy stderr: stderr:{marker}")
    lines = [x for x in srv.log().splitlines() if marker in x]
    assert lines, srv.log()[-2000:]
    assert len(lines) == 2, lines  # one stdout, one stderr event: the rest is not a new line
    for line in lines:
        # The guest's text, after the tag, is cut at 4096 bytes and marked as cut.
        logged = line.split(" stdout: ", 1)[-1].split(" stderr: ", 1)[-1]
        assert logged.endswith(" [...]"), line[-200:]
        assert len(logged.removesuffix(" [...]").encode()) == 4096, (len(logged), line[:200])
    assert not any(text in x for x in lines), "a 6000-byte line must not be logged whole"


# --------------------------------------------------------------------------- limit messages


def test_limit_messages_state_the_configured_limit(launcher: Launcher, tmp_path: Path) -> None:
    """Limits that are not whole MiB or whole seconds are still named correctly."""
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(
        f"""[[route]]
prefix = "/bomb"
wasm = "{wasm_handler("memory-bomb")}"
memory = "2560KiB"

[[route]]
prefix = "/loop"
wasm = "{wasm_handler("spin-loop")}"
timeout = "1.25s"
"""
    )
    srv = launcher.start(["-c", str(cfg), *state_args(tmp_path)], cwd=tmp_path)
    r = requests.get(srv.url + "/loop", timeout=WAIT)
    assert r.status_code == 504
    assert re.search(r"exceeded its timeout of (1\.25s|1\.250s|1250ms)\n$", r.text), r.text
    r = requests.get(srv.url + "/bomb", timeout=WAIT)
    assert r.status_code == 500
    # 2560 KiB is 2.5 MiB: saying "2 MiB" names a limit the route does not have.
    assert re.search(r"exceeded its memory limit of (2560 ?KiB|2\.5 ?MiB)\n$", r.text), r.text


# --------------------------------------------------------------------------- no sockets


def test_guests_have_no_sockets(launcher: Launcher, tmp_path: Path) -> None:
    """README: guests have no sockets (TCP, UDP and name lookup are off). The `sockets`
    handler tries each through `std::net`; a TCP listener and a UDP socket of the test's own
    are the targets, and nothing may reach them."""
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(f'[[route]]\nprefix = "/net"\nwasm = "{wasm_handler("sockets")}"\n')
    srv = launcher.start(["-c", str(cfg), *state_args(tmp_path)], cwd=tmp_path)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(8)
        udp.bind(("127.0.0.1", 0))
        tcp_addr = f"127.0.0.1:{tcp.getsockname()[1]}"
        udp_addr = f"127.0.0.1:{udp.getsockname()[1]}"
        r = requests.get(
            srv.url + "/net",
            params={"tcp": tcp_addr, "udp": udp_addr, "lookup": "localhost"},
            timeout=WAIT,
        )
        assert r.status_code == 200, r.text
        lines = r.text.splitlines()
        assert [x.split(" ")[0] for x in lines] == ["tcp", "udp", "lookup"], lines
        assert all(" error: " in x for x in lines), lines
        # The guest answered after its attempts ended: a connection or datagram that had
        # got through would be waiting here now.
        tcp.setblocking(False)
        udp.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recv(64)
