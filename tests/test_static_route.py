"""Static routes (`static = "dir"`) over sockets: conditional requests with RFC 9110
precedence, ranges (206, multipart/byteranges, 416, If-Range), HEAD, Cache-Control from
`max_age`, types, precompressed siblings, directory redirects and listings, dotfiles, and
path safety against encoded traversal."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.client
import os
import re
from collections.abc import Iterator

import pytest

from support.http import parse_response, raw_exchange, status_of
from support.launcher import Server
from support.paths import WAIT
from support.traversal import TRAVERSALS

SECRET = b"TOP SECRET\n"
DOTENV = b"DOTENV=1\n"
TEXT = b"0123456789abcdefghij\n"
CSS = b"body { color: red }\n" * 10


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("static_route")
    public = tmp / "public"
    (public / "sub").mkdir(parents=True)
    (public / "empty").mkdir()
    (public / "docs").mkdir()
    (public / "text.txt").write_bytes(TEXT)
    (public / "site.css").write_bytes(CSS)
    (public / "sub" / "index.html").write_bytes(b"<p>index</p>\n")
    (public / "docs" / "a<b>&c.txt").write_bytes(b"x")
    (public / "docs" / "folder").mkdir()
    (public / "docs" / ".private").write_bytes(b"p")
    (public / ".env").write_bytes(DOTENV)
    (public / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (public / "app.js").write_bytes(b"console.log('plain');\n" * 20)
    (public / "app.js.gz").write_bytes(gzip.compress((public / "app.js").read_bytes()))
    (public / "app.js.br").write_bytes(b"pretend brotli bytes")
    (tmp / "secret").write_bytes(SECRET)
    (public / "link").symlink_to(tmp / "secret")
    (public / "envlink").symlink_to(public / ".env")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f'[[route]]\nprefix = "/files"\nstatic = "{public}"\nmax_age = 60\nprecompressed = true\n\n'
        f'[[route]]\nprefix = "/list"\nstatic = "{public}"\nlisting = true\n\n'
        f'[[route]]\nprefix = "/hidden"\nstatic = "{public}"\nhidden = true\n\n'
        f'[[route]]\nprefix = "/"\nstatic = "{public}"\n'
    )
    server = Server(tmp, name="static_route")
    server.start(["-c", str(cfg)])
    server.tmp = tmp
    yield server
    server.stop()


def get(
    srv: Server, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=WAIT)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- plain GET and HEAD
def test_get_carries_validators_ranges_cache_and_type(srv: Server) -> None:
    status, h, body = get(srv, "/files/site.css")
    assert status == 200 and body == CSS
    assert h["Content-Type"] == "text/css; charset=utf-8"
    assert h["Content-Length"] == str(len(CSS))
    assert h["Accept-Ranges"] == "bytes"
    assert h["Cache-Control"] == "max-age=60"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', h["ETag"])
    assert email.utils.parsedate_to_datetime(h["Last-Modified"]) is not None
    # Without max_age there is no Cache-Control.
    assert "Cache-Control" not in get(srv, "/site.css")[1]


def test_head_has_the_headers_of_get(srv: Server) -> None:
    _, got, _ = get(srv, "/files/site.css")
    status, head, body = get(srv, "/files/site.css", method="HEAD")
    assert status == 200 and body == b""
    skip = {"date"}
    pairs = lambda m: sorted((k.lower(), v) for k, v in m.items() if k.lower() not in skip)  # noqa: E731
    assert pairs(head) == pairs(got)


def test_other_methods_are_refused(srv: Server) -> None:
    status, h, _ = get(srv, "/files/text.txt", method="DELETE")
    assert status == 405 and h["Allow"] == "GET, HEAD"


# --------------------------------------------------------------------------- conditional requests
def validators(srv: Server) -> tuple[str, str]:
    _, h, _ = get(srv, "/files/text.txt")
    return h["ETag"], h["Last-Modified"]


def test_if_none_match_weak_comparison_gives_304(srv: Server) -> None:
    etag, _ = validators(srv)
    for value in (etag, "W/" + etag, f'"other", {etag}', "*"):
        status, h, body = get(srv, "/files/text.txt", {"If-None-Match": value})
        assert status == 304, value
        assert body == b""
        assert h["ETag"] == etag and h["Cache-Control"] == "max-age=60"
    assert get(srv, "/files/text.txt", {"If-None-Match": '"other"'})[0] == 200


def test_if_modified_since(srv: Server) -> None:
    _, last_modified = validators(srv)
    assert get(srv, "/files/text.txt", {"If-Modified-Since": last_modified})[0] == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert get(srv, "/files/text.txt", {"If-Modified-Since": old})[0] == 200
    assert get(srv, "/files/text.txt", {"If-Modified-Since": "garbage"})[0] == 200


def test_if_match_and_if_unmodified_since_give_412(srv: Server) -> None:
    etag, last_modified = validators(srv)
    assert get(srv, "/files/text.txt", {"If-Match": '"other"'})[0] == 412
    assert get(srv, "/files/text.txt", {"If-Match": "W/" + etag})[0] == 412
    assert get(srv, "/files/text.txt", {"If-Match": etag})[0] == 200
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert get(srv, "/files/text.txt", {"If-Unmodified-Since": old})[0] == 412
    assert get(srv, "/files/text.txt", {"If-Unmodified-Since": last_modified})[0] == 200


def test_rfc_9110_precedence(srv: Server) -> None:
    etag, last_modified = validators(srv)
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    # If-Match holds, so If-Unmodified-Since (which would fail) is not looked at.
    assert get(srv, "/files/text.txt", {"If-Match": etag, "If-Unmodified-Since": old})[0] == 200
    # A failed If-Match is 412 even where If-None-Match would give 304.
    h = {"If-Match": '"x"', "If-None-Match": etag}
    assert get(srv, "/files/text.txt", h)[0] == 412
    # If-None-Match decides; If-Modified-Since (which alone would give 304) is ignored.
    h = {"If-None-Match": '"x"', "If-Modified-Since": last_modified}
    assert get(srv, "/files/text.txt", h)[0] == 200


# --------------------------------------------------------------------------- ranges
def test_single_range(srv: Server) -> None:
    status, h, body = get(srv, "/files/text.txt", {"Range": "bytes=2-5"})
    assert status == 206 and body == TEXT[2:6]
    assert h["Content-Range"] == f"bytes 2-5/{len(TEXT)}"
    assert h["Content-Length"] == "4"
    status, h, body = get(srv, "/files/text.txt", {"Range": "bytes=-3"})
    assert status == 206 and body == TEXT[-3:]
    big = (srv.tmp / "public" / "big.bin").read_bytes()
    start = 1_000_000
    status, h, body = get(srv, "/files/big.bin", {"Range": f"bytes={start}-"})
    assert status == 206 and body == big[start:]


def test_several_ranges_are_multipart(srv: Server) -> None:
    status, h, body = get(srv, "/files/text.txt", {"Range": "bytes=0-1,10-12"})
    assert status == 206
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", h["Content-Type"])
    assert match, h["Content-Type"]
    boundary = match.group(1).encode()
    assert h["Content-Length"] == str(len(body))
    parts = body.split(b"--" + boundary)
    assert parts[-1] == b"--\r\n"
    found = []
    for part in parts[1:-1]:
        head, _, data = part.partition(b"\r\n\r\n")
        assert b"Content-Type: text/plain; charset=utf-8" in head
        crange = re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", head)
        assert crange
        first, last, total = (int(x) for x in crange.groups())
        assert total == len(TEXT)
        data = data.removesuffix(b"\r\n")
        assert data == TEXT[first : last + 1]
        found.append((first, last))
    assert found == [(0, 1), (10, 12)]


def test_unsatisfiable_range_is_416(srv: Server) -> None:
    status, h, _ = get(srv, "/files/text.txt", {"Range": f"bytes={len(TEXT)}-"})
    assert status == 416
    assert h["Content-Range"] == f"bytes */{len(TEXT)}"


def test_malformed_range_is_ignored(srv: Server) -> None:
    status, _, body = get(srv, "/files/text.txt", {"Range": "bytes=5-1"})
    assert status == 200 and body == TEXT


def test_if_range(srv: Server) -> None:
    etag, last_modified = validators(srv)
    for current in (etag, last_modified):
        status, _, body = get(srv, "/files/text.txt", {"Range": "bytes=0-0", "If-Range": current})
        assert status == 206 and body == TEXT[:1], current
    for stale in ('"stale"', "W/" + etag, "Mon, 01 Jan 2001 00:00:00 GMT"):
        status, _, body = get(srv, "/files/text.txt", {"Range": "bytes=0-0", "If-Range": stale})
        assert status == 200 and body == TEXT, stale


def test_head_ignores_range(srv: Server) -> None:
    status, h, _ = get(srv, "/files/text.txt", {"Range": "bytes=0-0"}, method="HEAD")
    assert status == 200 and h["Content-Length"] == str(len(TEXT))


# --------------------------------------------------------------------------- precompressed
def test_precompressed_siblings(srv: Server) -> None:
    public = srv.tmp / "public"
    status, plain_h, plain = get(srv, "/files/app.js")
    assert status == 200 and plain == (public / "app.js").read_bytes()
    assert "Content-Encoding" not in plain_h
    assert plain_h["Vary"] == "Accept-Encoding"
    status, gz_h, gz = get(srv, "/files/app.js", {"Accept-Encoding": "gzip"})
    assert status == 200 and gz == (public / "app.js.gz").read_bytes()
    assert gz_h["Content-Encoding"] == "gzip" and gz_h["Vary"] == "Accept-Encoding"
    assert gz_h["Content-Type"] == plain_h["Content-Type"]
    assert gzip.decompress(gz) == plain
    status, br_h, br = get(srv, "/files/app.js", {"Accept-Encoding": "gzip, br"})
    assert status == 200 and br == b"pretend brotli bytes"
    assert br_h["Content-Encoding"] == "br"
    assert len({plain_h["ETag"], gz_h["ETag"], br_h["ETag"]}) == 3
    # Each representation validates with its own tag.
    h = {"Accept-Encoding": "gzip", "If-None-Match": gz_h["ETag"]}
    assert get(srv, "/files/app.js", h)[0] == 304
    h = {"Accept-Encoding": "gzip", "If-None-Match": plain_h["ETag"]}
    assert get(srv, "/files/app.js", h)[0] == 200
    # q=0 refuses a coding; an unknown one gets the file itself.
    _, h, _ = get(srv, "/files/app.js", {"Accept-Encoding": "br;q=0, gzip"})
    assert h["Content-Encoding"] == "gzip"
    _, h, body = get(srv, "/files/app.js", {"Accept-Encoding": "zstd"})
    assert "Content-Encoding" not in h and body == plain


def test_siblings_are_not_used_without_precompressed(srv: Server) -> None:
    # app.js is under the 1 KiB compression minimum, so the file itself comes back.
    _, h, body = get(srv, "/hidden/app.js", {"Accept-Encoding": "gzip, br"})
    assert body == (srv.tmp / "public" / "app.js").read_bytes()
    assert "Content-Encoding" not in h and "Vary" not in h


# --------------------------------------------------------------------------- directories
def test_directory_without_slash_redirects_keeping_the_query(srv: Server) -> None:
    status, h, _ = get(srv, "/files/sub")
    assert status == 301 and h["Location"] == "/files/sub/"
    status, h, _ = get(srv, "/files/sub?a=1&b=2")
    assert status == 301 and h["Location"] == "/files/sub/?a=1&b=2"
    status, h, _ = get(srv, "/files")
    assert status == 301 and h["Location"] == "/files/"


def test_directory_index_and_no_listing(srv: Server) -> None:
    status, _, body = get(srv, "/files/sub/")
    assert status == 200 and body == b"<p>index</p>\n"
    assert get(srv, "/files/empty/")[0] == 404
    assert get(srv, "/files/docs/")[0] == 404


def test_listing_escapes_names_and_hides_dotfiles(srv: Server) -> None:
    status, h, body = get(srv, "/list/docs/")
    assert status == 200 and h["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert "a&lt;b&gt;&amp;c.txt" in page
    assert 'href="a%3Cb%3E%26c.txt"' in page
    assert 'href="folder/"' in page
    assert "<b>" not in page
    assert ".private" not in page
    assert get(srv, "/list/empty/")[0] == 200


# --------------------------------------------------------------------------- path safety
def test_dotfiles_need_hidden(srv: Server) -> None:
    assert get(srv, "/files/.env")[0] == 404
    assert get(srv, "/files/envlink")[0] == 404
    status, _, body = get(srv, "/hidden/.env")
    assert status == 200 and body == DOTENV


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("prefix", ["/files", "/list", "/hidden"])
def test_no_path_traversal(srv: Server, prefix: str, path: str) -> None:
    res = raw_exchange(
        srv.port, f"GET {prefix}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert SECRET not in res.data
    expected = (400, 404)
    if prefix != "/hidden":
        assert DOTENV not in res.data
    if prefix == "/hidden" and path in ("/%2eenv", "/.%65nv"):
        expected = (200,)  # `.env` itself, allowed on this route
    assert status_of(res.data) in expected, res.data[:200]


def test_big_file_whole(srv: Server) -> None:
    data = (srv.tmp / "public" / "big.bin").read_bytes()
    status, h, body = get(srv, "/files/big.bin")
    assert status == 200 and h["Content-Type"] == "application/octet-stream"
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_keep_alive_across_static_responses(srv: Server) -> None:
    request = b"GET /files/text.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    ranged = b"GET /files/text.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,3-4\r\n\r\n"
    last = b"GET /files/text.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    res = raw_exchange(srv.port, request + ranged + last)
    assert res.data.count(b"HTTP/1.1 200 ") == 2
    assert res.data.count(b"HTTP/1.1 206 ") == 1
    assert parse_response(res.data).status == 200
