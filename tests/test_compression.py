"""Response compression over sockets: negotiation by Accept-Encoding (gzip, br, zstd), the
cases never compressed, Vary, `compress = false`, `compression = []`, streamed bodies
compressed and flushed piece by piece, the inline path compressing as hyper's does, and the
worker's memo of compressed bodies never serving a body the app did not send."""

from __future__ import annotations

import gzip
import http.client
import importlib.util
import json
import socket
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import brotli
import pytest
import zstandard

from support.launcher import Launcher, Server
from support.paths import APPS, WAIT

SYS_PATH = str(APPS)


def _data_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compress_data", APPS / "compress_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DATA = _data_module()
JSON_BODY: bytes = DATA.JSON_BODY
FIRST: bytes = DATA.FIRST
SECOND: bytes = DATA.SECOND
numbered = DATA.numbered


def config(tmp: Path, server: str = "") -> Path:
    public = tmp / "public"
    public.mkdir(exist_ok=True)
    (public / "page.html").write_bytes(b"<p>static page</p>\n" * 200)
    (public / "image.png").write_bytes(b"\x89PNG" + bytes(4000))
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"[server]\n{server}\n"
        '[[route]]\nprefix = "/json"\npython = "compress_app:json_app"\n\n'
        '[[route]]\nprefix = "/count"\npython = "compress_app:counter_app"\n\n'
        '[[route]]\nprefix = "/typed"\npython = "compress_app:typed_app"\n\n'
        '[[route]]\nprefix = "/small"\npython = "compress_app:small_app"\n\n'
        '[[route]]\nprefix = "/stream"\npython = "compress_app:stream_app"\n\n'
        '[[route]]\nprefix = "/raw"\npython = "compress_app:json_app"\ncompress = false\n\n'
        f'[[route]]\nprefix = "/files"\nstatic = "{public}"\n'
    )
    return cfg


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("compression")
    server = Server(tmp, name="compression")
    server.start(["-c", str(config(tmp)), "--pythonpath", SYS_PATH])
    yield server
    server.stop()


def get(
    srv: Server, path: str, accept: str | None, method: str = "GET", extra: dict | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    headers = dict(extra or {})
    if accept is not None:
        headers["Accept-Encoding"] = accept
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=WAIT)
    try:
        # skip_accept_encoding: http.client would add "identity" otherwise.
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def decode(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise AssertionError(coding)


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_each_coding_round_trips(srv: Server, coding: str) -> None:
    status, h, body = get(srv, "/json", coding)
    assert status == 200
    assert h["Content-Encoding"] == coding
    assert h["Vary"] == "Accept-Encoding"
    assert int(h["Content-Length"]) == len(body) < len(JSON_BODY) // 3
    assert decode(coding, body) == JSON_BODY


def test_server_order_then_client_weights(srv: Server) -> None:
    assert get(srv, "/json", "gzip, br, zstd")[1]["Content-Encoding"] == "zstd"
    assert get(srv, "/json", "gzip;q=1, br;q=0.5")[1]["Content-Encoding"] == "gzip"
    assert get(srv, "/json", "zstd;q=0, *")[1]["Content-Encoding"] == "br"


def test_no_acceptable_coding_is_sent_as_is(srv: Server) -> None:
    for accept in (None, "identity", "deflate", "gzip;q=0"):
        status, h, body = get(srv, "/json", accept)
        assert status == 200 and body == JSON_BODY, accept
        assert "Content-Encoding" not in h
        # Nothing to choose between for this client: the inline path's answer, no Vary.
        assert "Vary" not in h


def test_never_compressed(srv: Server) -> None:
    # HEAD, small bodies, images, no-transform, already encoded, a route with compress = false.
    status, h, body = get(srv, "/json", "gzip", method="HEAD")
    assert status == 200 and body == b"" and "Content-Encoding" not in h
    _, h, body = get(srv, "/small", "gzip")
    assert "Content-Encoding" not in h and json.loads(body) == {"ok": True}
    assert "Vary" not in h
    _, h, body = get(srv, "/typed?png", "gzip")
    assert "Content-Encoding" not in h and body == JSON_BODY
    _, h, body = get(srv, "/typed?no-transform", "gzip")
    assert "Content-Encoding" not in h and body == JSON_BODY
    _, h, body = get(srv, "/typed?encoded", "gzip")
    assert h["Content-Encoding"] == "identity-x" and body == JSON_BODY
    _, h, body = get(srv, "/raw", "gzip")
    assert "Content-Encoding" not in h and body == JSON_BODY and "Vary" not in h
    _, h, body = get(srv, "/files/image.png", "gzip")
    assert "Content-Encoding" not in h and len(body) == 4004


def test_static_files_are_compressed_but_never_their_ranges(srv: Server) -> None:
    page = b"<p>static page</p>\n" * 200
    status, h, body = get(srv, "/files/page.html", "gzip")
    assert status == 200 and h["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == page
    assert h["ETag"].startswith('W/"')
    assert "Accept-Ranges" not in h
    # The weak tag still validates the compressed representation.
    assert get(srv, "/files/page.html", "gzip", extra={"If-None-Match": h["ETag"]})[0] == 304
    status, h, body = get(srv, "/files/page.html", "gzip", extra={"Range": "bytes=0-9"})
    assert status == 206 and body == page[:10] and "Content-Encoding" not in h


def _exchange(srv: Server, head: bytes) -> tuple[list[bytes], bytes]:
    """One request on its own connection (`Connection: close`): its status line and sorted
    fields (but Date), and its raw body."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    fields, _, body = data.partition(b"\r\n\r\n")
    status, *lines = fields.lower().split(b"\r\n")
    return [status, *sorted(line for line in lines if not line.startswith(b"date:"))], body


@pytest.mark.parametrize("path", ["/json", "/small", "/raw"])
def test_the_inline_path_compresses_as_hyper_does(srv: Server, path: str) -> None:
    # The same GET on the inline path and, with `Content-Length: 0`, on hyper's: the same
    # fields (but Date) and the same bytes, compressed where the rules say so.
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n"
    inline = _exchange(srv, (head + "\r\n").encode())
    hyper = _exchange(srv, (head + "Content-Length: 0\r\n\r\n").encode())
    assert inline == hyper
    compressed = b"content-encoding: gzip" in inline[0]
    assert (b"vary: accept-encoding" in inline[0]) == (path == "/json")
    assert compressed == (path == "/json")
    if compressed:
        assert gzip.decompress(inline[1]) == JSON_BODY


def test_streamed_bodies_are_compressed_piece_by_piece(launcher: Launcher, tmp_path: Path) -> None:
    release = tmp_path / "release"
    cfg = config(tmp_path, server="threads = 2")
    srv = launcher.start(
        ["-c", str(cfg), "--pythonpath", SYS_PATH], env={"WSRUN_TEST_RELEASE": str(release)}
    )
    with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) as sock:
        sock.sendall(
            b"GET /stream HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        )
        inflater = zlib.decompressobj(wbits=31)
        received = b""
        head = b""
        decoded = b""
        # The first piece arrives compressed and decodable while the app still waits for the
        # release: the body was not buffered whole.
        while FIRST not in decoded:
            chunk = sock.recv(65536)
            assert chunk, "closed before the first piece"
            received += chunk
            if not head and b"\r\n\r\n" in received:
                head, _, received = received.partition(b"\r\n\r\n")
                assert b"content-encoding: gzip" in head.lower()
                assert b"transfer-encoding: chunked" in head.lower()
            if head:
                payload, received = dechunk(received)
                decoded += inflater.decompress(payload)
        assert not release.exists()
        release.write_bytes(b"")
        while chunk := sock.recv(65536):
            received += chunk
        payload, _ = dechunk(received)
        decoded += inflater.decompress(payload)
    assert decoded == FIRST + SECOND
    assert inflater.eof


def dechunk(data: bytes) -> tuple[bytes, bytes]:
    """The payload of the whole chunks at the start of `data`, and what is left."""
    out = b""
    while True:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return out, data
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return out, b""
        if len(rest) < size + 2:
            return out, data
        out += rest[:size]
        data = rest[size + 2 :]


def test_compression_off(launcher: Launcher, tmp_path: Path) -> None:
    srv = launcher.start(
        ["-c", str(config(tmp_path, server="compression = []")), "--pythonpath", SYS_PATH]
    )
    status, h, body = get(srv, "/json", "gzip, br, zstd")
    assert status == 200 and body == JSON_BODY
    assert "Content-Encoding" not in h and "Vary" not in h


def test_compression_flag_limits_codings(launcher: Launcher, tmp_path: Path) -> None:
    srv = launcher.start(
        ["-c", str(config(tmp_path)), "--pythonpath", SYS_PATH, "--compression", "gzip"]
    )
    assert get(srv, "/json", "zstd, br, gzip")[1]["Content-Encoding"] == "gzip"
    status, h, body = get(srv, "/json", "br")
    assert status == 200 and body == JSON_BODY and "Content-Encoding" not in h
    # The answer depended on Accept-Encoding (gzip would have been used): Vary says so.
    assert h["Vary"] == "Accept-Encoding"


@pytest.mark.parametrize("memo", ["", "compression_cache = 0"])
def test_a_kept_compressed_body_is_only_sent_for_the_same_bytes(
    launcher: Launcher, tmp_path: Path, memo: str
) -> None:
    """With the memo (`server/compress_cache.rs`, on by default) and without it: bodies of one
    length that differ in six bytes, one body sent again and again, and the same body on two
    routes all decode, in every coding, to exactly what the app sent."""
    srv = launcher.start(["-c", str(config(tmp_path, server=memo)), "--pythonpath", SYS_PATH])
    codings = ["gzip", "br", "zstd"]
    for n in range(1, 16):
        coding = codings[n % 3]
        status, h, body = get(srv, "/count", coding)
        assert status == 200 and h["Content-Encoding"] == coding
        assert decode(coding, body) == numbered(n), n
    for coding in codings:
        for path in ("/json", "/typed"):
            sent = {get(srv, path, coding)[2] for _ in range(3)}
            assert len(sent) == 1, f"{path} {coding}: one body, the same bytes every time"
            assert decode(coding, sent.pop()) == JSON_BODY
