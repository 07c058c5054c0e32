"""Shared services from Python: in-process timers and defers, durable jobs and timers.

Every test drives the real binary over real sockets with `tests/apps/jobs_app.py` mounted at
/app (no route at `/`, so unknown paths are really unrouted). The app appends one line per
event to the call log; the journal is the real SQLite file in the test's state directory.
Timing tolerances are stated where they are asserted.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import requests

from conftest import APPS, Launcher, Server, wait_for, wsrun_bin

CONFIG = """
[server]
state_dir = "state"

[[route]]
prefix = "/app"
python = "jobs_app:app"
"""


def start(launcher: Launcher, *extra: str, config: str = CONFIG) -> Server:
    cfg = launcher.tmp / "wsrun.toml"
    cfg.write_text(config)
    return launcher.start(["-c", str(cfg), "--pythonpath", str(APPS), *extra], cwd=launcher.tmp)


def get(srv: Server, path: str) -> requests.Response:
    return requests.get(srv.url + path, timeout=10)


def lines(srv: Server, kind: str) -> list[list[str]]:
    return [line.split() for line in srv.calls() if line.startswith(kind + " ")]


def journal(srv: Server) -> sqlite3.Connection:
    return sqlite3.connect(srv.tmp / "state" / "jobs.sqlite3")


# ------------------------------------------------------------------ in-process (Fapws3 style)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_deferred_call_runs_after_the_response(launcher: Launcher, threads: str) -> None:
    srv = start(launcher, "--threads", threads)
    started = time.time()
    r = get(srv, "/app/defer")
    answered = time.time()
    assert r.status_code == 200
    stamp, queued = r.text.split()
    assert int(queued) == 1, "the deferred call is pending while the app runs"
    # The deferred call sleeps 0.3 s on the worker's loop: the response must not wait for it.
    assert answered - started < 0.25, f"the response waited {answered - started:.3f}s"
    assert wait_for(lambda: lines(srv, "deferred"), 5)
    [[_, label, ran_at, left]] = lines(srv, "deferred")
    assert label == "one"
    assert float(ran_at) >= float(stamp) + 0.3
    assert int(left) == 0


def test_in_process_timer_repeats_until_cancelled(launcher: Launcher) -> None:
    srv = start(launcher)
    t0 = float(get(srv, "/app/timer?seconds=0.2").text)
    time.sleep(1.1)
    fired = [float(x[2]) for x in lines(srv, "timer")]
    # Tolerance: each firing within 100 ms of its slot (t0 + k * 0.2 s).
    assert 4 <= len(fired) <= 6, fired
    for k, at in enumerate(fired, start=1):
        assert abs(at - (t0 + 0.2 * k)) < 0.1 * k + 0.1, (k, at - t0)
    assert get(srv, "/app/untimer").text == "True"
    settled = len(lines(srv, "timer"))
    time.sleep(0.6)
    assert len(lines(srv, "timer")) <= settled + 1, "a cancelled timer must stop"
    assert get(srv, "/app/pid").status_code == 200


def test_one_shot_timer_fires_once(launcher: Launcher) -> None:
    srv = start(launcher)
    get(srv, "/app/timer?seconds=0.1&repeat=0")
    time.sleep(0.8)
    assert len(lines(srv, "timer")) == 1


# ------------------------------------------------------------------ durable jobs


def test_enqueued_job_is_delivered_with_its_headers(launcher: Launcher) -> None:
    srv = start(launcher)
    r = get(srv, "/app/enqueue?path=/app/sink&body=hello&method=PUT")
    assert r.status_code == 200, r.text
    job_id = r.text
    assert wait_for(lambda: lines(srv, "sink"), 5), srv.log()
    [[_, got_id, attempt, _pid, _at, method, body]] = lines(srv, "sink")
    assert (got_id, attempt, method, body) == (job_id, "1", "PUT", "hello")
    # delivered jobs leave the journal
    assert wait_for(lambda: journal(srv).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0, 5)


def test_delay_is_respected(launcher: Launcher) -> None:
    srv = start(launcher)
    queued_at = time.time()
    get(srv, "/app/enqueue?path=/app/sink&delay=0.6")
    assert wait_for(lambda: lines(srv, "sink"), 5)
    [[*_, at, _method, _body]] = lines(srv, "sink")
    # Tolerance: not before the delay, and within 400 ms after it (poll interval 100 ms).
    assert 0.6 <= float(at) - queued_at < 1.0, float(at) - queued_at


def test_clients_cannot_forge_job_headers(launcher: Launcher) -> None:
    srv = start(launcher)
    r = requests.post(
        srv.url + "/app/sink",
        data=b"x",
        headers={"wsrun-job-id": "42", "wsrun-job-attempt": "1"},
        timeout=5,
    )
    assert r.status_code == 200
    [[_, job_id, attempt, *_]] = lines(srv, "sink")
    assert (job_id, attempt) == ("-", "-")


def test_unknown_route_and_bad_arguments_raise(launcher: Launcher) -> None:
    srv = start(launcher)
    r = get(srv, "/app/enqueue?path=/nowhere")
    assert r.status_code == 404
    assert r.text == 'UnknownRouteError: no route serves "/nowhere"'
    r = get(srv, "/app/enqueue?path=/app/sink&method=GE%20T")
    assert r.status_code == 400 and "is not an HTTP method" in r.text, r.text
    r = get(srv, "/app/enqueue?path=/app/sink&h-wsrun-job-id=1")
    assert r.status_code == 400 and "set by the server" in r.text, r.text
    r = get(srv, "/app/enqueue?path=/app/sink&delay=-1")
    assert r.status_code == 400 and "delay" in r.text, r.text
    r = get(srv, "/app/every?name=t&seconds=0&path=/app/sink")
    assert r.status_code == 400 and "above 0" in r.text, r.text
    time.sleep(0.3)
    assert lines(srv, "sink") == [], "nothing refused may be delivered"


def test_failing_job_ends_in_dead_letter_after_max_attempts(launcher: Launcher) -> None:
    srv = start(launcher)
    job_id = get(srv, "/app/enqueue?path=/app/fail&max_attempts=3").text
    # default backoff 1 s, doubled, with jitter in the upper half: attempts at ~0, 0.5-1, 1.5-3 s
    assert wait_for(lambda: len(lines(srv, "fail")) == 3, 10), srv.calls()
    attempts = [x[2] for x in lines(srv, "fail")]
    assert attempts == ["1", "2", "3"]
    assert {x[1] for x in lines(srv, "fail")} == {job_id}
    gaps = [float(b[3]) - float(a[3]) for a, b in pairwise(lines(srv, "fail"))]
    assert 0.45 <= gaps[0] <= 1.3 and 0.95 <= gaps[1] <= 2.3, gaps

    def buried() -> bool:
        row = (
            journal(srv)
            .execute("SELECT attempts, last_error FROM dead_jobs WHERE id = ?", (int(job_id),))
            .fetchone()
        )
        return row is not None

    assert wait_for(buried, 5)
    db = journal(srv)
    attempts_made, error = db.execute(
        "SELECT attempts, last_error FROM dead_jobs WHERE id = ?", (int(job_id),)
    ).fetchone()
    assert attempts_made == 3 and error == "status 500"
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    time.sleep(1.0)
    assert len(lines(srv, "fail")) == 3, "no attempt after the last one"


def test_a_thousand_jobs_survive_kill_9(launcher: Launcher) -> None:
    srv = start(launcher)
    # Each delivery takes 4 ms, so 1000 take about 4 s: kill the server in the middle.
    ids = get(srv, "/app/enqueue?path=/app/slow%3Fms%3D4&n=1000&delay=1").text.split()
    assert len(set(ids)) == 1000
    assert wait_for(lambda: len(lines(srv, "sink")) >= 100, 10)
    srv.kill_all()
    assert srv.proc is not None
    srv.proc.wait(timeout=5)
    before = len(lines(srv, "sink"))
    again = start(launcher)
    # each run has its own call log: count deliveries over both

    def delivered() -> Counter[str]:
        return Counter(x[1] for x in lines(srv, "sink") + lines(again, "sink"))

    assert wait_for(lambda: set(delivered()) >= set(ids), 30), (
        f"{len(set(delivered()) & set(ids))} of 1000 delivered\n{again.log()[-2000:]}"
    )
    counts = delivered()
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    print(f"kill -9 after {before} deliveries: all 1000 delivered, {duplicates} duplicate(s)")
    assert set(counts) == set(ids)
    assert 0 < before < 1000, "the kill must come while jobs are still pending"
    assert duplicates <= 8, "at most the jobs in flight (the concurrency budget) repeat"


def test_a_killed_workers_leases_are_taken_over(launcher: Launcher) -> None:
    srv = start(launcher, "--workers", "2")
    assert wait_for(lambda: len(srv.worker_pids()) == 2, 10)
    ids = get(srv, "/app/enqueue?path=/app/slow&n=300&delay=0.5").text.split()

    def delivered() -> set[str]:
        return {x[1] for x in lines(srv, "sink")}

    assert wait_for(lambda: len(delivered()) >= 30, 10)
    busy = Counter(x[3] for x in lines(srv, "sink")).most_common(1)[0][0]
    os.kill(int(busy), signal.SIGKILL)  # it holds leases on jobs it has not delivered
    # The lease is 300 s; only the dead-owner sweep (about a second) can free them in time.
    assert wait_for(lambda: delivered() >= set(ids), 20), (
        f"{len(delivered() & set(ids))} of 300 delivered\n{srv.log()[-2000:]}"
    )


def test_durable_timer_fires_once_per_second_with_two_workers(launcher: Launcher) -> None:
    srv = start(launcher, "--workers", "2")
    assert get(srv, "/app/every?name=tick&seconds=1&path=/app/sink&body=tick").text == "set"
    time.sleep(5.5)
    ticks = [x for x in lines(srv, "sink") if x[-1] == "tick"]
    # Tolerance: 5 firings in 5.5 s (4 to 6 allowing for a slow start), each 1 s +- 0.25 s apart.
    assert 4 <= len(ticks) <= 6, ticks
    times = [float(x[4]) for x in ticks]
    gaps = [b - a for a, b in pairwise(times)]
    assert all(0.75 <= g <= 1.25 for g in gaps), gaps
    assert len({x[3] for x in ticks}) >= 1
    assert get(srv, "/app/cancel?name=tick").text == "True"
    settled = len(lines(srv, "sink"))
    time.sleep(1.5)
    assert len(lines(srv, "sink")) <= settled + 1
    assert get(srv, "/app/cancel?name=tick").text == "False"


def test_durable_timer_survives_a_restart(launcher: Launcher) -> None:
    srv = start(launcher)
    get(srv, "/app/every?name=beat&seconds=0.5&path=/app/sink&body=beat")
    assert wait_for(lambda: lines(srv, "sink"), 3)
    srv.stop()
    again = start(launcher)  # nothing registers the timer again
    assert wait_for(lambda: len(lines(again, "sink")) >= 2, 5), again.log()
    assert all(x[-1] == "beat" for x in lines(again, "sink"))


def test_no_journal_file_until_a_service_is_used(launcher: Launcher) -> None:
    srv = start(launcher)
    assert get(srv, "/app/pid").status_code == 200
    state = Path(srv.tmp / "state" / "jobs.sqlite3")
    assert not state.exists()
    get(srv, "/app/enqueue?path=/app/sink")
    assert state.exists()


IMPORT_TIME_APP = """
import wsrun

wsrun.every("boot", 60, "{path}")


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""

IMPORT_TIME_CONFIG = """
[server]
state_dir = "state"

[[route]]
prefix = "/boot"
python = "boot_app:app"
"""


def import_time_setup(tmp: Path, path: str) -> Path:
    (tmp / "boot_app.py").write_text(IMPORT_TIME_APP.format(path=path))
    cfg = tmp / "wsrun.toml"
    cfg.write_text(IMPORT_TIME_CONFIG)
    return cfg


def test_services_called_at_import_time(launcher: Launcher) -> None:
    cfg = import_time_setup(launcher.tmp, "/boot/tick")
    checked = subprocess.run(
        [wsrun_bin(), "check", "-c", str(cfg), "--pythonpath", str(launcher.tmp)],
        cwd=launcher.tmp,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert not (launcher.tmp / "state").exists(), "wsrun check must not write the journal"
    srv = launcher.start(["-c", str(cfg), "--pythonpath", str(launcher.tmp)], cwd=launcher.tmp)
    assert get(srv, "/boot").text == "ok"
    names = journal(srv).execute("SELECT name, path FROM timers").fetchall()
    assert names == [("boot", "/boot/tick")]


def test_unrouted_call_at_import_time_stops_the_start(launcher: Launcher) -> None:
    cfg = import_time_setup(launcher.tmp, "/nowhere")
    run = subprocess.run(
        [wsrun_bin(), "-c", str(cfg), "--pythonpath", str(launcher.tmp), "--bind", "127.0.0.1:0"],
        cwd=launcher.tmp,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert 'jobs or timers queued while importing the apps: no route serves "/nowhere"' in (
        run.stderr
    ), run.stderr
