"""wsrun.views.Staticfile and wsrun.headers.redirect from the embedded package, over sockets:
ETag/304, Last-Modified, Cache-Control, HEAD, no path traversal."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
import requests

from support.http import parse_response, raw_exchange, status_of
from support.launcher import Server
from support.paths import APPS, WAIT
from support.traversal import TRAVERSALS

SECRET = b"TOP SECRET\n"


@pytest.fixture(scope="module")
def static_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("static")
    public = tmp / "public"
    (public / "sub").mkdir(parents=True)
    (public / "hello.txt").write_bytes(b"hello static\n")
    (public / "sub" / "page.html").write_bytes(b"<p>page</p>\n")
    (public / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (tmp / "secret").write_bytes(SECRET)
    (public / "link").symlink_to(tmp / "secret")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        '[[route]]\nprefix = "/static"\npython = "static_app:app"\n\n'
        '[[route]]\nprefix = "/cached"\npython = "static_app:cached"\n\n'
        '[[route]]\nprefix = "/go"\npython = "redirect_app:app"\n\n'
        f'[[route]]\nprefix = "/files"\nstatic = "{public}"\n'
    )
    srv = Server(tmp, name="static")
    srv.start(
        ["-c", str(cfg), "--pythonpath", str(APPS)], env={"WSRUN_TEST_STATIC_ROOT": str(public)}
    )
    srv.tmp = tmp
    yield srv
    srv.stop()


def test_serves_file_with_validators(static_srv: Server) -> None:
    r = requests.get(static_srv.url + "/static/hello.txt", timeout=WAIT)
    assert r.status_code == 200
    assert r.content == b"hello static\n"
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["Content-Length"] == "13"
    assert r.headers.get("ETag")
    assert r.headers.get("Last-Modified")
    assert "Cache-Control" not in r.headers


def test_etag_304(static_srv: Server) -> None:
    etag = requests.get(static_srv.url + "/static/hello.txt", timeout=WAIT).headers["ETag"]
    r = requests.get(
        static_srv.url + "/static/hello.txt", headers={"If-None-Match": etag}, timeout=WAIT
    )
    assert r.status_code == 304
    assert r.content == b""
    other = requests.get(
        static_srv.url + "/static/hello.txt", headers={"If-None-Match": '"nope"'}, timeout=WAIT
    )
    assert other.status_code == 200


def test_if_modified_since_304(static_srv: Server) -> None:
    lm = requests.get(static_srv.url + "/static/hello.txt", timeout=WAIT).headers["Last-Modified"]
    r = requests.get(
        static_srv.url + "/static/hello.txt", headers={"If-Modified-Since": lm}, timeout=WAIT
    )
    assert r.status_code == 304


def test_maxage(static_srv: Server) -> None:
    r = requests.get(static_srv.url + "/cached/sub/page.html", timeout=WAIT)
    assert r.status_code == 200 and r.content == b"<p>page</p>\n"
    assert r.headers["Cache-Control"] == "max-age=3600"
    assert r.headers["Content-Type"].startswith("text/html")


def test_head_and_method_not_allowed(static_srv: Server) -> None:
    h = requests.head(static_srv.url + "/static/hello.txt", timeout=WAIT)
    assert h.status_code == 200 and h.headers["Content-Length"] == "13" and h.content == b""
    assert requests.post(static_srv.url + "/static/hello.txt", timeout=WAIT).status_code == 405


def test_big_file(static_srv: Server) -> None:
    data = (static_srv.tmp / "public" / "big.bin").read_bytes()
    r = requests.get(static_srv.url + "/static/big.bin", timeout=WAIT)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_missing_and_directory_404(static_srv: Server) -> None:
    assert requests.get(static_srv.url + "/static/nope.txt", timeout=WAIT).status_code == 404
    assert requests.get(static_srv.url + "/static/sub", timeout=WAIT).status_code == 404


@pytest.mark.parametrize("prefix", ["/static", "/files"])
@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_traversal(static_srv: Server, prefix: str, path: str) -> None:
    res = raw_exchange(
        static_srv.port,
        f"GET {prefix}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    )
    assert SECRET not in res.data
    assert status_of(res.data) in (400, 403, 404), res.data[:200]


def test_redirect_helper(static_srv: Server) -> None:
    r = requests.get(static_srv.url + "/go/", allow_redirects=False, timeout=WAIT)
    assert r.status_code == 302 and r.headers["Location"] == "/target"
    p = requests.get(static_srv.url + "/go/perm", allow_redirects=False, timeout=WAIT)
    assert p.status_code == 301 and p.headers["Location"] == "/target"
    iri = parse_response(
        raw_exchange(
            static_srv.port, b"GET /go/iri HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ).data
    )
    assert iri.status == 302 and iri.header("location") == "/caf%C3%A9"


# Staticfile and a static route on the same directory answer each request alike.
CONDITIONS_AND_RANGES = [
    ({"Range": "bytes=0-4"}, 206),
    ({"Range": "bytes=-5"}, 206),
    ({"Range": "bytes=6-"}, 206),
    ({"Range": "bytes=8-1000"}, 206),
    ({"Range": "bytes=100-"}, 416),
    ({"Range": "bytes=5-2"}, 200),
    ({"Range": "items=0-1"}, 200),
    ({"If-Match": '"nope"'}, 412),
    ({"If-Match": "*"}, 200),
    ({"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 412),
    ({"If-Range": '"nope"', "Range": "bytes=0-4"}, 200),
    ({"If-Range": "Thu, 01 Jan 1970 00:00:00 GMT", "Range": "bytes=0-4"}, 200),
]


@pytest.mark.parametrize(("headers", "status"), CONDITIONS_AND_RANGES)
def test_staticfile_answers_conditions_and_ranges_as_a_static_route(
    static_srv: Server, headers: dict[str, str], status: int
) -> None:
    view = requests.get(static_srv.url + "/static/hello.txt", headers=headers, timeout=WAIT)
    route = requests.get(static_srv.url + "/files/hello.txt", headers=headers, timeout=WAIT)
    assert view.status_code == route.status_code == status
    assert view.headers.get("Content-Range") == route.headers.get("Content-Range")
    if status in (200, 206):
        assert view.content == route.content
        assert view.headers["Accept-Ranges"] == "bytes"


def test_staticfile_if_range_with_the_etag_and_if_match_it(static_srv: Server) -> None:
    url = static_srv.url + "/static/hello.txt"
    etag = requests.get(url, timeout=WAIT).headers["ETag"]
    r = requests.get(url, headers={"If-Range": etag, "Range": "bytes=0-4"}, timeout=WAIT)
    assert r.status_code == 206 and r.content == b"hello"
    assert r.headers["Content-Range"] == "bytes 0-4/13"
    weak = requests.get(url, headers={"If-Match": f"W/{etag}"}, timeout=WAIT)
    assert weak.status_code == 412, "If-Match compares strongly"
    assert requests.get(url, headers={"If-Match": etag}, timeout=WAIT).status_code == 200


def test_staticfile_several_ranges_are_multipart(static_srv: Server) -> None:
    data = (static_srv.tmp / "public" / "big.bin").read_bytes()
    r = requests.get(
        static_srv.url + "/static/big.bin",
        headers={"Range": "bytes=0-9,100000-100099,-7"},
        timeout=WAIT,
    )
    assert r.status_code == 206
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.partition("boundary=")[2].encode()
    assert int(r.headers["Content-Length"]) == len(r.content)
    parts = r.content.split(b"--" + boundary)
    assert parts[0] == b"\r\n" and parts[-1] == b"--\r\n"
    size = len(data)
    expected = [(0, 9), (100000, 100099), (size - 7, size - 1)]
    for part, (first, last) in zip(parts[1:-1], expected, strict=True):
        head, _, body = part.partition(b"\r\n\r\n")
        assert f"Content-Range: bytes {first}-{last}/{size}".encode() in head
        assert body == data[first : last + 1] + b"\r\n"
