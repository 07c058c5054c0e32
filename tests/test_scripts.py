"""Fapws4-style scripts: `wsrun script.py` serves PATHS; handlers return str, bytes, list, tuple
or an open file; SERVER and MAX_BODY_SIZE are honoured; --bind wins over SERVER."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.http import port_open
from support.launcher import Launcher, Server
from support.paths import APPS, REPO, WAIT, wait_for

SCRIPT = APPS / "hello_script.py"


@pytest.fixture(scope="module")
def script_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("script"), name="script")
    srv.start([str(SCRIPT.relative_to(REPO))])
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/", b"Hello World!!"),
        ("/bytes", b"bytes body"),
        ("/list", b"list body"),
        ("/tuple", b"tuple body"),
        ("/file", SCRIPT.read_bytes()),
    ],
)
def test_return_types(script_srv: Server, path: str, body: bytes) -> None:
    r = requests.get(script_srv.url + path, timeout=WAIT)
    assert r.status_code == 200
    assert r.content == body


def test_prefix_split(script_srv: Server) -> None:
    assert requests.get(script_srv.url + "/where/x/y", timeout=WAIT).text == "/where|/x/y"
    assert requests.get(script_srv.url + "/nothing", timeout=WAIT).text == "Hello World!!"


def test_max_body_size_from_script(script_srv: Server) -> None:
    ok = requests.post(script_srv.url + "/upload", data=b"u" * 1000, timeout=WAIT)
    assert ok.status_code == 200 and ok.text == "got 1000 bytes"
    too_big = requests.post(script_srv.url + "/upload", data=b"u" * 1001, timeout=WAIT)
    assert too_big.status_code == 413


def test_server_variable_is_honoured(launcher: Launcher, tmp_path: Path) -> None:
    from conftest import free_port

    port = free_port()
    script = tmp_path / "served.py"
    script.write_text(
        SCRIPT.read_text().replace('SERVER = "127.0.0.1:1"', f'SERVER = "127.0.0.1:{port}"')
    )
    srv = launcher.start([str(script)], bind=False, port=port)
    assert requests.get(srv.url + "/bytes", timeout=WAIT).content == b"bytes body"


def test_default_bind_is_0_0_0_0_8888(launcher: Launcher, tmp_path: Path) -> None:
    if port_open(8888):
        pytest.skip("port 8888 is already in use on this machine")
    script = tmp_path / "nobind.py"
    text = re.sub(r"^SERVER = .*$", "", SCRIPT.read_text(), flags=re.M)
    assert "SERVER =" not in text
    script.write_text(text)
    srv = launcher.start([str(script)], bind=False, port=8888)
    assert wait_for(lambda: port_open(8888))
    assert requests.get("http://127.0.0.1:8888/", timeout=WAIT).text == "Hello World!!"
    srv.stop()


def test_examples_hello(launcher: Launcher) -> None:
    """The README's first command: `wsrun examples/hello.py`."""
    srv = launcher.start(["examples/hello.py"], cwd=REPO)
    r = requests.get(srv.url + "/", timeout=WAIT)
    assert r.status_code == 200
    assert r.content
