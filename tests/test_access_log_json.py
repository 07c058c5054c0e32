"""`access_log_format = "json"`: one JSON object per response, with the same keys on every
path (the inline path's plain GETs to Python, hyper's path, WASM, 404s, tenants); the combined
format stays the default.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.config_files import (
    assert_config_error,
    hello_tenant,
    probe_and_hello,
    probe_app,
    write_config,
)
from support.launcher import Launcher, Server
from support.paths import WAIT, wait_for
from support.wasm import wasm_handler

KEYS = {
    "time",
    "remote",
    "method",
    "path",
    "status",
    "bytes",
    "duration_ms",
    "route",
    "tenant",
    "worker",
    "pid",
}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _request(
    srv: Server, method: str, path: str, body: bytes | None = None, host: str | None = None
) -> tuple[int, bytes]:
    """One request on its own connection with http.client (no Accept-Encoding, so a plain
    GET to a Python app takes the inline path)."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=WAIT)
    try:
        headers = {"Host": host} if host else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def json_server(launcher: Launcher, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    log = tmp_path / "access.log"
    server = (
        f'workers = 1\nstate_dir = "{tmp_path / "state"}"\n'
        f'access_log = "{log}"\naccess_log_format = "json"'
    )
    acme = hello_tenant(["acme.test"], prefix="/site")
    cfg = write_config(tmp_path, probe_and_hello(server, python_prefix="/py", tenant=acme))
    srv = launcher.start(["-c", str(cfg)])
    yield srv, log


def _lines(log: Path, count: int) -> list[dict[str, object]]:
    """Waits until the log holds `count` lines; each must be one JSON object."""
    assert wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= count), (
        log.read_text() if log.exists() else "no access log"
    )
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_json_lines_carry_every_field_on_every_path(json_server: tuple[Server, Path]) -> None:
    srv, log = json_server
    (worker_pid,) = srv.ready_pids()
    assert _request(srv, "GET", "/py/pid?q=1") == (200, str(worker_pid).encode())
    status, echoed = _request(srv, "POST", "/py/echo", body=b"hello body")
    assert (status, echoed) == (200, b"hello body")
    status, hello = _request(srv, "GET", "/hello/x")
    assert status == 200
    assert _request(srv, "GET", "/nowhere")[0] == 404
    assert _request(srv, "GET", "/site/", host="acme.test")[0] == 200

    inline, post, wasm, missing, tenant = _lines(log, 5)
    for line in (inline, post, missing):
        assert set(line) == KEYS, line
    for line in (wasm, tenant):
        assert set(line) == KEYS | {"handler_version"}, line
    for line in (inline, post, wasm, missing, tenant):
        assert TIME.match(str(line["time"])), line
        assert line["remote"] == "127.0.0.1"
        assert line["worker"] == 0 and line["pid"] == worker_pid
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0

    assert (inline["method"], inline["path"], inline["status"]) == ("GET", "/py/pid?q=1", 200)
    assert (inline["route"], inline["tenant"]) == ("/py", "")
    assert inline["bytes"] == len(str(worker_pid))
    assert (post["method"], post["path"], post["status"]) == ("POST", "/py/echo", 200)
    assert post["route"] == "/py" and post["bytes"] == len(b"hello body")

    digest = hashlib.sha256(wasm_handler("hello").read_bytes()).hexdigest()
    assert (wasm["route"], wasm["tenant"], wasm["status"]) == ("/hello", "", 200)
    assert wasm["bytes"] == len(hello)
    assert wasm["handler_version"] == digest
    # The same version names the compiled code the runtime cached for that file.
    cached = list((log.parent / "state").rglob("*.cwasm"))
    assert any(p.name.startswith(digest + "-") for p in cached), cached

    assert (missing["route"], missing["tenant"], missing["status"]) == ("", "", 404)
    assert missing["path"] == "/nowhere"
    assert (tenant["route"], tenant["tenant"]) == ("/site", "acme")
    assert tenant["handler_version"] == digest


def test_json_escapes_what_a_client_sends(json_server: tuple[Server, Path]) -> None:
    srv, log = json_server
    assert _request(srv, "GET", '/py/pid?x="quoted"\\')[0] == 200
    (line,) = _lines(log, 1)
    assert line["path"] == '/py/pid?x="quoted"\\'


def test_combined_stays_the_default(launcher: Launcher, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    srv = launcher.probe("--access-log", str(log))
    assert _request(srv, "GET", "/pid")[0] == 200
    assert _request(srv, "POST", "/echo", body=b"abc")[0] == 200
    assert wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2)
    get_line, post_line = log.read_text().splitlines()
    combined = r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "%s" 200 %d "-" "-"$'
    assert re.match(combined % ("GET /pid HTTP/1.1", len(str(srv.ready_pids()[0]))), get_line)
    assert re.match(combined % ("POST /echo HTTP/1.1", 3), post_line), post_line


def test_bad_access_log_format_is_a_config_error(launcher: Launcher, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, probe_app('access_log_format = "xml"'))
    assert_config_error(launcher, cfg, 2, "server.access_log_format", "xml")
