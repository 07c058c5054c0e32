"""`--profile DIR`: each worker writes DIR/worker-N.pstats (cProfile of the Python routes) and
DIR/worker-N-wasm.json (per-route instantiate/run/stream times of the WebAssembly routes) when
it drains. Driven over real sockets against the bench suite app, which has both kinds.
"""

from __future__ import annotations

import json
import os
import pstats
import urllib.request
from pathlib import Path

from conftest import REPO, WAIT, Launcher

SUITE = REPO / "examples" / "bench-suite" / "wsrun.toml"


def fetch(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as answer:
        body: bytes = answer.read()
        return body


def test_profile_writes_pstats_and_wasm_times_on_drain(tmp_path: Path, launcher: Launcher) -> None:
    out = tmp_path / "prof"
    srv = launcher.start(
        ["-c", str(SUITE), "--state-dir", str(tmp_path), "--threads", "2", "--profile", str(out)]
    )
    for _ in range(5):
        assert fetch(srv.port, "/hello") == b"hello world!!"
        assert fetch(srv.port, "/wasm/hello") == b"hello world!!"
    for _ in range(3):
        assert len(fetch(srv.port, "/wasm/long")) == 154_000
    assert not (out / "worker-0.pstats").exists(), "written before the drain"
    assert srv.stop() == 0

    stats = pstats.Stats(str(out / "worker-0.pstats"))
    calls = {
        (Path(file).name, name): counts[1]
        for (file, _line, name), counts in stats.stats.items()  # type: ignore[attr-defined]
    }
    assert calls.get(("suite.py", "hello")) == 5, sorted(calls)[:40]
    assert calls.get(("suite.py", "app"), 0) >= 5

    report = json.loads((out / "worker-0-wasm.json").read_text())
    (route,) = [r for r in report["routes"] if r["prefix"] == "/wasm"]
    assert route["handler"] == "bench-suite"
    assert route["instances"] == 8
    assert route["instantiate"]["count"] == 8
    # Every run counts, also an instance stopped while still in `handle` once its response
    # was sent (the /wasm/long writes).
    assert route["run"]["count"] == 8
    assert route["stream"]["count"] == 8
    for phase in ("instantiate", "run", "stream"):
        assert route[phase]["total_s"] > 0
        assert route[phase]["max_s"] <= route[phase]["total_s"]


def test_profile_is_off_by_default(tmp_path: Path, launcher: Launcher) -> None:
    srv = launcher.start(["-c", str(SUITE), "--state-dir", str(tmp_path)], cwd=tmp_path)
    assert fetch(srv.port, "/hello") == b"hello world!!"
    assert srv.stop() == 0
    assert not list(tmp_path.rglob("*.pstats"))
    assert not list(tmp_path.rglob("*-wasm.json"))


def test_profile_from_the_config_file(tmp_path: Path, launcher: Launcher) -> None:
    config = tmp_path / "wsrun.toml"
    suite_dir = SUITE.parent
    config.write_text(
        "[server]\n"
        f'pythonpath = ["{suite_dir}"]\n'
        'profile = "profiles"\n'
        "[[route]]\n"
        'prefix = "/"\n'
        'python = "suite:app"\n'
    )
    srv = launcher.start(["-c", str(config), "--state-dir", str(tmp_path)])
    assert fetch(srv.port, "/iterhello") == b"hello worlds!!"
    assert srv.stop() == 0
    stats = pstats.Stats(str(tmp_path / "profiles" / "worker-0.pstats"))
    names = {name for (_file, _line, name) in stats.stats}  # type: ignore[attr-defined]
    assert "iterhello" in names and "pieces" in names


def test_a_recycled_workers_successor_adds_to_its_profiles(
    tmp_path: Path, launcher: Launcher
) -> None:
    out = tmp_path / "prof"
    out.mkdir()
    # Left by an earlier run (older than this server): replaced, not added to.
    stale = out / "worker-0-wasm.json"
    stale.write_text(json.dumps({"routes": [{**_times("/wasm"), "instances": 1000}]}))
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    args = ["-c", str(SUITE), "--state-dir", str(tmp_path), "--profile", str(out)]
    srv = launcher.start([*args, "--max-requests", "10"])
    # Each worker asks for its successor at its 10th response. During a hand-over both listen
    # on the port for a moment and either may answer, so how many requests each worker gets is
    # not fixed: send pairs until three recycles are logged and count every pair sent.
    sent = 0
    while srv.log_count("serves in its place") < 3:
        assert sent < 200, srv.log()[-3000:]
        assert fetch(srv.port, "/hello") == b"hello world!!"
        assert fetch(srv.port, "/wasm/hello") == b"hello world!!"
        sent += 1
    # Each recycled worker writes its files once drained; then the last one writes at the stop.
    recycled = srv.log_count("serves in its place")
    assert srv.wait_log("WebAssembly route(s) in", count=recycled), srv.log()[-3000:]
    assert srv.stop() == 0
    written = srv.log_count("WebAssembly route(s) in")
    assert written == srv.log_count("serves in its place") + 1, srv.log()[-3000:]

    stats = pstats.Stats(str(out / "worker-0.pstats"))
    hello = [
        counts[1]
        for (file, _line, name), counts in stats.stats.items()  # type: ignore[attr-defined]
        if (Path(file).name, name) == ("suite.py", "hello")
    ]
    assert hello == [sent], hello  # every worker added its calls to the file
    report = json.loads(stale.read_text())
    (route,) = [r for r in report["routes"] if r["prefix"] == "/wasm"]
    assert route["instances"] == sent  # the stale file's 1000 were replaced, not added to
    assert route["run"]["count"] == sent
    assert route["stream"]["count"] == sent


def _times(prefix: str) -> dict[str, object]:
    """One route's entry as `worker-N-wasm.json` holds it."""
    phase = {"count": 1000, "total_s": 1.0, "max_s": 0.01}
    return {
        "route": f"handler `bench-suite` on {prefix}",
        "prefix": prefix,
        "handler": "bench-suite",
        "instances": 1000,
        "instantiate": phase,
        "run": phase,
        "stream": phase,
    }
