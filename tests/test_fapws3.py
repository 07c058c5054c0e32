"""Fapws3 programs under `wsrun script.py`, over real sockets: every `fapws._evwsgi` function
(start and --bind, wsgi_cb prefixes and SCRIPT_NAME, wsgi_gen_cb, set_base_module,
set_debug, rfc1123_date, parse_query), fapws.base / contrib.views / contrib.headers, and the
examples/fapws3 sample. Timers and defer: test_fapws3_timers.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.http import free_port, raw_request, status_of
from support.http import get as request_head
from support.launcher import Launcher, Server
from support.paths import REPO, WAIT, wait_for

EXAMPLE = REPO / "examples" / "fapws3"
#: Exit code of an app that fails to load (src/cli.rs).
APP_LOAD_FAILED = 1

# A Fapws3 program in the usual shape. start() names a port nobody can bind: the tests' --bind
# must win over it.
MAIN_SCRIPT = """
import json
import os

import fapws._evwsgi as evwsgi
from fapws import base
from fapws.contrib import headers, views

HERE = os.path.dirname(os.path.abspath(__file__))


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return ["hello world!!"]


def gen(environ, start_response):
    # The head is read after the first item, as in Fapws3: a generator may set it.
    start_response("201 Created", [("X-Gen", "yes")])
    yield "first "
    yield b"second"


def where(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return "%s|%s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"], environ["QUERY_STRING"])


def params(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return json.dumps(environ["fapws.params"], sort_keys=True)


def env(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    keys = ["fapws.uri", "fapws.major_minor", "fapws.remote_addr", "fapws.remote_port",
            "REQUEST_METHOD", "HTTP_X_PROBE"]
    out = {k: environ.get(k) for k in keys}
    out["is_base_environ"] = isinstance(environ, base.Environ)
    out["is_base_start_response"] = isinstance(start_response, base.Start_response)
    out["input"] = environ["wsgi.input"].getvalue().decode()
    return json.dumps(out)


def no_start(environ, start_response):
    return [b"no start_response"]


def cookie(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-One", "1")])
    start_response.add_header("X-Two", 2)
    start_response.set_cookie("session", "abc", max_age=60)
    return ["cookie"]


def boom(environ, start_response):
    raise ZeroDivisionError("fapws3 boom")


def go(environ, start_response):
    return headers.redirect(start_response, "/hello")


def gone(environ, start_response):
    return headers.redirect(start_response, "/hello", True)


def funcs(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return json.dumps({
        "date": evwsgi.rfc1123_date(784111777),
        "query": evwsgi.parse_query("a=1&b=x+y&a=%C3%A9&&c&"),
        "empty": evwsgi.parse_query(""),
        "debug": evwsgi.get_debug(),
    })


def generic(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return "generic|%s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])


evwsgi.start("127.0.0.1", "1")
evwsgi.set_base_module(base)
evwsgi.wsgi_cb(("/hello", hello))
evwsgi.wsgi_cb(("/gen", gen))
evwsgi.wsgi_cb(("/where", where))
evwsgi.wsgi_cb(("/slash/", where))
evwsgi.wsgi_cb(("/params", params))
evwsgi.wsgi_cb(("/env", env))
evwsgi.wsgi_cb(("/nostart", no_start))
evwsgi.wsgi_cb(("/cookie", cookie))
evwsgi.wsgi_cb(("/boom", boom))
evwsgi.wsgi_cb(("/go", go))
evwsgi.wsgi_cb(("/gone", gone))
evwsgi.wsgi_cb(("/funcs", funcs))
evwsgi.wsgi_cb(("/static/", views.Staticfile(os.path.join(HERE, "public") + "/", maxage=60)))
evwsgi.wsgi_cb(("/form", views.Staticfile(os.path.join(HERE, "form.html"))))
evwsgi.wsgi_gen_cb(generic)
evwsgi.set_debug(1)
evwsgi.run()

with open(os.path.join(HERE, "after_run.txt"), "w") as f:
    f.write("code after run() ran")
"""

# A base module of the script's own: every environ gets a key, every response a header.
MY_BASE = """
from fapws import base


class Environ(base.Environ):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self["mybase.marker"] = "from mybase"

    def update_uri(self, data):
        super().update_uri(data)
        self["mybase.seen_path"] = data["PATH_INFO"].upper()


class Start_response(base.Start_response):
    def __init__(self):
        super().__init__()
        self.add_header("X-Base", "mybase")
"""

BASE_SCRIPT = """
import fapws._evwsgi as evwsgi
import mybase


def show(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return "%s|%s" % (environ["mybase.marker"], environ["mybase.seen_path"])


def boom(environ, start_response):
    raise ZeroDivisionError("fapws3 boom")


evwsgi.start("127.0.0.1", "{port}")
evwsgi.set_base_module(mybase)
evwsgi.wsgi_cb(("/show", show))
evwsgi.wsgi_cb(("/boom", boom))
evwsgi.run()
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def main_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fapws3")
    (tmp / "public" / "css").mkdir(parents=True)
    (tmp / "public" / "css" / "site.css").write_text("body { color: green }\n")
    (tmp / "secret.txt").write_text("secret\n")
    (tmp / "form.html").write_text("<form>fapws3</form>\n")
    script = _write(tmp, "app.py", MAIN_SCRIPT)
    srv = Server(tmp, name="fapws3")
    srv.start([str(script)])  # with --bind 127.0.0.1:<free port>
    srv.tmp = tmp
    yield srv
    srv.stop()


def get(srv: Server, path: str, **kwargs: object) -> requests.Response:
    return requests.get(srv.url + path, timeout=WAIT, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- start / run / bind


def test_bind_on_command_line_wins_over_start(main_srv: Server) -> None:
    assert "--bind" in main_srv.args
    r = get(main_srv, "/hello")
    assert r.status_code == 200
    assert r.text == "hello world!!"
    assert r.headers["Content-Type"] == "text/html"


def test_code_after_run_still_runs(main_srv: Server) -> None:
    assert (main_srv.tmp / "after_run.txt").read_text() == "code after run() ran"


def test_start_sets_the_bind_address(launcher: Launcher, tmp_path: Path) -> None:
    port = free_port()
    _write(tmp_path, "mybase.py", MY_BASE)
    script = _write(tmp_path, "based.py", BASE_SCRIPT.replace("{port}", str(port)))
    srv = launcher.start([str(script)], bind=False, port=port)
    assert get(srv, "/show").status_code == 200


def test_start_rejects_a_unix_socket(launcher: Launcher, tmp_path: Path) -> None:
    script = _write(
        tmp_path,
        "unix.py",
        "import fapws._evwsgi as evwsgi\nevwsgi.start('/tmp/x.sock', 'unix')\n",
    )
    srv = launcher.start([str(script)], bind=True, wait="none")
    assert srv.wait_exit() == APP_LOAD_FAILED, srv.log()
    assert "Unix sockets" in srv.log()


def test_no_routes_is_a_clear_error(launcher: Launcher, tmp_path: Path) -> None:
    script = _write(tmp_path, "empty.py", "import fapws._evwsgi as evwsgi\nevwsgi.run()\n")
    srv = launcher.start([str(script)], wait="none")
    assert srv.wait_exit() == APP_LOAD_FAILED, srv.log()
    assert "wsgi_cb" in srv.log()


# --------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/where", "/where||"),
        ("/where/a/b?x=1", "/where|/a/b|x=1"),
        # A prefix registered with a trailing "/" is SCRIPT_NAME as written (Fapws3's split).
        ("/slash/file.txt", "/slash/|file.txt|"),
        # No registered prefix: the wsgi_gen_cb handler, SCRIPT_NAME "".
        ("/unmatched/x", "generic||/unmatched/x"),
        ("/", "generic||/"),
        # Prefixes end on a segment boundary: /wherever is not /where.
        ("/wherever", "generic||/wherever"),
    ],
)
def test_wsgi_cb_prefixes_and_script_name(main_srv: Server, path: str, expected: str) -> None:
    r = get(main_srv, path)
    assert r.status_code == 200
    assert r.text == expected


def test_generator_sets_the_head_before_its_first_item(main_srv: Server) -> None:
    r = get(main_srv, "/gen")
    assert r.status_code == 201
    assert r.headers["X-Gen"] == "yes"
    assert r.content == b"first second"


def test_handler_without_start_response_answers_200(main_srv: Server) -> None:
    r = get(main_srv, "/nostart")
    assert r.status_code == 200
    assert r.content == b"no start_response"


# --------------------------------------------------------------------------- fapws.base objects


def test_environ_is_a_base_environ_with_fapws_keys(main_srv: Server) -> None:
    r = requests.post(
        main_srv.url + "/env/x?q=1",
        data=b"raw body",
        headers={"X-Probe": "p", "Content-Type": "text/plain"},
        timeout=WAIT,
    )
    got = json.loads(r.text)
    assert got["is_base_environ"] is True
    assert got["is_base_start_response"] is True
    assert got["fapws.uri"] == "/env/x?q=1"
    assert got["fapws.major_minor"] == "1.1"
    assert got["fapws.remote_addr"] == "127.0.0.1"
    assert isinstance(got["fapws.remote_port"], int) and got["fapws.remote_port"] > 0
    assert got["REQUEST_METHOD"] == "POST"
    assert got["HTTP_X_PROBE"] == "p"
    assert got["input"] == "raw body"  # wsgi.input has getvalue(), as in Fapws3


def test_fapws_params_from_query_and_form(main_srv: Server) -> None:
    assert json.loads(get(main_srv, "/params?a=1&a=2&b=x+y&c").text) == {
        "a": ["1", "2"],
        "b": ["x y"],
        "c": [""],
    }
    assert json.loads(get(main_srv, "/params").text) == {}
    posted = requests.post(main_srv.url + "/params", data={"name": "fapws", "n": "3"}, timeout=WAIT)
    assert json.loads(posted.text) == {"n": ["3"], "name": ["fapws"]}


def test_start_response_headers_and_cookies(main_srv: Server) -> None:
    r = get(main_srv, "/cookie")
    assert r.status_code == 200
    assert r.headers["X-One"] == "1"
    assert r.headers["X-Two"] == "2"
    set_cookie = r.headers["Set-Cookie"]
    assert set_cookie.startswith("session=abc")
    assert "Max-Age=60" in set_cookie and "Path=/" in set_cookie
    assert r.cookies["session"] == "abc"


def test_set_base_module_uses_the_scripts_classes(launcher: Launcher, tmp_path: Path) -> None:
    port = free_port()
    _write(tmp_path, "mybase.py", MY_BASE)
    script = _write(tmp_path, "based.py", BASE_SCRIPT.replace("{port}", str(port)))
    srv = launcher.start([str(script)], bind=False, port=port)
    r = get(srv, "/show/deep")
    assert r.status_code == 200
    assert r.text == "from mybase|/DEEP"
    assert r.headers["X-Base"] == "mybase"
    # No set_debug in this script: a failure is a plain 500, no traceback.
    boom = get(srv, "/boom")
    assert boom.status_code == 500
    assert "ZeroDivisionError" not in boom.text


# --------------------------------------------------------------------------- debug, helpers


def test_set_debug_shows_the_traceback(main_srv: Server) -> None:
    r = get(main_srv, "/boom")
    assert r.status_code == 500
    assert "ZeroDivisionError: fapws3 boom" in r.text
    assert "Traceback" in r.text


def test_rfc1123_date_parse_query_and_get_debug(main_srv: Server) -> None:
    got = json.loads(get(main_srv, "/funcs").text)
    assert got["date"] == "Sun, 06 Nov 1994 08:49:37 GMT"
    # Decoded, repeated names kept in order, "" for a bare name and for an empty field.
    assert got["query"] == {"a": ["1", "é"], "b": ["x y"], "": [""], "c": [""]}
    assert got["empty"] == {}
    assert got["debug"] == 1


# --------------------------------------------------------------------------- contrib


def test_staticfile_serves_a_directory(main_srv: Server) -> None:
    r = get(main_srv, "/static/css/site.css")
    assert r.status_code == 200
    assert r.text == "body { color: green }\n"
    assert r.headers["Content-Type"].startswith("text/css")
    assert r.headers["Cache-Control"] == "max-age=60"
    etag = r.headers["ETag"]
    again = get(main_srv, "/static/css/site.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert get(main_srv, "/static/css/none.css").status_code == 404
    for target in ("/static/../secret.txt", "/static/%2e%2e/secret.txt"):
        answer = raw_request(main_srv.port, request_head(target))
        assert status_of(answer) in (400, 404), answer
        assert b"secret" not in answer


def test_staticfile_serves_one_file(main_srv: Server) -> None:
    r = get(main_srv, "/form")
    assert r.status_code == 200
    assert r.text == "<form>fapws3</form>\n"
    assert r.headers["Content-Type"].startswith("text/html")


def test_redirect(main_srv: Server) -> None:
    r = get(main_srv, "/go")
    assert r.status_code == 302
    assert r.headers["Location"] == "/hello"
    permanent = get(main_srv, "/gone")
    assert permanent.status_code == 301
    assert permanent.headers["Location"] == "/hello"
    assert requests.get(main_srv.url + "/go", timeout=WAIT).text == "hello world!!"


# --------------------------------------------------------------------------- the sample


@pytest.fixture(scope="module")
def example_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("fapws3_example"), name="example")
    srv.start(["examples/fapws3/hello_world.py", "--workers", "1"], cwd=REPO)
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/hello", b"hello world!!"),
        ("/iterhello", b"hello worlds!!"),
        ("/long", "long.txt"),
        ("/staticform", "test.html"),
    ],
)
def test_example_pages(example_srv: Server, path: str, expected: bytes | str) -> None:
    """Each page of the sample; a str names the file in examples/fapws3 it must send."""
    body = (EXAMPLE / expected).read_bytes() if isinstance(expected, str) else expected
    r = get(example_srv, path)
    assert r.status_code == 200
    assert r.content == body


def test_example_testpost(example_srv: Server) -> None:
    r = requests.post(
        example_srv.url + "/testpost", data={"name": "fapws", "colour": "green"}, timeout=WAIT
    )
    assert r.status_code == 200
    assert r.text == "OK. params are:{'name': ['fapws'], 'colour': ['green']}"
    assert get(example_srv, "/testpost?x=1").text == "OK. params are:{'x': ['1']}"


def test_example_timer(example_srv: Server) -> None:
    def count() -> int:
        return int(get(example_srv, "/ticks").text.split()[0])

    first = count()
    assert wait_for(lambda: count() >= first + 2)


def test_example_defer(example_srv: Server) -> None:
    def runs() -> int:
        return int(get(example_srv, "/deferred").text.split()[0])

    before = runs()
    r = get(example_srv, "/defer")
    assert r.status_code == 200
    assert r.text.startswith("deferred")
    assert wait_for(lambda: runs() == before + 1)
