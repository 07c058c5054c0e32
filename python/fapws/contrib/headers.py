"""Fapws3 ``contrib.headers``: :func:`redirect` is :func:`wsrun.headers.redirect`.

Fapws3 answered ``302 Moved Temporarily`` (or ``301 Moved Permanently``) with
a ``Location`` header and an empty body; wsrun sends the same status codes
and ``Location`` (percent-encoded, and refused if it holds CR/LF) with a short
HTML body pointing to it.
"""

from typing import Any

from wsrun.headers import redirect as _redirect

__all__ = ["redirect"]


def redirect(start_response: Any, location: str, permanent: bool | None = None) -> list[bytes]:
    """Starts a redirect to ``location`` and returns the body to hand back.

    ``return redirect(start_response, "/login")`` inside a handler; a true
    ``permanent`` gives 301 instead of 302.
    """
    return _redirect(start_response, location, permanent=bool(permanent))
