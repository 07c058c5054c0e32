"""Fapws4 ``base`` names, for scripts that do::

    from fapws4.base import Start_response, Environ

    def hello(env: Environ, start_response: Start_response) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello"]

``Environ`` is the WSGI environ type (a ``dict[str, Any]``; calling it builds
a plain dict) and ``Start_response`` the protocol of the ``start_response``
callable. Both are meant for annotations; the server passes an ordinary dict
and its own start_response.
"""

from wsrun.wsgi_types import Environ, WSGIApp
from wsrun.wsgi_types import StartResponse as Start_response

__all__ = ["Environ", "Start_response", "WSGIApp"]
