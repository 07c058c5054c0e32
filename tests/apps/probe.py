"""The probe WSGI app of the end-to-end tests.

Every call appends `METHOD SCRIPT_NAME+PATH_INFO PID` to the file named by $WSRUN_TEST_CALL_LOG,
so a test can prove the app was (or was never) called. `close()` calls of the response iterables
are recorded in $WSRUN_TEST_CLOSE_LOG as `close TOKEN`.

Dispatch is on PATH_INFO (so the app works under any route prefix); an unknown path answers
with the environ as JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]

HERE = os.path.dirname(os.path.abspath(__file__))
_LEAKED: list[bytes] = []


def _append(var: str, line: str) -> None:
    path = os.environ.get(var)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def record_call(environ: Environ) -> None:
    _append(
        "WSRUN_TEST_CALL_LOG",
        f"{environ.get('REQUEST_METHOD')} {environ.get('SCRIPT_NAME', '')}"
        f"{environ.get('PATH_INFO', '')} {os.getpid()}",
    )


def record_close(token: str) -> None:
    _append("WSRUN_TEST_CLOSE_LOG", f"close {token}")


def _qs(environ: Environ) -> dict[str, str]:
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _json(start_response: StartResponse, data: object, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data, sort_keys=True).encode("utf-8")
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _text(
    start_response: StartResponse,
    text: str | bytes,
    status: str = "200 OK",
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = text.encode("utf-8") if isinstance(text, str) else text
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra or []))
    return [body]


def jsonable(value: object) -> object:
    """str/int/bool/None as they are, tuples as lists (their type is in __types__), else repr."""
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    return repr(value)


def environ_json(environ: Environ) -> dict[str, object]:
    out: dict[str, object] = {k: jsonable(v) for k, v in environ.items()}
    out["__types__"] = {k: type(v).__name__ for k, v in environ.items()}
    inp = environ.get("wsgi.input")
    err = environ.get("wsgi.errors")
    out["__input_methods__"] = [
        m for m in ("read", "readline", "readlines", "__iter__") if hasattr(inp, m)
    ]
    out["__errors_methods__"] = [m for m in ("write", "writelines", "flush") if hasattr(err, m)]
    out["__pid__"] = os.getpid()
    return out


class ClosingIter:
    """An iterable with close() that records the call."""

    def __init__(self, items: Iterable[bytes], token: str) -> None:
        self._it: Iterator[bytes] = iter(items)
        self.token = token

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._it)

    def close(self) -> None:
        record_close(self.token)


class RecordingFile(io.FileIO):
    """A real file (it has fileno()) whose close() is recorded."""

    token = ""

    def close(self) -> None:
        if not self.closed:
            record_close(f"file {self.token}")
        super().close()


def _input_ops(environ: Environ, ops: str) -> list[object]:
    inp = environ["wsgi.input"]
    results: list[object] = []
    for op in [o for o in ops.split(",") if o]:
        name, _, arg = op.partition(":")
        n = int(arg) if arg else None
        value: object
        if name == "read":
            value = inp.read() if n is None else inp.read(n)
        elif name == "readline":
            value = inp.readline() if n is None else inp.readline(n)
        elif name == "readlines":
            value = inp.readlines() if n is None else inp.readlines(n)
        elif name == "iter":
            value = list(inp)
        elif name == "next":
            value = next(iter(inp), b"<StopIteration>")
        else:
            raise ValueError(f"unknown op {name}")
        if isinstance(value, bytes):
            results.append(value.decode("latin-1"))
        elif isinstance(value, list):
            assert all(isinstance(x, bytes) for x in value), value
            results.append([x.decode("latin-1") for x in value])
        else:
            results.append(repr(value))
    return results


def _sha_body(environ: Environ) -> tuple[int, str]:
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    total = 0
    while True:
        block = inp.read(65536)
        if not block:
            break
        total += len(block)
        h.update(block)
    return total, h.hexdigest()


def _deleted_fds() -> list[str]:
    out: list[str] = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if link.endswith("(deleted)"):
            out.append(link)
    return out


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    record_call(environ)
    path = environ.get("PATH_INFO", "")
    q = _qs(environ)
    token = q.get("token", "")

    if path == "/echo":
        body = environ["wsgi.input"].read()
        return _text(
            start_response,
            body,
            extra=[
                ("X-Body-Len", str(len(body))),
                ("X-Env-Content-Length", repr(environ.get("CONTENT_LENGTH"))),
                ("X-Env-Content-Type", repr(environ.get("CONTENT_TYPE"))),
            ],
        )
    if path == "/sha":
        spooled_before = _deleted_fds()
        total, digest = _sha_body(environ)
        hold = float(q.get("hold", "0"))
        if hold:
            time.sleep(hold)
        return _json(
            start_response,
            {
                "len": total,
                "sha256": digest,
                "content_length": environ.get("CONTENT_LENGTH"),
                "deleted_fds": spooled_before,
                "input_type": type(environ["wsgi.input"]).__name__,
            },
        )
    if path == "/input":
        return _json(start_response, _input_ops(environ, q.get("ops", "read")))
    if path == "/sleep":
        time.sleep(float(q.get("s", "1")))
        return _text(start_response, "slept")
    if path == "/gate":
        # Blocks until the file `?file=` exists (at most a minute), then logs `done /gate PID`
        # after its `GET /gate PID` call line: tests read the order of starts and ends.
        gate = q.get("file", "")
        deadline = time.monotonic() + 60
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.005)
        _append("WSRUN_TEST_CALL_LOG", f"done {path} {os.getpid()}")
        return _text(start_response, "opened")
    if path == "/count":
        log = os.environ.get("WSRUN_TEST_CALL_LOG")
        n = 0
        if log:
            with open(log, encoding="utf-8") as f:
                n = sum(1 for line in f if line.strip())
        return _text(start_response, str(n))
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/thread":
        # Whether the app runs on the interpreter's main thread (the worker's event loop).
        on_main = threading.current_thread() is threading.main_thread()
        return _text(start_response, "main" if on_main else "other")
    if path == "/leak":
        # A leaky app: keeps `kib` KiB (written, so resident) per call for the worker's life.
        _LEAKED.append(b"x" * (int(_qs(environ).get("kib", "1024")) * 1024))
        return _text(start_response, str(os.getpid()))
    if path == "/headers":
        return _json(start_response, {k: v for k, v in environ.items() if k.startswith("HTTP_")})
    if path == "/errors":
        err = environ["wsgi.errors"]
        mark = q.get("mark", "MARK")
        err.write(f"probe-errors-write {mark}\n")
        err.writelines([f"probe-errors-lines-a {mark}\n", f"probe-errors-lines-b {mark}\n"])
        err.flush()
        return _text(start_response, "logged")

    # -- start_response rules
    if path == "/sr/double":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            start_response("201 Created", [("Content-Type", "text/plain")])
            outcome = "no error"
        except Exception as e:
            outcome = f"raised {type(e).__name__}"
        return [outcome.encode()]
    if path == "/sr/replace":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("replace me")
        except ValueError:
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain"), ("X-Replaced", "1")],
                sys.exc_info(),
            )
        return [b"replaced"]
    if path == "/sr/after":

        def after() -> Iterator[bytes]:
            yield b"first;"
            try:
                raise ValueError("late")
            except ValueError:
                try:
                    start_response(
                        "500 Internal Server Error",
                        [("Content-Type", "text/plain")],
                        sys.exc_info(),
                    )
                    yield b"not-reraised"
                except ValueError:
                    yield b"reraised"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return after()
    if path == "/sr/none":
        return [b"never started"]
    if path == "/sr/value":
        # One header value chosen by `?v=`: refused values must raise in start_response.
        values = {
            "crlf": "a\r\nSet-Cookie: injected=1",
            "ctl": "a\x01b",
            "latin1": "caf\u00e9",
            "wide": "\u20ac",
            "tab": "a\tb",
            "eight": "8",
            "plus": "+8",
            "list": "8, 8",
        }
        value = values[q.get("v", "tab")]
        name = q.get("h", "X-Value")
        try:
            start_response("200 OK", [("Content-Type", "text/plain"), (name, value)])
        except ValueError as e:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"refused: {e}".encode()]
        return [b"accepted"]

    if path == "/sr/names":
        # `?k=` header names made anew on every request (`?n=` varies them), and every
        # hop-by-hop name in an odd spelling: each field must come out as given, or be dropped.
        n = q.get("n", "0")
        fields = [(f"X-N{n}-{i}", f"v{n}-{i}") for i in range(int(q.get("k", "1")))]
        hop_by_hop = [
            ("".join(["Keep", "-Alive"]), "timeout=5"),
            ("TRANSFER-ENCODING", "chunked"),
            ("te", "trailers"),
            ("Trailer", "X-N"),
            ("Upgrade", "h2c"),
            ("Proxy-Connection", "keep-alive"),
        ]
        start_response("200 OK", [("Content-Type", "text/plain"), *hop_by_hop, *fields])
        return [f"names {n}".encode()]

    # -- write() callable
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one,")
        write(b"two,")
        return [b"three"]
    if path == "/write-only":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"only-write")
        return []

    # -- iterables
    if path.startswith("/iter/"):
        kind = path[len("/iter/") :]
        start_response("200 OK", [("Content-Type", "text/plain")])
        if kind == "list":
            return [b"a", b"b", b"c"]
        if kind == "tuple":
            return (b"a", b"b", b"c")
        if kind == "gen":
            return (x for x in [b"a", b"b", b"c"])
        if kind == "custom":
            return ClosingIter([b"a", b"", b"b", b"c"], token)
        if kind == "empty":
            return []
        if kind == "empties":
            return [b"", b"a", b"", b"bc", b""]
        raise ValueError(kind)
    if path == "/stream":
        n = int(q.get("n", "50"))
        delay = float(q.get("delay", "0.05"))
        size = int(q.get("size", "16"))

        gate = q.get("gate", "")

        def slow() -> Iterator[bytes]:
            for i in range(n):
                if gate and i == 1:  # the rest waits for the test's gate (at most a minute)
                    deadline = time.monotonic() + 60
                    while not os.path.exists(gate) and time.monotonic() < deadline:
                        time.sleep(0.005)
                yield (f"{i:06d}".encode() * (size // 6 + 1))[:size]
                time.sleep(delay)

        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIter(slow(), token)
    if path == "/close/error":

        def failing() -> Iterator[bytes]:
            yield b"before-error"
            raise RuntimeError("probe-iter-error")

        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIter(failing(), token)

    # -- framing
    if path == "/framing/cl":
        return _text(start_response, "0123456789")
    if path == "/framing/single":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"single-chunk-body"]
    if path == "/framing/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (x for x in [b"gen-", b"erated-", b"body"])

    # -- file_wrapper
    if path == "/file":
        src = RecordingFile(os.path.join(HERE, "probe.py"), "rb")
        src.token = token
        headers = [("Content-Type", "text/x-python")]
        if q.get("cl"):
            headers.append(("Content-Length", str(os.fstat(src.fileno()).st_size)))
        start_response("200 OK", headers)
        wrapped: Iterable[bytes] = environ["wsgi.file_wrapper"](src, 8192)
        return wrapped
    if path == "/filelike":
        data = b"file-like-object:" + b"x" * 20000
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        blocks: Iterable[bytes] = environ["wsgi.file_wrapper"](io.BytesIO(data), 4096)
        return blocks

    # -- errors
    if path == "/error/before":
        raise RuntimeError("probe-boom-before")
    if path == "/error/after":

        def broken() -> Iterator[bytes]:
            yield b"partial-body"
            time.sleep(0.05)
            raise RuntimeError("probe-boom-after")

        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIter(broken(), token or "after")
    if path == "/error/after-cl":

        def short() -> Iterator[bytes]:
            yield b"0123456789"
            raise RuntimeError("probe-boom-after-cl")

        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return short()

    return _json(start_response, environ_json(environ))
