"""wsrun: the Python side of the wsrun server.

This package is embedded in the ``wsrun`` binary and importable without any
installation step. It provides:

* :class:`wsrun.views.Staticfile`, a WSGI application serving files from disk;
* :func:`wsrun.headers.redirect`, a helper answering with a 301/302 redirect;
* :mod:`wsrun.wsgi_types`, typing aliases for WSGI applications
  (``Environ``, ``StartResponse``, ``WSGIApp``);
* :mod:`wsrun.services`: in-process timers and deferred calls
  (:func:`add_timer`, :func:`defer`) and durable jobs and timers shared with
  WebAssembly handlers (:func:`enqueue`, :func:`every`, :func:`cancel`).

Compatibility modules for Fapws4 scripts live in the ``fapws4`` package.
"""

from wsrun.headers import redirect
from wsrun.services import (
    ServiceError,
    Timer,
    UnknownRouteError,
    add_timer,
    cancel,
    defer,
    defer_queue_size,
    enqueue,
    every,
)
from wsrun.views import Staticfile
from wsrun.wsgi_types import Environ, StartResponse, WSGIApp

__all__ = [
    "Environ",
    "ServiceError",
    "StartResponse",
    "Staticfile",
    "Timer",
    "UnknownRouteError",
    "WSGIApp",
    "__version__",
    "add_timer",
    "cancel",
    "defer",
    "defer_queue_size",
    "enqueue",
    "every",
    "redirect",
]

__version__ = "0.1.0"
