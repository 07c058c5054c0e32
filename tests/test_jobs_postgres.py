"""Several wsrun nodes sharing durable jobs and timers through one real PostgreSQL.

Each node is a whole wsrun process tree (`[server] node = "nN"`, `[jobs] backend` the test's
own database) running `tests/apps/jobs_app.py` at /app; all of them append their deliveries to
one shared call log (`sink ID ATTEMPT PID TIME METHOD BODY`). A node is "killed" with SIGKILL
on its master and workers, as `kill -9` would leave it.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from support.http import free_port
from support.launcher import Launcher, Server
from support.paths import APPS, WAIT, wait_for, wsrun_bin
from support.postgres import PgServer

NAMES = itertools.count()


def config(url: str, node: str, extra: str = "") -> str:
    return f"""
[server]
state_dir = "state-{node}"
node = "{node}"

[jobs]
backend = "{url}"
backoff = "100ms"
max_backoff = "200ms"
lease = "60s"
{extra}

[[route]]
prefix = "/app"
python = "jobs_app:app"
"""


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.remove()


def start_node(launcher: Launcher, url: str, node: str, calls: Path, extra: str = "") -> Server:
    cfg = launcher.tmp / f"{node}.toml"
    cfg.write_text(config(url, node, extra))
    env = {"WSRUN_TEST_CALL_LOG": str(calls)}
    return launcher.start(["-c", str(cfg), "--pythonpath", str(APPS)], cwd=launcher.tmp, env=env)


def sinks(calls: Path) -> list[list[str]]:
    """The `sink` lines of the shared call log, split."""
    if not calls.exists():
        return []
    return [line.split() for line in calls.read_text().splitlines() if line.startswith("sink ")]


def enqueue(srv: Server, n: int, path: str = "/app/sink", delay: float = 0) -> list[int]:
    params = {"n": str(n), "path": path, "delay": str(delay)}
    r = requests.get(f"{srv.url}/app/enqueue", params=params, timeout=WAIT)
    assert r.status_code == 200, r.text
    return [int(i) for i in r.text.split()]


def test_a_killed_node_loses_no_job_and_repeats_only_its_own(
    launcher: Launcher, pg: PgServer
) -> None:
    url = pg.create_db(f"kill{next(NAMES)}")
    calls = launcher.tmp / "cluster.calls.log"
    nodes = [start_node(launcher, url, f"n{i}", calls) for i in range(3)]
    total, batch = 3000, 100
    ids: list[int] = []
    for i in range(total // batch):
        ids += enqueue(nodes[i % 3], batch, path="/app/slow?ms=2")
    assert len(set(ids)) == total, "ids are unique across nodes"
    victim = nodes[2]
    victim_pids = {str(p) for p in victim.all_pids()}
    # Mid-run: once the victim has delivered some, kill it while it holds more.
    assert wait_for(lambda: sum(s[3] in victim_pids for s in sinks(calls)) >= 50), victim.log()
    victim.kill_all()
    assert wait_for(lambda: {int(s[1]) for s in sinks(calls)} >= set(ids), timeout=60), (
        f"delivered {len({s[1] for s in sinks(calls)})} of {total}"
    )
    by_job: dict[str, list[str]] = defaultdict(list)
    for s in sinks(calls):
        by_job[s[1]].append(s[3])
    repeated = {job: pids for job, pids in by_job.items() if len(pids) > 1}
    # A job is delivered again only if the killed node held it: its earlier delivery was
    # the victim's (its answer was lost with it), and no more than the victim had in flight.
    for job, pids in repeated.items():
        assert pids[0] in victim_pids, f"job {job} repeated, first by {pids}"
    assert len(repeated) <= 8, f"{len(repeated)} repeated: more than one node's concurrency"
    survivors = {str(p) for srv in nodes[:2] for p in srv.all_pids()}
    assert any(s[3] in survivors for s in sinks(calls)), "the others delivered"


def timer_fires(calls: Path) -> list[float]:
    return [float(s[4]) for s in sinks(calls) if s[6] == "tick"]


def test_a_timer_fires_once_per_period_across_nodes(launcher: Launcher, pg: PgServer) -> None:
    url = pg.create_db(f"timer{next(NAMES)}")
    calls = launcher.tmp / "cluster.calls.log"
    nodes = [start_node(launcher, url, f"t{i}", calls) for i in range(3)]
    r = requests.get(
        f"{nodes[0].url}/app/every",
        params={"name": "tick", "seconds": "1", "path": "/app/sink", "body": "tick"},
        timeout=WAIT,
    )
    assert r.status_code == 200, r.text
    start = time.time()
    # Kill a node just after a firing (not while it delivers one), then start it again.
    assert wait_for(lambda: len(timer_fires(calls)) >= 2), nodes[0].log()
    time.sleep(0.2)
    nodes[2].kill_all()
    assert wait_for(lambda: len(timer_fires(calls)) >= 4), nodes[0].log()
    nodes[2] = start_node(launcher, url, "t2", calls)
    end = start + 8.5
    time.sleep(max(0.0, end - time.time()))
    fired = [t for t in timer_fires(calls) if start <= t <= end]
    assert 7 <= len(fired) <= 9, f"{len(fired)} firings in 8.5 s: {fired}"
    gaps = [b - a for a, b in itertools.pairwise(fired)]
    assert min(gaps) > 0.5, f"two firings of one period: {gaps}"


def test_an_unreachable_database_refuses_enqueues_then_recovers(
    launcher: Launcher, tmp_path: Path
) -> None:
    own = PgServer()  # this test stops its own server
    try:
        url = own.create_db("outage")
        calls = launcher.tmp / "cluster.calls.log"
        admin = f"http://127.0.0.1:{free_port()}"
        extra = f'\n[admin]\nbind = "{admin.removeprefix("http://")}"\n'
        srv = start_node(launcher, url, "o1", calls, extra)
        waiting = enqueue(srv, 3, delay=2)
        status = requests.get(admin + "/status", timeout=WAIT).json()
        assert status["store"] == {"backend": "postgres", "up": True}, status["store"]
        assert status["jobs"]["pending"] == 3, status["jobs"]
        own.stop()
        # The admin status shows the store as down, and still answers.
        status = requests.get(admin + "/status", timeout=15).json()
        assert status["store"]["up"] is False and status["store"]["error"], status["store"]
        assert status["jobs"] is None
        r = requests.get(f"{srv.url}/app/pid", timeout=WAIT)
        assert r.status_code == 200, "requests are still served"
        r = requests.get(f"{srv.url}/app/enqueue", params={"n": "1"}, timeout=15)
        assert r.status_code == 503, r.text
        assert r.text.startswith("ServiceError"), r.text
        own.start()
        # Delivery resumes by itself: the jobs queued before the outage arrive ...
        got = lambda: {int(s[1]) for s in sinks(calls)}  # noqa: E731
        assert wait_for(lambda: got() >= set(waiting)), srv.log()
        # ... and enqueues work again.
        again = enqueue(srv, 1)
        assert wait_for(lambda: got() >= set(again)), srv.log()
        counts = Counter(s[1] for s in sinks(calls))
        assert max(counts.values()) == 1, counts
        assert re.search(r"jobs: .*(refused|closed|connect|error)", srv.stderr(), re.I), srv.log()
    finally:
        own.remove()


ONLY_A = '\n[[route]]\nprefix = "/only-a"\npython = "jobs_app:app"\n'


def jobs_list(cwd: Path, url: str) -> str:
    done = subprocess.run(
        [wsrun_bin(), "jobs", "list", "--jobs-backend", url],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_job_goes_only_to_a_node_serving_its_route_and_waits_for_one(
    launcher: Launcher, pg: PgServer
) -> None:
    url = pg.create_db(f"routes{next(NAMES)}")
    calls = launcher.tmp / "routes.calls.log"
    node_a = start_node(launcher, url, "ra", calls, ONLY_A)
    node_b = start_node(launcher, url, "rb", calls)  # serves /app only
    a_pids = {str(p) for p in node_a.all_pids()}
    ids = enqueue(node_a, 200, path="/only-a/sink")
    got = lambda: {int(s[1]) for s in sinks(calls)}  # noqa: E731
    assert wait_for(lambda: got() >= set(ids)), node_a.log()
    # Node b polled all along, yet delivered none: it does not serve /only-a.
    assert {s[3] for s in sinks(calls)} <= a_pids, "only node a delivered"
    assert "0 dead" in jobs_list(launcher.tmp, url)
    # With node a gone, its jobs wait (not dead-lettered), and the listing says why.
    waiting = enqueue(node_a, 3, path="/only-a/sink", delay=1)
    node_a.kill_all()
    reason = "waiting: 3 job(s) for /only-a/sink: no live node serves that path"
    assert wait_for(lambda: reason in jobs_list(launcher.tmp, url), timeout=20), jobs_list(
        launcher.tmp, url
    )
    assert "jobs: 3 pending, 0 dead" in jobs_list(launcher.tmp, url)
    assert not got() & set(waiting), "node b delivered none of them"
    # A node that serves the route comes back: it delivers them.
    start_node(launcher, url, "ra", calls, ONLY_A)
    assert wait_for(lambda: got() >= set(waiting)), node_b.log()
    assert "waiting:" not in jobs_list(launcher.tmp, url)


def test_concurrent_enqueues_share_commits_and_a_refused_row_fails_alone(
    launcher: Launcher, pg: PgServer
) -> None:
    """Many clients enqueue through two nodes at once (group commit: a burst of enqueues is
    one insert and one commit); the database refuses one job in 25 (a CHECK constraint):
    exactly those callers get ServiceError, every other job is stored under the id its
    caller got and delivered to /sink with its caller's own body."""
    db = f"group{next(NAMES)}"
    url = pg.create_db(db)
    calls = launcher.tmp / "group.calls.log"
    nodes = []
    for i in range(2):
        cfg = launcher.tmp / f"g{i}.toml"
        cfg.write_text(config(url, f"g{i}"))
        args = ["-c", str(cfg), "--pythonpath", str(APPS), "--threads", "8"]
        env = {"WSRUN_TEST_CALL_LOG": str(calls)}
        nodes.append(launcher.start(args, cwd=launcher.tmp, env=env))
    pg.psql(
        "ALTER TABLE wsrun_jobs ADD CONSTRAINT no_poison CHECK (body <> 'poison'::bytea)", db=db
    )

    def one(i: int) -> tuple[str, requests.Response]:
        body = "poison" if i % 25 == 7 else f"b{i}"
        params = {"n": "1", "path": "/app/sink", "body": body}
        srv = nodes[i % 2]
        return body, requests.get(f"{srv.url}/app/enqueue", params=params, timeout=WAIT)

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(one, range(400)))
    sent: dict[int, str] = {}
    for body, r in answers:
        if body == "poison":
            assert r.status_code == 503 and "ServiceError" in r.text, r.text
            assert "no_poison" in r.text, r.text
        else:
            assert r.status_code == 200, r.text
            sent[int(r.text)] = body
    assert len(sent) == 400 - 16, "every clean job got its own id"
    assert wait_for(lambda: {int(s[1]) for s in sinks(calls)} >= set(sent), timeout=60), (
        f"delivered {len({s[1] for s in sinks(calls)})} of {len(sent)}"
    )
    for s in sinks(calls):
        assert sent.get(int(s[1])) == s[6], f"job {s[1]} carried {s[6]}, not its caller's body"
