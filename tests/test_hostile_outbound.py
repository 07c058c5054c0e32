"""A hostile tenant's outgoing requests (issue 11, findings 2 and 3): in-flight caps per
instance and per tenant, connect bounded by the request's deadline, the allow-list checked
on the address the host resolved and connected to (no DNS rebinding onto loopback), and
`user@host` authorities refused. One worker; the attacker is tenant `evil` (the `hostile`
component), the bystander tenant `good` (`hello`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests

from support.http import free_port
from support.launcher import Server
from support.paths import WAIT, wait_for
from support.procfs import fd_links
from support.wasm import state_args, wasm_handler

#: Per instance (`outbound_per_request`) and tenant-wide (`max_outbound`) caps of `evil`.
PER_REQUEST = 8
TENANT_CAP = 12
#: Requests the `sockets` attack starts at once.
ATTACK_N = 2000
#: Open fds the worker may gain during the attack (its caps allow 12 sockets, plus slack).
FD_SLACK = 100
#: Sockets that fill the accept queue of the `stuck` listener (then a connect never completes).
FILLERS = 4


class Upstream(BaseHTTPRequestHandler):
    """An origin: records each path; `/hold...` never answers until the test ends."""

    hits: ClassVar[list[str]] = []
    release: ClassVar[threading.Event] = threading.Event()
    connections: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path.startswith("/hold"):
            with type(self).lock:
                type(self).connections += 1
            type(self).release.wait(WAIT)
            return
        body = b"upstream"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        Upstream.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def stuck() -> Iterator[str]:
    """`127.0.0.1:PORT` where a connect hangs: a listener that never accepts, its queue full
    (the kernel drops further SYNs; a remote blackhole is not reliably one on every network)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(FILLERS):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, upstream: int, stuck: str) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile-outbound")
    own = free_port()
    hostile, hello = wasm_handler("hostile"), wasm_handler("hello")
    (tmp / "wsrun.toml").write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "evil"
hosts = ["evil.test"]
timeout = "10s"
outbound_per_request = {PER_REQUEST}
max_outbound = {TENANT_CAP}
# Room for the attack's {ATTACK_N} requests and their pollables: the outbound caps are under
# test here, not the resource table's (its own test is test_hostile_memory.py).
max_resources = 8192
allow_outbound = [
    "http://127.0.0.1:{upstream}",
    "http://localhost:{upstream}",
    "http://localhost:{own}",
    "http://{stuck}",
]

[[tenant.route]]
prefix = "/"
wasm = "{hostile}"

[[tenant.route]]
prefix = "/deadline"
wasm = "{hostile}"
timeout = "1s"

[[tenant.route]]
prefix = "/connect"
wasm = "{hostile}"
connect_timeout = "300ms"

[[tenant]]
name = "good"
hosts = ["good.test"]

[[tenant.route]]
prefix = "/"
wasm = "{hello}"

[[route]]
prefix = "/secret"
wasm = "{hello}"
"""
    )
    server = Server(tmp, name="hostile-outbound")
    try:
        server.start(["-c", str(tmp / "wsrun.toml"), *state_args(tmp)], cwd=tmp, port=own)
        yield server
    finally:
        server.stop()


def evil(srv: Server, path: str, timeout: float = WAIT, **params: str | int) -> requests.Response:
    return requests.get(
        srv.url + path, params=params, headers={"Host": "evil.test"}, timeout=timeout
    )


def good(srv: Server) -> requests.Response:
    return requests.get(srv.url + "/", headers={"Host": "good.test"}, timeout=WAIT)


def counts(text: str) -> dict[str, int]:
    """`pending 8` lines of the attack's answer -> {"pending": 8}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        what, _, n = line.rpartition(" ")
        out[what] = int(n)
    return out


def test_pending_requests_are_capped_per_instance_and_tenant(srv: Server, upstream: int) -> None:
    worker = srv.worker_pids()[0]
    fds_before = len(fd_links(worker))
    url = f"http://127.0.0.1:{upstream}/hold"
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(evil, srv, "/", attack="sockets", n=ATTACK_N, url=url, hold=3000)
        assert srv.wait_log(f"outbound: started {ATTACK_N}"), srv.log()
        fds_during = len(fd_links(worker))
        # A second instance of the same tenant gets what the tenant-wide cap leaves.
        second = evil(srv, "/", attack="sockets", n=ATTACK_N, url=url + "2")
        bystander = [good(srv) for _ in range(20)]
        answer = first.result(timeout=WAIT)
    assert answer.status_code == 200, answer.text
    got = counts(answer.text)
    assert got["pending"] == PER_REQUEST, answer.text
    assert got["refused ErrorCode::ConnectionLimitReached"] == ATTACK_N - PER_REQUEST, answer.text
    assert second.status_code == 200, second.text
    got = counts(second.text)
    assert got["pending"] == TENANT_CAP - PER_REQUEST, second.text
    assert got["refused ErrorCode::ConnectionLimitReached"] == ATTACK_N - got["pending"], (
        second.text
    )
    assert fds_during - fds_before < FD_SLACK, (fds_before, fds_during)
    assert Upstream.connections <= TENANT_CAP
    assert [r.status_code for r in bystander] == [200] * 20
    assert all(r.text.startswith("Hello from WebAssembly!") for r in bystander)
    label = "tenant `evil` handler `hostile` on /"
    assert srv.wait_log(f"{label}: outgoing request refused: outbound_per_request of 8 is reached")
    assert srv.wait_log(f"{label}: outgoing request refused: the tenant's max_outbound of 12")
    # Once per instance, not once per refused request.
    assert srv.log_count("outgoing request refused: ") == 2, srv.log()


def test_a_name_that_resolves_to_loopback_is_refused(srv: Server, upstream: int) -> None:
    # `localhost` is allowed by name, for the server's own port and for the upstream's.
    own = evil(srv, "/", attack="rebind", url=f"http://localhost:{srv.port}/secret")
    assert (own.status_code, own.text) == (502, "fetch error: ErrorCode::DestinationIpProhibited")
    other = evil(srv, "/", attack="rebind", url=f"http://localhost:{upstream}/rebound")
    assert (other.status_code, other.text) == (
        502,
        "fetch error: ErrorCode::DestinationIpProhibited",
    )
    assert srv.wait_log(
        f"tenant `evil` handler `hostile` on /: outgoing request to http://localhost:{srv.port} "
        "refused: 127.0.0.1 is not a public address (loopback)"
    ), srv.log()
    # Written as the IP literal, the same upstream is reachable.
    literal = evil(srv, "/", attack="rebind", url=f"http://127.0.0.1:{upstream}/literal")
    assert (literal.status_code, literal.text) == (200, "fetched 200")
    assert "/literal" in Upstream.hits
    assert "/rebound" not in Upstream.hits


def test_userinfo_in_the_authority_is_refused(srv: Server, upstream: int) -> None:
    r = evil(srv, "/", attack="userinfo", url=f"http://evil@127.0.0.1:{upstream}/userinfo")
    assert (r.status_code, r.text) == (502, "fetch error: ErrorCode::HttpRequestUriInvalid")
    assert srv.wait_log(
        f"outgoing request to http://evil@127.0.0.1:{upstream} refused "
        "(userinfo (`user@`) in the authority)"
    ), srv.log()
    assert "/userinfo" not in Upstream.hits


def test_connect_ends_by_the_request_deadline(srv: Server, stuck: str) -> None:
    started = time.monotonic()
    r = evil(srv, "/deadline", attack="rebind", url=f"http://{stuck}/")
    elapsed = time.monotonic() - started
    # A bound on the deadline (timeout 1s), not a speed claim: without it the connect waited
    # for the kernel's SYN retries (minutes). Whichever fires first, the connect bound (502,
    # the guest saw connection-timeout) or the instance's timeout (504), it is the deadline.
    assert elapsed < 1 + 2, elapsed
    assert r.status_code in (502, 504), r.text
    if r.status_code == 502:
        assert r.text == "fetch error: ErrorCode::ConnectionTimeout"
    assert wait_for(
        lambda: (
            f"on /deadline: outgoing request to http://{stuck} stopped: the timeout of 1s ran out"
            in srv.log()
            or "on /deadline: exceeded its timeout of 1s" in srv.log()
        )
    ), srv.log()


def test_connect_timeout_key_bounds_the_connect(srv: Server, stuck: str) -> None:
    r = evil(srv, "/connect", attack="rebind", url=f"http://{stuck}/")
    assert (r.status_code, r.text) == (502, "fetch error: ErrorCode::ConnectionTimeout")
    assert srv.wait_log(
        "tenant `evil` handler `hostile` on /connect: outgoing request to "
        f"http://{stuck} stopped: the connect_timeout of 300ms ran out"
    ), srv.log()
