"""A hostile tenant against host memory: what a guest makes the worker allocate outside its
linear memory (fields, resources, unsent bodies), its stack, and the shared memory budgets
(`memory_total` per tenant, `wasm_memory` per worker). Each attack runs over real sockets
against the real `hostile` component, with another tenant served alongside."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from support.launcher import Server
from support.paths import WAIT
from support.procfs import proc_status_kib
from support.wasm import state_args, wasm_handler

EVIL = {"Host": "evil.test"}
GOOD = {"Host": "good.test"}
EVIL_LABEL = "tenant `evil` handler `hostile` on /"
#: The evil tenant's limits: 16 MiB of memory -> 128 resources by default.
RESOURCES_LINE = f"{EVIL_LABEL}: exceeded its max_resources of 128"
#: Before the bounds, the `fields` attack alone took the worker from ~40 MB to 1.3-1.6 GB.
#: Now 4 attackers at once may hold 4 x (16 MiB linear + 128 x 128 KiB host) = 128 MiB.
WORKER_GROWTH_BOUND_KIB = 200 * 1024


def _config(tmp: Path) -> Path:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "evil"
hosts = ["evil.test"]
memory = "16MiB"
timeout = "5s"
max_concurrency = 4
  [[tenant.route]]
  prefix = "/"
  wasm = "{wasm_handler("hostile")}"

[[tenant]]
name = "pool"
hosts = ["pool.test"]
memory = "8MiB"
memory_total = "12MiB"
  [[tenant.route]]
  prefix = "/"
  wasm = "{wasm_handler("hostile")}"

[[tenant]]
name = "good"
hosts = ["good.test"]
  [[tenant.route]]
  prefix = "/"
  wasm = "{wasm_handler("hello")}"
"""
    )
    return cfg


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile-memory")
    server = Server(tmp, name="hostile-memory")
    try:
        server.start(["-c", str(_config(tmp)), *state_args(tmp)], cwd=tmp)
        yield server
    finally:
        server.stop()


def attack(srv: Server, query: str, host: dict[str, str] = EVIL) -> requests.Response:
    return requests.get(f"{srv.url}/?attack={query}", headers=host, timeout=WAIT)


class GoodTenant:
    """Requests the good tenant's route in a loop until stopped; keeps every status."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                r = session.get(self.srv.url + "/", headers=GOOD, timeout=WAIT)
                self.statuses.append(r.status_code)

    def __enter__(self) -> GoodTenant:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT)


def test_fields_bomb_is_bounded_by_max_resources(srv: Server) -> None:
    (worker,) = srv.worker_pids()
    before = proc_status_kib(worker, "VmRSS")
    with GoodTenant(srv) as good, ThreadPoolExecutor(4) as pool:
        # Fields just under the size cap, as many as the guest can make, four guests at once.
        results = list(pool.map(lambda _: attack(srv, "fields&n=12000&size=60000"), range(4)))
    grown = proc_status_kib(worker, "VmHWM") - before
    assert grown < WORKER_GROWTH_BOUND_KIB, f"worker grew {grown} KiB"
    for r in results:
        assert r.status_code == 500
        assert "exceeded its max_resources of 128" in r.text
    assert srv.wait_log(RESOURCES_LINE)
    assert good.statuses and set(good.statuses) == {200}


def test_oversized_fields_are_refused_by_the_field_size_cap(srv: Server) -> None:
    r = attack(srv, "fields&n=12000&size=124000")
    assert r.status_code == 500
    assert "exceeded the header fields size limit of 64 KiB" in r.text
    assert srv.wait_log(f"{EVIL_LABEL}: exceeded the header fields size limit of 64 KiB")


def test_unsent_outgoing_bodies_are_bounded(srv: Server) -> None:
    (worker,) = srv.worker_pids()
    before = proc_status_kib(worker, "VmRSS")
    with GoodTenant(srv) as good, ThreadPoolExecutor(4) as pool:
        # Each body written 4 MB that is never read: the host buffers at most 128 KiB of it.
        query = "outgoing-bodies&n=2000&size=4000000"
        results = list(pool.map(lambda _: attack(srv, query), range(4)))
    grown = proc_status_kib(worker, "VmHWM") - max(before, 0)
    assert grown < WORKER_GROWTH_BOUND_KIB, f"worker grew {grown} KiB"
    for r in results:
        assert r.status_code == 500
        assert "exceeded its max_resources of 128" in r.text
    assert good.statuses and set(good.statuses) == {200}


def test_empty_resources_are_bounded(srv: Server) -> None:
    r = attack(srv, "resources&n=1000000")
    assert r.status_code == 500
    assert "exceeded its max_resources of 128" in r.text


def test_stack_overflow_traps_only_the_guest(srv: Server) -> None:
    r = attack(srv, "stack&depth=100000000")
    assert r.status_code == 500
    assert requests.get(srv.url + "/", headers=GOOD, timeout=WAIT).status_code == 200
    # A shallow recursion is fine: the limit is the stack, not recursion as such.
    r = attack(srv, "stack&depth=1000")
    assert r.status_code == 200
    assert r.text.startswith("depth ")


def test_tenant_memory_total_is_shared_by_its_instances(srv: Server) -> None:
    pool_host = {"Host": "pool.test"}
    # The first instance holds ~7 MiB of the tenant's 12 MiB for 3 s ...
    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(attack, srv, "grow&mib=6&hold_ms=3000", pool_host)
        assert srv.wait_log("hostile: holding 6 MiB")
        # ... so a second one cannot grow as much meanwhile, though its own `memory` allows it.
        refused = None
        for _ in range(50):
            r = attack(srv, "grow&mib=6", pool_host)
            if r.status_code == 500:
                refused = r
                break
        held = holder.result()
    assert (held.status_code, held.text) == (200, "held 6 MiB\n")
    assert refused is not None, "the second instance was never refused"
    assert "exceeded tenant `pool`'s memory_total of 12MiB" in refused.text
    assert srv.wait_log(
        "tenant `pool` handler `hostile` on /: exceeded tenant `pool`'s memory_total"
    )
    # Given back when the instances end: one alone fits again.
    r = attack(srv, "grow&mib=6", pool_host)
    assert (r.status_code, r.text) == (200, "held 6 MiB\n")


def test_worker_wasm_memory_caps_all_instances(tmp_path: Path) -> None:
    server = Server(tmp_path, name="wasm-memory")
    try:
        server.start(
            [
                "--wasm",
                f"/h={wasm_handler('hostile')}",
                "--wasm-memory",
                "10MiB",
                *state_args(tmp_path),
            ]
        )
        r = requests.get(server.url + "/h/?attack=grow&mib=16", timeout=WAIT)
        assert r.status_code == 500
        assert "exceeded the worker's wasm_memory of 10MiB" in r.text
        r = requests.get(server.url + "/h/?attack=grow&mib=4", timeout=WAIT)
        assert (r.status_code, r.text) == (200, "held 4 MiB\n")
    finally:
        server.stop()
