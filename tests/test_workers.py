"""--workers N: processes sharing the port, restart after kill -9, SIGTERM drain."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

import pytest
import requests

from support.http import free_port, port_open
from support.launcher import Launcher, Server
from support.paths import WAIT, wait_for
from support.procfs import pid_alive


def _pid(srv: Server) -> int:
    with requests.Session() as s:
        s.headers["Connection"] = "close"
        return int(s.get(srv.url + "/pid", timeout=WAIT).text)


def _workers(srv: Server) -> list[int]:
    return [p for p in srv.worker_pids() if p != srv.pid]


def _two_workers(srv: Server) -> list[int]:
    """The two workers, both ready (the harness waited for their ready lines)."""
    workers = _workers(srv)
    assert len(workers) == 2, f"expected 2 worker processes under {srv.pid}, got {workers}"
    assert sorted(srv.ready_pids()) == sorted(workers), (srv.ready_pids(), workers)
    return workers


def test_workers_share_the_port(launcher: Launcher) -> None:
    srv = launcher.probe("--workers", "2")
    workers = _two_workers(srv)
    seen = {_pid(srv) for _ in range(60)}
    assert seen <= set(workers), (seen, workers)
    assert len(seen) == 2, f"both workers must take connections, saw {seen}"


def test_killed_worker_is_restarted(launcher: Launcher) -> None:
    srv = launcher.probe("--workers", "2")
    before = _two_workers(srv)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    (new,) = srv.wait_ready_pids(exclude=before, count=1)
    assert srv.running()
    assert wait_for(lambda: not pid_alive(victim)), f"{victim} still there"
    after = _workers(srv)
    assert sorted(after) == sorted([before[1], new]), (before, after, new)
    # the new worker is up: every request succeeds, and the new pid takes connections
    statuses = []
    seen = set()
    for _ in range(40):
        r = requests.get(srv.url + "/pid", headers={"Connection": "close"}, timeout=WAIT)
        statuses.append(r.status_code)
        seen.add(int(r.text))
    assert statuses == [200] * 40
    assert seen <= set(after)
    assert wait_for(lambda: _pid(srv) == new), f"the new worker {new} never answered"


def _gated_request(srv: Server, gate: Path, out: dict[str, object]) -> None:
    """GET /gate: the app blocks until `gate` exists."""
    try:
        r = requests.get(srv.url + "/gate", params={"file": str(gate)}, timeout=2 * WAIT)
        out["status"] = r.status_code
        out["body"] = r.text
    except Exception as e:
        out["error"] = repr(e)


def _gate_lines(srv: Server) -> list[str]:
    """`start PID` / `done PID` for each /gate call, in the order the app logged them."""
    marks = []
    for line in srv.calls():
        if line.startswith("GET /gate "):
            marks.append("start " + line.split()[-1])
        elif line.startswith("done /gate "):
            marks.append("done " + line.split()[-1])
    return marks


def _drain(srv: Server, tmp: Path, sig: signal.Signals = signal.SIGTERM) -> None:
    """`sig` while a request is in the app: that request completes, then the server exits 0
    and the port refuses. The gate opens only once the master has passed the signal on; with
    `--threads` above 1 the worker's loop is free and says it drains before the gate opens."""
    gate = tmp / "gate-open"
    out: dict[str, object] = {}
    t = threading.Thread(target=_gated_request, args=(srv, gate, out))
    t.start()
    assert wait_for(lambda: _gate_lines(srv) != []), srv.log()[-2000:]
    workers = _workers(srv)
    assert srv.proc is not None
    srv.proc.send_signal(sig)
    assert srv.wait_log(f"received {sig.name}, stopping workers gracefully"), srv.log()[-2000:]
    if "--threads" in srv.args and srv.args[srv.args.index("--threads") + 1] != "1":
        assert srv.wait_log("draining", count=len(workers)), srv.log()[-2000:]
    assert _gate_lines(srv)[-1].startswith("start"), _gate_lines(srv)
    gate.touch()
    t.join(2 * WAIT)
    assert out.get("status") == 200, out
    assert out.get("body") == "opened"
    assert srv.wait_exit() == 0, srv.log()[-2000:]
    assert srv.log_count("draining") == len(workers), srv.log()[-2000:]
    assert "grace period over" not in srv.log(), srv.log()[-2000:]
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=1):
            refused = False
    except OSError:
        refused = True
    assert refused, "no new connections after shutdown"
    # The workers exited with the master, not left behind.
    assert wait_for(lambda: not any(pid_alive(p) for p in workers)), workers


@pytest.mark.parametrize("threads", ["1", "2"])
def test_sigterm_drains_in_flight_request(launcher: Launcher, tmp_path: Path, threads: str) -> None:
    _drain(launcher.probe("--graceful-timeout", "60s", "--threads", threads), tmp_path)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_sigint_drains_in_flight_request(launcher: Launcher, tmp_path: Path, threads: str) -> None:
    """README: SIGTERM/SIGINT drain in-flight requests (SIGINT as Ctrl-C sends it)."""
    srv = launcher.probe("--graceful-timeout", "60s", "--threads", threads)
    _drain(srv, tmp_path, signal.SIGINT)


def test_sigterm_drains_with_workers(launcher: Launcher, tmp_path: Path) -> None:
    srv = launcher.probe("--workers", "2", "--graceful-timeout", "60s", "--threads", "2")
    _two_workers(srv)
    _drain(srv, tmp_path)


def test_graceful_timeout_bounds_shutdown(launcher: Launcher, tmp_path: Path) -> None:
    """A request still in the app when `--graceful-timeout` runs out is cut: the server exits
    while the app is blocked (its gate never opens), and says so."""
    srv = launcher.probe("--graceful-timeout", "500ms")
    out: dict[str, object] = {}
    t = threading.Thread(target=_gated_request, args=(srv, tmp_path / "never", out), daemon=True)
    t.start()
    assert wait_for(lambda: _gate_lines(srv) != []), srv.log()[-2000:]
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    srv.wait_exit()
    assert "grace period over: stopping with requests still running" in srv.log(), srv.log()
    assert len(_gate_lines(srv)) == 1, "the app's call must not have finished"
    t.join(WAIT)
    assert "status" not in out, out


def test_idle_server_sigterm_exits_zero(launcher: Launcher) -> None:
    srv = launcher.probe()
    assert requests.get(srv.url + "/pid", timeout=WAIT).status_code == 200
    assert srv.stop() == 0


def _gated_requests(srv: Server, tmp: Path, count: int, started: int) -> list[str]:
    """`count` /gate requests at once; opens the gate once `started` of them are in the app;
    returns the app's start/done marks in order."""
    gate = tmp / "gate-open"
    outs: list[dict[str, object]] = [{} for _ in range(count)]
    threads = [threading.Thread(target=_gated_request, args=(srv, gate, o)) for o in outs]
    for t in threads:
        t.start()
    reached = wait_for(lambda: len(_gate_lines(srv)) >= started)
    gate.touch()
    for t in threads:
        t.join(2 * WAIT)
    assert reached, f"{started} request(s) never reached the app: {_gate_lines(srv)}"
    assert all(o.get("status") == 200 for o in outs), outs
    return _gate_lines(srv)


def test_threads_run_blocking_requests_concurrently(launcher: Launcher, tmp_path: Path) -> None:
    srv = launcher.probe("--threads", "4")
    marks = _gated_requests(srv, tmp_path, 3, started=3)
    # All three were in the app at once: three starts before the first end.
    assert [m.split()[0] for m in marks[:3]] == ["start"] * 3, marks


def test_single_thread_serialises_blocking_requests(launcher: Launcher, tmp_path: Path) -> None:
    """Control for the test above: with --threads 1 the same requests queue up."""
    srv = launcher.probe("--threads", "1")
    marks = _gated_requests(srv, tmp_path, 2, started=1)
    assert [m.split()[0] for m in marks] == ["start", "done", "start", "done"], marks


def test_sighup_replaces_every_worker_and_keeps_serving(launcher: Launcher) -> None:
    srv = launcher.probe("--workers", "2")
    before = set(_two_workers(srv))
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)
    new = set(srv.wait_ready_pids(exclude=before, count=2))

    def all_replaced() -> bool:
        return set(_workers(srv)) == new

    assert wait_for(all_replaced), f"workers not replaced: {before} -> {srv.worker_pids()}"
    assert srv.running()
    answers = {_pid(srv) for _ in range(40)}
    assert answers <= new, (answers, new)


def test_app_that_fails_to_import_stops_before_binding(launcher: Launcher) -> None:
    port = free_port()
    srv = launcher.start(["no_such_module_here:app", "--workers", "2"], port=port, wait="none")
    assert srv.wait_exit() == 1, srv.log()
    assert not port_open(port)
    assert "no_such_module_here" in srv.log()


def test_single_worker_is_supervised_too(launcher: Launcher) -> None:
    srv = launcher.probe()
    (worker,) = _workers(srv)
    assert srv.ready_pids() == [worker]
    assert _pid(srv) == worker
    os.kill(worker, signal.SIGKILL)
    (new,) = srv.wait_ready_pids(exclude=[worker], count=1)
    assert wait_for(lambda: _workers(srv) == [new]), (
        f"no replacement for {worker}: {srv.worker_pids()}"
    )
    assert _pid(srv) == new
