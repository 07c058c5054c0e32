"""Connection floods against one worker: thousands of connections that send nothing, opened
faster than the worker accepts them, while a normal client's requests all succeed.

Idle connections that never send a head are the cheapest to hold and the first evicted at
the connection cap; the listen backlog (1024, `server::listener::LISTEN_BACKLOG`) absorbs the
bursts between two accepts. Bounded: 5,000 idle connects, 200 normal requests.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading

import requests

from support.launcher import Launcher
from support.paths import WAIT

IDLE = 5000
FLOODERS = 4
REQUESTS = 200


def _flood(port: int, count: int, held: list[socket.socket], failed: list[str]) -> None:
    """Opens `count` connections as fast as connect() returns, sends nothing, keeps them."""
    for _ in range(count):
        s = socket.socket()
        s.settimeout(WAIT)
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            failed.append(repr(e))
            s.close()
            continue
        held.append(s)


def test_idle_connection_flood_leaves_normal_requests_served(launcher: Launcher) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE + 512:
        raise AssertionError(f"the open-file limit ({hard}) is too low for {IDLE} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, IDLE + 512), hard))
    srv = launcher.probe()
    held: list[list[socket.socket]] = [[] for _ in range(FLOODERS)]
    failed: list[str] = []
    flooders = [
        threading.Thread(target=_flood, args=(srv.port, IDLE // FLOODERS, mine, failed))
        for mine in held
    ]
    statuses: list[int] = []
    try:
        for t in flooders:
            t.start()
        with requests.Session() as s:
            s.headers["Connection"] = "close"  # a fresh connect each, queued with the flood
            for _ in range(REQUESTS):
                statuses.append(s.get(srv.url + "/pid", timeout=WAIT).status_code)
        for t in flooders:
            t.join(4 * WAIT)
        opened = sum(len(h) for h in held)
        # Still serving with every flood connection open.
        after = requests.get(srv.url + "/pid", headers={"Connection": "close"}, timeout=WAIT)
    finally:
        for mine in held:
            for sock in mine:
                with contextlib.suppress(OSError):
                    sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(f"{opened} idle connections opened ({len(failed)} failed); {REQUESTS} requests served")
    assert statuses == [200] * REQUESTS, sorted(set(statuses))
    assert after.status_code == 200
    assert opened + len(failed) == IDLE
    assert opened >= IDLE * 9 // 10, failed[:5]
    assert srv.running(), srv.log()[-2000:]
