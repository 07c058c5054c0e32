"""The cluster demo's app: `/enqueue?n=N` queues N jobs to `/work`; `/work` records each
delivery (job id and this node's name) in $CLUSTER_LOG, one line each, appended atomically."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import wsrun

LOG = os.environ.get("CLUSTER_LOG", "/dev/null")
NODE = os.environ.get("CLUSTER_NODE", "?")


def answer(start_response: Callable[..., Any], text: str) -> list[bytes]:
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/enqueue":
        q = parse_qs(environ.get("QUERY_STRING", ""))
        n = int(q.get("n", ["1"])[0])
        ids = [wsrun.enqueue("/work", body=b"x") for _ in range(n)]
        return answer(start_response, f"{len(ids)}\n")
    if path == "/work":
        time.sleep(0.005)  # some work, so a killed node has jobs in flight
        line = f"{environ.get('HTTP_WSRUN_JOB_ID', '-')} {NODE}\n".encode()
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return answer(start_response, "done")
    return answer(start_response, f"node {NODE}\n")
