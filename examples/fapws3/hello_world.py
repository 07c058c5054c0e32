"""The Fapws3 hello-world sample, in Python 3: `wsrun examples/fapws3/hello_world.py`.

It registers its handlers with `fapws._evwsgi` exactly as a Fapws3 program does;
wsrun serves them on 0.0.0.0:8080 (from `evwsgi.start`) unless `--bind` says
otherwise. URLs: /hello, /iterhello, /long, /staticform, /testpost, /ticks,
/defer and /deferred (see README.md next to this file).
"""

import os
import time
from collections.abc import Iterator
from typing import IO

import fapws._evwsgi as evwsgi
from fapws import base
from fapws.base import Environ, Start_response
from fapws.contrib import views

HERE = os.path.dirname(os.path.abspath(__file__))

ticks = 0
deferred_runs: list[float] = []


def start() -> None:
    evwsgi.start("0.0.0.0", "8080")
    evwsgi.set_base_module(base)

    def hello(environ: Environ, start_response: Start_response) -> list[str]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return ["hello world!!"]

    def iteration(environ: Environ, start_response: Start_response) -> Iterator[str]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return iter(["hello", " ", "worlds!!"])

    def staticlong(environ: Environ, start_response: Start_response) -> IO[bytes] | list[str]:
        try:
            # The server sends the file and closes it.
            found: IO[bytes] | list[str] = open(os.path.join(HERE, "long.txt"), "rb")  # noqa: SIM115
        except OSError:
            found = ["Page not found"]
        start_response("200 OK", [("Content-Type", "text/html")])
        return found

    def testpost(environ: Environ, start_response: Start_response) -> list[str]:
        # No start_response call: Fapws3 then answers 200 OK.
        return [f"OK. params are:{environ['fapws.params']}"]

    def tick() -> None:
        global ticks
        ticks += 1

    def show_ticks(environ: Environ, start_response: Start_response) -> list[str]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{ticks} ticks in process {os.getpid()}"]

    def remember(when: float) -> None:
        deferred_runs.append(when)

    def defer_one(environ: Environ, start_response: Start_response) -> list[str]:
        evwsgi.defer(remember, time.time(), False)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"deferred; queue size {evwsgi.defer_queue_size()}"]

    def show_deferred(environ: Environ, start_response: Start_response) -> list[str]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{len(deferred_runs)} deferred calls ran"]

    evwsgi.wsgi_cb(("/hello", hello))
    evwsgi.wsgi_cb(("/iterhello", iteration))
    evwsgi.wsgi_cb(("/long", staticlong))
    evwsgi.wsgi_cb(("/staticform", views.Staticfile(os.path.join(HERE, "test.html"))))
    evwsgi.wsgi_cb(("/testpost", testpost))
    evwsgi.wsgi_cb(("/ticks", show_ticks))
    evwsgi.wsgi_cb(("/defer", defer_one))
    evwsgi.wsgi_cb(("/deferred", show_deferred))
    evwsgi.add_timer(0.5, tick)

    evwsgi.set_debug(0)
    evwsgi.run()


if __name__ == "__main__":
    start()
