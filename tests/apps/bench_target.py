"""The target app of `wsrun bench`'s end-to-end tests (tests/test_bench_cli.py).

Every call appends `METHOD PATH BODY_BYTES` to the file named by $WSRUN_TEST_CALL_LOG, so a
test checks on the server side how many requests arrived and how large their bodies were.
`/missing` answers 404, `/boom` 500, anything else 200 `ok`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

STATUSES = {"/missing": "404 Not Found", "/boom": "500 Internal Server Error"}


def _body_size(environ: dict[str, Any]) -> int:
    stream = environ["wsgi.input"]
    total = 0
    while chunk := stream.read(65536):
        total += len(chunk)
    return total


def app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    size = _body_size(environ)
    log = os.environ.get("WSRUN_TEST_CALL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{environ['REQUEST_METHOD']} {path} {size}\n")
    status = STATUSES.get(path, "200 OK")
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
