"""Fapws3 timers and deferred calls under `wsrun script.py`, over real sockets: `add_timer`
(repeating, stopped by a callback returning False) and `stop_timer`; `defer` (after the
response, `combined` dropping a queued duplicate) and `defer_queue_size`. Each callback leaves
a trace in a file the test reads."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import requests

from support.launcher import Launcher, Server
from support.paths import WAIT, wait_for

TIMER_SCRIPT = """
import os
import time

import fapws._evwsgi as evwsgi
from fapws import base

HERE = os.path.dirname(os.path.abspath(__file__))


def note(name, text):
    with open(os.path.join(HERE, name), "a") as f:
        f.write(text + "\\n")


def tick():
    note("ticks.txt", repr(time.time()))


limited_calls = 0


def limited():
    global limited_calls
    limited_calls += 1
    note("limited.txt", str(limited_calls))
    return limited_calls < 3  # False on the third call stops the timer


def mark(name):
    note(name, "ran")


def slow_write(name):
    # Waits for the test's gate (at most a minute): a response that waited for this call
    # would not come before the test opens the gate.
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(HERE, "gate-open")) and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(0.5)
    note(name, repr(time.time()))


def once():
    note("later.txt", "timer")
    return False


def note_deferred(name):
    note(name, "deferred")


def later(environ, start_response):
    # A later event the timer tests wait for: a one-shot timer of seven 0.1 s periods and a
    # deferred call queued behind everything deferred before.
    evwsgi.add_timer(0.7, once)
    evwsgi.defer(note_deferred, "later.txt", False)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["later"]


def slow(environ, start_response):
    evwsgi.defer(slow_write, "deferred.txt", False)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(time.time())]


def combined(environ, start_response):
    evwsgi.defer(mark, "combined.txt", True)
    evwsgi.defer(mark, "combined.txt", True)
    evwsgi.defer(mark, "separate.txt", False)
    evwsgi.defer(mark, "separate.txt", False)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["queued"]


def queue(environ, start_response):
    before = evwsgi.defer_queue_size()
    for _ in range(3):
        evwsgi.defer(time.sleep, 0.05, False)
    after = evwsgi.defer_queue_size()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["%d %d" % (before, after)]


def stop(environ, start_response):
    evwsgi.stop_timer(0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(time.time())]


evwsgi.start("0.0.0.0", "8080")
evwsgi.set_base_module(base)
first = evwsgi.add_timer(0.2, tick)
second = evwsgi.add_timer(0.1, limited)
note("timer_ids.txt", "%d %d" % (first, second))
evwsgi.wsgi_cb(("/slow", slow))
evwsgi.wsgi_cb(("/combined", combined))
evwsgi.wsgi_cb(("/queue", queue))
evwsgi.wsgi_cb(("/stop", stop))
evwsgi.wsgi_cb(("/later", later))
evwsgi.run()
"""


def get(srv: Server, path: str) -> requests.Response:
    return requests.get(srv.url + path, timeout=WAIT)


@pytest.fixture
def timer_srv(launcher: Launcher, tmp_path: Path) -> Server:
    script = tmp_path / "timers.py"
    script.write_text(TIMER_SCRIPT)
    srv = launcher.start([str(script), "--workers", "1"])
    srv.tmp = tmp_path
    return srv


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_add_timer_repeats(timer_srv: Server) -> None:
    ticks = timer_srv.tmp / "ticks.txt"
    assert (timer_srv.tmp / "timer_ids.txt").read_text().split() == ["1", "2"]
    assert wait_for(lambda: len(_lines(ticks)) >= 6), timer_srv.log()
    stamps = [float(x) for x in _lines(ticks)][:6]
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    # Every 0.2 s: never two firings in one period (how regular: bench/timings.py).
    assert gaps[0] >= 0.1, gaps


def _later(srv: Server, kind: str) -> None:
    """Asks the script for its later events and waits for the one of `kind` ("timer": 0.7 s
    of timer periods have passed; "deferred": everything deferred before has run)."""
    assert get(srv, "/later").text == "later"
    assert wait_for(lambda: kind in _lines(srv.tmp / "later.txt")), srv.log()


def test_timer_returning_false_stops(timer_srv: Server) -> None:
    limited = timer_srv.tmp / "limited.txt"
    assert wait_for(lambda: len(_lines(limited)) >= 3), timer_srv.log()
    _later(timer_srv, "timer")  # seven more periods of 0.1 s
    assert _lines(limited) == ["1", "2", "3"]


def test_stop_timer(timer_srv: Server) -> None:
    ticks = timer_srv.tmp / "ticks.txt"
    assert wait_for(lambda: len(_lines(ticks)) >= 2), timer_srv.log()
    stopped_at = float(get(timer_srv, "/stop").text)
    _later(timer_srv, "timer")  # more than three periods of 0.2 s
    after = [float(x) for x in _lines(ticks) if float(x) > stopped_at + 0.05]
    assert after == []


def test_defer_runs_after_the_response(timer_srv: Server) -> None:
    done = timer_srv.tmp / "deferred.txt"
    r = get(timer_srv, "/slow")  # the deferred call waits for the gate: the response must not
    assert r.status_code == 200
    assert not done.exists()
    (timer_srv.tmp / "gate-open").touch()
    assert wait_for(done.exists), timer_srv.log()
    ran_at = float(_lines(done)[0])
    assert ran_at >= float(r.text) + 0.45  # slept 0.5 s after the handler returned


def test_defer_combined_drops_a_queued_duplicate(timer_srv: Server) -> None:
    assert get(timer_srv, "/combined").text == "queued"
    separate = timer_srv.tmp / "separate.txt"
    assert wait_for(lambda: len(_lines(separate)) == 2), timer_srv.log()
    _later(timer_srv, "deferred")  # queued after them: a late duplicate would have run by now
    assert len(_lines(timer_srv.tmp / "combined.txt")) == 1
    assert len(_lines(separate)) == 2


def test_defer_queue_size(timer_srv: Server) -> None:
    before, after = (int(x) for x in get(timer_srv, "/queue").text.split())
    assert after - before == 3
