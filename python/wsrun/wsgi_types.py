"""Typing aliases for WSGI (PEP 3333) applications served by wsrun.

These names are for annotations only; nothing here is checked at run time.
"""

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol, TypeAlias

__all__ = [
    "Environ",
    "ExcInfo",
    "OptExcInfo",
    "StartResponse",
    "WSGIApp",
    "WriteCallable",
]

#: The WSGI ``environ`` dict: CGI-style keys plus the ``wsgi.*`` keys.
Environ: TypeAlias = dict[str, Any]

#: What ``sys.exc_info()`` returns while an exception is being handled.
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]

#: ``sys.exc_info()`` in general (all ``None`` outside an ``except`` block).
OptExcInfo: TypeAlias = ExcInfo | tuple[None, None, None]

#: The legacy ``write(data)`` callable that ``start_response`` returns.
WriteCallable: TypeAlias = Callable[[bytes], object]


class StartResponse(Protocol):
    """The ``start_response(status, headers, exc_info=None)`` callable of PEP 3333.

    ``status`` is e.g. ``"200 OK"``; ``headers`` is a list of ``(name, value)``
    pairs of latin-1 strings. The parameters are positional-only, so any
    implementation matches whatever it names them.
    """

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = ...,
        /,
    ) -> WriteCallable: ...


#: A WSGI application: ``app(environ, start_response) -> iterable of bytes``.
WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]
