"""`requests_per_instance`: a route may let one instance serve several requests, one after
another (a warm instance), instead of a fresh one per request (the default). Over real
sockets with the `probe` handler, whose `?count` answers a counter kept in the instance's
memory: the answers show which requests shared an instance."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support.launcher import Server
from support.paths import WAIT
from support.wasm import state_args, wasm_handler


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("wasm-warm")
    probe = wasm_handler("probe")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[route]]
prefix = "/fresh"
wasm = "{probe}"

[[route]]
prefix = "/three"
wasm = "{probe}"
requests_per_instance = 3

[[route]]
prefix = "/slow"
wasm = "{probe}"
requests_per_instance = 100
timeout = "1s"

[[route]]
prefix = "/many"
wasm = "{probe}"
requests_per_instance = 1000

[[route]]
prefix = "/concurrent"
wasm = "{probe}"
requests_per_instance = 1000

[[tenant]]
name = "t"
hosts = ["t.test"]
requests_per_instance = 2

  [[tenant.route]]
  prefix = "/inherits"
  wasm = "{probe}"
"""
    )
    server = Server(tmp, name="wasm-warm")
    try:
        server.start(["-c", str(cfg), *state_args(tmp)], cwd=tmp)
        yield server
    finally:
        server.stop()


def _counts(srv: Server, path: str, n: int, host: str | None = None) -> list[str]:
    headers = {"Host": host} if host else {}
    with requests.Session() as s:
        return [
            s.get(f"{srv.url}{path}?count", headers=headers, timeout=WAIT).text for _ in range(n)
        ]


def test_by_default_every_request_gets_a_fresh_instance(srv: Server) -> None:
    assert _counts(srv, "/fresh", 5) == ["1"] * 5


def test_an_instance_serves_its_requests_then_a_fresh_one_follows(srv: Server) -> None:
    assert _counts(srv, "/three", 7) == ["1", "2", "3", "1", "2", "3", "1"]


def test_a_route_inherits_its_tenants_setting(srv: Server) -> None:
    assert _counts(srv, "/inherits", 5, host="t.test") == ["1", "2", "1", "2", "1"]


def test_routes_never_share_an_instance(srv: Server) -> None:
    """Two routes on the same handler file: each has its own instances."""
    with requests.Session() as s:
        answers = [s.get(f"{srv.url}{p}?count", timeout=WAIT).text for p in ["/many"] * 2]
        answers += [s.get(f"{srv.url}/slow?count", timeout=WAIT).text]
    assert answers[:2] == ["1", "2"]
    assert answers[2] == "1"


def test_an_instance_stopped_by_its_timeout_is_not_kept(srv: Server) -> None:
    with requests.Session() as s:
        first = s.get(f"{srv.url}/slow?count", timeout=WAIT).text
        assert first.isdigit(), first
        # Runs on that warm instance and is stopped at the route's 1 s timeout.
        r = s.get(f"{srv.url}/slow?sleep_ms=3000", timeout=WAIT)
        assert r.status_code == 504, r.text
        # The stopped instance is gone: the next request starts from a fresh one.
        assert s.get(f"{srv.url}/slow?count", timeout=WAIT).text == "1"
    r = requests.get(f"{srv.url}/slow", timeout=WAIT)
    assert (r.status_code, r.text) == (200, "probe ok\n")


def test_concurrent_clients_make_no_more_instances_than_run_at_once(srv: Server) -> None:
    """Four clients at once, 40 requests each: every instance serves its requests one at a
    time, and no more than four are ever made (one per request in flight)."""

    def client(_: int) -> list[int]:
        return [int(c) for c in _counts(srv, "/concurrent", 40)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = [n for got in pool.map(client, range(4)) for n in got]
    assert len(answers) == 160
    made = answers.count(1)
    assert 1 <= made <= 4, sorted(answers)
    # Each instance counts 1, 2, 3, ... with no gap or repeat, so the answers are `made` runs
    # of consecutive numbers from 1: no number is answered more often than a smaller one.
    counts = [answers.count(k) for k in range(1, max(answers) + 1)]
    assert counts == sorted(counts, reverse=True), sorted(answers)
    assert counts[0] == made
