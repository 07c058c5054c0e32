"""WSGI apps for the response compression tests (and bench/static.sh's JSON row).

`json_app`: a 20 KB JSON document. `counter_app`: that document with the request count in
its middle (`compress_data.numbered`), so each body differs from the last in a few bytes and
keeps its length. `stream_app`: a text body in two pieces; the second is
produced only once the file named by $WSRUN_TEST_RELEASE exists, so a test can show the
first piece reached it (compressed, decodable) before the app made the second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from compress_data import FIRST, JSON_BODY, SECOND, numbered

from wsrun.wsgi_types import Environ, StartResponse

# The app gives up waiting after this long (the test fails then: the second piece arrived
# without the release).
RELEASE_WAIT = 30.0


def json_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(JSON_BODY)))],
    )
    return [JSON_BODY]


_served = 0


def counter_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    global _served
    _served += 1
    body = numbered(_served)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _headers_for(environ: Environ) -> list[tuple[str, str]]:
    kind = environ.get("QUERY_STRING", "")
    if kind == "png":
        return [("Content-Type", "image/png")]
    if kind == "no-transform":
        return [("Content-Type", "application/json"), ("Cache-Control", "no-transform")]
    if kind == "encoded":
        return [("Content-Type", "application/json"), ("Content-Encoding", "identity-x")]
    return [("Content-Type", "application/json")]


def typed_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """The JSON body with the type or fields the query names."""
    start_response("200 OK", _headers_for(environ))
    return [JSON_BODY]


def small_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"ok": true}']


def stream_app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    yield FIRST
    release = os.environ["WSRUN_TEST_RELEASE"]
    deadline = time.monotonic() + RELEASE_WAIT
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield SECOND
