"""A WSGI app that drives wsrun's services for the tests: `jobs_app:app`, mounted at /app.

Routes (under the mount):
  /enqueue?path=P&n=N&delay=S&max_attempts=K&body=B&method=M   queue N jobs, answer their ids
  /sink      a job target: appends `sink ID ATTEMPT PID TIME METHOD BODY` to the call log
  /slow?ms=M like /sink, after sleeping M ms, 20 by default (the worker's loop is blocked)
  /fail      a job target that appends `fail ID ATTEMPT TIME` and answers 500
  /every?name=N&seconds=S&path=P    a durable timer;   /cancel?name=N   remove it
  /timer?seconds=S&repeat=0|1&label=L   an in-process timer appending `timer PID TIME L`
  /untimer   cancel the last in-process timer
  /defer?gate=F   defers a call that waits for the file F (or sleeps 0.3 s without F), then
             appends `deferred one TIME SIZE`
  /hold?gate=F    a job target: appends `enter ID N` (N: deliveries in the app, this one
             included), waits for the file F (at most a minute), appends `leave ID`
  /pid       this worker's pid
The call log is $WSRUN_TEST_CALL_LOG (one line per event, appended atomically).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import wsrun

LOG = os.environ.get("WSRUN_TEST_CALL_LOG", "/dev/null")
TIMERS: list[wsrun.Timer] = []
IN_APP = [0]
IN_APP_LOCK = threading.Lock()

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def log(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def answer(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def sink(environ: Environ, start_response: StartResponse) -> list[bytes]:
    job = environ.get("HTTP_WSRUN_JOB_ID", "-")
    attempt = environ.get("HTTP_WSRUN_JOB_ATTEMPT", "-")
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size).decode() or "-"
    method = environ["REQUEST_METHOD"]
    log(f"sink {job} {attempt} {os.getpid()} {time.time():.3f} {method} {body}")
    return answer(start_response, "200 OK", "ok")


def fail(environ: Environ, start_response: StartResponse) -> list[bytes]:
    job = environ.get("HTTP_WSRUN_JOB_ID", "-")
    attempt = environ.get("HTTP_WSRUN_JOB_ATTEMPT", "-")
    log(f"fail {job} {attempt} {time.time():.3f}")
    return answer(start_response, "500 Internal Server Error", "failing on purpose")


def wait_for_file(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)


def hold(environ: Environ, q: dict[str, str], start_response: StartResponse) -> list[bytes]:
    job = environ.get("HTTP_WSRUN_JOB_ID", "-")
    with IN_APP_LOCK:
        IN_APP[0] += 1
        log(f"enter {job} {IN_APP[0]}")
    try:
        wait_for_file(q["gate"])
    finally:
        with IN_APP_LOCK:
            IN_APP[0] -= 1
            log(f"leave {job}")
    return answer(start_response, "200 OK", "held")


def enqueue(q: dict[str, str], start_response: StartResponse) -> list[bytes]:
    ids = []
    attempts = int(q["max_attempts"]) if "max_attempts" in q else None
    for _ in range(int(q.get("n", "1"))):
        ids.append(
            wsrun.enqueue(
                q.get("path", "/app/sink"),
                body=q.get("body", ""),
                method=q.get("method", "POST"),
                delay=float(q.get("delay", "0")),
                max_attempts=attempts,
                headers={k[2:]: v for k, v in q.items() if k.startswith("h-")},
            )
        )
    return answer(start_response, "200 OK", " ".join(map(str, ids)))


def add_timer(q: dict[str, str], start_response: StartResponse) -> list[bytes]:
    label = q.get("label", "-")

    def tick() -> None:
        log(f"timer {os.getpid()} {time.time():.3f} {label}")

    repeat = q.get("repeat", "1") == "1"
    TIMERS.append(wsrun.add_timer(float(q["seconds"]), tick, repeat=repeat))
    return answer(start_response, "200 OK", f"{time.time():.3f}")


def defer(q: dict[str, str], start_response: StartResponse) -> list[bytes]:
    def later(label: str, pause: float = 0.0, gate: str = "") -> None:
        if gate:
            wait_for_file(gate)
        time.sleep(pause)
        log(f"deferred {label} {time.time():.3f} {wsrun.defer_queue_size()}")

    if "gate" in q:
        wsrun.defer(later, "one", gate=q["gate"])
    else:
        wsrun.defer(later, "one", pause=0.3)
    queued = wsrun.defer_queue_size()
    return answer(start_response, "200 OK", f"{time.time():.3f} {queued}")


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        if path == "/sink":
            return sink(environ, start_response)
        if path == "/slow":
            time.sleep(float(q.get("ms", "20")) / 1000)
            return sink(environ, start_response)
        if path == "/hold":
            return hold(environ, q, start_response)
        if path == "/fail":
            return fail(environ, start_response)
        if path == "/enqueue":
            return enqueue(q, start_response)
        if path == "/every":
            wsrun.every(q["name"], float(q["seconds"]), q["path"], q.get("body", ""))
            return answer(start_response, "200 OK", "set")
        if path == "/cancel":
            return answer(start_response, "200 OK", str(wsrun.cancel(q["name"])))
        if path == "/timer":
            return add_timer(q, start_response)
        if path == "/untimer":
            return answer(start_response, "200 OK", str(TIMERS.pop().cancel()))
        if path == "/defer":
            return defer(q, start_response)
        if path == "/pid":
            return answer(start_response, "200 OK", str(os.getpid()))
    except wsrun.UnknownRouteError as err:
        return answer(start_response, "404 Not Found", f"UnknownRouteError: {err}")
    except wsrun.ServiceError as err:
        return answer(start_response, "503 Service Unavailable", f"ServiceError: {err}")
    except (ValueError, TypeError) as err:
        return answer(start_response, "400 Bad Request", f"{type(err).__name__}: {err}")
    return answer(start_response, "404 Not Found", "no such test route")
