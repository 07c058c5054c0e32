"""The job journal on a full disk: `wsrun.enqueue` fails at once with ServiceError (Python) and
the `wsrun:services` enqueue with `unavailable` (WASM), requests keep being served, no committed
job is lost, and delivery resumes when space returns.

The state directory is a real 2 MiB tmpfs that the test fills with a file (mounting needs
root: the test skips with the reason otherwise). No mock: SQLite's own writes fail with ENOSPC.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.config_files import JOBS_APP_CONFIG
from support.launcher import Launcher, Server
from support.paths import APPS, WAIT, wait_for
from support.wasm import wasm_handler

CONFIG = JOBS_APP_CONFIG
#: A refusal must come at once: well inside this (the journal's busy timeout is longer).
AT_ONCE_S = 2.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path/state` as a 2 MiB tmpfs (unmounted at teardown)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the journal needs root")
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(disk: Path) -> Path:
    """Writes a file until the disk is full (to the last block); returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (65536, 512):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def _get(srv: Server, path: str) -> requests.Response:
    return requests.get(srv.url + path, timeout=WAIT)


def _sinks(srv: Server) -> list[str]:
    return [x.split()[-1] for x in srv.calls() if x.startswith("sink ")]


def test_full_journal_disk_refuses_enqueue_and_delivery_resumes(
    launcher: Launcher, small_disk: Path
) -> None:
    cfg = launcher.tmp / "wsrun.toml"
    cfg.write_text(CONFIG)
    srv = launcher.start(["-c", str(cfg), "--pythonpath", str(APPS)], cwd=launcher.tmp)
    # Committed before the disk fills, due while it is full.
    for i in range(20):
        r = _get(srv, f"/app/enqueue?path=/app/sink&body=early{i}&delay=1")
        assert r.status_code == 200, r.text
    due = time.monotonic() + 1
    filler = _fill(small_disk)
    # Enqueue fails (ServiceError, answered 503 by the app) rather than hanging.
    refused = None
    for i in range(200):
        r = _get(srv, f"/app/enqueue?path=/app/sink&body=full{i}&n=20")
        if r.status_code != 200:
            refused = r
            break
    assert refused is not None, "the journal never reported the full disk"
    assert refused.status_code == 503 and "ServiceError" in refused.text, refused.text
    assert "full" in refused.text.lower(), refused.text
    # The worker keeps serving.
    for _ in range(20):
        assert _get(srv, "/app/pid").status_code == 200
    srv_pids = srv.worker_pids()
    # The dispatcher meets the full disk for a while (the early jobs are due): it backs off
    # and says so once instead of an error line per poll.
    time.sleep(max(0.0, due + 2 - time.monotonic()))
    errors_while_full = [x for x in srv.log().splitlines() if "ERROR" in x and "jobs" in x]
    # Space returns: new jobs are taken again, and every job committed before is delivered.
    filler.unlink()
    r = _get(srv, "/app/enqueue?path=/app/sink&body=after")
    assert r.status_code == 200, r.text
    _assert_delivered_once(srv, {f"early{i}" for i in range(20)} | {"after"}, srv_pids)
    print(f"dispatcher error lines while the disk was full: {len(errors_while_full)}")
    assert len(errors_while_full) <= 4, errors_while_full


def _assert_delivered_once(srv: Server, want: set[str], srv_pids: list[int]) -> None:
    """Every job body in `want` reaches the sink exactly once, by the workers of `srv_pids`."""
    assert wait_for(lambda: want <= set(_sinks(srv)), 2 * WAIT), (
        sorted(want - set(_sinks(srv))),
        srv.log()[-3000:],
    )
    assert srv.worker_pids() == srv_pids, "no worker died"
    counts = {body: _sinks(srv).count(body) for body in want}
    assert set(counts.values()) == {1}, counts


def _wasm_defer(srv: Server, body: str, delay_ms: int = 0) -> requests.Response:
    """The `jobs` handler enqueues a job to /app/sink through `wsrun:services`."""
    url = f"{srv.url}/jobs/defer?to=/app/sink&delay={delay_ms}"
    return requests.post(url, data=body.encode(), timeout=AT_ONCE_S)


def test_full_journal_disk_answers_wasm_enqueue_unavailable(
    launcher: Launcher, small_disk: Path
) -> None:
    cfg = launcher.tmp / "wsrun.toml"
    cfg.write_text(CONFIG + f'\n[[route]]\nprefix = "/jobs"\nwasm = "{wasm_handler("jobs")}"\n')
    srv = launcher.start(["-c", str(cfg), "--pythonpath", str(APPS)], cwd=launcher.tmp)
    # Committed from WASM before the disk fills, due while it is full.
    for i in range(20):
        r = _wasm_defer(srv, f"wearly{i}", delay_ms=1000)
        assert r.status_code == 200, r.text
    filler = _fill(small_disk)
    # The enqueue is refused with `unavailable` (answered 503 by the handler), not left hanging:
    # every call answers within AT_ONCE_S (the request's timeout).
    refused = None
    for i in range(200):
        r = _wasm_defer(srv, f"wfull{i}-" + "x" * 4096)
        if r.status_code != 200:
            refused = r
            break
    assert refused is not None, "the journal never reported the full disk"
    assert refused.status_code == 503, refused.text
    assert refused.text.startswith("unavailable:") and "full" in refused.text.lower(), refused.text
    # Refused again at once while the disk stays full, and requests keep being served.
    for i in range(5):
        r = _wasm_defer(srv, f"wstill{i}")
        assert r.status_code == 503 and r.text.startswith("unavailable:"), r.text
        assert requests.get(srv.url + "/jobs/work", timeout=WAIT).status_code == 200
        assert _get(srv, "/app/pid").status_code == 200
    srv_pids = srv.worker_pids()
    # Space returns: WASM enqueues again, and every job committed before is delivered once.
    filler.unlink()
    r = _wasm_defer(srv, "wafter")
    assert r.status_code == 200, r.text
    _assert_delivered_once(srv, {f"wearly{i}" for i in range(20)} | {"wafter"}, srv_pids)
    assert not any(b.startswith("wstill") for b in _sinks(srv)), "a refused job ran"
