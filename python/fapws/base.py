"""Fapws3 ``base`` module: the per-request ``Environ`` and ``Start_response`` classes.

A Fapws3 script passes this module (or its own module with the same names) to
``fapws._evwsgi.set_base_module``. For every request wsrun then builds an
``Environ()`` instance, fills it through ``update_headers``, ``update_uri`` and
``update_from_request``, builds a ``Start_response()`` instance and calls the
handler with both. After the handler returns (for an iterator: after its
first item), the response head is taken from the ``Start_response`` object:
``status_code``, ``status_reasons``, ``response_headers`` and ``cookies``.

Subclass these classes in your own base module to add keys to every environ
or headers to every response.
"""

import datetime
import http.client
import io
from collections.abc import Mapping
from email.utils import formatdate
from http.cookies import CookieError, SimpleCookie
from typing import Any

from wsrun.wsgi_types import OptExcInfo

__all__ = [
    "Environ",
    "Start_response",
    "get_status",
    "parse_cookies",
    "response_head",
    "split_len",
    "supported_HTTP_command",
]

#: The request methods Fapws3 served (informational: wsrun serves every method).
supported_HTTP_command = ["GET", "POST", "HEAD", "OPTIONS"]


def get_status(code: int) -> str:
    """The status line text for ``code``, e.g. ``get_status(404) == "404 Not Found"``."""
    return f"{code} {http.client.responses[code]}"


class Environ(dict[str, Any]):
    """The environ of one request: a dict with Fapws3's defaults.

    A new instance starts with the ``wsgi.*`` keys and an empty
    ``fapws.params``; the server then adds the request's keys through the three
    ``update_*`` hooks, which a subclass may override.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setdefault("wsgi.version", (1, 0))
        self.setdefault("wsgi.errors", io.StringIO())
        self.setdefault("wsgi.input", io.BytesIO())
        self.setdefault("wsgi.multithread", False)
        self.setdefault("wsgi.multiprocess", True)
        self.setdefault("wsgi.run_once", False)
        self.setdefault("fapws.params", {})

    def update_headers(self, data: Mapping[str, Any]) -> None:
        """Adds the request line and header keys (``REQUEST_METHOD``, ``HTTP_*``...)."""
        self.update(data)

    def update_uri(self, data: Mapping[str, Any]) -> None:
        """Adds the URI keys (``SCRIPT_NAME``, ``PATH_INFO``, ``QUERY_STRING``...)."""
        self.update(data)

    def update_from_request(self, data: Mapping[str, Any]) -> None:
        """Adds the connection and body keys (``REMOTE_ADDR``, ``wsgi.input``...)."""
        self.update(data)


class Start_response:  # Fapws3's name
    """Collects a handler's status, headers and cookies.

    Calling it (``start_response("404 Not Found", [("Content-Type", "text/plain")])``)
    records the status and headers; a header name given twice keeps its last
    value, as in Fapws3. A handler that never calls it answers ``200 OK``.
    """

    def __init__(self) -> None:
        self.status_code = "200"
        self.status_reasons = "OK"
        self.response_headers: dict[str, str] = {}
        self.exc_info: OptExcInfo | None = None
        self.cookies: SimpleCookie | None = None
        self.sent = False

    def __call__(
        self,
        status: str,
        response_headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> None:
        code, _, reason = str(status).strip().partition(" ")
        self.status_code = code
        self.status_reasons = reason
        for key, value in response_headers:
            self.response_headers[str(key)] = str(value)
        self.exc_info = exc_info

    def add_header(self, key: str, value: object) -> None:
        """Sets one response header (replacing a previous value of the same name)."""
        self.response_headers[str(key)] = str(value)

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: str | datetime.datetime | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool | None = None,
    ) -> None:
        """Adds a ``Set-Cookie`` header to the response.

        ``expires`` is an HTTP date string or a :class:`datetime.datetime`
        (naive values are taken as local time, as Fapws3 did).
        """
        if self.cookies is None:
            self.cookies = SimpleCookie()
        self.cookies[key] = value
        morsel = self.cookies[key]
        if max_age:
            morsel["max-age"] = max_age
        if expires:
            if isinstance(expires, datetime.datetime):
                morsel["expires"] = formatdate(expires.timestamp(), usegmt=True)
            elif isinstance(expires, str):
                morsel["expires"] = expires
            else:
                raise CookieError("expires must be a datetime or a string")
        if path:
            morsel["path"] = path
        if domain:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True

    def delete_cookie(self, key: str) -> None:
        """Tells the client to drop cookie ``key`` (empty value, ``Max-Age=0``)."""
        if self.cookies is None:
            self.cookies = SimpleCookie()
        self.cookies[key] = ""
        self.cookies[key]["max-age"] = 0

    def __str__(self) -> str:
        status, headers = response_head(self)
        lines = [f"HTTP/1.0 {status}"]
        lines.extend(f"{k}: {v}" for k, v in headers)
        return "\r\n".join(lines) + "\r\n\r\n"


def response_head(start_response: object) -> tuple[str, list[tuple[str, str]]]:
    """The status and headers a ``Start_response``-like object holds.

    Reads the Fapws3 attributes ``status_code``, ``status_reasons``,
    ``response_headers`` (a mapping or a list of pairs) and ``cookies`` (one
    ``Set-Cookie`` header per cookie), so a base module's own class works too.
    """
    code = str(getattr(start_response, "status_code", "200"))
    reason = str(getattr(start_response, "status_reasons", ""))
    status = f"{code} {reason}".strip()
    raw = getattr(start_response, "response_headers", None) or {}
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    headers = [(str(k), str(v)) for k, v in pairs]
    cookies = getattr(start_response, "cookies", None)
    if isinstance(cookies, SimpleCookie):
        headers.extend(("Set-Cookie", m.OutputString()) for m in cookies.values())
    return status, headers


def parse_cookies(environ: Mapping[str, Any]) -> SimpleCookie | None:
    """The request's cookies (``HTTP_COOKIE``) as a :class:`SimpleCookie`, or None."""
    line = environ.get("HTTP_COOKIE")
    if not line:
        return None
    cookies = SimpleCookie()
    cookies.load(line)
    return cookies


def split_len(seq: str, length: int) -> list[str]:
    """``seq`` cut into pieces of ``length`` characters (the last one may be shorter)."""
    return [seq[i : i + length] for i in range(0, len(seq), length)]
