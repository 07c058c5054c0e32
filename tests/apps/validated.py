"""A PEP 3333-compliant app wrapped in `wsgiref.validate.validator`.

Any protocol violation by the server raises AssertionError inside the app (500 plus a traceback
in the log) or warns (WSGIWarning, turned into an error here so it shows the same way).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.validate import WSGIWarning, validator

from probe import record_call

warnings.simplefilter("error", WSGIWarning)

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]

TEXT = [("Content-Type", "text/plain")]


def inner(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    record_call(environ)
    path = environ["PATH_INFO"]
    inp = environ["wsgi.input"]
    if path == "/plain":
        start_response("200 OK", [*TEXT, ("Content-Length", "5")])
        return [b"plain"]
    if path == "/echo":
        h = hashlib.sha256()
        total = 0
        while True:
            block = inp.read(8192)
            if not block:
                break
            total += len(block)
            h.update(block)
        body = f"{total} {h.hexdigest()}".encode()
        start_response("200 OK", TEXT)
        return [body]
    if path == "/lines":
        first = inp.readline()
        second = inp.readline(3)
        rest = inp.readlines()
        body = repr((first, second, rest)).encode()
        start_response("200 OK", TEXT)
        return [body]
    if path == "/iterinput":
        lines = list(inp)
        start_response("200 OK", TEXT)
        return [str(len(lines)).encode()]
    if path == "/gen":

        def gen() -> Iterator[bytes]:
            yield b"g1"
            yield b""
            yield b"g2"

        start_response("200 OK", TEXT)
        return gen()
    if path == "/write":
        write = start_response("200 OK", TEXT)
        write(b"w1")
        return [b"w2"]
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrapped: Iterable[bytes] = environ["wsgi.file_wrapper"](io.BytesIO(b"f" * 10000), 1024)
        return wrapped
    if path == "/realfile":
        start_response("200 OK", [("Content-Type", "text/x-python")])
        src = open(os.path.abspath(__file__), "rb")  # noqa: SIM115 - closed via the wrapper
        real: Iterable[bytes] = environ["wsgi.file_wrapper"](src, 4096)
        return real
    if path == "/nocontent":
        start_response("204 No Content", [])
        return []
    if path == "/errors":
        environ["wsgi.errors"].write("validated-errors\n")
        environ["wsgi.errors"].writelines(["a\n", "b\n"])
        environ["wsgi.errors"].flush()
        start_response("200 OK", TEXT)
        return [b"ok"]
    start_response("200 OK", TEXT)
    return [f"{environ['REQUEST_METHOD']} {environ['SCRIPT_NAME']}|{path}".encode()]


app = validator(inner)
