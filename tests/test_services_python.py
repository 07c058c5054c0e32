"""Shared services from Python: in-process timers and defers, durable jobs and timers.

Every test drives the real binary over real sockets with `tests/apps/jobs_app.py` mounted at
/app (no route at `/`, so unknown paths are really unrouted). The app appends one line per
event to the call log; the journal is the real SQLite file in the test's state directory.
Tests assert the order of events, never how long they took (timings: `bench/timings.py`); an
absence is asserted only after a later event that must come after it has been seen.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import requests

from support.config_files import JOBS_APP_CONFIG
from support.launcher import Launcher, Server, run_wsrun
from support.paths import APPS, WAIT, wait_for

CONFIG = JOBS_APP_CONFIG


def start(launcher: Launcher, *extra: str, config: str = CONFIG) -> Server:
    """The jobs app from `config` (written to the launcher's wsrun.toml)."""
    cfg = launcher.tmp / "wsrun.toml"
    cfg.write_text(config)
    return launcher.start(["-c", str(cfg), "--pythonpath", str(APPS), *extra], cwd=launcher.tmp)


def get(srv: Server, path: str) -> requests.Response:
    return requests.get(srv.url + path, timeout=WAIT)


def lines(srv: Server, kind: str) -> list[list[str]]:
    return [line.split() for line in srv.calls() if line.startswith(kind + " ")]


def journal(srv: Server) -> sqlite3.Connection:
    return sqlite3.connect(srv.tmp / "state" / "jobs.sqlite3")


def sink_marker(srv: Server, body: str, delay: float = 0.0) -> None:
    """Queues a durable job to /app/sink carrying `body` and waits for its delivery: the later
    event after which an absence may be asserted."""
    assert get(srv, f"/app/enqueue?path=/app/sink&body={body}&delay={delay}").status_code == 200
    assert wait_for(lambda: any(x[-1] == body for x in lines(srv, "sink"))), srv.log()[-2000:]


# ------------------------------------------------------------------ in-process (Fapws3 style)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_deferred_call_runs_after_the_response(
    launcher: Launcher, tmp_path: Path, threads: str
) -> None:
    srv = start(launcher, "--threads", threads)
    gate = tmp_path / "deferred-may-finish"
    # The deferred call blocks the worker's loop until `gate` exists, and only the test creates
    # it once the response is complete: a response that waited for the call never comes.
    r = get(srv, f"/app/defer?gate={gate}")
    assert r.status_code == 200
    stamp, queued = r.text.split()
    assert int(queued) == 1, "the deferred call is pending while the app runs"
    assert lines(srv, "deferred") == [], "the deferred call ended before the response"
    gate.touch()
    assert wait_for(lambda: lines(srv, "deferred")), srv.log()[-2000:]
    [[_, label, ran_at, left]] = lines(srv, "deferred")
    assert label == "one"
    assert float(ran_at) >= float(stamp)
    assert int(left) == 0


def _timer_lines(srv: Server, label: str) -> list[list[str]]:
    return [x for x in lines(srv, "timer") if x[-1] == label]


def test_in_process_timer_repeats_until_cancelled(launcher: Launcher) -> None:
    srv = start(launcher)
    t0 = float(get(srv, "/app/timer?seconds=0.2&label=rep").text)
    assert wait_for(lambda: len(_timer_lines(srv, "rep")) >= 4), srv.calls()
    fired = [float(x[2]) for x in _timer_lines(srv, "rep")]
    # Each firing comes after the one before, none before its period (the spacing of the
    # firings is measured by bench/timings.py).
    for k, at in enumerate(fired, start=1):
        assert at >= t0 + 0.2 * k - 0.01, (k, at - t0)
    assert get(srv, "/app/untimer").text == "True"
    settled = len(_timer_lines(srv, "rep"))
    # A one-shot timer of three periods fires after the cancelled one would have fired twice.
    get(srv, "/app/timer?seconds=0.6&repeat=0&label=later")
    assert wait_for(lambda: _timer_lines(srv, "later") != []), srv.calls()
    assert len(_timer_lines(srv, "rep")) <= settled + 1, "a cancelled timer must stop"
    assert get(srv, "/app/pid").status_code == 200


def test_one_shot_timer_fires_once(launcher: Launcher) -> None:
    srv = start(launcher)
    get(srv, "/app/timer?seconds=0.1&repeat=0&label=once")
    # Five of its periods later, another one-shot timer fires: by then it fired once only.
    get(srv, "/app/timer?seconds=0.5&repeat=0&label=later")
    assert wait_for(lambda: _timer_lines(srv, "later") != []), srv.calls()
    assert len(_timer_lines(srv, "once")) == 1, srv.calls()


# ------------------------------------------------------------------ durable jobs


def test_enqueued_job_is_delivered_with_its_headers(launcher: Launcher) -> None:
    srv = start(launcher)
    r = get(srv, "/app/enqueue?path=/app/sink&body=hello&method=PUT")
    assert r.status_code == 200, r.text
    job_id = r.text
    assert wait_for(lambda: lines(srv, "sink")), srv.log()
    [[_, got_id, attempt, _pid, _at, method, body]] = lines(srv, "sink")
    assert (got_id, attempt, method, body) == (job_id, "1", "PUT", "hello")
    # delivered jobs leave the journal
    assert wait_for(lambda: journal(srv).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0)


def test_delay_is_respected(launcher: Launcher) -> None:
    srv = start(launcher)
    queued_at = time.time()
    get(srv, "/app/enqueue?path=/app/sink&delay=0.6&body=delayed")
    get(srv, "/app/enqueue?path=/app/sink&body=undelayed")
    assert wait_for(lambda: len(lines(srv, "sink")) == 2), srv.calls()
    # The job queued later without a delay is delivered first; the delayed one not before its
    # delay (how soon after it: bench/timings.py).
    assert [x[-1] for x in lines(srv, "sink")] == ["undelayed", "delayed"], srv.calls()
    [*_, at, _method, _body] = lines(srv, "sink")[1]
    assert float(at) - queued_at >= 0.6, float(at) - queued_at


def test_clients_cannot_forge_job_headers(launcher: Launcher) -> None:
    srv = start(launcher)
    r = requests.post(
        srv.url + "/app/sink",
        data=b"x",
        headers={"wsrun-job-id": "42", "wsrun-job-attempt": "1"},
        timeout=WAIT,
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
    sink_marker(srv, "later")
    assert [x[-1] for x in lines(srv, "sink")] == ["later"], "nothing refused may be delivered"


def test_failing_job_ends_in_dead_letter_after_max_attempts(launcher: Launcher) -> None:
    srv = start(launcher)
    job_id = get(srv, "/app/enqueue?path=/app/fail&max_attempts=3").text
    # default backoff 1 s, doubled, with jitter in the upper half: attempts at ~0, 0.5-1, 1.5-3 s
    assert wait_for(lambda: len(lines(srv, "fail")) == 3), srv.calls()
    attempts = [x[2] for x in lines(srv, "fail")]
    assert attempts == ["1", "2", "3"]
    assert {x[1] for x in lines(srv, "fail")} == {job_id}
    # No retry before its backoff (the upper half of 1 s, then of 2 s); how late: bench.
    gaps = [float(b[3]) - float(a[3]) for a, b in pairwise(lines(srv, "fail"))]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95, gaps

    def buried() -> bool:
        row = (
            journal(srv)
            .execute("SELECT attempts, last_error FROM dead_jobs WHERE id = ?", (int(job_id),))
            .fetchone()
        )
        return row is not None

    assert wait_for(buried)
    db = journal(srv)
    attempts_made, error = db.execute(
        "SELECT attempts, last_error FROM dead_jobs WHERE id = ?", (int(job_id),)
    ).fetchone()
    assert attempts_made == 3 and error == "status 500"
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    sink_marker(srv, "later", delay=1.0)
    assert len(lines(srv, "fail")) == 3, "no attempt after the last one"


def test_a_thousand_jobs_survive_kill_9(launcher: Launcher) -> None:
    srv = start(launcher)
    # Each delivery takes 4 ms, so 1000 take about 4 s: kill the server in the middle.
    ids = get(srv, "/app/enqueue?path=/app/slow%3Fms%3D4&n=1000&delay=1").text.split()
    assert len(set(ids)) == 1000
    assert wait_for(lambda: len(lines(srv, "sink")) >= 100)
    srv.kill_all()
    srv.wait_exit()
    before = len(lines(srv, "sink"))
    again = start(launcher)
    # each run has its own call log: count deliveries over both

    def delivered() -> Counter[str]:
        return Counter(x[1] for x in lines(srv, "sink") + lines(again, "sink"))

    assert wait_for(lambda: set(delivered()) >= set(ids)), (
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
    assert len(srv.worker_pids()) == 2, srv.worker_pids()
    ids = get(srv, "/app/enqueue?path=/app/slow&n=300&delay=0.5").text.split()

    def delivered() -> set[str]:
        return {x[1] for x in lines(srv, "sink")}

    assert wait_for(lambda: len(delivered()) >= 30)
    busy = Counter(x[3] for x in lines(srv, "sink")).most_common(1)[0][0]
    os.kill(int(busy), signal.SIGKILL)  # it holds leases on jobs it has not delivered
    # The lease is 300 s; only the dead-owner sweep (about a second) can free them in time.
    assert wait_for(lambda: delivered() >= set(ids)), (
        f"{len(delivered() & set(ids))} of 300 delivered\n{srv.log()[-2000:]}"
    )


def test_durable_timer_fires_once_per_second_with_two_workers(launcher: Launcher) -> None:
    srv = start(launcher, "--workers", "2")
    workers = set(srv.ready_pids())
    assert len(workers) == 2, workers
    assert get(srv, "/app/every?name=tick&seconds=1&path=/app/sink&body=tick").text == "set"

    def ticks() -> list[list[str]]:
        return [x for x in lines(srv, "sink") if x[-1] == "tick"]

    assert wait_for(lambda: len(ticks()) >= 5), srv.calls()
    # Once per period in total, not once per worker: consecutive firings are a period apart
    # (less a little jitter), never two in one period (the spacing's spread: bench/timings.py).
    times = [float(x[4]) for x in ticks()]
    gaps = [b - a for a, b in pairwise(times)]
    assert all(g >= 0.75 for g in gaps), gaps
    assert {int(x[3]) for x in ticks()} <= workers, (ticks(), workers)
    assert get(srv, "/app/cancel?name=tick").text == "True"
    settled = len(ticks())
    sink_marker(srv, "later", delay=1.5)
    assert len(ticks()) <= settled + 1
    assert get(srv, "/app/cancel?name=tick").text == "False"


def test_durable_timer_survives_a_restart(launcher: Launcher) -> None:
    srv = start(launcher)
    get(srv, "/app/every?name=beat&seconds=0.5&path=/app/sink&body=beat")
    assert wait_for(lambda: lines(srv, "sink"))
    assert srv.stop() == 0
    again = start(launcher)  # nothing registers the timer again
    assert wait_for(lambda: len(lines(again, "sink")) >= 2), again.log()
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
    checked = run_wsrun(
        ["check", "-c", str(cfg), "--pythonpath", str(launcher.tmp)], cwd=launcher.tmp
    )
    assert checked.code == 0, checked.out
    assert not (launcher.tmp / "state").exists(), "wsrun check must not write the journal"
    srv = launcher.start(["-c", str(cfg), "--pythonpath", str(launcher.tmp)], cwd=launcher.tmp)
    assert get(srv, "/boot").text == "ok"
    names = journal(srv).execute("SELECT name, path FROM timers").fetchall()
    assert names == [("boot", "/boot/tick")]


def test_unrouted_call_at_import_time_stops_the_start(launcher: Launcher) -> None:
    cfg = import_time_setup(launcher.tmp, "/nowhere")
    run = run_wsrun(
        ["-c", str(cfg), "--pythonpath", str(launcher.tmp), "--bind", "127.0.0.1:0"],
        cwd=launcher.tmp,
    )
    assert run.code == 1, run.out
    assert 'jobs or timers queued while importing the apps: no route serves "/nowhere"' in (
        run.out
    ), run.out


# ------------------------------------------------------------------ README promises


def test_jobs_concurrency_caps_deliveries(launcher: Launcher, tmp_path: Path) -> None:
    """README: each worker delivers at most `[jobs] concurrency` jobs at a time. Eight Python
    threads could take six at once; the jobs hold until a gate opens, so every delivery the
    dispatcher starts piles up in the app, and the app counts them."""
    srv = start(launcher, "--threads", "8", config=CONFIG + "\n[jobs]\nconcurrency = 2\n")
    gate = tmp_path / "gate-open"
    ids = get(srv, f"/app/enqueue?path=/app/hold%3Fgate%3D{gate}&n=6").text.split()
    assert len(ids) == 6
    assert wait_for(lambda: len(lines(srv, "enter")) >= 2), srv.log()[-2000:]
    gate.touch()
    assert wait_for(lambda: len(lines(srv, "leave")) == 6), srv.calls()
    in_app = [int(x[2]) for x in lines(srv, "enter")]
    assert max(in_app) == 2, f"deliveries in the app at once: {in_app}"
    assert sorted(x[1] for x in lines(srv, "enter")) == sorted(ids)


TIMER_CONFIG = (
    CONFIG
    + """
[[timer]]
name = "from-file"
every = "{every}"
path = "/app/sink"
body = "from-file"
"""
)


def test_timer_from_the_file_fires(launcher: Launcher) -> None:
    srv = start(launcher, config=TIMER_CONFIG.format(every="500ms"))
    assert wait_for(lambda: len(lines(srv, "sink")) >= 2), srv.log()[-2000:]
    fired = lines(srv, "sink")
    assert {x[-1] for x in fired} == {"from-file"}, fired
    assert {x[5] for x in fired} == {"POST"}, fired
    assert journal(srv).execute("SELECT name FROM timers").fetchall() == [("from-file",)]


def test_missed_timer_periods_fire_once(launcher: Launcher) -> None:
    """README: periods missed while the server was down fire once, then the timer keeps its
    rhythm. Down for six periods: at restart, one catch-up firing, not six."""
    srv = start(launcher, config=TIMER_CONFIG.format(every="1s"))
    assert wait_for(lambda: lines(srv, "sink") != []), srv.log()[-2000:]
    assert srv.stop() == 0
    time.sleep(6.0)  # the server is down: six periods pass (the state the test needs)
    again = start(launcher, config=TIMER_CONFIG.format(every="1s"))
    assert wait_for(lambda: len(lines(again, "sink")) >= 3), again.log()[-2000:]
    times = [float(x[4]) for x in lines(again, "sink")]
    # One catch-up firing, then the rhythm: after the first, no two firings in one period
    # (missed periods fired one by one would come a poll, not a period, apart).
    gaps = [b - a for a, b in pairwise(times)]
    assert all(g >= 0.75 for g in gaps[1:]), gaps
