"""Journal contention: four workers enqueueing and delivering thousands of jobs through one
SQLite journal never log a lock error and never deliver a job twice.

The jobs app (`tests/apps/jobs_app.py`) appends a `sink ID ATTEMPT PID ...` line per delivery
to the call log; four client threads enqueue over separate connections (so every worker
writes), while every worker's dispatcher claims and completes jobs in the same file.
"""

from __future__ import annotations

import threading
from collections import Counter

import requests

from support.config_files import JOBS_APP_CONFIG
from support.launcher import Launcher
from support.paths import APPS, WAIT, wait_for

JOBS = 5000
BATCH = 50
CLIENTS = 4
CONFIG = JOBS_APP_CONFIG


def _enqueue(url: str, batches: int, ids: list[str], errors: list[str]) -> None:
    """`batches` requests each queueing BATCH jobs to a 5 ms handler."""
    with requests.Session() as s:
        for _ in range(batches):
            r = s.get(url + f"/app/enqueue?path=/app/slow%3Fms%3D5&n={BATCH}", timeout=WAIT)
            if r.status_code == 200:
                ids.extend(r.text.split())
            else:
                errors.append(f"{r.status_code} {r.text}")


def test_four_workers_deliver_5000_jobs_exactly_once_without_lock_errors(
    launcher: Launcher,
) -> None:
    cfg = launcher.tmp / "wsrun.toml"
    cfg.write_text(CONFIG)
    args = ["-c", str(cfg), "--pythonpath", str(APPS), "--workers", "4", "--threads", "2"]
    srv = launcher.start(args, cwd=launcher.tmp)
    per_client = JOBS // BATCH // CLIENTS
    ids: list[list[str]] = [[] for _ in range(CLIENTS)]
    errors: list[str] = []
    clients = [
        threading.Thread(target=_enqueue, args=(srv.url, per_client, mine, errors)) for mine in ids
    ]
    for t in clients:
        t.start()
    for t in clients:
        t.join(4 * WAIT)
    assert errors == [], errors[:5]
    queued = [i for mine in ids for i in mine]
    assert len(queued) == len(set(queued)) == JOBS

    def sinks() -> list[list[str]]:
        return [x.split() for x in srv.calls() if x.startswith("sink ")]

    assert wait_for(lambda: len(sinks()) >= JOBS, 6 * WAIT), (
        f"{len(sinks())} of {JOBS} delivered\n{srv.log()[-2000:]}"
    )
    srv.stop()
    delivered = Counter(x[1] for x in sinks())
    duplicates = {job: n for job, n in delivered.items() if n > 1}
    retried = [x for x in sinks() if x[2] != "1"]
    workers = Counter(x[3] for x in sinks())
    log = srv.log().lower()
    print(f"{JOBS} jobs over {len(workers)} workers: {dict(workers)}")
    assert set(delivered) == set(queued)
    assert duplicates == {}, list(duplicates.items())[:5]
    assert retried == [], retried[:5]
    for lock_error in ("is locked", "database is busy", "sqlite_busy", "sqlite_locked"):
        assert lock_error not in log, srv.log()[-3000:]
    assert len(workers) == 4, workers
