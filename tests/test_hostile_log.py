"""Hostile tenant, guest log volume (issue 11, finding 5): 1 MiB of newlines used to become
93 MiB of server log. Each instance may log `log_lines` lines and `log_bytes` bytes (stdout and
stderr together), each route `log_rate` lines a second; the excess is dropped, counted, and
reported once per limit hit, once per instance and at most once a second per route."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from support.launcher import Server
from support.paths import WAIT
from support.wasm import state_args, wasm_handler

MIB = 1 << 20
#: The server log may grow this much for the whole 1 MiB-of-newlines attack (it was 93 MiB).
LOG_GROWTH_BOUND = 200_000


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile-log")
    hostile, probe = wasm_handler("hostile"), wasm_handler("probe")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "noisy"
hosts = ["n.test"]

  [[tenant.route]]
  prefix = "/flood"
  wasm = "{hostile}"

  [[tenant.route]]
  prefix = "/lines"
  wasm = "{hostile}"
  log_rate = 100000

  [[tenant.route]]
  prefix = "/bytes"
  wasm = "{hostile}"
  log_rate = 100000
  log_bytes = "10KiB"

  [[tenant.route]]
  prefix = "/slow-rate"
  wasm = "{hostile}"
  log_rate = 5

[[tenant]]
name = "quiet"
hosts = ["q.test"]

  [[tenant.route]]
  prefix = "/probe"
  wasm = "{probe}"
"""
    )
    server = Server(tmp, name="hostile-log")
    try:
        server.start(["-c", str(cfg), *state_args(tmp)], cwd=tmp)
        yield server
    finally:
        server.stop()


def _get(srv: Server, host: str, path: str) -> requests.Response:
    return requests.get(srv.url + path, headers={"Host": host}, timeout=WAIT)


def _log_size(srv: Server) -> int:
    return srv.stdout_path.stat().st_size + srv.stderr_path.stat().st_size


def _dropped(srv: Server, label: str) -> list[tuple[int, int, str]]:
    """(lines, bytes, limits) of each end-of-instance summary of `label`."""
    pattern = rf"{re.escape(label)}: guest log: dropped (\d+) lines / (\d+) bytes of this request \(([^)]*)\)"
    return [(int(a), int(b), c) for a, b, c in re.findall(pattern, srv.log())]


def test_a_mebibyte_of_newlines_stays_a_few_lines(srv: Server) -> None:
    label = "tenant `noisy` handler `hostile` on /flood"
    quiet: list[requests.Response] = []

    def quiet_tenant() -> None:
        for i in range(20):
            quiet.append(_get(srv, "q.test", f"/probe?log=quiet-{i}"))

    before = _log_size(srv)
    other = threading.Thread(target=quiet_tenant)
    other.start()
    r = _get(srv, "n.test", "/flood?attack=log")
    other.join(timeout=WAIT)
    assert (r.status_code, r.text) == (200, f"wrote {2 * MIB} bytes\n")
    assert srv.wait_log(f"{label}: guest log: dropped"), srv.log()[-3000:]
    grew = _log_size(srv) - before
    assert grew < LOG_GROWTH_BOUND, f"the log grew {grew} bytes"
    [(lines, size, limits)] = _dropped(srv, label)
    # At most a burst of 200 lines (plus what 100/s adds meanwhile) got through.
    assert 2 * MIB - 400 < lines <= 2 * MIB - 200, lines
    # The rate dropped lines first; past the instance's 1000 lines the rest went in bulk.
    assert (size, limits) == (0, "log_rate of 100/s, log_lines of 1000")
    # The other tenant was served, and its lines were logged.
    assert [q.status_code for q in quiet] == [200] * 20
    assert srv.wait_log("tenant `quiet` handler `probe` on /probe stdout: quiet-19")


def test_log_lines_budget_per_instance(srv: Server) -> None:
    label = "tenant `noisy` handler `hostile` on /lines"
    r = _get(srv, "n.test", "/lines?attack=log&bytes=100000")
    assert r.status_code == 200, r.text
    first = f"{label}: guest log over its log_lines of 1000 for this request; dropping the rest"
    assert srv.wait_log(first), srv.log()[-3000:]
    assert srv.wait_log(f"{label}: guest log: dropped")
    assert _dropped(srv, label) == [(2 * 100_000 - 1000, 0, "log_lines of 1000")]
    assert srv.log_count(f"{label} stdout: ") + srv.log_count(f"{label} stderr: ") == 1000


def test_log_bytes_budget_per_instance(srv: Server) -> None:
    label = "tenant `noisy` handler `hostile` on /bytes"
    r = _get(srv, "n.test", "/bytes?attack=log&bytes=0&lines=20&width=1000")
    assert r.status_code == 200, r.text
    assert srv.wait_log(f"{label}: guest log over its log_bytes of 10240 for this request")
    assert srv.wait_log(f"{label}: guest log: dropped")
    # 10 lines of 1000 bytes fit in 10 KiB; the other 30 of the 40 are dropped.
    assert _dropped(srv, label) == [(30, 30_000, "log_bytes of 10240")]


def test_route_rate_is_reported_at_most_once_a_second(srv: Server) -> None:
    label = "tenant `noisy` handler `hostile` on /slow-rate"
    for _ in range(3):
        r = _get(srv, "n.test", "/slow-rate?attack=log&bytes=0&lines=50&width=10")
        assert r.status_code == 200, r.text
    # The first request took the burst (10 lines); the rest were dropped and reported per
    # instance; the route's own report came with the first drop and then waits a second.
    assert srv.wait_log(f"{label}: guest log: dropped", count=3)
    assert [d[2] for d in _dropped(srv, label)] == ["log_rate of 5/s"] * 3
    rate_line = f"{label}: guest log over its log_rate of 5/s: dropped"
    assert srv.log_count(rate_line) == 1
    time.sleep(1.1)
    r = _get(srv, "n.test", "/slow-rate?attack=log&bytes=0&lines=50&width=10")
    assert r.status_code == 200
    assert srv.wait_log(rate_line, count=2), srv.log()[-3000:]
    assert srv.log_count(rate_line) == 2
