"""The master killed with SIGKILL under load: the workers drain and exit, none is left behind.

A worker arms a parent-death signal after fork and checks its parent twice a second; on
either it stops accepting, finishes what is in flight and exits within the grace period, so
a new wsrun on the same port (SO_REUSEPORT) serves alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import requests

from support.launcher import Launcher, Server
from support.paths import APPS, WAIT, wait_for
from support.procfs import child_pids, pid_alive

GRACE_S = 4
#: Room beyond the grace period for the parent check, the drain and a loaded CI machine.
SLACK_S = 3


def _hammer(url: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """Keep-alive GETs until `stop`; counts answers (by status) and connection errors."""
    with requests.Session() as s:
        while not stop.is_set():
            try:
                key = str(s.get(url + "/pid", timeout=5).status_code)
            except requests.RequestException:
                key = "error"
            counts[key] = counts.get(key, 0) + 1


def _gated(url: str, gate: Path, out: dict[str, object]) -> None:
    try:
        r = requests.get(url + "/gate", params={"file": str(gate)}, timeout=2 * WAIT)
        out["status"], out["body"] = r.status_code, r.text
    except requests.RequestException as e:
        out["error"] = repr(e)


def _kill_leftovers(pids: list[int]) -> None:
    """SIGKILLs the workers of a killed master that are still alive (a failed test)."""
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _start(launcher: Launcher, port: int | None = None) -> Server:
    args = ["probe:app", "--pythonpath", str(APPS), "--workers", "2", "--threads", "2"]
    return launcher.start([*args, "--graceful-timeout", f"{GRACE_S}s"], port=port)


def test_workers_drain_and_exit_when_the_master_is_killed(
    launcher: Launcher, tmp_path: Path
) -> None:
    srv = _start(launcher)
    workers = child_pids(srv.pid)
    assert len(workers) == 2, workers
    try:
        _master_killed_under_load(launcher, srv, workers, tmp_path)
    finally:
        _kill_leftovers(workers)


def _master_killed_under_load(
    launcher: Launcher, srv: Server, workers: list[int], tmp_path: Path
) -> None:
    stop = threading.Event()
    counts: list[dict[str, int]] = [{} for _ in range(4)]
    load = [threading.Thread(target=_hammer, args=(srv.url, stop, c)) for c in counts]
    for t in load:
        t.start()
    gate = tmp_path / "gate-open"
    inflight: dict[str, object] = {}
    gated = threading.Thread(target=_gated, args=(srv.url, gate, inflight))
    gated.start()
    try:
        assert wait_for(lambda: any(x.startswith("GET /gate") for x in srv.calls()))
        time.sleep(0.3)  # the load runs on both workers meanwhile
        killed_at = time.monotonic()
        os.kill(srv.pid, signal.SIGKILL)
        assert srv.wait_exit() == -signal.SIGKILL
        # Both workers notice; the request in flight is still running, and finishes.
        assert srv.wait_log("the master process is gone", count=2), srv.log()[-3000:]
        gate.touch()
        gated.join(WAIT)
        assert inflight.get("status") == 200 and inflight.get("body") == "opened", inflight
        left = time.monotonic() - killed_at
        assert wait_for(lambda: not any(pid_alive(p) for p in workers), GRACE_S + SLACK_S - left), (
            workers,
            srv.log()[-3000:],
        )
    finally:
        stop.set()
        gate.touch()
        for t in load:
            t.join(WAIT)
        gated.join(WAIT)
    served = sum(c.get("200", 0) for c in counts)
    assert served > 0, counts
    assert "grace period over" not in srv.log(), srv.log()[-3000:]

    # A new wsrun on the same port answers every request itself: no orphan shares the port.
    new = _start(launcher, port=srv.port)
    mine = set(child_pids(new.pid))
    seen = set()
    for _ in range(60):
        r = requests.get(new.url + "/pid", headers={"Connection": "close"}, timeout=WAIT)
        assert r.status_code == 200
        seen.add(int(r.text))
    assert seen <= mine, (seen, mine, workers)
    assert not seen & set(workers)


def test_a_reload_is_not_a_master_death(launcher: Launcher) -> None:
    """SIGHUP execs the master in place (same pid): the old workers are replaced by the
    rolling restart, not stopped as orphans, and the server keeps serving."""
    srv = _start(launcher)
    before = child_pids(srv.pid)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)
    new = srv.wait_ready_pids(exclude=before, count=2)
    assert srv.running()
    assert wait_for(lambda: not any(pid_alive(p) for p in before)), before
    assert "the master process is gone" not in srv.log(), srv.log()[-3000:]
    for _ in range(20):
        r = requests.get(srv.url + "/pid", headers={"Connection": "close"}, timeout=WAIT)
        assert r.status_code == 200 and int(r.text) in new
