"""`--watch DIR`: DIR/NAME.wasm served at /NAME, routes following the files, hot reload under
load without a failed request, bad versions refused while the previous one keeps serving."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import requests

from support.launcher import Launcher, Server
from support.paths import WAIT, wait_for
from support.wasm import (
    CORE_MODULE,
    EMPTY_COMPONENT,
    hello_body,
    hello_rev,
    state_args,
    wasm_handler,
)


def _watch(launcher: Launcher, tmp: Path, *files: str) -> tuple[Server, Path]:
    watched = tmp / "handlers"
    watched.mkdir()
    for name in files:
        (watched / f"{name}.wasm").write_bytes(wasm_handler(name).read_bytes())
    srv = launcher.start(["--watch", str(watched), *state_args(tmp)], cwd=tmp)
    return srv, watched


def _status(srv: Server, path: str) -> int:
    try:
        return requests.get(srv.url + path, timeout=WAIT).status_code
    except requests.RequestException:
        return -1


def _text(srv: Server, path: str) -> str:
    return requests.get(srv.url + path, timeout=WAIT).text


def _write_in_place(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.stem}.tmp"  # not *.wasm: the watcher must ignore it
    with tmp.open("wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _add_later(srv: Server, watched: Path, name: str) -> None:
    """Adds `NAME.wasm` and waits until the watcher has served it: every change written before
    it has been seen by then (the watcher handles changes in order, each after 40 ms of quiet)."""
    (watched / f"{name}.wasm").write_bytes(wasm_handler("raw-hello").read_bytes())
    assert srv.wait_log(f"handler `{name}` on /{name}: added"), srv.log()[-2000:]
    assert _text(srv, f"/{name}") == "raw wasi hello\n"


def test_routes_follow_the_files(launcher: Launcher, tmp_path: Path) -> None:
    srv, watched = _watch(launcher, tmp_path, "hello")
    assert _text(srv, "/hello") == hello_body(0)
    assert _status(srv, "/echo") == 404

    (watched / "echo.wasm").write_bytes(wasm_handler("echo").read_bytes())
    assert wait_for(lambda: _status(srv, "/echo") == 200), srv.log()[-2000:]
    r = requests.post(srv.url + "/echo/x?y=1", data=b"ping", timeout=WAIT)
    assert r.content == b"ping"
    assert r.headers["x-echo-script-name"] == "/echo"
    assert r.headers["x-echo-path"] == "/echo/x?y=1"
    assert "handler `echo` on /echo: added" in srv.log()

    (watched / "echo.wasm").unlink()
    assert wait_for(lambda: _status(srv, "/echo") == 404), srv.log()[-2000:]
    assert srv.wait_log("handler `echo` on /echo: file removed; route removed")
    assert _text(srv, "/hello") == hello_body(0)

    # Files that are not NAME.wasm are not routes.
    (watched / "notes.txt").write_text("hello")
    (watched / "probe.wasm.bak").write_bytes(wasm_handler("probe").read_bytes())
    _add_later(srv, watched, "later")
    assert _status(srv, "/notes") == 404
    assert _status(srv, "/probe") == 404
    assert "handler `probe`" not in srv.log() and "notes" not in srv.log(), srv.log()[-2000:]


def test_hidden_files_are_ignored(launcher: Launcher, tmp_path: Path) -> None:
    """README: `--watch` ignores hidden files (a hidden NAME.wasm is never a route)."""
    srv, watched = _watch(launcher, tmp_path, "hello")
    (watched / ".x.wasm").write_bytes(wasm_handler("echo").read_bytes())
    _add_later(srv, watched, "visible")
    assert _status(srv, "/.x") == 404
    assert _status(srv, "/x") == 404
    assert "handler `.x`" not in srv.log() and "handler `x`" not in srv.log(), srv.log()[-2000:]


def test_new_file_that_fails_to_load_is_not_served(launcher: Launcher, tmp_path: Path) -> None:
    srv, watched = _watch(launcher, tmp_path, "hello")
    (watched / "broken.wasm").write_bytes(b"definitely not wasm")
    assert srv.wait_log("handler `broken` not served"), srv.log()[-2000:]
    assert "is not a WebAssembly file" in srv.log()
    assert _status(srv, "/broken") == 404
    # Fixing the file brings the route up.
    _write_atomically(watched / "broken.wasm", wasm_handler("raw-hello").read_bytes())
    assert wait_for(lambda: _status(srv, "/broken") == 200), srv.log()[-2000:]
    assert _text(srv, "/broken") == "raw wasi hello\n"


def test_hot_reload_under_load(launcher: Launcher, tmp_path: Path) -> None:
    srv, watched = _watch(launcher, tmp_path, "hello")
    target = watched / "hello.wasm"
    versions = 20
    allowed = {hello_body(0)}
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []
    served = [0]

    def client() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.get(srv.url + "/hello", timeout=WAIT)
                    with lock:
                        ok = r.status_code == 200 and r.text in allowed
                except requests.RequestException as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    served[0] += 1
                    if not ok:
                        failures.append(f"{r.status_code} {r.text[:200]!r}")

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    latencies: list[float] = []
    try:
        assert wait_for(lambda: served[0] > 0 or bool(failures)), "the load threads never ran"
        with requests.Session() as poll:
            for rev in range(1, versions + 1):
                data = hello_rev(rev)
                want = hello_body(rev)
                with lock:
                    allowed.add(want)
                how = "in place" if rev % 2 else "atomically"
                if rev % 2:
                    _write_in_place(target, data)
                else:
                    _write_atomically(target, data)
                written = time.monotonic()
                deadline = written + WAIT
                seen = False
                while time.monotonic() < deadline:
                    if poll.get(srv.url + "/hello", timeout=WAIT).text == want:
                        seen = True
                        break
                    time.sleep(0.005)
                latency = time.monotonic() - written
                assert seen, f"rev {rev} ({how}) not served within {WAIT} s\n{srv.log()[-3000:]}"
                latencies.append(latency)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    print(
        f"\nMEASURE reload_latency_ms median={statistics.median(latencies) * 1000:.1f} "
        f"max={max(latencies) * 1000:.1f} "
        f"all={[round(x * 1000) for x in latencies]} load_requests={served[0]}"
    )
    assert failures == [], failures[:10]
    assert served[0] > 100, "the load threads barely ran"
    # Every version was reloaded: the start-up scan ("added", once) was over before the first
    # write. Each was served after its write (the latency: bench/timings.py).
    assert srv.log_count("handler `hello` on /hello: reloaded in") >= versions, srv.log()[-3000:]
    assert srv.log_count("handler `hello` on /hello: added") == 1, srv.log()[-3000:]


def test_bad_versions_keep_the_previous_one_serving(launcher: Launcher, tmp_path: Path) -> None:
    srv, watched = _watch(launcher, tmp_path, "hello")
    target = watched / "hello.wasm"
    _write_atomically(target, hello_rev(1))
    assert wait_for(lambda: _text(srv, "/hello") == hello_body(1))

    refused = "handler `hello` on /hello: new version not loaded, the previous one keeps serving"
    bad = [
        (b"this is garbage, not a component\n", "is not a WebAssembly file"),
        (CORE_MODULE, "is a core WebAssembly module, not a component"),
        (EMPTY_COMPONENT, "is not a wasi:http/proxy handler"),
    ]
    for n, (data, reason) in enumerate(bad, start=1):
        before = srv.log_count(reason)
        _write_in_place(target, data)
        assert srv.wait_log(reason, before + 1), f"no {reason!r} in\n{srv.log()[-3000:]}"
        lines = [x for x in srv.log().splitlines() if reason in x]
        assert refused in lines[-1] and str(target) in lines[-1], lines[-1]
        assert srv.log_count(refused) >= n
        for _ in range(5):
            r = requests.get(srv.url + "/hello", timeout=WAIT)
            assert (r.status_code, r.text) == (200, hello_body(1)), reason

    _write_in_place(target, hello_rev(2))
    assert wait_for(lambda: _text(srv, "/hello") == hello_body(2)), srv.log()[-3000:]


def test_unchanged_content_is_not_reloaded(launcher: Launcher, tmp_path: Path) -> None:
    srv, watched = _watch(launcher, tmp_path, "hello")
    target = watched / "hello.wasm"
    _write_in_place(target, hello_rev(3))
    assert wait_for(lambda: _text(srv, "/hello") == hello_body(3))
    reloads = "handler `hello` on /hello: reloaded in"
    assert srv.wait_log(reloads)
    count = srv.log_count(reloads)
    _write_in_place(target, hello_rev(3))
    _write_atomically(target, hello_rev(3))
    os.utime(target)
    _add_later(srv, watched, "later")
    assert srv.log_count(reloads) == count, srv.log()[-2000:]
    assert _text(srv, "/hello") == hello_body(3)


def test_bad_file_at_start_does_not_stop_the_others(launcher: Launcher, tmp_path: Path) -> None:
    watched = tmp_path / "handlers"
    watched.mkdir()
    (watched / "hello.wasm").write_bytes(wasm_handler("hello").read_bytes())
    (watched / "core.wasm").write_bytes(CORE_MODULE)
    srv = launcher.start(["--watch", str(watched), *state_args(tmp_path)], cwd=tmp_path)
    assert _text(srv, "/hello") == hello_body(0)
    assert _status(srv, "/core") == 404
    assert srv.wait_log("is a core WebAssembly module"), srv.log()[-2000:]
    line = next(x for x in srv.log().splitlines() if "is a core WebAssembly module" in x)
    assert str(watched / "core.wasm") in line, line


def test_watch_from_toml_resolves_against_the_file(launcher: Launcher, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "live").mkdir(parents=True)
    (conf / "live" / "raw-hello.wasm").write_bytes(wasm_handler("raw-hello").read_bytes())
    cfg = conf / "wsrun.toml"
    cfg.write_text('[server]\nwatch = "live"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    srv = launcher.start(["-c", str(cfg), *state_args(tmp_path)], cwd=elsewhere)
    assert _text(srv, "/raw-hello") == "raw wasi hello\n"
    (conf / "live" / "hello.wasm").write_bytes(wasm_handler("hello").read_bytes())
    assert wait_for(lambda: _status(srv, "/hello") == 200), srv.log()[-2000:]


def test_rename_moves_the_route(launcher: Launcher, tmp_path: Path) -> None:
    srv, watched = _watch(launcher, tmp_path, "hello")
    os.rename(watched / "hello.wasm", watched / "greeting.wasm")
    assert wait_for(lambda: _status(srv, "/greeting") == 200), srv.log()[-2000:]
    assert wait_for(lambda: _status(srv, "/hello") == 404), srv.log()[-2000:]
    assert _text(srv, "/greeting") == hello_body(0)
    # A subdirectory's files are not routes.
    (watched / "sub").mkdir()
    (watched / "sub" / "echo.wasm").write_bytes(wasm_handler("echo").read_bytes())
    _add_later(srv, watched, "later")
    assert _status(srv, "/echo") == 404
    assert _status(srv, "/sub") == 404


def test_swap_leaves_requests_in_flight_alone(launcher: Launcher, tmp_path: Path) -> None:
    watched = tmp_path / "handlers"
    watched.mkdir()
    slot = watched / "slot.wasm"
    slot.write_bytes(wasm_handler("probe").read_bytes())
    srv = launcher.start(["--watch", str(watched), *state_args(tmp_path)], cwd=tmp_path)
    assert _text(srv, "/slot") == "probe ok\n"
    slow: list[requests.Response] = []
    t = threading.Thread(
        target=lambda: slow.append(requests.get(srv.url + "/slot?sleep_ms=4000", timeout=WAIT))
    )
    t.start()
    # The slow request runs on the old version (probe says so before it sleeps) ...
    assert srv.wait_log("probe: sleeping 4000 ms"), srv.log()[-2000:]
    # ... when the new one is swapped in.
    _write_atomically(slot, hello_rev(5))
    assert wait_for(lambda: _text(srv, "/slot") == hello_body(5)), srv.log()[-2000:]
    assert t.is_alive(), "the slow request should still be running on the old version"
    t.join(timeout=10)
    assert slow and (slow[0].status_code, slow[0].text) == (200, "slept")

    # Removing the file: the route goes, a request already running finishes.
    _write_atomically(slot, wasm_handler("probe").read_bytes())
    assert wait_for(lambda: _text(srv, "/slot") == "probe ok\n")
    slow.clear()
    t = threading.Thread(
        target=lambda: slow.append(requests.get(srv.url + "/slot?sleep_ms=3000", timeout=WAIT))
    )
    t.start()
    assert srv.wait_log("probe: sleeping 3000 ms"), srv.log()[-2000:]
    slot.unlink()
    assert wait_for(lambda: _status(srv, "/slot") == 404), srv.log()[-2000:]
    t.join(timeout=10)
    assert slow and (slow[0].status_code, slow[0].text) == (200, "slept")
