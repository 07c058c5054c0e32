"""WSGI applications that serve files from disk."""

import mimetypes
import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Sequence
from email.utils import formatdate
from io import FileIO
from typing import Final

from wsrun._file_http import (
    Precondition,
    Unsatisfiable,
    byte_ranges,
    content_range,
    evaluate,
    if_range_holds,
    multipart_layout,
)
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
    the modification time, size and inode, ``Accept-Ranges: bytes`` and
    ``Cache-Control: max-age=N`` when ``maxage`` is given. Conditional
    requests follow RFC 9110 13.2.2: If-Match and If-Unmodified-Since give 412,
    If-None-Match (weak comparison) and If-Modified-Since 304. A GET's ``Range``
    gives 206 (several ranges as ``multipart/byteranges``), 416 when none is
    satisfiable; ``If-Range`` (strong ETag or the exact date) decides whether it
    applies; a malformed ``Range`` is ignored. The rules are the server's own
    static routes' (``_file_http``). A whole body is ``wsgi.file_wrapper`` when
    the server offers it, else an iterator of blocks whose ``close()`` closes
    the file.
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
        outcome = evaluate(environ, etag, mtime)
        if outcome is not Precondition.PROCEED:
            file.close()
            if outcome is Precondition.FAILED:
                return _plain(start_response, "412 Precondition Failed", method)
            start_response("304 Not Modified", [("ETag", etag), *cache])
            return []
        ctype = _content_type(name)
        validators = [("Last-Modified", formatdate(mtime, usegmt=True)), ("ETag", etag)]
        fields = [*validators, ("Accept-Ranges", "bytes"), *cache]
        # A HEAD gets GET's answer to a plain GET: its Range is ignored.
        asked = byte_ranges(environ, size) if method == "GET" else None
        if asked is not None and not if_range_holds(environ, etag, mtime):
            asked = None
        if isinstance(asked, Unsatisfiable):
            file.close()
            extra = [("Content-Range", f"bytes */{size}"), *fields]
            return _plain(start_response, "416 Range Not Satisfiable", method, extra)
        if asked and len(asked) == 1:
            first, last = asked[0]
            start_response(
                "206 Partial Content",
                [
                    ("Content-Type", ctype),
                    ("Content-Length", str(last - first + 1)),
                    ("Content-Range", content_range(first, last, size)),
                    *fields,
                ],
            )
            file.seek(first)
            return _FileIterator(file, last - first + 1)
        if asked:
            boundary = secrets.token_hex(12)
            parts, tail, length = multipart_layout(asked, size, ctype, boundary)
            start_response(
                "206 Partial Content",
                [
                    ("Content-Type", f"multipart/byteranges; boundary={boundary}"),
                    ("Content-Length", str(length)),
                    *fields,
                ],
            )
            return _multipart_body(file, parts, tail)
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(size)), *fields])
        if method == "HEAD":
            file.close()
            return []
        file_wrapper = environ.get("wsgi.file_wrapper")
        if file_wrapper is not None:
            body: Iterable[bytes] = file_wrapper(file, BLOCK_SIZE)
            return body
        return _FileIterator(file, size)


def _multipart_body(
    file: FileIO, parts: list[tuple[bytes, int, int]], tail: bytes
) -> Iterator[bytes]:
    """The parts of a ``multipart/byteranges`` body, then its closing delimiter; closing the
    iterator (as the server does when the body ends or the client leaves) closes the file."""
    try:
        for head, first, last in parts:
            yield head
            file.seek(first)
            remaining = last - first + 1
            while remaining > 0:
                data = file.read(min(BLOCK_SIZE, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data
        yield tail
    finally:
        file.close()


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
