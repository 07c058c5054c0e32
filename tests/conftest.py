"""Fixtures of the end-to-end suite, which drives the built `wsrun` binary over real sockets.

The helpers live in `tests/support/`, one module per role: `paths` (locations, `WAIT`,
`wait_for`), `launcher` (`Server`, `Launcher`, `run_wsrun`), `http` (raw sockets and a response
parser), `procfs` (/proc readers), `wasm` (built handlers). This file holds the fixtures only,
and re-exports the helpers under their old names so `from conftest import ...` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.http import (
    RawResult,
    Response,
    free_port,
    get,
    parse_response,
    parse_responses,
    port_open,
    raw_exchange,
    raw_request,
    read_response,
    recv_until_closed,
    status_of,
)
from support.launcher import Launcher, Server, run_wsrun
from support.paths import APPS, CONFIGS, REPO, TESTS, WAIT, wait_for, wsrun_bin
from support.procfs import child_pids, deleted_fds, fd_links

__all__ = [
    "APPS",
    "CONFIGS",
    "REPO",
    "TESTS",
    "WAIT",
    "Launcher",
    "RawResult",
    "Response",
    "Server",
    "child_pids",
    "deleted_fds",
    "fd_links",
    "free_port",
    "get",
    "parse_response",
    "parse_responses",
    "port_open",
    "raw_exchange",
    "raw_request",
    "read_response",
    "recv_until_closed",
    "run_wsrun",
    "status_of",
    "wait_for",
    "wsrun_bin",
]


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    lau = Launcher(tmp_path)
    try:
        yield lau
    finally:
        lau.stop_all()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """An empty directory for `--spool-dir`."""
    d = tmp_path / "spool"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A probe server shared by a module's tests (default settings)."""
    srv = Server(tmp_path_factory.mktemp("probe"), name="probe")
    try:
        srv.start(["probe:app", "--pythonpath", str(APPS)])
        yield srv
    finally:
        srv.stop(timeout=10)


@pytest.fixture(autouse=True)
def _require_binary(request: pytest.FixtureRequest) -> None:
    if request.module.__name__.endswith("package_unit"):
        return  # unit tests of the Python package need no server
    if not Path(wsrun_bin()).exists():
        pytest.fail(
            f"wsrun binary not found at {wsrun_bin()}: run `cargo build --release -p wsrun`"
        )
