"""WSGI hello world for bench/core.sh: `hello:app`, served identically by every server."""

from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]

BODY = b"Hello, world!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Answer every request with a fixed 13-byte text body."""
    start_response("200 OK", HEADERS)
    return [BODY]
