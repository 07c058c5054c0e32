"""The results board's WSGI app: `POST /api/results` stores a run; `GET /` lists runs
(`?scenario=&machine=&version=` filter them); `GET /runs/ID` shows one.

Owns: routing, status codes and the request-size bound. Must not touch: SQL (`store`),
markup (`pages`), the record's rules (`validate`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from board import pages, store, validate

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _send(start: StartResponse, status: str, body: str, kind: str) -> Iterable[bytes]:
    data = body.encode()
    start(status, [("Content-Type", kind), ("Content-Length", str(len(data)))])
    return [data]


def _json(start: StartResponse, status: str, obj: dict[str, Any]) -> Iterable[bytes]:
    return _send(start, status, json.dumps(obj) + "\n", "application/json")


def _html(start: StartResponse, status: str, body: str) -> Iterable[bytes]:
    return _send(start, status, body, "text/html; charset=utf-8")


def post_result(environ: Environ, start: StartResponse) -> Iterable[bytes]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _json(start, "400 Bad Request", {"error": "Content-Length: not a number"})
    if length > validate.MAX_BODY:
        msg = f"body: larger than {validate.MAX_BODY} bytes"
        return _json(start, "413 Content Too Large", {"error": msg, "field": "body"})
    try:
        record = validate.parse(environ["wsgi.input"].read(length))
    except validate.Invalid as err:
        return _json(start, "400 Bad Request", {"error": str(err), "field": err.field})
    run_id = store.insert(record, time.time())
    return _json(start, "201 Created", {"id": run_id, "url": f"/runs/{run_id}"})


def list_runs(environ: Environ, start: StartResponse) -> Iterable[bytes]:
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    filters = {k: query[k] for k in store.FILTERS if query.get(k)}
    listing = store.runs(filters)
    return _html(start, "200 OK", pages.runs_page(listing.runs, listing.choices, filters))


def show_run(start: StartResponse, raw_id: str) -> Iterable[bytes]:
    found = store.run(int(raw_id)) if raw_id.isdigit() and len(raw_id) < 19 else None
    if found is None:
        return _html(start, "404 Not Found", pages.not_found(f"no run {raw_id}"))
    return _html(start, "200 OK", pages.run_page(*found))


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/api/results":
        if method != "POST":
            return _json(start_response, "405 Method Not Allowed", {"error": "POST a run"})
        return post_result(environ, start_response)
    if method not in ("GET", "HEAD"):
        return _json(start_response, "405 Method Not Allowed", {"error": "GET only"})
    if path == "/":
        return list_runs(environ, start_response)
    if path.startswith("/runs/"):
        return show_run(start_response, path.removeprefix("/runs/"))
    return _html(start_response, "404 Not Found", pages.not_found(f"no page {path}"))
