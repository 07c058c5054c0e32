"""Shadow traffic (`[route.shadow]`): the primary always answers; the shadow's answers are
compared and counted in `state_dir/migrate.sqlite3`, read back with `wsrun migrate report`.

Both sides are WSGI apps of `tests/apps/migrate_app.py` (run on a thread pool, so a slow shadow
stalls no one), or the `trap` component for a shadow that traps, or `hello` for where a WASM
shadow runs (the worker's `wsrun-shadow` thread).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests

from support.launcher import Launcher, Server, run_wsrun
from support.paths import APPS, WAIT, wait_for
from support.procfs import thread_cpu_seconds, thread_nices
from support.wasm import wasm_handler


def _config(tmp: Path, shadow: str, extra: str = "", threads: int = 4) -> Path:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f'[server]\nstate_dir = "{tmp / "state"}"\npythonpath = ["{APPS}"]\nthreads = {threads}\n\n'
        '[[route]]\nprefix = "/api"\npython = "migrate_app:primary"\n'
        f"  [route.shadow]\n  {shadow}\n"
        '  ignore = ["$.generated_at"]\n'
        f"{extra}\n"
    )
    return cfg


def _start(
    launcher: Launcher,
    tmp: Path,
    shadow: str,
    extra: str = "",
    workers: int = 1,
    threads: int = 4,
) -> Server:
    cfg = _config(tmp, shadow, extra, threads)
    return launcher.start(["-c", str(cfg), "--workers", str(workers)])


def report(tmp: Path) -> dict:
    done = run_wsrun(["migrate", "report", "--state-dir", str(tmp / "state"), "--json"])
    assert done.code == 0, done.out
    return json.loads(done.out[done.out.index("{") :])


def route(tmp: Path, prefix: str = "/api") -> dict:
    for r in report(tmp)["routes"]:
        if r["route"] == prefix:
            return r
    return {}


def settle(tmp: Path, key: str, want: int) -> dict:
    """The route's report once `key` has reached `want` (the writer batches)."""
    assert wait_for(lambda: (tmp / "state" / "migrate.sqlite3").is_file())
    assert wait_for(lambda: route(tmp).get(key, 0) >= want), {
        k: v for k, v in route(tmp).items() if k != "top_differences"
    }
    return route(tmp)


PY_SHADOW = 'python = "migrate_app:shadow"'


def test_matching_and_differing_paths_are_counted_with_the_json_path(
    launcher: Launcher, tmp_path: Path
) -> None:
    srv = _start(launcher, tmp_path, PY_SHADOW)
    for _ in range(5):
        r = requests.get(srv.url + "/api/match", timeout=WAIT)
        assert r.status_code == 200 and r.json()["a"] == 1
    for _ in range(3):
        r = requests.get(srv.url + "/api/diff", timeout=WAIT)
        assert r.json()["items"][1]["id"] == 2  # always the primary's answer
    r = requests.get(srv.url + "/api/text", timeout=WAIT)
    assert r.text == "plain text\n"
    got = settle(tmp_path, "compared", 9)
    assert (got["compared"], got["matched"], got["differed"]) == (9, 6, 3)
    assert got["match_rate"] == 6 / 9
    top = got["top_differences"]
    assert [(d["path"], d["count"]) for d in top] == [("$.items[1].id", 3)]
    assert got["primary_ms"]["p50"] is not None and got["shadow_ms"]["p99"] is not None
    # One difference in full: the request line and both bodies.
    done = run_wsrun(
        ["migrate", "show", str(top[0]["example_id"]), "--state-dir", str(tmp_path / "state")]
    )
    assert done.code == 0, done.out
    assert "GET /api/diff" in done.out and "$.items[1].id" in done.out
    assert '"id": 3' in done.out and '"id": 2' in done.out


def _get_http10(srv: Server, path: str) -> bytes:
    """One HTTP/1.0 GET: never the inline path (it takes HTTP/1.1 only), so hyper's serves it."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_mirrored_gets_are_compared_on_the_inline_path_and_on_hypers(
    launcher: Launcher, tmp_path: Path
) -> None:
    """With `threads = 1` a plain HTTP/1.1 GET to a mirrored Python route is answered on the
    inline path (`inline_h1::mirrored`), an HTTP/1.0 GET on hyper's (`migrating::run`): both
    are mirrored, compared and counted alike, and the client gets the primary's answer."""
    cfg = _config(tmp_path, PY_SHADOW)
    cfg.write_text(cfg.read_text().replace("threads = 4", "threads = 1"))
    srv = launcher.start(["-c", str(cfg), "--workers", "1"])
    with requests.Session() as inline:
        for _ in range(3):
            r = inline.get(srv.url + "/api/match", timeout=WAIT)
            assert r.status_code == 200 and r.json()["a"] == 1
        for _ in range(2):
            assert inline.get(srv.url + "/api/diff", timeout=WAIT).json()["items"][1]["id"] == 2
    for _ in range(2):
        raw = _get_http10(srv, "/api/diff")
        assert raw.startswith(b"HTTP/1.0 200"), raw[:200]
        assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["items"][1]["id"] == 2
    raw = _get_http10(srv, "/api/match")
    assert raw.startswith(b"HTTP/1.0 200"), raw[:200]
    got = settle(tmp_path, "compared", 8)
    assert (got["compared"], got["matched"], got["differed"]) == (8, 4, 4), got
    assert [(d["path"], d["count"]) for d in got["top_differences"]] == [("$.items[1].id", 4)]


def test_unsafe_methods_are_mirrored_only_when_listed(launcher: Launcher, tmp_path: Path) -> None:
    srv = _start(launcher, tmp_path, PY_SHADOW)
    for _ in range(3):
        assert requests.post(srv.url + "/api/write", data=b"x", timeout=WAIT).status_code == 200
    requests.get(srv.url + "/api/match", timeout=WAIT)
    got = settle(tmp_path, "compared", 1)
    time.sleep(0.5)
    assert route(tmp_path)["compared"] == 1
    assert "shadow POST" not in srv.call_log.read_text()
    srv.stop()

    other = tmp_path / "listed"
    other.mkdir()
    srv = _start(launcher, other, PY_SHADOW, '  methods = ["GET", "POST"]')
    for _ in range(3):
        assert requests.post(srv.url + "/api/write", data=b"x", timeout=WAIT).status_code == 200
    got = settle(other, "compared", 3)
    assert got["matched"] == 3


def test_a_trapping_shadow_never_changes_the_response(launcher: Launcher, tmp_path: Path) -> None:
    srv = _start(launcher, tmp_path, f'wasm = "{wasm_handler("trap")}"')
    for _ in range(4):
        r = requests.get(srv.url + "/api/match", timeout=WAIT)
        assert r.status_code == 200 and r.json()["a"] == 1
        assert "secret-internal-detail" not in r.text
    got = settle(tmp_path, "shadow_failed", 4)
    assert (got["compared"], got["shadow_failed"]) == (0, 4)
    # A Python shadow that raises counts the same way.
    r = requests.get(srv.url + "/api/boom", timeout=WAIT)
    assert r.json() == {"ok": True}


def test_a_slow_shadow_adds_no_latency(launcher: Launcher, tmp_path: Path) -> None:
    srv = _start(launcher, tmp_path, PY_SHADOW, '  timeout = "1s"')
    for _ in range(3):
        t0 = time.monotonic()
        r = requests.get(srv.url + "/api/slow?sleep=2", timeout=WAIT)
        elapsed = time.monotonic() - t0
        assert r.json() == {"ok": True}
        # The primary answered long before the shadow could have (it sleeps 2s).
        assert elapsed < 1.5, elapsed
    got = settle(tmp_path, "shadow_failed", 3)
    assert got["compared"] == 0
    # Within its timeout the slow shadow is compared (and agrees).
    r = requests.get(srv.url + "/api/slow?sleep=0.3", timeout=WAIT)
    assert r.status_code == 200
    assert settle(tmp_path, "compared", 1)["matched"] == 1


def test_beyond_the_in_flight_bound_requests_are_skipped(
    launcher: Launcher, tmp_path: Path
) -> None:
    srv = _start(launcher, tmp_path, PY_SHADOW, '  max_in_flight = 1\n  timeout = "3s"')
    for _ in range(4):
        t0 = time.monotonic()
        requests.get(srv.url + "/api/slow?sleep=1", timeout=WAIT)
        assert time.monotonic() - t0 < 1.0
    got = settle(tmp_path, "skipped", 3)
    assert got["skipped"] == 3
    assert got["skipped_by_reason"] == {
        "in_flight": 3,
        "loop_busy": 0,
        "uncopyable": 0,
        "uncomparable": 0,
    }
    assert settle(tmp_path, "compared", 1)["compared"] == 1
    text = run_wsrun(["migrate", "report", "--state-dir", str(tmp_path / "state")])
    assert "skipped: shadows in flight at the bound 3\n" in text.out, text.out


def test_bodies_over_the_shadow_max_body_are_skipped_with_their_reason(
    launcher: Launcher, tmp_path: Path
) -> None:
    """`max_body` bounds both copies: a request body over it is not mirrored (`uncopyable`);
    a response over it is mirrored but not compared (`uncomparable`)."""
    srv = _start(launcher, tmp_path, PY_SHADOW, '  methods = ["GET", "POST"]\n  max_body = 20')
    for body in (b"x" * 21, b"y" * 4096):
        assert requests.post(srv.url + "/api/write", data=body, timeout=WAIT).status_code == 200
    # Within the bound both ways: the answer is {"path": "/write"} (18 bytes).
    assert requests.post(srv.url + "/api/write", data=b"z" * 20, timeout=WAIT).status_code == 200
    # A small request whose answer (30 bytes) is over the bound.
    r = requests.get(srv.url + "/api/a-much-longer-path", timeout=WAIT)
    assert r.status_code == 200 and len(r.content) > 20
    settle(tmp_path, "compared", 1)  # the shadows finish in any order
    got = settle(tmp_path, "skipped", 3)
    assert (got["compared"], got["skipped"]) == (1, 3), got
    assert got["skipped_by_reason"] == {
        "in_flight": 0,
        "loop_busy": 0,
        "uncopyable": 2,
        "uncomparable": 1,
    }


def test_a_saturated_event_loop_skips_mirroring_until_it_has_time_again(
    launcher: Launcher, tmp_path: Path
) -> None:
    """With `threads = 1` the primary runs on the event loop. While that loop computes nearly
    all the time (back-to-back requests of 40 ms of CPU each), sampled requests are skipped
    and counted instead of mirrored; once the loop has had time to breathe, the next request
    is mirrored again. The measure is the loop thread's CPU share, so the loop needs most of a
    core while it computes: on a machine busy enough to deny it that (measured here from
    /proc), the loop is rightly not saturated and the test is skipped, saying so."""
    srv = _start(launcher, tmp_path, PY_SHADOW, threads=1)
    (pid,) = srv.ready_pids()  # the worker's event loop is its main thread
    sent = 30
    cpu_before, wall_before = thread_cpu_seconds(pid, pid), time.monotonic()
    with requests.Session() as s:
        for _ in range(sent):
            r = s.get(srv.url + "/api/burn?ms=40", timeout=WAIT)
            assert r.status_code == 200 and r.json() == {"path": "/burn"}
    share = (thread_cpu_seconds(pid, pid) - cpu_before) / (time.monotonic() - wall_before)
    assert wait_for(lambda: (tmp_path / "state" / "migrate.sqlite3").is_file())

    def counted() -> int:
        now = route(tmp_path)
        return now.get("compared", 0) + now.get("skipped", 0)

    assert wait_for(lambda: counted() >= sent), route(tmp_path)
    busy = route(tmp_path)
    assert busy["compared"] + busy["skipped"] == sent
    if share < 0.9:
        # Other processes held the loop's core: the loop did not compute 80% of the time, so
        # it was rightly not saturated, and there is nothing to check about shedding.
        pytest.skip(f"the machine gave the event loop {share:.0%} of a core, too busy to test")
    assert busy["skipped"] >= sent // 3, busy  # the first requests find a loop not yet busy
    reasons = busy["skipped_by_reason"]
    assert sum(reasons.values()) == busy["skipped"], busy
    assert reasons["loop_busy"] >= sent // 3, busy
    time.sleep(0.3)
    assert requests.get(srv.url + "/api/match", timeout=WAIT).status_code == 200
    rested = settle(tmp_path, "compared", busy["compared"] + 1)
    assert rested["skipped"] == busy["skipped"]
    assert rested["matched"] == busy["matched"] + 1


def test_two_workers_write_one_store(launcher: Launcher, tmp_path: Path) -> None:
    """Both workers' writers commit into one store and no record is lost. The in-flight bound
    is raised out of the way: the comparisons run on a nice-10 thread, so with other processes
    holding the CPUs they fall behind the clients and the default bound (32) rightly skips some
    requests (seen as `in_flight` skips under two CPU hogs); that is the bound's test above,
    not this one."""
    srv = _start(launcher, tmp_path, PY_SHADOW, "  max_in_flight = 1000", workers=2)
    with requests.Session() as s:
        for _ in range(100):
            assert s.get(srv.url + "/api/match", timeout=WAIT).status_code == 200
    for _ in range(100):
        r = requests.get(srv.url + "/api/diff", headers={"Connection": "close"}, timeout=WAIT)
        assert r.status_code == 200
    got = settle(tmp_path, "compared", 200)
    assert (got["matched"], got["differed"], got["skipped"]) == (100, 100, 0), got
    assert "database is locked" not in srv.log()


def test_a_wasm_shadow_runs_on_a_low_priority_thread_started_by_the_first_mirror(
    launcher: Launcher, tmp_path: Path
) -> None:
    """The component, its comparison and the store's records leave the event loop for the
    worker's `wsrun-shadow` thread (nice 10), which a worker starts only when it mirrors."""
    srv = _start(launcher, tmp_path, f'wasm = "{wasm_handler("hello")}"')
    (pid,) = srv.ready_pids()
    assert requests.post(srv.url + "/api/write", data=b"x", timeout=WAIT).status_code == 200
    assert "wsrun-shadow" not in thread_nices(pid)  # a POST is not mirrored
    for _ in range(3):
        r = requests.get(srv.url + "/api/match", timeout=WAIT)
        assert r.status_code == 200 and r.json()["a"] == 1
    got = settle(tmp_path, "compared", 3)
    assert got["differed"] == 3  # hello's greeting is not the primary's JSON
    assert thread_nices(pid).get("wsrun-shadow") == 10
