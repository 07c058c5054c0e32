"""Worker recycling: `max_requests` (+ jitter) and `max_rss` replace a worker without dropping
a request, under load from concurrent real clients (keep-alive and new connections).

A client may retry a request only in the one case HTTP allows for any client: the request was
sent on a *reused* keep-alive connection and the connection closed before any byte of a
response came back (RFC 9112 section 9.3.1; a draining worker closes idle keep-alive
connections). Every other error, and any status but 200, counts as a failure.
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from support.config_files import assert_config_error, probe_app, write_config
from support.launcher import Launcher, Server
from support.paths import WAIT

RECYCLED_AFTER = re.compile(r"worker (\d+) \(pid (\d+)\) recycled after (\d+) requests")
LIMIT_LINE = re.compile(r"worker (\d+) \(pid (\d+)\) will be recycled after (\d+) requests")
RSS_LINE = re.compile(r"worker (\d+) \(pid (\d+)\) recycled: RSS (\d+) MiB over max_rss (\d+) MiB")
REPLACED = re.compile(r"worker (\d+) \(pid (\d+)\) recycled: pid (\d+) serves in its place")

#: Errors that mean "the server closed this idle keep-alive connection before reading the
#: request": only then may a client resend on a new connection.
STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass
class Tally:
    """What the clients saw, shared by their threads."""

    pids: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stale_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def _client(srv: Server, path: str, count: int, keep_alive: bool, tally: Tally) -> None:
    conn: http.client.HTTPConnection | None = None
    used = False
    for _ in range(count):
        if conn is None or not keep_alive:
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=WAIT)
            used = False
        try:
            try:
                status, body = _get(conn, path)
            except STALE_CONNECTION:
                if not used:
                    raise
                with tally.lock:
                    tally.stale_retries += 1
                conn.close()
                conn = http.client.HTTPConnection(srv.host, srv.port, timeout=WAIT)
                status, body = _get(conn, path)
        except Exception as e:  # every error is a failure, named in the report
            with tally.lock:
                tally.failures.append(f"{type(e).__name__}: {e}")
            conn.close()
            conn = None
            continue
        used = True
        with tally.lock:
            if status == 200:
                tally.pids.append(int(body))
            else:
                tally.failures.append(f"status {status}")
        if not keep_alive:
            conn.close()
    if conn is not None:
        conn.close()


def _load(srv: Server, path: str, clients: int, each: int) -> Tally:
    """`clients` threads, half on keep-alive connections, half on a new connection per
    request, `each` requests each."""
    tally = Tally()
    threads = [
        threading.Thread(target=_client, args=(srv, path, each, i % 2 == 0, tally))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT * 4)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return tally


def test_max_requests_recycles_workers_under_load_without_a_failure(launcher: Launcher) -> None:
    srv = launcher.probe("--workers", "2", "--max-requests", "50", "--max-requests-jitter", "10")
    first = set(srv.ready_pids())
    tally = _load(srv, "/pid", clients=8, each=75)
    assert tally.failures == [], (tally.failures[:10], srv.log()[-3000:])
    assert len(tally.pids) == 600
    recycled = RECYCLED_AFTER.findall(srv.log())
    # 600 requests over two workers with limits in [50, 60] (a worker that asked serves on
    # until its replacement is ready, and the kernel spreads connections unevenly): several.
    assert len(recycled) >= 5, srv.log()[-3000:]
    for _, _, served in recycled:
        assert 50 <= int(served) <= 60, recycled
    # New workers served: pids beyond the first two answered.
    assert len(set(tally.pids) - first) >= 5, sorted(set(tally.pids))
    # Each replaced worker stopped as asked: a stop, never a crash.
    assert srv.wait_log("serves in its place", count=len(recycled) - 2)
    assert "died" not in srv.log()
    assert "failed" not in srv.log()
    assert srv.running()


def test_jitter_gives_each_worker_a_limit_in_range(launcher: Launcher) -> None:
    srv = launcher.probe("--workers", "2", "--max-requests", "100", "--max-requests-jitter", "20")
    limits = [int(n) for _, _, n in LIMIT_LINE.findall(srv.log())]
    assert len(limits) == 2, srv.log()
    assert all(100 <= n <= 120 for n in limits), limits


def test_no_limit_by_default(launcher: Launcher) -> None:
    srv = launcher.probe()
    assert "will be recycled" not in srv.log()


def test_max_rss_recycles_a_leaking_worker_and_a_new_pid_serves(launcher: Launcher) -> None:
    srv = launcher.probe("--max-rss", "200MiB")
    (old,) = srv.ready_pids()
    # 8 MiB kept per request: past 200 MiB within ~25 requests, whatever the baseline.
    tally = _load(srv, "/leak?kib=8192", clients=2, each=40)
    assert tally.failures == [], (tally.failures[:10], srv.log()[-3000:])
    assert srv.wait_log("over max_rss 200 MiB"), srv.log()[-3000:]
    (rss_line,) = [m for m in RSS_LINE.findall(srv.log()) if int(m[1]) == old][:1]
    assert int(rss_line[2]) > 200
    (new,) = srv.wait_ready_pids(exclude=[old], count=1)
    assert srv.wait_log(f"worker 0 (pid {old}) recycled: pid {new} serves in its place")
    after = _load(srv, "/pid", clients=1, each=5)
    assert after.failures == []
    assert set(after.pids) != {old}, after.pids


def test_bad_max_rss_is_a_config_error_naming_file_line_and_key(
    launcher: Launcher, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, probe_app('workers = 1\nmax_rss = "lots"'))
    assert_config_error(launcher, cfg, 3, "server.max_rss", "lots")
