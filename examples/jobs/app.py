"""The jobs demo's Python side, mounted at /py.

- ``POST /py/welcome``: a job target queued by the WebAssembly signup API; "sends" the welcome
  mail (a log line) and records it.
- ``POST /py/digest-done``: a job target queued by the WebAssembly digest builder.
- ``GET /py/``: what happened so far, one event a line (this worker's memory).

At import, the app sets the durable timer ``digest``: every ``DIGEST_EVERY`` seconds wsrun
queues a job ``POST /api/digest``, which the WebAssembly component serves.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import wsrun

DIGEST_EVERY = float(os.environ.get("DIGEST_EVERY", "10"))
EVENTS: list[str] = []

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

wsrun.every("digest", DIGEST_EVERY, "/api/digest")


def record(event: str) -> None:
    EVENTS.append(f"{time.strftime('%H:%M:%S')} {event}")
    print(f"jobs demo: {event}", file=sys.stderr)


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    method = environ["REQUEST_METHOD"]
    job = environ.get("HTTP_WSRUN_JOB_ID", "-")
    attempt = environ.get("HTTP_WSRUN_JOB_ATTEMPT", "-")
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size).decode(errors="replace")
    if method == "POST" and path == "/welcome":
        record(f"welcome mail sent to {body} (job {job}, attempt {attempt})")
        text = "sent\n"
    elif method == "POST" and path == "/digest-done":
        record(f"{body} (job {job})")
        text = "noted\n"
    elif path in ("", "/"):
        text = "".join(f"{event}\n" for event in EVENTS) or "nothing yet\n"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]
