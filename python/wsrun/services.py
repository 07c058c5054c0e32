"""Timers, deferred calls and durable jobs, shared with WebAssembly handlers.

Two kinds of service live here:

* In-process, Fapws3 style (not durable; each worker process runs its own):
  :func:`add_timer` runs a callable every N seconds (or once), :func:`defer`
  runs a callable later in the same worker — when called during a request,
  after that request's response has been sent.
* Durable, through the server's job journal (SQLite in ``state_dir``):
  :func:`enqueue` queues a request to any route of this server, Python or
  WASM, delivered at least once with ``wsrun-job-id`` and
  ``wsrun-job-attempt`` headers and retried on a 5xx; :func:`every` and
  :func:`cancel` manage named durable timers that fire once per period across
  all workers.

The functions are implemented in the server (the native ``wsrun._services``
module); this module gives them typed, documented signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

_NATIVE: ModuleType | None
try:
    from wsrun import _services as _NATIVE
except ImportError:  # imported outside the server (unit tests, type checkers, docs)
    _NATIVE = None


class _ServiceError(Exception):
    """Stands in for the server's ServiceError when imported outside the server."""


class _UnknownRouteError(_ServiceError):
    """Stands in for the server's UnknownRouteError when imported outside the server."""


_ServiceError.__name__ = _ServiceError.__qualname__ = "ServiceError"
_UnknownRouteError.__name__ = _UnknownRouteError.__qualname__ = "UnknownRouteError"

ServiceError: type[Exception] = _ServiceError if _NATIVE is None else _NATIVE.ServiceError
"""A service refused the call (e.g. the journal could not be written)."""

UnknownRouteError: type[Exception] = (
    _UnknownRouteError if _NATIVE is None else _NATIVE.UnknownRouteError
)
"""No route of this server serves the path given (a subclass of ServiceError)."""


def _native() -> ModuleType:
    if _NATIVE is None:
        raise ServiceError("wsrun's services run only inside the wsrun server")
    return _NATIVE


Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class Timer:
    """An in-process timer made by :func:`add_timer`."""

    __slots__ = ("_active", "_id", "repeat", "seconds")

    def __init__(self, timer_id: int, seconds: float, repeat: bool) -> None:
        self._id = timer_id
        self._active = True
        self.seconds = seconds
        self.repeat = repeat

    @property
    def active(self) -> bool:
        """False once :meth:`cancel` has been called."""
        return self._active

    def cancel(self) -> bool:
        """Stops the timer; returns False if it was already stopped or done."""
        self._active = False
        return bool(_native().cancel_timer(self._id))

    def __repr__(self) -> str:
        kind = "every" if self.repeat else "once after"
        state = "" if self._active else ", cancelled"
        return f"<wsrun.Timer {kind} {self.seconds}s{state}>"


def _number(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    return float(value)


def add_timer(seconds: float, fn: Callable[[], object], repeat: bool = True) -> Timer:
    """Calls ``fn()`` every ``seconds`` (once, after ``seconds``, if ``repeat`` is False).

    The call runs on the worker's event loop; an exception is logged and the
    timer goes on. A timer added while the app is imported starts in every
    worker.
    """
    if not callable(fn):
        raise TypeError("add_timer(seconds, fn): fn must be callable")
    period = _number(seconds, "seconds")
    timer_id = _native().add_timer(period, fn, bool(repeat))
    return Timer(int(timer_id), period, bool(repeat))


def defer(fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Runs ``fn(*args, **kwargs)`` later in this worker.

    Called while handling a request, it runs after that request's response
    has been sent; otherwise as soon as the worker is idle. Not durable: use
    :func:`enqueue` for work that must survive a restart.
    """
    if not callable(fn):
        raise TypeError("defer(fn, *args, **kwargs): fn must be callable")
    _native().defer(fn, args, kwargs or None)


def defer_queue_size() -> int:
    """Deferred calls of this worker that have not run yet."""
    return int(_native().defer_queue_size())


def _header_list(headers: Headers | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, str]] = []
    for item in items:
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("headers must be (str, str) pairs")
        out.append((name, value))
    return out


def _body_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"body must be bytes or str, not {type(body).__name__}")


def _text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def enqueue(
    path: str,
    body: bytes | str = b"",
    method: str = "POST",
    headers: Headers | None = None,
    delay: float = 0,
    *,
    max_attempts: int | None = None,
    host: str | None = None,
) -> int:
    """Queues a durable job: a request to ``path`` on this server; returns its id.

    The job is on disk when this returns. It is delivered at least once
    through the router (to a Python or WASM route), after ``delay`` seconds,
    with ``wsrun-job-id`` and ``wsrun-job-attempt`` headers; a 5xx answer is
    retried with backoff up to ``max_attempts`` (default: ``[jobs]
    max_attempts``), then the job moves to the dead-letter table.

    Raises UnknownRouteError if no route serves ``path`` (for ``host``, when
    given), ValueError for a bad method, path, header or delay or a body over the
    target route's max_body_size, and
    ServiceError if the journal cannot be written.
    """
    wait = _number(delay, "delay")
    if wait < 0:
        raise ValueError("delay must be 0 or more seconds")
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise ValueError("max_attempts must be a whole number, 1 or more")
    job_id = _native().enqueue(
        _text(path, "path"),
        _body_bytes(body),
        _text(method, "method"),
        _header_list(headers),
        wait,
        max_attempts,
        None if host is None else _text(host, "host"),
    )
    return int(job_id)


def every(
    name: str,
    seconds: float,
    path: str,
    body: bytes | str = b"",
    *,
    method: str = "POST",
    headers: Headers | None = None,
) -> None:
    """Creates or replaces the durable timer ``name``: a job to ``path`` every ``seconds``.

    The timer survives restarts and fires once per period in total, however
    many workers run. Raises like :func:`enqueue`.
    """
    _native().every(
        _text(name, "name"),
        _number(seconds, "seconds"),
        _text(path, "path"),
        _body_bytes(body),
        _text(method, "method"),
        _header_list(headers),
    )


def cancel(name: str) -> bool:
    """Removes the durable timer ``name``; False if there was none."""
    return bool(_native().cancel(_text(name, "name")))


__all__ = [
    "ServiceError",
    "Timer",
    "UnknownRouteError",
    "add_timer",
    "cancel",
    "defer",
    "defer_queue_size",
    "enqueue",
    "every",
]
