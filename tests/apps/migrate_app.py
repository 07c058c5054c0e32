"""The two sides of the shadow and canary tests: `primary` and `shadow`, WSGI apps that agree
on some paths and differ, fail or stall on purpose on others.

| path | primary | shadow |
| --- | --- | --- |
| `/match` | JSON with `generated_at` | the same in another key order and spacing, its own `generated_at` |
| `/diff` | `items[1].id` is 2 | `items[1].id` is 3 |
| `/slow` | `{"ok": true}` | the same after `?sleep=S` seconds (default 2) |
| `/boom` | `{"ok": true}` | raises (a 500) |
| `/text` | plain text | the same text |
| `/burn` | `{"path": "/burn"}` after `?ms=N` ms of CPU time (default 20) | the same, at once |
| anything else | `{"path": ...}` | the same |

Every call of either side appends `SIDE METHOD PATH` to `$WSRUN_TEST_CALL_LOG`, so a test can
see which side ran.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

Environ = dict[str, Any]
StartResponse = Callable[..., object]


def _log(side: str, environ: Environ) -> None:
    path = os.environ.get("WSRUN_TEST_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{side} {environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}\n")


def _json(start_response: StartResponse, value: object, text: str | None = None) -> list[bytes]:
    body = (text if text is not None else json.dumps(value)).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def _burn(seconds: float) -> None:
    """Computes for `seconds` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def primary(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    _log("primary", environ)
    path = environ.get("PATH_INFO", "")
    if path == "/match":
        value = {"a": 1, "items": [{"id": 1}, {"id": 2}], "generated_at": time.time()}
        return _json(start_response, value)
    if path == "/diff":
        return _json(start_response, {"a": 1, "items": [{"id": 1}, {"id": 2}]})
    if path in ("/slow", "/boom"):
        return _json(start_response, {"ok": True})
    if path == "/burn":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        _burn(float(query.get("ms", ["20"])[0]) / 1000)
    if path == "/text":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"plain text\n"]
    return _json(start_response, {"path": path})


def shadow(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    _log("shadow", environ)
    path = environ.get("PATH_INFO", "")
    if path == "/match":
        text = '{"generated_at": 0,\n "items": [ {"id": 1}, {"id": 2} ], "a": 1.0}'
        return _json(start_response, None, text)
    if path == "/diff":
        return _json(start_response, {"a": 1, "items": [{"id": 1}, {"id": 3}]})
    if path == "/slow":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        time.sleep(float(query.get("sleep", ["2"])[0]))
        return _json(start_response, {"ok": True})
    if path == "/boom":
        raise RuntimeError("the shadow fails on purpose")
    if path == "/text":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"plain text\n"]
    return _json(start_response, {"path": path})
