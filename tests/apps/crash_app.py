"""A WSGI app whose worker processes die right after the fork while the file named by
$CRASH_APP_WHILE exists (a worker that crashes in a loop); once it is removed, workers start
and `/pid` answers the worker's pid. Each crash appends `crash PID` to $WSRUN_TEST_CALL_LOG."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

GATE = os.environ.get("CRASH_APP_WHILE", "")
LOG = os.environ.get("WSRUN_TEST_CALL_LOG", "/dev/null")


def _crash_if_gated() -> None:
    if GATE and os.path.exists(GATE):
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"crash {os.getpid()}\n".encode())
        os.close(fd)
        os._exit(7)


os.register_at_fork(after_in_child=_crash_if_gated)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
