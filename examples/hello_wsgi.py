"""A plain PEP 3333 app, mounted at /hello by demo.toml (SCRIPT_NAME=/hello)."""

from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    body = (
        f"Hello from a WSGI route!\n"
        f"SCRIPT_NAME={environ['SCRIPT_NAME']!r} PATH_INFO={environ['PATH_INFO']!r}\n"
    ).encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
