"""The admin listener (`--admin ADDR`, `[admin] bind`): Prometheus `/metrics` and JSON
`/status` from the master, summed over the workers, right across a worker killed with
SIGKILL; labels are configured prefixes and tenant names, never raw paths; the admin pages
and the public routes never share a listener; its config errors name file, line and key."""

from __future__ import annotations

import hashlib
import os
import re
import signal
from pathlib import Path

import requests

from support.config_files import assert_config_error, probe_and_hello, probe_app, write_config
from support.http import free_port
from support.launcher import Launcher, Server
from support.paths import APPS, WAIT, wait_for
from support.wasm import state_args, wasm_handler

ROOT = 'route="/",tenant=""'


def _admin_args(tmp: Path) -> tuple[list[str], str]:
    port = free_port()
    return [*state_args(tmp), "--admin", f"127.0.0.1:{port}"], f"http://127.0.0.1:{port}"


def _metrics(admin: str) -> dict[str, float]:
    """`/metrics` as {series: value} (series = name{labels})."""
    r = requests.get(admin + "/metrics", timeout=WAIT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def _value(admin: str, series: str) -> float:
    return _metrics(admin).get(series, 0.0)


def _wait_value(admin: str, series: str, want: float) -> None:
    """Waits until `series` reads `want` (a response is counted just after it is sent)."""
    seen: list[float] = []

    def reached() -> bool:
        seen.append(_value(admin, series))
        return seen[-1] >= want

    assert wait_for(reached), f"{series} stayed at {seen[-1:]} (want {want})"
    assert seen[-1] == want, f"{series} went past {want}: {seen[-1]}"


def _pid(srv: Server, path: str = "/pid") -> int:
    r = requests.get(srv.url + path, headers={"Connection": "close"}, timeout=WAIT)
    assert r.status_code == 200
    return int(r.text)


def _workers(srv: Server) -> list[int]:
    return [p for p in srv.worker_pids() if p != srv.pid]


def test_counters_are_summed_over_the_workers(launcher: Launcher, tmp_path: Path) -> None:
    args, admin = _admin_args(tmp_path)
    srv = launcher.probe("--workers", "2", *args)
    seen = {_pid(srv) for _ in range(40)}
    assert len(seen) == 2, f"both workers must have served some of the requests: {seen}"
    _wait_value(admin, f'wsrun_http_requests_total{{{ROOT},code="200"}}', 40)
    m = _metrics(admin)
    assert m[f"wsrun_http_request_duration_seconds_count{{{ROOT}}}"] == 40
    assert m[f'wsrun_http_request_duration_seconds_bucket{{{ROOT},le="+Inf"}}'] == 40
    assert m["wsrun_http_requests_in_flight"] == 0
    assert m["wsrun_worker_restarts_total"] == 0
    status = requests.get(admin + "/status", timeout=WAIT).json()
    served = {w["pid"]: w["requests"] for w in status["workers"]}
    assert sorted(served) == sorted(_workers(srv)), (served, _workers(srv))
    assert sum(served.values()) == 40, served


def test_a_killed_worker_neither_loses_nor_doubles_counts(
    launcher: Launcher, tmp_path: Path
) -> None:
    args, admin = _admin_args(tmp_path)
    srv = launcher.probe("--workers", "2", *args)
    before = _workers(srv)
    for _ in range(30):
        _pid(srv)
    series = f'wsrun_http_requests_total{{{ROOT},code="200"}}'
    _wait_value(admin, series, 30)
    os.kill(before[0], signal.SIGKILL)
    (new,) = srv.wait_ready_pids(exclude=before, count=1)
    _wait_value(admin, "wsrun_worker_restarts_total", 1)
    assert _value(admin, series) == 30, "the killed worker's counts must stay"
    served_by = {_pid(srv) for _ in range(20)}
    assert served_by <= {before[1], new}, served_by
    _wait_value(admin, series, 50)
    status = requests.get(admin + "/status", timeout=WAIT).json()
    assert sorted(w["pid"] for w in status["workers"]) == sorted([before[1], new])


def test_labels_are_prefixes_never_raw_paths(launcher: Launcher, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, probe_app("workers = 1", python_prefix="/api"))
    args, admin = _admin_args(tmp_path)
    srv = launcher.start(["-c", str(cfg), *args], cwd=tmp_path)
    for i in range(60):
        requests.get(f"{srv.url}/api/item-{i}?q={i}", timeout=WAIT)
        requests.get(f"{srv.url}/elsewhere-{i}", timeout=WAIT)
    _wait_value(admin, 'wsrun_http_requests_total{route="(none)",tenant="",code="404"}', 60)
    m = _metrics(admin)
    requests_series = [s for s in m if s.startswith("wsrun_http_requests_total{")]
    assert not [s for s in m if "item-" in s or "elsewhere" in s], requests_series
    routes = {re.search(r'route="([^"]*)"', s).group(1) for s in requests_series}  # type: ignore[union-attr]
    assert routes == {"/api", "(none)"}, requests_series
    assert sum(v for s, v in m.items() if s in requests_series) == 120


def test_admin_pages_and_public_routes_never_share_a_listener(
    launcher: Launcher, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, probe_app("workers = 1", python_prefix="/api"))
    args, admin = _admin_args(tmp_path)
    srv = launcher.start(["-c", str(cfg), *args], cwd=tmp_path)
    for page in ("/metrics", "/status"):
        public = requests.get(srv.url + page, timeout=WAIT)
        assert public.status_code == 404 and "wsrun_" not in public.text, public.text
    assert requests.get(srv.url + "/api/pid", timeout=WAIT).status_code == 200
    routed = requests.get(admin + "/api/pid", timeout=WAIT)
    assert routed.status_code == 404 and routed.text == "Not Found: /metrics or /status\n"
    assert requests.post(admin + "/metrics", timeout=WAIT).status_code == 405


def test_config_errors_name_file_line_and_key(launcher: Launcher, tmp_path: Path) -> None:
    bad = write_config(tmp_path, probe_app("workers = 1") + '\n[admin]\nbind = "nowhere:x"\n')
    line = bad.read_text().splitlines().index('bind = "nowhere:x"') + 1
    assert_config_error(launcher, bad, line, "admin.bind", "nowhere:x")
    port = free_port()
    same = write_config(
        tmp_path, probe_app("workers = 1") + f'\n[admin]\nbind = "0.0.0.0:{port}"\n'
    )
    line = same.read_text().splitlines().index(f'bind = "0.0.0.0:{port}"') + 1
    clash = launcher.start(["-c", str(same)], port=port, wait="none")
    assert clash.wait_exit() != 0
    log = clash.log()
    assert f"{same}:{line}" in log and "admin.bind" in log and f"127.0.0.1:{port}" in log, log
    flag = launcher.start(
        ["probe:app", "--pythonpath", str(APPS), "--admin", f"127.0.0.1:{port}"],
        port=port,
        wait="none",
    )
    assert flag.wait_exit() != 0
    assert "--admin" in flag.log() and "public address" in flag.log(), flag.log()


def test_status_shows_workers_routes_handler_versions_and_jobs(
    launcher: Launcher, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, probe_and_hello("workers = 2"))
    args, admin = _admin_args(tmp_path)
    srv = launcher.start(["-c", str(cfg), *args], cwd=tmp_path)
    status = requests.get(admin + "/status", timeout=WAIT).json()
    assert status["version"] and status["uptime_seconds"] >= 0 and status["pid"] == srv.pid
    workers = status["workers"]
    assert sorted(w["pid"] for w in workers) == sorted(_workers(srv)), workers
    assert sorted(w["index"] for w in workers) == [0, 1]
    assert all(w["rss_bytes"] > 1 << 20 and w["started_unix_ms"] > 0 for w in workers)
    hello = next(r for r in status["routes"] if r["prefix"] == "/hello")
    digest = hashlib.sha256(wasm_handler("hello").read_bytes()).hexdigest()
    assert hello["kind"] == "wasm" and hello["handler"]["sha256"] == digest, hello
    assert status["jobs"] == {"pending": 0, "dead": 0, "oldest_due_unix_ms": None}


def test_wasm_instances_traps_and_limit_hits(launcher: Launcher, tmp_path: Path) -> None:
    text = probe_app("workers = 1") + (
        f'\n[[route]]\nprefix = "/trap"\nwasm = "{wasm_handler("trap")}"\n'
        f'\n[[route]]\nprefix = "/loop"\nwasm = "{wasm_handler("spin-loop")}"\n'
        'timeout = "300ms"\n'
        f'\n[[route]]\nprefix = "/hello"\nwasm = "{wasm_handler("hello")}"\n'
    )
    cfg = write_config(tmp_path, text)
    args, admin = _admin_args(tmp_path)
    srv = launcher.start(["-c", str(cfg), *args], cwd=tmp_path)
    assert requests.get(srv.url + "/hello", timeout=WAIT).status_code == 200
    assert requests.get(srv.url + "/trap", timeout=WAIT).status_code == 500
    assert requests.get(srv.url + "/loop", timeout=WAIT).status_code == 504
    _wait_value(admin, "wsrun_wasm_traps_total", 1)
    _wait_value(admin, 'wsrun_wasm_limit_hits_total{limit="timeout"}', 1)
    m = _metrics(admin)
    assert m["wsrun_wasm_instances_total"] == 3
    assert m['wsrun_wasm_limit_hits_total{limit="memory"}'] == 0
    assert m['wsrun_http_requests_total{route="/loop",tenant="",code="504"}'] == 1


def test_job_deliveries_and_the_store_figures(launcher: Launcher, tmp_path: Path) -> None:
    text = probe_app("workers = 1", python_prefix="/probe") + (
        '\n[[route]]\nprefix = "/app"\npython = "jobs_app:app"\n'
    )
    cfg = write_config(tmp_path, text)
    args, admin = _admin_args(tmp_path)
    srv = launcher.start(["-c", str(cfg), *args], cwd=tmp_path)
    queued = requests.get(srv.url + "/app/enqueue", params={"n": "3"}, timeout=WAIT)
    assert queued.status_code == 200, queued.text
    failing = {"path": "/app/fail", "max_attempts": "1"}
    assert requests.get(srv.url + "/app/enqueue", params=failing, timeout=WAIT).ok
    _wait_value(admin, "wsrun_jobs_delivered_total", 3)
    _wait_value(admin, "wsrun_jobs_failed_total", 1)
    _wait_value(admin, "wsrun_jobs_dead", 1)
    assert _value(admin, "wsrun_jobs_pending") == 0
    body = requests.post(srv.url + "/probe/echo", data=b"x" * 5000, timeout=WAIT)
    assert body.status_code == 200
    _wait_value(admin, "wsrun_spool_bytes_total", 5000)
