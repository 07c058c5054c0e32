"""Unit tests of the embedded Python package (python/wsrun, python/fapws4).

The modules are imported straight from /work/main/python and driven as plain
WSGI callables with fake environ dicts and start_response; no server involved.
"""

import errno
import os
import re
import sys
import threading
import time
import typing
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent / "python"
sys.path.insert(0, str(PYTHON_DIR))

import fapws4.base  # noqa: E402
import fapws4.headers  # noqa: E402
import fapws4.views  # noqa: E402
import wsrun  # noqa: E402
import wsrun.headers  # noqa: E402
import wsrun.views  # noqa: E402
from support.wsgi_unit import (  # noqa: E402
    HAVE_PROC_FD,
    Response,
    StartResponse,
    call,
    call_validated,
    make_environ,
    open_fds,
    wrapper_recorder,
)
from wsrun.headers import redirect  # noqa: E402
from wsrun.views import BLOCK_SIZE, Staticfile  # noqa: E402

MTIME = 1_000_000_000  # Sun, 09 Sep 2001 01:46:40 GMT
MTIME_HTTP = "Sun, 09 Sep 2001 01:46:40 GMT"
HELLO = b"hello world\n"
SECRET = b"TOP SECRET\n"

# A validator complaint, or a file closed only by the garbage collector, fails the test.
pytestmark = [
    pytest.mark.filterwarnings("error::wsgiref.validate.WSGIWarning"),
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _require_binary() -> None:
    """Overrides the end-to-end suite's autouse check in tests/conftest.py.

    These unit tests import the Python package directly and need no built binary.
    """


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/www (the root) with files, plus files outside it."""
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "page.html").write_bytes(b"<p>page</p>\n")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b")
    (root / "noext").write_bytes(b"?")
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "big.bin").write_bytes(os.urandom(3 * BLOCK_SIZE + 123))
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_bytes(SECRET)
    # A sibling whose name starts with the root's name: a bare prefix test is not enough.
    (tmp_path / "www2").mkdir()
    (tmp_path / "www2" / "secret.txt").write_bytes(SECRET)
    (root / "link_in").symlink_to("hello.txt")
    (root / "link_out").symlink_to("../secret.txt")
    (root / "link_abs").symlink_to(tmp_path / "secret.txt")
    (root / "link_sibling").symlink_to("../www2/secret.txt")
    (root / "dirlink_out").symlink_to("../outside")
    os.utime(root / "hello.txt", ns=(MTIME * 10**9, MTIME * 10**9))
    return root


@pytest.fixture
def app(tree: Path) -> Staticfile:
    return Staticfile(str(tree))


# --------------------------------------------------------------------------- Staticfile: 200


def test_get_file_headers_and_body(app: Staticfile, tree: Path) -> None:
    resp = call_validated(app, make_environ("/hello.txt"))
    assert resp.status == "200 OK"
    assert resp.body == HELLO
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.headers["content-length"] == str(len(HELLO))
    assert resp.headers["last-modified"] == MTIME_HTTP
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"', resp.headers["etag"])
    assert "cache-control" not in resp.headers


def test_nested_file_and_pathlike_root(tree: Path) -> None:
    resp = call(Staticfile(tree), make_environ("/sub/inner.txt"))
    assert (resp.status, resp.body) == ("200 OK", b"inner\n")


def test_dot_segments_and_double_slashes_are_harmless(app: Staticfile) -> None:
    resp = call(app, make_environ("/./sub//./inner.txt"))
    assert (resp.status, resp.body) == ("200 OK", b"inner\n")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/page.html", "text/html; charset=utf-8"),
        ("/image.png", "image/png"),
        ("/archive.tar.gz", "application/gzip"),
        ("/noext", "application/octet-stream"),
    ],
)
def test_content_type(app: Staticfile, path: str, content_type: str) -> None:
    resp = call(app, make_environ(path))
    assert resp.status == "200 OK"
    assert resp.headers["content-type"] == content_type


def test_body_through_file_wrapper_is_closed(app: Staticfile, tree: Path) -> None:
    file_wrapper, seen = wrapper_recorder()
    environ = make_environ("/big.bin")
    environ["wsgi.file_wrapper"] = file_wrapper
    resp = call_validated(app, environ)
    assert resp.status == "200 OK"
    assert resp.body == (tree / "big.bin").read_bytes()
    assert len(seen) == 1
    filelike, blksize = seen[0]
    assert blksize == 65536
    assert filelike.closed


def test_body_without_file_wrapper_comes_in_blocks(app: Staticfile, tree: Path) -> None:
    resp = call_validated(app, make_environ("/big.bin"))
    data = (tree / "big.bin").read_bytes()
    assert resp.body == data
    assert resp.headers["content-length"] == str(len(data))
    assert len(resp.chunks) == 4
    assert all(len(chunk) <= BLOCK_SIZE for chunk in resp.chunks)


@pytest.mark.skipif(not HAVE_PROC_FD, reason="needs /proc/self/fd")
def test_closing_unread_body_closes_file(app: Staticfile) -> None:
    before = open_fds()
    result = app(make_environ("/big.bin"), StartResponse())
    assert open_fds() != before  # the file is open while the body is pending
    result.close()  # type: ignore[attr-defined]
    assert open_fds() == before


def test_body_stops_at_announced_length_when_file_grows(app: Staticfile, tree: Path) -> None:
    start_response = StartResponse()
    result = app(make_environ("/hello.txt"), start_response)
    with open(tree / "hello.txt", "ab") as f:
        f.write(b"appended later")
    try:
        body = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    assert body == HELLO
    assert start_response.headers["content-length"] == str(len(HELLO))


def test_head_has_headers_but_no_body(app: Staticfile) -> None:
    file_wrapper, seen = wrapper_recorder()
    environ = make_environ("/hello.txt", "HEAD")
    environ["wsgi.file_wrapper"] = file_wrapper
    resp = call_validated(app, environ)
    assert resp.status == "200 OK"
    assert resp.body == b""
    assert resp.headers["content-length"] == str(len(HELLO))
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert "etag" in resp.headers
    assert seen == []


def test_etag_changes_when_file_changes(app: Staticfile, tree: Path) -> None:
    first = call(app, make_environ("/hello.txt")).headers["etag"]
    assert call(app, make_environ("/hello.txt")).headers["etag"] == first
    (tree / "hello.txt").write_bytes(b"HELLO WORLD\n")  # same size, new content
    os.utime(tree / "hello.txt", ns=(MTIME * 10**9 + 1, MTIME * 10**9 + 1))
    assert call(app, make_environ("/hello.txt")).headers["etag"] != first


def test_symlink_inside_root_is_served(app: Staticfile) -> None:
    resp = call(app, make_environ("/link_in"))
    assert (resp.status, resp.body) == ("200 OK", HELLO)


def test_root_given_through_a_symlink(tree: Path) -> None:
    link = tree.parent / "www_link"
    link.symlink_to(tree)
    app = Staticfile(str(link))
    assert call(app, make_environ("/hello.txt")).body == HELLO
    assert call(app, make_environ("/link_out")).status == "404 Not Found"


def test_literal_percent_2e_is_just_a_file_name(app: Staticfile, tree: Path) -> None:
    assert call(app, make_environ("/%2e%2e")).status == "404 Not Found"
    (tree / "%2e%2e").write_bytes(b"percent\n")
    resp = call(app, make_environ("/%2e%2e"))
    assert (resp.status, resp.body) == ("200 OK", b"percent\n")


def test_utf8_file_name_reached_through_latin1_path_info(app: Staticfile, tree: Path) -> None:
    (tree / "café.txt").write_bytes(b"utf8 name\n")
    path_info = "/café.txt".encode().decode("latin-1")  # what a server puts in PATH_INFO
    resp = call_validated(app, make_environ(path_info))
    assert (resp.status, resp.body) == ("200 OK", b"utf8 name\n")
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"


def test_non_utf8_file_name_bytes_are_kept(app: Staticfile, tree: Path) -> None:
    with open(os.path.join(os.fsencode(tree), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1 name\n")
    resp = call(app, make_environ("/caf\xe9.txt"))
    assert (resp.status, resp.body) == ("200 OK", b"latin-1 name\n")


# ------------------------------------------------------------------- Staticfile: 404/403/405

TRAVERSALS = [
    "/../secret.txt",
    "/..",
    "/../",
    "/sub/../../secret.txt",
    "/./../secret.txt",
    "//../secret.txt",
    "/sub/../hello.txt",  # stays inside, still refused: no ".." segment at all
    "/%2e%2e/secret.txt",
    "/link_out",
    "/link_abs",
    "/link_sibling",
    "/dirlink_out/x.txt",
    "/hello.txt\x00",
    "/hello.txt\x00.png",
    "/../www2/secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_404(app: Staticfile, tree: Path, path: str) -> None:
    resp = call(app, make_environ(path))
    assert resp.status == "404 Not Found"
    assert SECRET not in resp.body


def test_absolute_path_in_path_info_stays_under_root(app: Staticfile, tree: Path) -> None:
    absolute = str(tree.parent / "secret.txt")
    assert absolute.startswith("/")
    resp = call(app, make_environ("/" + absolute))
    assert resp.status == "404 Not Found"
    assert SECRET not in resp.body


@pytest.mark.parametrize(
    "path",
    ["", "/", "/sub", "/sub/", "/hello.txt/", "/hello.txt/x", "/missing.txt", "/\u0100.txt"],
)
def test_directories_missing_and_bad_paths_are_404(app: Staticfile, path: str) -> None:
    resp = call_validated(app, make_environ(path)) if path else call(app, make_environ(path))
    assert resp.status == "404 Not Found"
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.headers["content-length"] == str(len(resp.body))
    assert b"inner" not in resp.body


def test_missing_root_is_404(tmp_path: Path) -> None:
    resp = call(Staticfile(str(tmp_path / "nope")), make_environ("/hello.txt"))
    assert resp.status == "404 Not Found"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_404_without_blocking(app: Staticfile, tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    outcome: list[Response] = []
    thread = threading.Thread(
        target=lambda: outcome.append(call(app, make_environ("/pipe"))), daemon=True
    )
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "opening a FIFO blocked"
    assert outcome[0].status == "404 Not Found"


def test_permission_denied_is_403(
    app: Staticfile, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fsencode(path).endswith(b"hello.txt"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    resp = call_validated(app, make_environ("/hello.txt"))
    assert resp.status == "403 Forbidden"
    assert HELLO not in resp.body
    assert call(app, make_environ("/page.html")).status == "200 OK"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_are_405(app: Staticfile, method: str) -> None:
    resp = call_validated(app, make_environ("/hello.txt", method))
    assert resp.status == "405 Method Not Allowed"
    assert resp.headers["allow"] == "GET, HEAD"
    assert HELLO not in resp.body


def test_head_error_has_no_body(app: Staticfile) -> None:
    resp = call(app, make_environ("/missing", "HEAD"))
    assert resp.status == "404 Not Found"
    assert resp.body == b""


# --------------------------------------------------------------------------- conditional requests


def etag_of(app: Staticfile, path: str = "/hello.txt") -> str:
    return call(app, make_environ(path)).headers["etag"]


def assert_not_modified(resp: Response, etag: str) -> None:
    assert resp.status == "304 Not Modified"
    assert resp.body == b""
    assert resp.headers["etag"] == etag
    assert "content-type" not in resp.headers
    assert "content-length" not in resp.headers


def test_if_none_match_exact(app: Staticfile) -> None:
    etag = etag_of(app)
    resp = call_validated(app, make_environ("/hello.txt", HTTP_IF_NONE_MATCH=etag))
    assert_not_modified(resp, etag)


@pytest.mark.parametrize(
    "header",
    ["{etag}", "W/{etag}", '"other", {etag}', '"a",W/{etag} , "b"', "*", " * "],
)
def test_if_none_match_forms_that_match(app: Staticfile, header: str) -> None:
    etag = etag_of(app)
    environ = make_environ("/hello.txt", HTTP_IF_NONE_MATCH=header.format(etag=etag))
    assert_not_modified(call(app, environ), etag)


@pytest.mark.parametrize("header", ['"other"', 'W/"other", "x"', "", "garbage"])
def test_if_none_match_forms_that_do_not_match(app: Staticfile, header: str) -> None:
    resp = call(app, make_environ("/hello.txt", HTTP_IF_NONE_MATCH=header))
    assert (resp.status, resp.body) == ("200 OK", HELLO)


def test_if_none_match_takes_precedence_over_if_modified_since(app: Staticfile) -> None:
    environ = make_environ(
        "/hello.txt", HTTP_IF_NONE_MATCH='"other"', HTTP_IF_MODIFIED_SINCE=MTIME_HTTP
    )
    assert call(app, environ).status == "200 OK"


def test_head_conditional_is_304(app: Staticfile) -> None:
    etag = etag_of(app)
    assert_not_modified(
        call(app, make_environ("/hello.txt", "HEAD", HTTP_IF_NONE_MATCH=etag)), etag
    )


@pytest.fixture
def east_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with a local time zone 9 hours ahead of UTC (dates must not depend on it)."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("east_of_utc")
@pytest.mark.parametrize(
    "since",
    [MTIME_HTTP, "Sun, 09 Sep 2001 01:46:40 -0000", formatdate(MTIME + 86400 * 365, usegmt=True)],
)
def test_if_modified_since_not_modified(app: Staticfile, since: str) -> None:
    etag = etag_of(app)
    resp = call_validated(app, make_environ("/hello.txt", HTTP_IF_MODIFIED_SINCE=since))
    assert_not_modified(resp, etag)


@pytest.mark.parametrize(
    "since",
    [
        formatdate(MTIME - 1, usegmt=True),
        "not a date",
        "",
        "Fri, 01 Jan 2999 00:00:00 GMT",  # in the future: invalid, ignored
    ],
)
def test_if_modified_since_modified_or_invalid(app: Staticfile, since: str) -> None:
    resp = call(app, make_environ("/hello.txt", HTTP_IF_MODIFIED_SINCE=since))
    assert (resp.status, resp.body) == ("200 OK", HELLO)


def test_if_modified_since_ignores_subsecond_mtime(app: Staticfile, tree: Path) -> None:
    ns = MTIME * 10**9 + 700_000_000
    os.utime(tree / "hello.txt", ns=(ns, ns))
    resp = call(app, make_environ("/hello.txt"))
    assert resp.headers["last-modified"] == MTIME_HTTP
    since = resp.headers["last-modified"]
    assert call(app, make_environ("/hello.txt", HTTP_IF_MODIFIED_SINCE=since)).status == (
        "304 Not Modified"
    )


# --------------------------------------------------------------------------- maxage


@pytest.mark.parametrize("maxage", [0, 3600])
def test_maxage_sets_cache_control(tree: Path, maxage: int) -> None:
    app = Staticfile(str(tree), maxage=maxage)
    resp = call_validated(app, make_environ("/hello.txt"))
    assert resp.headers["cache-control"] == f"max-age={maxage}"
    not_modified = call(app, make_environ("/hello.txt", HTTP_IF_NONE_MATCH=resp.headers["etag"]))
    assert not_modified.status == "304 Not Modified"
    assert not_modified.headers["cache-control"] == f"max-age={maxage}"


@pytest.mark.parametrize("maxage", [-1, True, 1.5, "60"])
def test_bad_maxage_is_rejected(tree: Path, maxage: Any) -> None:
    with pytest.raises(ValueError, match="maxage"):
        Staticfile(str(tree), maxage=maxage)


# --------------------------------------------------------------------------- file-root mode


@pytest.mark.parametrize("path", ["/", "", "/anything", "/../../etc/passwd", "/sub/"])
def test_file_root_serves_that_file_for_any_path(tree: Path, path: str) -> None:
    app = Staticfile(str(tree / "page.html"), maxage=60)
    resp = call(app, make_environ(path))
    assert (resp.status, resp.body) == ("200 OK", b"<p>page</p>\n")
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.headers["cache-control"] == "max-age=60"


def test_file_root_validated_conditional_and_405(tree: Path) -> None:
    app = Staticfile(tree / "hello.txt")
    resp = call_validated(app, make_environ("/x"))
    assert resp.body == HELLO
    etag = resp.headers["etag"]
    assert_not_modified(call(app, make_environ("/y", HTTP_IF_NONE_MATCH=etag)), etag)
    assert call(app, make_environ("/x", "POST")).status == "405 Method Not Allowed"


def test_file_root_through_symlink_and_missing(tree: Path) -> None:
    assert call(Staticfile(str(tree / "link_out")), make_environ("/")).body == SECRET
    assert call(Staticfile(str(tree / "gone.txt")), make_environ("/")).status == "404 Not Found"


# --------------------------------------------------------------------------- redirect


def run_redirect(location: str, permanent: bool = False) -> tuple[StartResponse, bytes]:
    start_response = StartResponse()
    body = redirect(start_response, location, permanent)
    assert isinstance(body, list)
    return start_response, b"".join(body)


def test_redirect_found() -> None:
    start_response, body = run_redirect("/login")
    assert start_response.status == "302 Found"
    headers = start_response.headers
    assert headers["location"] == "/login"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-length"] == str(len(body))
    assert b'<a href="/login">' in body


def test_redirect_permanent() -> None:
    start_response, _ = run_redirect("https://example.com/new", permanent=True)
    assert start_response.status == "301 Moved Permanently"
    assert start_response.headers["location"] == "https://example.com/new"


def test_redirect_escapes_html() -> None:
    start_response, body = run_redirect('/x?a=1&b="><script>alert(1)</script>')
    assert b"<script>" not in body
    assert b"&amp;b=" in body
    assert "<" not in start_response.headers["location"]
    assert '"' not in start_response.headers["location"]


def test_redirect_encodes_non_ascii_and_keeps_escapes() -> None:
    start_response, _ = run_redirect("/café/a b?q=%41&r=ü")
    assert start_response.headers["location"] == "/caf%C3%A9/a%20b?q=%41&r=%C3%BC"


@pytest.mark.parametrize(
    "location",
    ["/a\r\nSet-Cookie: x=1", "/a\nX: y", "/a\rX: y", "/a\x00b", "/a\tb", "/a\x7fb"],
)
def test_redirect_rejects_control_characters(location: str) -> None:
    start_response = StartResponse()
    with pytest.raises(ValueError, match="control character"):
        redirect(start_response, location)
    assert start_response.calls == []


@pytest.mark.parametrize("permanent", [False, True])
def test_redirect_inside_validated_app(permanent: bool) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return redirect(start_response, "/elsewhere", permanent=permanent)

    resp = call_validated(app, make_environ("/old"))
    assert resp.status == ("301 Moved Permanently" if permanent else "302 Found")
    assert resp.headers["location"] == "/elsewhere"


# --------------------------------------------------------------------------- package surface


def test_wsrun_package_surface() -> None:
    assert wsrun.__version__ == "0.1.0"
    assert wsrun.__doc__
    for name in wsrun.__all__:
        assert hasattr(wsrun, name), name
    assert wsrun.Staticfile is wsrun.views.Staticfile
    assert wsrun.redirect is wsrun.headers.redirect
    assert (PYTHON_DIR / "wsrun" / "py.typed").is_file()


def test_fapws4_reexports() -> None:
    assert fapws4.views.Staticfile is Staticfile
    assert fapws4.headers.redirect is redirect
    assert fapws4.base.Environ is wsrun.Environ
    assert fapws4.base.Start_response is wsrun.StartResponse


def test_fapws4_annotated_handler_runs() -> None:
    from fapws4.base import Environ, Start_response

    def hello(env: Environ, start_response: Start_response) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello from " + env["PATH_INFO"].encode()]

    hints = typing.get_type_hints(hello)
    assert hints["env"] == dict[str, Any]
    assert hints["start_response"] is Start_response
    assert Start_response._is_protocol  # type: ignore[attr-defined]
    assert Environ() == {}
    resp = call_validated(hello, make_environ("/hello"))
    assert (resp.status, resp.body) == ("200 OK", b"Hello from /hello")
