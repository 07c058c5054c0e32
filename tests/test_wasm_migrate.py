"""Migration: a Python (Flask) app keeps `/` while `/api/v2` is served by a WASM component,
from the command line and from wsrun.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from support.launcher import Launcher, Server
from support.paths import WAIT
from support.wasm import WASM_APPS, state_args, wasm_handler


def _from_flags(launcher: Launcher, tmp: Path) -> Server:
    return launcher.start(
        [
            "legacy_app:app",
            "--pythonpath",
            str(WASM_APPS),
            "--wasm",
            f"/api/v2={wasm_handler('echo')}",
            *state_args(tmp),
        ],
        cwd=tmp,
    )


def _from_toml(launcher: Launcher, tmp: Path) -> Server:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
pythonpath = ["{WASM_APPS}"]

[[route]]
prefix = "/"
python = "legacy_app:app"

[[route]]
prefix = "/api/v2"
wasm = "{wasm_handler("echo")}"
"""
    )
    return launcher.start(["-c", str(cfg), *state_args(tmp)], cwd=tmp)


@pytest.mark.parametrize("how", ["flags", "toml"])
def test_python_and_wasm_side_by_side(launcher: Launcher, tmp_path: Path, how: str) -> None:
    srv = (_from_flags if how == "flags" else _from_toml)(launcher, tmp_path)

    r = requests.get(srv.url + "/", timeout=WAIT)
    assert (r.status_code, r.text) == (200, "legacy home\n")
    r = requests.get(srv.url + "/other", timeout=WAIT)
    assert (r.status_code, r.text) == (200, "legacy other\n")
    r = requests.get(srv.url + "/api/v1/items", timeout=WAIT)
    assert (r.status_code, r.json()) == (200, {"items": [1, 2, 3]})
    # A path that only shares a prefix string with the WASM route stays with Flask (404).
    assert requests.get(srv.url + "/api/v2x", timeout=WAIT).status_code == 404

    r = requests.post(
        srv.url + "/api/v2/orders/9?expand=1",
        data=b'{"qty": 2}',
        headers={"Content-Type": "application/json"},
        timeout=WAIT,
    )
    assert r.status_code == 200
    assert r.content == b'{"qty": 2}'
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-echo-script-name"] == "/api/v2"
    assert r.headers["x-echo-path"] == "/api/v2/orders/9?expand=1"
    r = requests.get(srv.url + "/api/v2", timeout=WAIT)
    assert r.status_code == 200 and r.headers["x-echo-path"] == "/api/v2"

    # Python saw exactly its own requests, none of the WASM route's.
    assert srv.calls() == ["GET /", "GET /other", "GET /api/v1/items", "GET /api/v2x"]
