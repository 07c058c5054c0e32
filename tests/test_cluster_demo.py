"""examples/cluster/demo.sh end to end: a throw-away PostgreSQL, three nodes, a node killed
with SIGKILL mid-run, and every job delivered (the demo exits non-zero otherwise)."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess

import pytest

from support.paths import REPO, wsrun_bin
from support.postgres import server_bin


def ephemeral_low() -> int:
    """The lowest port the kernel hands out to connect() and bind(0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def bindable(port: int) -> bool:
    """Whether a listener could bind `port` now, with SO_REUSEADDR as wsrun sets it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def three_free_ports() -> int:
    """A base port with it and the next two free on 127.0.0.1, taken below the ephemeral
    range. Inside it (where bind(0) answers), the suite's own client connections leave
    thousands of ports in TIME_WAIT, mostly the odd ones Linux keeps for connect(), so an
    even base from bind(0) and base + 1 could fail 50 draws in a row (seen in CI)."""
    high = ephemeral_low() - 3
    draw = random.Random()
    for _ in range(200):
        base = draw.randrange(10000, max(high, 10001))
        if all(bindable(port) for port in (base, base + 1, base + 2)):
            return base
    raise AssertionError(f"no three free ports in a row in 10000..{high}")


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
