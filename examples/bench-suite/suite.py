"""The Python half of `wsrun bench --suite`: the Fapws3 benchmark routes as one WSGI app.

Routes (the WebAssembly half, handlers/bench-suite, answers the same ones under /wasm):
- `/hello`: a list of one byte string (content-length known);
- `/iterhello`: a generator of three pieces (`hello worlds!!`, sent chunked);
- `/long`: `long.txt` (154 kB) through `wsgi.file_wrapper`, as the Fapws3 sample returns a file;
- `/getenv`: the versions (Python, wsrun, wasmtime) as `key: value` lines;
- `/post`: reads the whole body and answers its size.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
LONG = os.path.join(HERE, "long.txt")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
HTML = [("Content-Type", "text/html")]


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", HTML)
    return [b"hello world!!"]


def iterhello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    def pieces() -> Iterator[bytes]:
        yield b"hello"
        yield b" "
        yield b"worlds!!"

    start_response("200 OK", HTML)
    return pieces()


def long(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    size = os.path.getsize(LONG)
    start_response("200 OK", [*HTML, ("Content-Length", str(size))])
    wrapper = environ["wsgi.file_wrapper"]
    result: Iterable[bytes] = wrapper(open(LONG, "rb"))  # noqa: SIM115 - the server closes it
    return result


def getenv(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    lines = [
        "variant: python",
        f"python: {platform.python_version()} ({sys.implementation.name})",
        f"wsrun: {environ.get('SERVER_SOFTWARE', 'unknown')}",
        f"wasmtime: {os.environ.get('WSRUN_BENCH_WASMTIME', 'unknown')}",
        f"pid: {os.getpid()}",
    ]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode() + b"\n"]


def post(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    size = len(environ["wsgi.input"].read())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"received {size} bytes\n".encode()]


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/hello": hello,
    "/iterhello": iterhello,
    "/long": long,
    "/getenv": getenv,
    "/post": post,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    route = ROUTES.get(environ.get("PATH_INFO", ""))
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    return route(environ, start_response)
