"""The compiled-code cache under `<state_dir>/wasm-cache/`: the first start compiles, a restart
with the same state dir loads cached code (how much faster: `bench/timings.py`)."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from support.launcher import Launcher, Server
from support.paths import WAIT
from support.wasm import hello_body, hello_rev, state_args

HANDLERS = 10
#: Debug for wsrun itself only: wasmtime's own debug output is huge and beside the point.
LOG_ENV = {"WSRUN_LOG": "info,wsrun=debug"}


def _args(tmp: Path, files: list[Path]) -> list[str]:
    args = [*state_args(tmp), "--log-level", "debug"]
    for n, f in enumerate(files, start=1):
        args += ["--wasm", f"/h{n}={f}"]
    return args


def _loaded_lines(srv: Server) -> list[str]:
    return [
        x for x in srv.log().splitlines() if re.search(r"on /h\d+: loaded .* in [\d.]+m?s\b", x)
    ]


def _all_served(srv: Server) -> None:
    with requests.Session() as s:
        for n in range(1, HANDLERS + 1):
            r = s.get(f"{srv.url}/h{n}", timeout=WAIT)
            assert (r.status_code, r.text) == (200, hello_body(n))


def test_restart_loads_cached_code(launcher: Launcher, tmp_path: Path) -> None:
    src = tmp_path / "handlers"
    src.mkdir()
    files = []
    for n in range(1, HANDLERS + 1):
        f = src / f"h{n}.wasm"
        f.write_bytes(hello_rev(n))
        files.append(f)
    args = _args(tmp_path, files)

    first = launcher.start(args, cwd=tmp_path, env=LOG_ENV)
    _all_served(first)
    lines = _loaded_lines(first)
    assert len(lines) == HANDLERS, first.log()[-3000:]
    assert not [x for x in lines if "(cached code)" in x], lines
    assert first.stop() == 0
    cache = tmp_path / "state" / "wasm-cache"
    entries = sorted(p.name for p in cache.glob("*.cwasm"))
    assert len(entries) == HANDLERS, entries

    second = launcher.start(args, cwd=tmp_path, env=LOG_ENV)
    _all_served(second)
    lines = _loaded_lines(second)
    assert len(lines) == HANDLERS, second.log()[-3000:]
    uncached = [x for x in lines if "(cached code)" not in x]
    assert uncached == [], uncached
    # Nothing new was compiled, and nothing was left half-written.
    assert sorted(p.name for p in cache.iterdir()) == entries


def test_changed_file_is_compiled_again(launcher: Launcher, tmp_path: Path) -> None:
    f = tmp_path / "h.wasm"
    f.write_bytes(hello_rev(1))
    args = [*state_args(tmp_path), "--log-level", "debug", "--wasm", f"/h1={f}"]
    first = launcher.start(args, cwd=tmp_path, env=LOG_ENV)
    assert requests.get(first.url + "/h1", timeout=WAIT).text == hello_body(1)
    first.stop()
    f.write_bytes(hello_rev(2))
    second = launcher.start(args, cwd=tmp_path, env=LOG_ENV)
    assert requests.get(second.url + "/h1", timeout=WAIT).text == hello_body(2)
    lines = _loaded_lines(second)
    assert len(lines) == 1 and "(cached code)" not in lines[0], lines


def test_corrupt_cache_entry_is_recompiled(launcher: Launcher, tmp_path: Path) -> None:
    f = tmp_path / "h.wasm"
    f.write_bytes(hello_rev(4))
    args = [*state_args(tmp_path), "--log-level", "debug", "--wasm", f"/h4={f}"]
    first = launcher.start(args, cwd=tmp_path, env=LOG_ENV)
    assert requests.get(first.url + "/h4", timeout=WAIT).status_code == 200
    first.stop()
    (entry,) = (tmp_path / "state" / "wasm-cache").glob("*.cwasm")
    entry.write_bytes(b"not machine code")
    second = launcher.start(args, cwd=tmp_path, env=LOG_ENV)
    r = requests.get(second.url + "/h4", timeout=WAIT)
    assert (r.status_code, r.text) == (200, hello_body(4))
    assert "recompiling" in second.log(), second.log()[-3000:]


def test_two_workers_share_one_cache(launcher: Launcher, tmp_path: Path) -> None:
    f = tmp_path / "h.wasm"
    f.write_bytes(hello_rev(6))
    args = [*state_args(tmp_path), "--workers", "2", "--wasm", f"/h6={f}"]
    srv = launcher.start(args, cwd=tmp_path, env=LOG_ENV)
    assert len(srv.worker_pids()) == 2
    with requests.Session() as s:
        for _ in range(20):
            # New connections so both workers answer.
            r = s.get(srv.url + "/h6", headers={"Connection": "close"}, timeout=WAIT)
            assert (r.status_code, r.text) == (200, hello_body(6))
    cache = tmp_path / "state" / "wasm-cache"
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 1 and names[0].endswith(".cwasm"), names
