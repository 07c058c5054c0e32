"""A real Flask app (PyPI) runs unchanged: forms, uploads, JSON, cookies, redirects, streaming."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
import requests

from support.launcher import Server
from support.paths import APPS, WAIT


@pytest.fixture(scope="module")
def flask_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("flask"), name="flask")
    srv.start(["flask_app:app", "--pythonpath", str(APPS), "--threads", "2"])
    yield srv
    srv.stop()


def test_index(flask_srv: Server) -> None:
    r = requests.get(flask_srv.url + "/", timeout=WAIT)
    assert r.status_code == 200 and r.text == "flask ok"


def test_form_fields(flask_srv: Server) -> None:
    r = requests.post(
        flask_srv.url + "/form",
        data=[("name", "Zoë"), ("tag", "a"), ("tag", "b & c")],
        timeout=WAIT,
    )
    assert r.status_code == 200
    assert r.json() == {"name": ["Zoë"], "tag": ["a", "b & c"]}


@pytest.mark.parametrize("size", [1000, 300_000, 2 * 1024 * 1024])
def test_file_upload_sha256(flask_srv: Server, size: int) -> None:
    data = os.urandom(size)
    r = requests.post(
        flask_srv.url + "/upload",
        files={"file": ("blob.bin", data, "application/octet-stream")},
        data={"note": "hi"},
        timeout=WAIT,
    )
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {
        "filename": "blob.bin",
        "size": size,
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": "hi",
    }


def test_json(flask_srv: Server) -> None:
    r = requests.post(flask_srv.url + "/json", json={"a": [1, 2, {"b": None}]}, timeout=WAIT)
    assert r.json() == {"got": {"a": [1, 2, {"b": None}]}}


def test_cookies_set_and_read(flask_srv: Server) -> None:
    with requests.Session() as s:
        r = s.get(flask_srv.url + "/cookie/set", params={"flavour": "choc", "n": "2"}, timeout=WAIT)
        assert r.status_code == 200
        assert len(r.raw.headers.getlist("Set-Cookie")) == 2
        assert s.cookies.get("flavour") == "choc"
        assert s.get(flask_srv.url + "/cookie/get", timeout=WAIT).json() == {
            "flavour": "choc",
            "n": "2",
        }


def test_redirect(flask_srv: Server) -> None:
    r = requests.get(flask_srv.url + "/redirect", allow_redirects=False, timeout=WAIT)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/target?x=1")
    followed = requests.get(flask_srv.url + "/redirect", timeout=WAIT)
    assert followed.text == "target x=1"
    assert [h.status_code for h in followed.history] == [302]


def test_streaming_with_context(flask_srv: Server) -> None:
    r = requests.get(flask_srv.url + "/stream", params={"n": "50", "who": "me"}, timeout=WAIT)
    assert r.status_code == 200
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.text == "".join(f"line {i} for me\n" for i in range(50))


def test_error_then_still_serving(flask_srv: Server) -> None:
    assert requests.get(flask_srv.url + "/boom", timeout=WAIT).status_code == 500
    assert requests.get(flask_srv.url + "/missing", timeout=WAIT).status_code == 404
    assert requests.get(flask_srv.url + "/", timeout=WAIT).text == "flask ok"
