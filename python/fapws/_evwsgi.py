"""Fapws3's ``_evwsgi`` server module, on top of wsrun.

Owns: what a Fapws3 script registers (routes, bind address, debug flag, base
module), the adapter that gives each handler Fapws3's per-request objects, and
Fapws3's timers and deferred calls mapped onto :func:`wsrun.add_timer` and
:func:`wsrun.defer`.

Under ``wsrun script.py`` the script runs once, in the master process, before
the workers start. Nothing here opens a socket or runs a loop: ``start()``
only records the address, ``run()`` returns at once, and after the script has
finished wsrun reads the registrations through :func:`_wsrun_settings` and
serves them (a ``--bind`` on the command line wins over ``start()``).

Differences from Fapws3 worth knowing:

* routes follow wsrun's rule (longest prefix on a segment boundary) instead of
  "first registered string prefix"; ``SCRIPT_NAME`` is still the prefix as
  registered, so ``wsgi_cb(("/names/", app))`` gives ``PATH_INFO == "bob"``;
* ``wsgi.input`` is a :class:`io.BytesIO` holding the whole body, as in Fapws3;
* ``set_base_module`` is optional (the default is :mod:`fapws.base`) and may
  come after ``wsgi_cb``: the base module is looked up at each request;
* timers start when they are added (in every worker, if added before the
  workers start) and are not limited to ten;
* ``defer_queue_size()`` returns ``0``, never ``None``, for an empty queue.
"""

import io
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_plus

import wsrun
from fapws import base as _default_base
from fapws.base import response_head
from wsrun.wsgi_types import Environ, StartResponse

__all__ = [
    "add_timer",
    "defer",
    "defer_queue_size",
    "error",
    "get_debug",
    "parse_query",
    "restart_timer",
    "rfc1123_date",
    "run",
    "set_base_module",
    "set_debug",
    "start",
    "stop_timer",
    "wsgi_cb",
    "wsgi_gen_cb",
]

#: A Fapws3 handler: ``handler(environ, start_response)`` returning a list, an
#: iterator, str, bytes or an open file.
Handler = Callable[[Any, Any], Any]


class error(Exception):  # Fapws3's name: ``_evwsgi.error``
    """Raised for a registration wsrun cannot serve (e.g. a Unix socket address)."""


class _Registry:
    """Everything the script registered, read by wsrun once the script has run."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, _Fapws3App]] = []
        self.generic: _Fapws3App | None = None
        self.server: str | None = None
        self.debug: int | None = None
        self.base: Any = _default_base


_registry = _Registry()


# --------------------------------------------------------------------------- server set-up


def start(host: str, port: str | int) -> None:
    """Records the address to listen on, like a script's ``SERVER``.

    ``port`` is a string (Fapws3's ``start("0.0.0.0", "8080")``) or an int. An
    empty host means every interface. ``--bind`` on the command line wins.
    """
    text = str(port).strip()
    if text.startswith("unix"):
        raise error("wsrun does not listen on Unix sockets: give a TCP port or use --bind")
    try:
        number = int(text)
    except ValueError:
        raise error(f"start(): port must be a number, not {port!r}") from None
    if not 0 < number < 65536:
        raise error(f"start(): port {number} is out of range")
    name = str(host).strip() or "0.0.0.0"
    _registry.server = f"[{name}]:{number}" if ":" in name else f"{name}:{number}"


def set_base_module(module: Any) -> None:
    """Selects the module whose ``Environ`` and ``Start_response`` classes every
    request gets (default: :mod:`fapws.base`)."""
    for name in ("Environ", "Start_response"):
        if not callable(getattr(module, name, None)):
            raise error(f"set_base_module(): {module!r} has no {name} class")
    _registry.base = module


def wsgi_cb(entry: tuple[str, Handler]) -> None:
    """Registers ``(prefix, handler)``; wsrun serves the registrations in order."""
    try:
        prefix, handler = entry
    except (TypeError, ValueError):
        raise TypeError("wsgi_cb() takes one (prefix, handler) tuple") from None
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError(f"wsgi_cb(): the prefix must be a str starting with '/', not {prefix!r}")
    if not callable(handler):
        raise TypeError(f"wsgi_cb(): the handler for {prefix!r} is not callable")
    _registry.routes.append((prefix, _Fapws3App(prefix, handler)))


def wsgi_gen_cb(handler: Handler) -> None:
    """Sets the handler for paths no ``wsgi_cb`` prefix matches (``SCRIPT_NAME`` is "")."""
    if not callable(handler):
        raise TypeError("wsgi_gen_cb(): the handler is not callable")
    _registry.generic = _Fapws3App("", handler)


def set_debug(level: int) -> None:
    """A true level acts like ``DEBUG = True``: a failing handler's 500 shows its traceback."""
    _registry.debug = int(level)


def get_debug() -> int:
    """The level given to :func:`set_debug` (0 if never called)."""
    return _registry.debug or 0


def run() -> None:
    """Returns at once: wsrun starts serving after the script has finished."""


def _wsrun_settings() -> dict[str, object]:
    """For wsrun's loader: ``PATHS``, ``SERVER`` and ``DEBUG`` as the script set them."""
    paths: list[tuple[str, _Fapws3App]] = list(_registry.routes)
    generic = _registry.generic
    if generic is not None and all(p.rstrip("/") for p, _ in paths):
        paths.append(("/", generic))
    settings: dict[str, object] = {}
    if paths:
        settings["PATHS"] = paths
    if _registry.server is not None:
        settings["SERVER"] = _registry.server
    if _registry.debug is not None:
        settings["DEBUG"] = bool(_registry.debug)
    return settings


# --------------------------------------------------------------------------- helpers


def rfc1123_date(t: float) -> str:
    """``t`` (seconds since the epoch) as an HTTP date: ``"Sun, 06 Nov 1994 08:49:37 GMT"``."""
    return formatdate(int(t), usegmt=True)


def parse_query(qs: str) -> dict[str, list[str]]:
    """Splits a query string into ``{name: [value, ...]}``, as Fapws3 did.

    ``+`` and ``%XX`` are decoded (UTF-8), a name without ``=`` gets ``""``,
    every value is kept in order, and an empty field between two ``&`` counts
    as the name ``""`` (a trailing ``&`` does not).
    """
    fields = qs.split("&")
    if fields[-1] == "":
        fields.pop()
    params: dict[str, list[str]] = {}
    for field in fields:
        name, _, value = field.partition("=")
        params.setdefault(unquote_plus(name), []).append(unquote_plus(value))
    return params


# --------------------------------------------------------------------------- handler adapter


class _Fapws3App:
    """A WSGI app calling a Fapws3 handler with the base module's objects."""

    def __init__(self, prefix: str, handler: Handler) -> None:
        self.prefix = prefix
        self.handler = handler

    def __repr__(self) -> str:
        return f"<fapws3 handler {self.prefix!r}: {self.handler!r}>"

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[Any]:
        fapws_base = _registry.base
        env = fapws_base.Environ()
        headers, uri, request = _split_environ(environ, self.prefix)
        env.update_headers(headers)
        env.update_uri(uri)
        env.update_from_request(request)
        collector = fapws_base.Start_response()
        result = self.handler(env, collector)
        if _complete(result, environ):
            start_response(*response_head(collector))
            return result  # type: ignore[no-any-return]
        return _head_after_first_item(result, collector, start_response)


def _split_environ(
    environ: Environ, prefix: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """wsrun's environ as Fapws3's three groups: request line and headers, URI, the rest."""
    headers: dict[str, Any] = {}
    uri: dict[str, Any] = {}
    request: dict[str, Any] = {}
    uri_keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT")
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("REQUEST_METHOD", "SERVER_PROTOCOL"):
            headers[key] = value
        elif key in uri_keys:
            uri[key] = value
        else:
            request[key] = value
    protocol = str(environ.get("SERVER_PROTOCOL", "HTTP/1.1"))
    headers["fapws.uri"] = environ.get("REQUEST_URI", "")
    headers["fapws.major_minor"] = protocol.partition("/")[2]
    script_name = str(environ.get("SCRIPT_NAME", ""))
    path_info = str(environ.get("PATH_INFO", ""))
    if prefix.endswith("/") and path_info.startswith("/"):
        # Fapws3 split the path right after the prefix as registered.
        script_name, path_info = script_name + "/", path_info[1:]
    uri["SCRIPT_NAME"] = script_name
    uri["PATH_INFO"] = path_info
    query = str(environ.get("QUERY_STRING", ""))
    uri["fapws.params"] = parse_query(query)
    body = environ["wsgi.input"].read() if "wsgi.input" in environ else b""
    request["wsgi.input"] = io.BytesIO(body)
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if content_type.lower().startswith("application/x-www-form-urlencoded"):
        request["fapws.params"] = parse_query(body.decode("latin-1"))
    remote_port = str(environ.get("REMOTE_PORT", ""))
    request["fapws.remote_addr"] = environ.get("REMOTE_ADDR", "")
    request["fapws.remote_port"] = int(remote_port) if remote_port.isdigit() else 0
    return headers, uri, request


def _complete(result: object, environ: Environ) -> bool:
    """Whether the head can be sent now: the body needs no iteration to start."""
    if isinstance(result, list | tuple | str | bytes):
        return True
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and isinstance(result, file_wrapper):
        return True
    return hasattr(result, "fileno") and hasattr(result, "read")


def _head_after_first_item(
    result: Iterable[Any], collector: Any, start_response: StartResponse
) -> Iterator[Any]:
    """Pulls the first item before sending the head (a generator may set it), like Fapws3."""
    try:
        items = iter(result)
        first = next(items, None)
        start_response(*response_head(collector))
        if first is None:
            return
        yield first
        yield from items
    finally:
        close = getattr(result, "close", None)
        if callable(close):
            close()


# --------------------------------------------------------------------------- timers


class _Timer:
    """One Fapws3 timer: calls ``fn()`` every ``seconds`` until it returns False or raises."""

    def __init__(self, seconds: float, fn: Callable[[], object]) -> None:
        self.seconds = seconds
        self.fn = fn
        self.handle: wsrun.Timer | None = None

    def start(self) -> None:
        self.stop()
        self.handle = wsrun.add_timer(self.seconds, self._tick, repeat=True)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _tick(self) -> None:
        try:
            outcome = self.fn()
        except Exception:
            traceback.print_exc(file=sys.stderr)
            print(f"fapws3 timer {self.fn!r} raised: it is stopped", file=sys.stderr)
            self.stop()
            return
        if outcome is False:
            self.stop()


_timers: list[_Timer] = []


def add_timer(seconds: float, fn: Callable[[], object]) -> int:
    """Calls ``fn()`` every ``seconds`` in each worker, until it returns ``False``.

    A timer whose callback raises is stopped (the traceback goes to stderr).
    Returns how many timers exist, as Fapws3 did: the new timer's index is
    that number minus one (the index :func:`stop_timer` takes).
    """
    if not callable(fn):
        raise TypeError("add_timer(): fn is not callable")
    timer = _Timer(float(seconds), fn)
    timer.start()
    _timers.append(timer)
    return len(_timers)


def stop_timer(index: int) -> None:
    """Stops timer number ``index`` (0 for the first one added)."""
    _timers[index].stop()


def restart_timer(index: int) -> None:
    """Starts timer number ``index`` again; its next call is ``seconds`` from now."""
    _timers[index].start()


# --------------------------------------------------------------------------- defer


class _Deferred:
    """One queued ``fn(arg)`` call."""

    def __init__(self, fn: Callable[[Any], object], arg: object) -> None:
        self.fn = fn
        self.arg = arg

    def same_call(self, fn: Callable[[Any], object], arg: object) -> bool:
        return bool(self.fn == fn and self.arg == arg)


_pending: list[_Deferred] = []


def defer(fn: Callable[[Any], object], arg: object, combined: bool = False) -> None:
    """Runs ``fn(arg)`` later in this worker; during a request, after its response is sent.

    With ``combined`` true the call is dropped when the same ``fn`` with an equal
    ``arg`` is already waiting. A deferred call that raises has its traceback
    printed to stderr; the queue goes on.
    """
    if not callable(fn):
        raise TypeError("defer(): fn is not callable")
    if combined and any(d.same_call(fn, arg) for d in _pending):
        return
    call = _Deferred(fn, arg)
    _pending.append(call)
    wsrun.defer(_run_deferred, call)


def _run_deferred(call: _Deferred) -> None:
    for i, queued in enumerate(_pending):
        if queued is call:
            del _pending[i]
            break
    try:
        call.fn(call.arg)
    except Exception:
        traceback.print_exc(file=sys.stderr)


def defer_queue_size() -> int:
    """How many deferred calls have not run yet in this process."""
    return int(wsrun.defer_queue_size())
