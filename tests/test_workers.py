"""--workers N: processes sharing the port, restart after kill -9, SIGTERM drain."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import requests

from conftest import Launcher, Server, free_port, port_open, wait_for


def _pid(srv: Server) -> int:
    with requests.Session() as s:
        s.headers["Connection"] = "close"
        return int(s.get(srv.url + "/pid", timeout=5).text)


def _two_workers(srv: Server) -> list[int]:
    assert wait_for(lambda: len([p for p in srv.worker_pids() if p != srv.pid]) == 2, 10), (
        f"expected 2 worker processes under {srv.pid}, got {srv.worker_pids()}"
    )
    return [p for p in srv.worker_pids() if p != srv.pid]


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

    def replaced() -> bool:
        now = [p for p in srv.worker_pids() if p != srv.pid]
        return len(now) == 2 and victim not in now

    assert wait_for(replaced, 10), f"no replacement for {victim}: {srv.worker_pids()}"
    assert srv.running()
    after = [p for p in srv.worker_pids() if p != srv.pid]
    assert before[1] in after
    # the new worker is up: every request succeeds, and the new pid answers some
    assert wait_for(lambda: port_open(srv.port), 5)
    statuses = []
    seen = set()
    for _ in range(40):
        r = requests.get(srv.url + "/pid", headers={"Connection": "close"}, timeout=5)
        statuses.append(r.status_code)
        seen.add(int(r.text))
    assert statuses == [200] * 40
    assert seen <= set(after)


def _slow_request(srv: Server, out: dict[str, object]) -> None:
    try:
        secs = out.pop("secs", "1")
        r = requests.get(srv.url + "/sleep", params={"s": str(secs)}, timeout=10)
        out["status"] = r.status_code
        out["body"] = r.text
    except Exception as e:
        out["error"] = repr(e)


def _sigterm_drain(srv: Server) -> None:
    out: dict[str, object] = {}
    t = threading.Thread(target=_slow_request, args=(srv, out))
    t.start()
    assert wait_for(lambda: any("/sleep" in c for c in srv.calls()), 3)
    t0 = time.monotonic()
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert out.get("status") == 200, out
    assert out.get("body") == "slept"
    code = srv.proc.wait(timeout=10)
    assert code == 0, srv.log()[-2000:]
    assert time.monotonic() - t0 < 5
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=1):
            refused = False
    except OSError:
        refused = True
    assert refused, "no new connections after shutdown"


def test_sigterm_drains_in_flight_request(launcher: Launcher) -> None:
    _sigterm_drain(launcher.probe("--graceful-timeout", "5s"))


def test_sigterm_drains_with_workers(launcher: Launcher) -> None:
    srv = launcher.probe("--workers", "2", "--graceful-timeout", "5s")
    _two_workers(srv)
    _sigterm_drain(srv)
    assert wait_for(lambda: not srv.worker_pids() or srv.worker_pids() == [srv.pid], 3)


def test_graceful_timeout_bounds_shutdown(launcher: Launcher) -> None:
    srv = launcher.probe("--graceful-timeout", "500ms")
    t = threading.Thread(target=_slow_request, args=(srv, {"secs": "4"}), daemon=True)
    t.start()
    assert wait_for(lambda: any("/sleep" in c for c in srv.calls()), 3)
    assert srv.proc is not None
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=10)
    assert time.monotonic() - t0 < 3.0, "shutdown must not wait past --graceful-timeout by much"


def test_idle_server_sigterm_exits_zero(launcher: Launcher) -> None:
    srv = launcher.probe()
    assert requests.get(srv.url + "/pid", timeout=5).status_code == 200
    assert srv.stop() == 0


def _concurrent_slow_requests(srv: Server, count: int) -> tuple[list[dict[str, object]], float]:
    """`count` one-second requests at once; their outcomes and the wall time they took."""
    outs: list[dict[str, object]] = [{} for _ in range(count)]
    threads = [threading.Thread(target=_slow_request, args=(srv, o)) for o in outs]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return outs, time.monotonic() - t0


def test_threads_run_blocking_requests_concurrently(launcher: Launcher) -> None:
    srv = launcher.probe("--threads", "4")
    outs, elapsed = _concurrent_slow_requests(srv, 3)
    assert all(o.get("status") == 200 for o in outs), outs
    assert elapsed < 2.5, f"3 x 1 s sleeps on 4 threads took {elapsed:.2f}s"


def test_single_thread_serialises_blocking_requests(launcher: Launcher) -> None:
    """Control for the test above: with --threads 1 the same sleeps queue up."""
    srv = launcher.probe("--threads", "1")
    outs, elapsed = _concurrent_slow_requests(srv, 2)
    assert all(o.get("status") == 200 for o in outs), outs
    assert elapsed >= 1.9


def test_sighup_replaces_every_worker_and_keeps_serving(launcher: Launcher) -> None:
    srv = launcher.probe("--workers", "2")
    before = set(_two_workers(srv))
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)

    def all_replaced() -> bool:
        now = {p for p in srv.worker_pids() if p != srv.pid}
        return len(now) == 2 and not (now & before)

    assert wait_for(all_replaced, 15), f"workers not replaced: {before} -> {srv.worker_pids()}"
    assert srv.running()
    after = {p for p in srv.worker_pids() if p != srv.pid}
    answers = {_pid(srv) for _ in range(40)}
    assert answers <= after, (answers, after)


def test_app_that_fails_to_import_stops_before_binding(launcher: Launcher) -> None:
    port = free_port()
    srv = launcher.start(["no_such_module_here:app", "--workers", "2"], port=port, wait=False)
    assert srv.proc is not None
    assert srv.proc.wait(timeout=20) == 1
    assert not port_open(port)
    assert "no_such_module_here" in srv.log()


def test_single_worker_is_supervised_too(launcher: Launcher) -> None:
    srv = launcher.probe()
    assert wait_for(lambda: len([p for p in srv.worker_pids() if p != srv.pid]) == 1, 10)
    (worker,) = [p for p in srv.worker_pids() if p != srv.pid]
    assert _pid(srv) == worker
    os.kill(worker, signal.SIGKILL)

    def replaced() -> bool:
        now = [p for p in srv.worker_pids() if p != srv.pid]
        return len(now) == 1 and worker not in now

    assert wait_for(replaced, 10), f"no replacement for {worker}: {srv.worker_pids()}"
    assert wait_for(lambda: port_open(srv.port), 5)
    assert _pid(srv) != worker
