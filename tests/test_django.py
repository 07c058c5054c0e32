"""A real Django project (PyPI) runs unchanged: CSRF form flow, uploads, cookies, redirects,
StreamingHttpResponse, and SCRIPT_NAME under a route prefix."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.launcher import Launcher, Server
from support.paths import APPS, WAIT


@pytest.fixture(scope="module")
def dj(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("django")
    srv = Server(tmp, name="django")
    srv.start(
        ["djproj.wsgi:application", "--pythonpath", str(APPS)],
        env={"WSRUN_TEST_DJANGO_TMP": str(tmp)},
    )
    yield srv
    srv.stop()


def test_index(dj: Server) -> None:
    r = requests.get(dj.url + "/", timeout=WAIT)
    assert r.status_code == 200 and r.text == "django ok"


def test_csrf_token_flow(dj: Server) -> None:
    with requests.Session() as s:
        token = s.get(dj.url + "/form/", timeout=WAIT).json()["csrftoken"]
        assert s.cookies.get("csrftoken")
        r = s.post(
            dj.url + "/form/",
            data={"csrfmiddlewaretoken": token, "name": "Zoë", "tags": ["a", "b"]},
            timeout=WAIT,
        )
        assert r.status_code == 200, r.text[:300]
        assert r.json() == {"name": ["Zoë"], "tags": ["a", "b"]}
        header_ok = s.post(
            dj.url + "/form/", data={"x": "1"}, headers={"X-CSRFToken": token}, timeout=WAIT
        )
        assert header_ok.status_code == 200


def test_csrf_rejects_post_without_token(dj: Server) -> None:
    r = requests.post(dj.url + "/form/", data={"name": "x"}, timeout=WAIT)
    assert r.status_code == 403


def test_exempt_form_with_query(dj: Server) -> None:
    r = requests.post(dj.url + "/exempt/?q=1&q=2", data={"a": "b c"}, timeout=WAIT)
    assert r.json() == {
        "method": "POST",
        "post": {"a": ["b c"]},
        "get": {"q": ["1", "2"]},
        "script_name": "",
        "path": "/exempt/",
    }


@pytest.mark.parametrize("size", [500, 200_000, 2 * 1024 * 1024])
def test_upload_via_request_files(dj: Server, size: int) -> None:
    data = os.urandom(size)
    r = requests.post(
        dj.url + "/upload/",
        files={"file": ("up.bin", data, "application/octet-stream")},
        data={"note": "n"},
        timeout=WAIT,
    )
    assert r.status_code == 200, r.text[:300]
    assert r.json() == {
        "name": "up.bin",
        "size": size,
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": "n",
    }


def test_cookies(dj: Server) -> None:
    with requests.Session() as s:
        s.get(dj.url + "/cookie/set/", params={"k1": "v1", "k2": "v2"}, timeout=WAIT)
        assert s.get(dj.url + "/cookie/get/", timeout=WAIT).json() == {"k1": "v1", "k2": "v2"}


def test_redirect(dj: Server) -> None:
    r = requests.get(dj.url + "/redirect/", allow_redirects=False, timeout=WAIT)
    assert r.status_code == 302
    assert r.headers["Location"] == "/target/?from=redirect"
    assert requests.get(dj.url + "/redirect/", timeout=WAIT).text == "target from=redirect"


def test_common_middleware_append_slash(dj: Server) -> None:
    r = requests.get(dj.url + "/target", allow_redirects=False, timeout=WAIT)
    assert r.status_code == 301
    assert r.headers["Location"].endswith("/target/")


def test_streaming_response(dj: Server) -> None:
    r = requests.get(dj.url + "/stream/", params={"n": "40"}, timeout=WAIT)
    assert r.status_code == 200
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.text == "".join(f"chunk {i}\n" for i in range(40))


def test_404_and_still_serving(dj: Server) -> None:
    assert requests.get(dj.url + "/nope/", timeout=WAIT).status_code == 404
    assert requests.get(dj.url + "/", timeout=WAIT).text == "django ok"


def test_django_under_route_prefix(launcher: Launcher, tmp_path: Path) -> None:
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text('[[route]]\nprefix = "/dj"\npython = "djproj.wsgi:application"\n')
    srv = launcher.start(
        ["-c", str(cfg), "--pythonpath", str(APPS)], env={"WSRUN_TEST_DJANGO_TMP": str(tmp_path)}
    )
    r = requests.post(srv.url + "/dj/exempt/", data={"a": "1"}, timeout=WAIT)
    assert r.status_code == 200, r.text[:300]
    info = r.json()
    assert info["script_name"] == "/dj"
    assert info["path"] == "/dj/exempt/"
    redir = requests.get(srv.url + "/dj/target", allow_redirects=False, timeout=WAIT)
    assert redir.headers["Location"].endswith("/dj/target/")
