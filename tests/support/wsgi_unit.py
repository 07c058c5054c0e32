"""Helpers for the unit tests of the embedded Python package: a recording start_response,
environ construction, and a call() that checks every file opened for a request is closed.

Owns: in-process fakes of a WSGI server for the package's unit tests.
Must not touch: the wsrun binary (these tests run without it).
"""

import os
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

HAVE_PROC_FD = os.path.isdir("/proc/self/fd")


class StartResponse:
    """A fake start_response that records what the application sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        self.calls.append((status, list(headers)))
        return self.write

    def write(self, data: bytes) -> object:
        raise AssertionError("write() must not be used")

    @property
    def status(self) -> str:
        assert len(self.calls) == 1, self.calls
        return self.calls[0][0]

    @property
    def header_list(self) -> list[tuple[str, str]]:
        return self.calls[0][1]

    @property
    def headers(self) -> dict[str, str]:
        names = [name.lower() for name, _ in self.header_list]
        assert len(names) == len(set(names)), f"duplicate headers: {self.header_list}"
        return {name.lower(): value for name, value in self.header_list}


class Response:
    def __init__(self, status: str, headers: dict[str, str], body: bytes, chunks: list[bytes]):
        self.status = status
        self.headers = headers
        self.body = body
        self.chunks = chunks


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if HAVE_PROC_FD else set()


def make_environ(path: str = "/", method: str = "GET", **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["REQUEST_METHOD"] = method
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = ""
    environ.update(extra)
    return environ


def call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Response:
    """Run one request; check that every file opened for it is closed afterwards."""
    before = open_fds()
    start_response = StartResponse()
    result = app(environ, start_response)
    try:
        chunks = list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    # `result` is still referenced here, so a file it failed to close is still open.
    assert open_fds() == before, "a file descriptor was left open"
    for chunk in chunks:
        assert isinstance(chunk, bytes)
    return Response(start_response.status, start_response.headers, b"".join(chunks), chunks)


def call_validated(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Response:
    """Like call(), with the application wrapped in wsgiref.validate.validator."""
    return call(validator(app), environ)


def wrapper_recorder() -> tuple[Callable[[Any, int], Any], list[tuple[Any, int]]]:
    seen: list[tuple[Any, int]] = []

    def file_wrapper(filelike: Any, blksize: int = 8192) -> Any:
        seen.append((filelike, blksize))
        return FileWrapper(filelike, blksize)

    return file_wrapper, seen
