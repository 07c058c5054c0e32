"""Longest-prefix routing on segment boundaries, SCRIPT_NAME/PATH_INFO split, 404, per-route
body limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.launcher import Server
from support.paths import APPS, WAIT

ROUTES = """
[[route]]
prefix = "/"
python = "probe:app"

[[route]]
prefix = "/api"
python = "probe:app"

[[route]]
prefix = "/api/v2"
python = "probe:app"

[[route]]
prefix = "/small"
python = "probe:app"
max_body_size = 100
"""

NO_ROOT = """
[[route]]
prefix = "/only"
python = "probe:app"
"""


def _start(tmp: Path, name: str, text: str) -> Server:
    cfg = tmp / f"{name}.toml"
    cfg.write_text(text)
    srv = Server(tmp, name=name)
    srv.start(["-c", str(cfg), "--pythonpath", str(APPS)])
    return srv


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = _start(tmp_path_factory.mktemp("router"), "routed", ROUTES)
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("path", "script_name", "path_info"),
    [
        ("/", "", "/"),
        ("/x/y", "", "/x/y"),
        ("/api", "/api", ""),
        ("/api/", "/api", "/"),
        ("/api/x", "/api", "/x"),
        ("/apix", "", "/apix"),
        ("/api/v2", "/api/v2", ""),
        ("/api/v2/items/7", "/api/v2", "/items/7"),
        ("/api/v20", "/api", "/v20"),
        ("/api/v2x/y", "/api", "/v2x/y"),
        ("/smallish", "", "/smallish"),
    ],
)
def test_longest_prefix_on_segment_boundary(
    routed: Server, path: str, script_name: str, path_info: str
) -> None:
    r = requests.get(routed.url + path, timeout=WAIT)
    assert r.status_code == 200
    env = r.json()
    assert env["SCRIPT_NAME"] == script_name
    assert env["PATH_INFO"] == path_info


def test_query_string_not_part_of_routing(routed: Server) -> None:
    env = requests.get(routed.url + "/api?x=/v2", timeout=WAIT).json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("/api", "", "x=/v2")


def test_per_route_body_limit(routed: Server) -> None:
    routed.reset_calls()
    r = requests.post(routed.url + "/small/echo", data=b"z" * 200, timeout=WAIT)
    assert r.status_code == 413
    assert routed.calls() == []
    ok = requests.post(routed.url + "/small/echo", data=b"z" * 50, timeout=WAIT)
    assert ok.status_code == 200 and ok.content == b"z" * 50
    big = requests.post(routed.url + "/echo", data=b"z" * 200, timeout=WAIT)
    assert big.status_code == 200 and big.content == b"z" * 200


def test_404_when_no_route_matches(tmp_path: Path) -> None:
    srv = _start(tmp_path, "noroot", NO_ROOT)
    try:
        r = requests.get(srv.url + "/elsewhere", timeout=WAIT)
        assert r.status_code == 404
        assert r.headers["Content-Type"].startswith("text/plain")
        assert r.text
        assert requests.get(srv.url + "/onlyx", timeout=WAIT).status_code == 404
        assert srv.calls() == []
        env = requests.get(srv.url + "/only/y", timeout=WAIT).json()
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/only", "/y")
    finally:
        srv.stop()
