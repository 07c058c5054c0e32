"""A worker killed with `kill -9` in the middle of requests: only its own connections fail.

Two workers, keep-alive clients whose connection is known to sit on one worker or the other
(each asked `/pid` first). Slow requests are in flight on both workers when one is killed:
those on the killed worker fail, those on the other all complete; a kept-alive connection to
the killed worker fails on its next request, one to the other worker keeps working; every
request started after the kill succeeds, and the supervisor starts a replacement that answers.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest

from support.launcher import Launcher, Server
from support.paths import APPS, WAIT, wait_for
from support.procfs import pid_alive

#: Slow requests in flight on each worker when the kill comes, and idle connections kept.
SLOW_PER_WORKER = 3
IDLE_PER_WORKER = 2
#: How long a slow request sleeps: long enough to be in flight at the kill on a loaded machine.
SLEEP_S = 3.0
#: Connections opened to find enough on each worker (the kernel spreads them by hash).
MAX_CONNECTIONS = 80


@dataclass
class Conn:
    """One keep-alive client connection and the worker that answered its first request."""

    http: http.client.HTTPConnection
    pid: int
    outcome: dict[str, object] = field(default_factory=dict)


def _request(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read().decode()


def _connect(srv: Server) -> Conn:
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=WAIT)
    status, body = _request(c, "/pid")
    assert status == 200, (status, body)
    return Conn(c, int(body))


def _sorted_connections(srv: Server, workers: list[int]) -> dict[int, list[Conn]]:
    """Keep-alive connections, grouped by worker, until each has enough (extra ones closed)."""
    want = SLOW_PER_WORKER + IDLE_PER_WORKER
    by_pid: dict[int, list[Conn]] = {p: [] for p in workers}
    for _ in range(MAX_CONNECTIONS):
        c = _connect(srv)
        assert c.pid in by_pid, (c.pid, workers)
        if len(by_pid[c.pid]) < want:
            by_pid[c.pid].append(c)
        else:
            c.http.close()
        if all(len(v) == want for v in by_pid.values()):
            return by_pid
    pytest.fail(f"the kernel never spread {MAX_CONNECTIONS} connections over both workers")


def _slow(c: Conn) -> None:
    try:
        c.outcome["result"] = _request(c.http, f"/sleep?s={SLEEP_S}")
    except (OSError, http.client.HTTPException) as e:
        c.outcome["error"] = repr(e)


def _sleeps_started(srv: Server, pid: int) -> int:
    return sum(1 for x in srv.calls() if x == f"GET /sleep {pid}")


def _fresh_pid(srv: Server) -> tuple[int, str]:
    """A request on a new connection (closed after it)."""
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=WAIT)
    try:
        c.request("GET", "/pid", headers={"Connection": "close"})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def test_only_the_killed_workers_connections_fail(launcher: Launcher) -> None:
    args = ["probe:app", "--pythonpath", str(APPS), "--workers", "2", "--threads", "8"]
    srv = launcher.start(args)
    workers = srv.wait_ready()
    assert len(workers) == 2, workers
    by_pid = _sorted_connections(srv, workers)
    victim, survivor = workers
    try:
        _kill_in_flight(srv, by_pid, victim, survivor)
    finally:
        for conns in by_pid.values():
            for c in conns:
                c.http.close()


def _kill_in_flight(srv: Server, by_pid: dict[int, list[Conn]], victim: int, survivor: int) -> None:
    slow = {p: conns[:SLOW_PER_WORKER] for p, conns in by_pid.items()}
    idle = {p: conns[SLOW_PER_WORKER:] for p, conns in by_pid.items()}
    threads = [threading.Thread(target=_slow, args=(c,)) for cs in slow.values() for c in cs]
    for t in threads:
        t.start()
    try:
        assert wait_for(
            lambda: all(_sleeps_started(srv, p) == SLOW_PER_WORKER for p in slow), SLEEP_S / 2
        ), srv.calls()
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: not pid_alive(victim)), f"{victim} survived SIGKILL"
        # Every request started after the kill succeeds, on a new connection...
        after = [_fresh_pid(srv) for _ in range(20)]
        assert [s for s, _ in after] == [200] * len(after), after
        # ...or on a connection kept alive on the other worker, while its slow ones still run.
        for c in idle[survivor]:
            assert _request(c.http, "/pid") == (200, str(survivor))
        assert time.monotonic() - killed_at < SLEEP_S, "the checks outlasted the slow requests"
    finally:
        for t in threads:
            t.join(2 * WAIT)
    # The other worker's in-flight requests all completed; the killed worker's all failed.
    assert [c.outcome.get("result") for c in slow[survivor]] == [(200, "slept")] * SLOW_PER_WORKER
    assert all("error" in c.outcome for c in slow[victim]), [c.outcome for c in slow[victim]]
    # A connection kept alive on the killed worker fails on its next request (never a wrong
    # answer from somewhere else).
    for c in idle[victim]:
        with pytest.raises((OSError, http.client.HTTPException)):
            _request(c.http, "/pid")
    # The supervisor replaced the killed worker, and the new one answers.
    (new,) = srv.wait_ready_pids(exclude=[victim, survivor], count=1)
    assert srv.running()
    assert wait_for(lambda: _fresh_pid(srv) == (200, str(new))), f"{new} never answered"
    assert pid_alive(survivor)
    assert f"(pid {victim}) died" in srv.log(), srv.log()[-2000:]
