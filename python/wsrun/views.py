"""WSGI applications that serve files from disk."""

import mimetypes
import os
import re
import stat
import time
from collections.abc import Iterable, Sequence
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from io import FileIO
from typing import Final

from wsrun.wsgi_types import Environ, StartResponse

__all__ = ["BLOCK_SIZE", "Staticfile"]

#: Size of the blocks a file body is sent in.
BLOCK_SIZE: Final = 65536

_ALLOW: Final = "GET, HEAD"

# O_NONBLOCK keeps open() from hanging on a FIFO (it is refused right after, as
# not a regular file); O_NOFOLLOW refuses a last component that became a
# symlink after the path was resolved.
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_SEP: Final = os.sep.encode("ascii")
# Separators other than "/" that the file system would honour (Windows).
_OTHER_SEPS: Final = tuple(
    s.encode("ascii") for s in (os.sep, os.altsep) if s is not None and s != "/"
)

# One entity-tag in an If-None-Match list: the opaque-tag, weak or not.
_ENTITY_TAG: Final = re.compile(r'(?:W/)?("[^"]*")')

# mimetypes reports "foo.tar.gz" as application/x-tar with encoding gzip; the
# file is sent as it is (no Content-Encoding), so it is really a gzip file.
_COMPRESSED_TYPES: Final = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
}


class Staticfile:
    """A WSGI application serving files under ``root``.

    * If ``root`` is a directory, the request path (``PATH_INFO``) names a file
      below it: ``Staticfile("public/")`` mounted at ``/static`` answers
      ``/static/css/site.css`` with ``public/css/site.css``. The bytes of the
      path are the bytes of the file name (``PATH_INFO`` is latin-1 decoded, so
      a UTF-8 name on disk is reached by its UTF-8 percent-encoding).
    * If ``root`` is a file, that file is the answer whatever the path.

    Only GET and HEAD are allowed (405 otherwise). A path with a ``..``
    segment or a NUL byte, one whose real path (symlinks resolved) lies
    outside the real path of ``root``, a directory, or anything but a regular
    file gives 404 with no further detail; a file that cannot be read for
    lack of permission gives 403.

    Responses carry Content-Type (from :mod:`mimetypes`, ``charset=utf-8``
    for ``text/*``), Content-Length, Last-Modified, a strong ETag built from
    the modification time, size and inode, and ``Cache-Control: max-age=N``
    when ``maxage`` is given. If-None-Match and If-Modified-Since are
    honoured with 304 Not Modified. The body is ``wsgi.file_wrapper`` when the
    server offers it, else an iterator of blocks whose ``close()`` closes the
    file.
    """

    __slots__ = ("_root_bytes", "maxage", "root")

    def __init__(self, root: str | os.PathLike[str], maxage: int | None = None) -> None:
        if maxage is not None and (
            isinstance(maxage, bool) or not isinstance(maxage, int) or maxage < 0
        ):
            raise ValueError(f"maxage must be a non-negative int or None, not {maxage!r}")
        self.root: str = os.fspath(root)
        self.maxage: int | None = maxage
        self._root_bytes = os.fsencode(self.root)

    def __repr__(self) -> str:
        return f"Staticfile({self.root!r}, maxage={self.maxage!r})"

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", method, [("Allow", _ALLOW)])
        found = self._locate(environ.get("PATH_INFO", ""))
        if found is None:
            return _plain(start_response, "404 Not Found", method)
        path, name = found
        try:
            opened = _open_regular_file(path)
        except PermissionError:
            return _plain(start_response, "403 Forbidden", method)
        except (OSError, ValueError):
            return _plain(start_response, "404 Not Found", method)
        if opened is None:
            return _plain(start_response, "404 Not Found", method)
        file, st = opened
        try:
            return self._respond(file, st, name, method, environ, start_response)
        except BaseException:
            file.close()
            raise

    def _locate(self, path_info: object) -> tuple[bytes, str] | None:
        """Return (real path, name to guess the type from), or None for 404."""
        try:
            root = os.path.realpath(self._root_bytes)
            root_is_dir = stat.S_ISDIR(os.stat(root).st_mode)
        except (OSError, ValueError):
            return None
        if not root_is_dir:
            return root, os.path.basename(self.root)
        if not isinstance(path_info, str):
            return None
        try:
            raw = path_info.encode("latin-1")
        except UnicodeEncodeError:
            return None
        if b"\0" in raw or raw.endswith(b"/"):
            return None
        segments = [s for s in raw.split(b"/") if s and s != b"."]
        if not segments or b".." in segments:
            return None
        if _OTHER_SEPS and any(sep in s for s in segments for sep in _OTHER_SEPS):
            return None
        real = os.path.realpath(os.path.join(root, *segments))
        prefix = root if root.endswith(_SEP) else root + _SEP
        if not real.startswith(prefix):
            return None
        return real, segments[-1].decode("utf-8", "surrogateescape")

    def _respond(
        self,
        file: FileIO,
        st: os.stat_result,
        name: str,
        method: str,
        environ: Environ,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        size = st.st_size
        mtime = st.st_mtime_ns // 1_000_000_000
        etag = f'"{st.st_mtime_ns:x}-{size:x}-{st.st_ino:x}"'
        cache = [] if self.maxage is None else [("Cache-Control", f"max-age={self.maxage}")]
        if _not_modified(environ, etag, mtime):
            file.close()
            start_response("304 Not Modified", [("ETag", etag), *cache])
            return []
        start_response(
            "200 OK",
            [
                ("Content-Type", _content_type(name)),
                ("Content-Length", str(size)),
                ("Last-Modified", formatdate(mtime, usegmt=True)),
                ("ETag", etag),
                *cache,
            ],
        )
        if method == "HEAD":
            file.close()
            return []
        file_wrapper = environ.get("wsgi.file_wrapper")
        if file_wrapper is not None:
            body: Iterable[bytes] = file_wrapper(file, BLOCK_SIZE)
            return body
        return _FileIterator(file, size)


class _FileIterator:
    """Yields a file's first ``size`` bytes in blocks; ``close()`` closes the file."""

    __slots__ = ("_file", "_remaining")

    def __init__(self, file: FileIO, size: int) -> None:
        self._file = file
        self._remaining = size

    def __iter__(self) -> "_FileIterator":
        return self

    def __next__(self) -> bytes:
        if self._remaining > 0:
            data = self._file.read(min(BLOCK_SIZE, self._remaining))
            if data:
                self._remaining -= len(data)
                return data
        self.close()
        raise StopIteration

    def close(self) -> None:
        self._remaining = 0
        self._file.close()


def _open_regular_file(path: bytes) -> tuple[FileIO, os.stat_result] | None:
    """Open ``path`` for reading if it is a regular file; None if it is not."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        os.set_blocking(fd, True)
        file = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return file, st


def _not_modified(environ: Environ, etag: str, mtime: int) -> bool:
    """Whether the request's conditional headers allow a 304 (RFC 9110 13.2.2)."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if isinstance(if_none_match, str):
        if if_none_match.strip() == "*":
            return True
        # Weak comparison: W/"x" matches "x".
        return any(m.group(1) == etag for m in _ENTITY_TAG.finditer(if_none_match))
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if isinstance(if_modified_since, str):
        since = _parse_http_date(if_modified_since)
        return since is not None and mtime <= since
    return False


def _parse_http_date(value: str) -> int | None:
    """Seconds since the epoch, or None for an invalid date or one in the future."""
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
    if seconds > time.time():
        return None
    return seconds


def _content_type(name: str) -> str:
    ctype, encoding = mimetypes.guess_type(name)
    if encoding is not None:
        ctype = _COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    elif ctype is None:
        ctype = "application/octet-stream"
    if ctype.startswith("text/"):
        ctype += "; charset=utf-8"
    return ctype


def _plain(
    start_response: StartResponse,
    status: str,
    method: object,
    extra: Sequence[tuple[str, str]] = (),
) -> list[bytes]:
    """A short text/plain answer for an error status (no body for HEAD)."""
    body = (status.partition(" ")[2] + "\n").encode("ascii")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *extra,
        ],
    )
    return [] if method == "HEAD" else [body]
