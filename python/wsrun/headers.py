"""Small helpers for building WSGI responses."""

import html
import re
from urllib.parse import quote

from wsrun.wsgi_types import StartResponse

__all__ = ["redirect"]

# C0 controls and DEL. CR, LF and NUL would allow header injection; the others
# are not allowed in a header value either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Characters left as they are when turning the location into an ASCII URI
# reference: RFC 3986 reserved characters plus "%" (existing escapes are kept).
# Letters, digits and "-._~" are never quoted by urllib.parse.quote.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%"


def redirect(start_response: StartResponse, location: str, permanent: bool = False) -> list[bytes]:
    """Answer with a redirect to ``location``; return the body to hand back.

    Usage inside a WSGI application::

        return redirect(start_response, "/login")

    ``permanent`` selects ``301 Moved Permanently`` instead of ``302 Found``.
    Characters outside ASCII (and spaces and the like) are percent-encoded as
    UTF-8, so ``location`` may be an IRI. A ``location`` containing CR, LF,
    NUL or another control character raises :class:`ValueError` before
    ``start_response`` is called: it would allow header injection.
    """
    if _CONTROL.search(location):
        raise ValueError("redirect location contains a control character (CR, LF, NUL, ...)")
    uri = quote(location, safe=_URI_SAFE)
    status = "301 Moved Permanently" if permanent else "302 Found"
    escaped = html.escape(uri, quote=True)
    body = (
        "<!DOCTYPE html>\n"
        f"<html><head><title>{status}</title></head>"
        f'<body><p>Redirecting to <a href="{escaped}">{escaped}</a>.</p></body></html>\n'
    ).encode("ascii")
    start_response(
        status,
        [
            ("Location", uri),
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
