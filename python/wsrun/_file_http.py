"""Conditional requests and byte ranges for ``Staticfile`` (RFC 9110 sections 13 and 14).

Owns: the precondition order (If-Match, If-Unmodified-Since, If-None-Match,
If-Modified-Since), parsing ``Range`` against a file's size, ``If-Range``, and the layout of a
``multipart/byteranges`` body. The rules are those of the server's own static routes
(``runtime/src/static_files``), so both answer a request alike. Must not touch: paths, opening
files or the status line beyond the ones named here (``views``).
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Final

from wsrun.wsgi_types import Environ

#: More ranges than this in one request are ignored (the whole file is sent).
MAX_RANGES: Final = 32

# One entity-tag in a list: the weak marker and the opaque-tag.
_ENTITY_TAG: Final = re.compile(r'(W/)?("[^"]*")')


class Precondition(Enum):
    """What the conditional fields make of a GET or HEAD."""

    PROCEED = 0
    NOT_MODIFIED = 304
    FAILED = 412


def evaluate(environ: Environ, etag: str, mtime: int) -> Precondition:
    """The outcome of the request's preconditions for a file with the strong ``etag``
    modified at ``mtime`` (whole seconds), in RFC 9110 13.2.2 order."""
    if_match = _field(environ, "HTTP_IF_MATCH")
    if if_match is not None:
        if not _matches(if_match, etag, weak=False):
            return Precondition.FAILED
    else:
        since = _date(environ, "HTTP_IF_UNMODIFIED_SINCE")
        if since is not None and mtime > since:
            return Precondition.FAILED
    if_none_match = _field(environ, "HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        if _matches(if_none_match, etag, weak=True):
            return Precondition.NOT_MODIFIED
        return Precondition.PROCEED
    since = _date(environ, "HTTP_IF_MODIFIED_SINCE")
    if since is not None and mtime <= since:
        return Precondition.NOT_MODIFIED
    return Precondition.PROCEED


def if_range_holds(environ: Environ, etag: str, mtime: int) -> bool:
    """Whether ``If-Range`` (if any) lets the ``Range`` field apply: a strong match of the
    ETag, or exactly the Last-Modified date."""
    value = _field(environ, "HTTP_IF_RANGE")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return _matches(value, etag, weak=False)
    since = _parse_date(value, allow_future=True)
    return since is not None and since == mtime


class Unsatisfiable:
    """A ``Range`` field none of whose ranges overlaps the file: 416."""


#: Ranges asked (first, last) inclusive, in the order asked; ``None``: send the whole file.
RangeSet = list[tuple[int, int]] | Unsatisfiable | None


def byte_ranges(environ: Environ, size: int) -> RangeSet:
    """Parses the request's ``Range`` field against a file of ``size`` bytes."""
    value = _field(environ, "HTTP_RANGE")
    if value is None:
        return None
    unit, eq, spec_list = value.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec_list.split(",") if s.strip()]
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for spec in specs:
        first_text, dash, last_text = spec.partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        if not dash:
            return None
        if not first_text:
            if not last_text.isdigit() or not last_text.isascii():
                return None
            suffix = int(last_text)
            if suffix > 0 and size > 0:
                ranges.append((max(size - suffix, 0), size - 1))
            continue
        if not first_text.isdigit() or not first_text.isascii():
            return None
        first = int(first_text)
        if last_text:
            if not last_text.isdigit() or not last_text.isascii() or int(last_text) < first:
                return None
            last = int(last_text)
        else:
            last = size - 1
        if first < size:
            ranges.append((first, min(last, size - 1)))
    return ranges if ranges else Unsatisfiable()


def content_range(first: int, last: int, size: int) -> str:
    return f"bytes {first}-{last}/{size}"


def multipart_layout(
    ranges: list[tuple[int, int]], size: int, content_type: str, boundary: str
) -> tuple[list[tuple[bytes, int, int]], bytes, int]:
    """The parts of a ``multipart/byteranges`` body: (part head, first, last) each, the closing
    delimiter, and the body's exact length."""
    parts = []
    length = 0
    for first, last in ranges:
        head = (
            f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: {content_range(first, last, size)}\r\n\r\n"
        ).encode("latin-1")
        parts.append((head, first, last))
        length += len(head) + last - first + 1
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    return parts, tail, length + len(tail)


def _field(environ: Environ, key: str) -> str | None:
    value = environ.get(key)
    return value if isinstance(value, str) else None


def _matches(value: str, etag: str, *, weak: bool) -> bool:
    """Whether the list ``value`` (``*`` or entity-tags) matches our strong ``etag``."""
    if value.strip() == "*":
        return True
    return any(
        m.group(2) == etag and (weak or m.group(1) is None) for m in _ENTITY_TAG.finditer(value)
    )


def _date(environ: Environ, key: str) -> int | None:
    value = _field(environ, key)
    return None if value is None else _parse_date(value, allow_future=False)


def _parse_date(value: str, *, allow_future: bool) -> int | None:
    """Seconds since the epoch, or None for an invalid date (or one in the future, which
    RFC 9110 says to ignore in If-Modified-Since and If-Unmodified-Since)."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        seconds = int(parsed.timestamp())
    except (OverflowError, ValueError, OSError):
        return None
    if not allow_future and seconds > time.time():
        return None
    return seconds
