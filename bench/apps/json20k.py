"""A 20 KB JSON document for bench/static.sh's compression rows: `json20k:app` (built once),
`json20k:built` (serialized per request), `json20k:unique` (a request counter in it, so no
two bodies are the same)."""

import json
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]

ROWS = [
    {"id": i, "name": f"user {i}", "email": f"user{i}@example.com", "active": i % 3 == 0}
    for i in range(250)
]
BODY = json.dumps({"users": ROWS}).encode()
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Answer every request with the same 20 KB JSON body."""
    start_response("200 OK", HEADERS)
    return [BODY]


def built(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The same document, serialized on every request as an API endpoint does."""
    body = json.dumps({"users": ROWS}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


_served = 0


def unique(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The document with the request count in it: the same length, never the same bytes."""
    global _served
    _served += 1
    body = json.dumps({"served": f"{_served:012d}", "users": ROWS}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
