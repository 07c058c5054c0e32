"""examples/cluster/demo.sh end to end: a throw-away PostgreSQL, three nodes, a node killed
with SIGKILL mid-run, and every job delivered (the demo exits non-zero otherwise)."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest

from support.paths import REPO, wsrun_bin
from support.postgres import server_bin


def three_free_ports() -> int:
    """A base port with it and the next two free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 65000:
            continue
        try:
            for port in (base + 1, base + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no three free ports in a row")


def test_the_cluster_demo_loses_no_job() -> None:
    pg_bin = server_bin()
    if pg_bin is None:
        pytest.skip("*** no initdb: install Debian's `postgresql` (tests/run does) ***")
    env = dict(
        os.environ,
        JOBS="300",
        BASE_PORT=str(three_free_ports()),
        TIMEOUT="40",
        WSRUN_BIN=wsrun_bin(),
        PATH=f"{os.environ.get('PATH', '')}:{pg_bin}",
    )
    done = subprocess.run(
        ["bash", str(REPO / "examples/cluster/demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered: 300 of 300 distinct jobs" in done.stdout, done.stdout
    assert re.search(r"by node: .*node1.*node2.*node3", done.stdout), done.stdout
    assert "jobs: 0 pending, 0 dead" in done.stdout, done.stdout
    assert done.stderr == "", done.stderr
