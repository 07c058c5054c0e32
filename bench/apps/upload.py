"""Streaming-upload sink for the 1 GiB memory test in bench/core.sh: `upload:app`.

Reads wsgi.input in 64 KiB chunks (never the whole body) and answers
`<byte count> <sha256 hex>`, so the server's own buffering is what the RSS numbers show.
"""

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]

CHUNK = 64 * 1024


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Hash the request body chunk by chunk and return its length and sha256."""
    stream = environ["wsgi.input"]
    try:
        remaining: int | None = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        remaining = None  # chunked upload: read until the server signals EOF
    digest = hashlib.sha256()
    total = 0
    while remaining is None or remaining > 0:
        chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    body = f"{total} {digest.hexdigest()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
