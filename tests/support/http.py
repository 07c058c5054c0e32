"""HTTP over raw sockets: exact bytes out, what came back in, and a small HTTP/1.x response
parser (chunked, Content-Length, close-delimited, interim 1xx, HEAD) for pipelining and framing
tests.

Owns: sockets opened by tests and the parsing of what they read.
Must not touch: server processes (see `launcher`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class RawResult:
    data: bytes
    closed: bool  # the server closed the connection (EOF or reset) before the timeout
    elapsed: float


def raw_exchange(
    port: int,
    data: bytes,
    timeout: float = 3.0,
    host: str = "127.0.0.1",
    until: Callable[[bytes], bool] | None = None,
) -> RawResult:
    """Sends `data`, reads until the server closes, `until(received)` holds, or `timeout`."""
    start = time.monotonic()
    received = b""
    closed = False
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if data:
            sock.sendall(data)
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            if until is not None and until(received):
                break
    return RawResult(received, closed, time.monotonic() - start)


def raw_request(port: int, data: bytes, timeout: float = 3.0, host: str = "127.0.0.1") -> bytes:
    """Sends bytes and returns what came back before the connection closed or `timeout`."""
    return raw_exchange(port, data, timeout=timeout, host=host).data


def recv_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Reads from a connected socket until EOF/reset (closed=True) or `timeout`."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return got, False
        except (ConnectionResetError, BrokenPipeError):
            return got, True
        if not chunk:
            return got, True
        got += chunk


def read_response(sock: socket.socket, timeout: float = 3.0, method: str = "GET") -> Response:
    """Reads exactly one complete response (skipping 1xx) from a kept-alive connection."""
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        resps, _rest = _parse(buf, [method], eof=False)
        finals = [r for r in resps if r.status >= 200]
        if finals:
            return finals[0]
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response within {timeout}s; got {buf[:500]!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; got {buf[:500]!r}")
        buf += chunk


# --------------------------------------------------------------------------- response parser


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = True
    chunked: bool = False

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def has(self, name: str) -> bool:
        return self.header(name) is not None


class _NeedMore(Exception):
    pass


def _parse_one(data: bytes, method: str, eof: bool) -> tuple[Response, bytes]:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise _NeedMore
    head = data[:end].decode("latin-1")
    rest = data[end + 4 :]
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"bad status line {lines[0]!r}")
    resp = Response(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        resp.headers.append((name.strip(), value.strip()))
    if 100 <= resp.status < 200 or resp.status in (204, 304) or method == "HEAD":
        return resp, rest
    te = (resp.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        resp.chunked = True
        body = b""
        pos = 0
        while True:
            nl = rest.find(b"\r\n", pos)
            if nl < 0:
                if eof:
                    resp.body, resp.complete = body, False
                    return resp, b""
                raise _NeedMore
            size_text = rest[pos:nl].split(b";")[0].strip()
            size = int(size_text, 16)
            pos = nl + 2
            if size == 0:
                # trailers until an empty line
                while True:
                    nl = rest.find(b"\r\n", pos)
                    if nl < 0:
                        if eof:
                            resp.body, resp.complete = body, False
                            return resp, b""
                        raise _NeedMore
                    trailer = rest[pos:nl]
                    pos = nl + 2
                    if not trailer:
                        resp.body = body
                        return resp, rest[pos:]
            if len(rest) < pos + size + 2:
                if eof:
                    resp.body, resp.complete = body + rest[pos : pos + size], False
                    return resp, b""
                raise _NeedMore
            body += rest[pos : pos + size]
            pos += size + 2
    cl = resp.header("content-length")
    if cl is not None:
        n = int(cl)
        if len(rest) < n:
            if eof:
                resp.body, resp.complete = rest, False
                return resp, b""
            raise _NeedMore
        resp.body = rest[:n]
        return resp, rest[n:]
    # close-delimited
    if not eof:
        raise _NeedMore
    resp.body = rest
    return resp, b""


def _parse(data: bytes, methods: Sequence[str], eof: bool) -> tuple[list[Response], bytes]:
    out: list[Response] = []
    rest = data
    i = 0
    while rest:
        method = methods[i] if i < len(methods) else (methods[-1] if methods else "GET")
        try:
            resp, rest = _parse_one(rest, method, eof)
        except _NeedMore:
            break
        out.append(resp)
        if resp.status >= 200:
            i += 1
    return out, rest


def parse_responses(
    data: bytes, methods: Sequence[str] = ("GET",), include_interim: bool = False
) -> list[Response]:
    """Parses every response in `data` (read until EOF). `methods[i]` is the method of the
    i-th request (a HEAD response has no body). 1xx responses are dropped unless asked for."""
    resps, _ = _parse(data, methods, eof=True)
    if include_interim:
        return resps
    return [r for r in resps if r.status >= 200]


def parse_response(data: bytes, method: str = "GET") -> Response:
    resps = parse_responses(data, [method])
    assert resps, f"no response in {data[:500]!r}"
    return resps[0]


def status_of(data: bytes) -> int:
    """Status code of the first final response in `data` (0 if none)."""
    for line in data.split(b"\r\n"):
        if line.startswith(b"HTTP/1."):
            code = int(line.split(b" ")[1])
            if code >= 200:
                return code
    return 0


def get(path: str, host: str = "localhost", extra: str = "") -> bytes:
    """A minimal HTTP/1.1 GET request head."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")
