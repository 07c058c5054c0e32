"""Tenants: Host-owned groups of WASM routes with their own env and limits, a tenant-wide
max_concurrency, and isolation — a misbehaving tenant under load must not cost a
well-behaved one a single request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from support.launcher import Launcher, Server
from support.paths import WAIT
from support.wasm import SPINNING, hello_body, percentile, state_args, wasm_handler

HELLO = hello_body(0)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("wasm-tenants")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "alpha"
hosts = ["a.test", "www.a.test"]
env = {{ TENANT = "alpha", SHARED = "a" }}

  [[tenant.route]]
  prefix = "/probe"
  wasm = "{wasm_handler("probe")}"

  [[tenant.route]]
  prefix = "/a-only"
  wasm = "{wasm_handler("hello")}"

  [[tenant.route]]
  prefix = "/own-env"
  wasm = "{wasm_handler("probe")}"
  env = {{ ROUTE = "override" }}

[[tenant]]
name = "beta"
hosts = ["b.test"]
env = {{ TENANT = "beta" }}
max_concurrency = 2

  [[tenant.route]]
  prefix = "/probe"
  wasm = "{wasm_handler("probe")}"

  [[tenant.route]]
  prefix = "/b-only"
  wasm = "{wasm_handler("echo")}"

  [[tenant.route]]
  prefix = "/slow"
  wasm = "{wasm_handler("spin-loop")}"
  timeout = "1500ms"
"""
    )
    server = Server(tmp, name="tenants")
    try:
        server.start(["-c", str(cfg), *state_args(tmp)], cwd=tmp)
        yield server
    finally:
        server.stop()


def _get(srv: Server, host: str, path: str, timeout: float = 10) -> requests.Response:
    return requests.get(srv.url + path, headers={"Host": host}, timeout=timeout)


def test_each_tenant_sees_its_own_env(srv: Server) -> None:
    a = _get(srv, "a.test", "/probe?env=*")
    assert (a.status_code, a.text) == (200, "SHARED=a\nTENANT=alpha\n")
    b = _get(srv, "b.test", "/probe?env=*")
    assert (b.status_code, b.text) == (200, "TENANT=beta\n")
    # Another host name of the same tenant, and a Host with a port.
    assert _get(srv, "www.a.test", "/probe?env=TENANT").text == "alpha"
    assert _get(srv, f"a.test:{srv.port}", "/probe?env=TENANT").text == "alpha"


def test_route_env_replaces_the_tenants(srv: Server) -> None:
    r = _get(srv, "a.test", "/own-env?env=*")
    assert (r.status_code, r.text) == (200, "ROUTE=override\n")


def test_tenants_see_their_routes_only(srv: Server) -> None:
    assert _get(srv, "a.test", "/a-only").text == HELLO
    r = _get(srv, "b.test", "/b-only/x?y=1")
    assert r.status_code == 200
    assert r.headers["x-echo-script-name"] == "/b-only"
    assert r.headers["x-echo-path"] == "/b-only/x?y=1"
    assert _get(srv, "a.test", "/b-only").status_code == 404
    assert _get(srv, "a.test", "/slow").status_code == 404
    assert _get(srv, "b.test", "/a-only").status_code == 404
    assert _get(srv, "b.test", "/own-env").status_code == 404
    # A host no tenant owns has no routes at all here.
    assert _get(srv, "c.test", "/probe").status_code == 404
    assert _get(srv, "c.test", "/a-only").status_code == 404


def test_tenant_log_lines_name_the_tenant(srv: Server) -> None:
    marker = f"tenant-marker-{time.monotonic_ns()}"
    assert _get(srv, "b.test", f"/probe?log={marker}").text == "logged"
    expected = f"tenant `beta` handler `probe` on /probe stdout: {marker}"
    assert srv.wait_log(expected), srv.log()[-2000:]


def test_tenant_wide_max_concurrency(srv: Server) -> None:
    slow: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda: slow.append(_get(srv, "b.test", "/slow", timeout=WAIT)))
        for _ in range(2)
    ]
    spinning = srv.log_count(SPINNING)
    for t in threads:
        t.start()
    # Two beta instances are spinning: the tenant's cap is reached.
    assert srv.wait_log(SPINNING, count=spinning + 2), "both instances must be running"
    # Another route of the same tenant is turned away ...
    busy = _get(srv, "b.test", "/probe")
    # ... while another tenant is not affected.
    other = _get(srv, "a.test", "/probe")
    for t in threads:
        t.join(timeout=20)
    assert busy.status_code == 503, busy.text
    assert busy.headers.get("Retry-After") == "1"
    assert "tenant `beta`'s max_concurrency of 2" in busy.text
    assert (other.status_code, other.text) == (200, "probe ok\n")
    assert sorted(r.status_code for r in slow) == [504, 504]
    # Free again once the slow ones are gone.
    r = _get(srv, "b.test", "/probe")
    assert (r.status_code, r.text) == (200, "probe ok\n")


# --------------------------------------------------------------------------- isolation


def test_bad_tenant_under_load_costs_good_tenant_nothing(launcher: Launcher) -> None:
    tmp = launcher.tmp
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "bad"
hosts = ["bad.test"]

  [[tenant.route]]
  prefix = "/loop"
  wasm = "{wasm_handler("spin-loop")}"
  timeout = "300ms"

  [[tenant.route]]
  prefix = "/bomb"
  wasm = "{wasm_handler("memory-bomb")}"
  memory = "32MiB"

[[tenant]]
name = "good"
hosts = ["good.test"]

  [[tenant.route]]
  prefix = "/hello"
  wasm = "{wasm_handler("hello")}"
"""
    )
    srv = launcher.start(["-c", str(cfg), *state_args(tmp)], cwd=tmp)
    duration = 5.0
    stop = threading.Event()
    lock = threading.Lock()
    good_latencies: list[float] = []
    good_failures: list[str] = []
    bad_statuses: dict[int, int] = {}

    def bad_client(path: str) -> None:
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.get(srv.url + path, headers={"Host": "bad.test"}, timeout=WAIT)
                    code = r.status_code
                except requests.RequestException:
                    code = -1
                with lock:
                    bad_statuses[code] = bad_statuses.get(code, 0) + 1

    def good_client() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    r = s.get(srv.url + "/hello", headers={"Host": "good.test"}, timeout=WAIT)
                    ok = r.status_code == 200 and r.text == HELLO
                    what = f"{r.status_code} {r.text[:200]!r}"
                except requests.RequestException as exc:
                    ok, what = False, f"{type(exc).__name__}: {exc}"
                elapsed = time.monotonic() - started
                with lock:
                    if ok:
                        good_latencies.append(elapsed)
                    else:
                        good_failures.append(what)

    threads = [
        threading.Thread(target=bad_client, args=("/loop",)),
        threading.Thread(target=bad_client, args=("/loop",)),
        threading.Thread(target=bad_client, args=("/bomb",)),
        threading.Thread(target=bad_client, args=("/bomb",)),
        *[threading.Thread(target=good_client) for _ in range(3)],
    ]
    for t in threads:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert not any(t.is_alive() for t in threads)

    p50 = percentile(good_latencies, 50) * 1000 if good_latencies else float("nan")
    p99 = percentile(good_latencies, 99) * 1000 if good_latencies else float("nan")
    print(
        f"\nMEASURE tenant_isolation good_ok={len(good_latencies)} "
        f"good_failed={len(good_failures)} p50_ms={p50:.2f} p99_ms={p99:.2f} "
        f"max_ms={max(good_latencies, default=0) * 1000:.2f} bad_statuses={bad_statuses}"
    )
    assert good_failures == [], good_failures[:10]
    assert len(good_latencies) > 50, "the good tenant barely got served"
    # The bad tenant really was misbehaving the whole time.
    assert bad_statuses.get(504, 0) > 5 and bad_statuses.get(500, 0) > 5, bad_statuses
    assert srv.running()
