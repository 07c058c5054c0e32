"""The README's demo, `examples/migrate/`: the legacy Flask app keeps `/` while the `api_v2`
component (built with the SDK) serves `/api/v2`, started from the example's own wsrun.toml (with
`--bind` overriding its port) and from the one-line command its README gives.

`tests/run` builds the component; when it is missing, this module builds it first."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from support.launcher import Launcher, Server, run_wsrun
from support.paths import REPO, WAIT, wait_for
from support.wasm import state_args

EXAMPLE = REPO / "examples" / "migrate"
CRATE = EXAMPLE / "api_v2"
WASM = CRATE / "target" / "wasm32-wasip2" / "release" / "api_v2.wasm"
LEGACY = EXAMPLE / "legacy"

# A cold build of the component (with the dependency fetch) may take more than the default.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def component() -> Path:
    """The built `api_v2.wasm`, built here when `tests/run` has not done it."""
    if not WASM.is_file():
        cmd = [
            "cargo",
            "build",
            "--release",
            "-q",
            "--manifest-path",
            str(CRATE / "Cargo.toml"),
            "--target",
            "wasm32-wasip2",
            "--target-dir",
            str(CRATE / "target"),
        ]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=280)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr}"
    assert WASM.is_file(), f"{WASM} was not built"
    return WASM


@pytest.fixture
def demo(launcher: Launcher, tmp_path: Path, component: Path) -> Server:
    """The example exactly as `examples/demo.sh` serves it, on a free port."""
    config = EXAMPLE / "wsrun.toml"
    return launcher.start(["-c", str(config), *state_args(tmp_path)], cwd=tmp_path)


def get(srv: Server, path: str) -> requests.Response:
    return requests.get(srv.url + path, timeout=WAIT)


def test_flask_keeps_the_rest_of_the_site(demo: Server) -> None:
    r = get(demo, "/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["x-served-by"] == "flask"
    assert "href='/api/v2/users'" in r.text

    r = get(demo, "/api/v1/users")
    assert (r.status_code, r.headers["x-served-by"]) == (200, "flask")
    assert [u["id"] for u in r.json()] == [1, 2, 3]

    r = get(demo, "/users/2")
    assert (r.status_code, r.json()["name"]) == (200, "Grace Hopper")
    r = get(demo, "/users")
    assert len(r.json()["users"]) == 3

    # Sharing only a string prefix with the WASM route is not enough: Flask answers (404).
    r = get(demo, "/api/v2x")
    assert (r.status_code, r.headers["x-served-by"]) == (404, "flask")


def test_wasm_serves_the_new_api(demo: Server) -> None:
    r = get(demo, "/api/v2/users")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-served-by"] == "wsrun-wasm"
    body = r.json()
    assert body["count"] == 3
    assert body["users"][0] == {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}

    r = get(demo, "/api/v2/users/1")
    assert r.status_code == 200
    assert r.json() == {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}

    r = get(demo, "/api/v2/users/42")
    assert (r.status_code, r.headers["content-type"]) == (404, "application/json")
    assert r.json() == {"error": "no such user", "path": "/api/v2/users/42"}

    r = get(demo, "/api/v2/nope")
    assert (r.status_code, r.headers["x-served-by"]) == (404, "wsrun-wasm")
    assert r.json() == {"error": "no such endpoint", "path": "/api/v2/nope"}

    r = requests.post(demo.url + "/api/v2/users", data=b"{}", timeout=WAIT)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
    assert r.json()["method"] == "POST"


def test_health_shows_the_runtime_and_the_configured_env(demo: Server) -> None:
    r = get(demo, "/api/v2/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "runtime": "wasm", "api_version": "2"}
    assert '"runtime":"wasm"' in r.text

    r = requests.head(demo.url + "/api/v2/health", timeout=WAIT)
    assert (r.status_code, r.content) == (200, b"")


def test_the_readme_one_liner(launcher: Launcher, tmp_path: Path, component: Path) -> None:
    """`wsrun app:app --pythonpath examples/migrate/legacy --wasm /api/v2=...`: the same routes,
    default limits, and no `env` (so no API_VERSION)."""
    srv = launcher.start(
        [
            "app:app",
            "--pythonpath",
            "examples/migrate/legacy",
            "--wasm",
            f"/api/v2={component.relative_to(REPO)}",
            *state_args(tmp_path),
        ],
        cwd=REPO,
    )
    assert get(srv, "/api/v1/users").headers["x-served-by"] == "flask"
    r = get(srv, "/api/v2/health")
    assert r.json() == {"status": "ok", "runtime": "wasm", "api_version": None}


def _migrate(args: list[str], tmp_path: Path) -> dict:
    done = run_wsrun(["migrate", *args, "--state-dir", str(tmp_path / "state")])
    assert done.code == 0, done.out
    return json.loads(done.out[done.out.index("{") :]) if "--json" in args else {"text": done.out}


def test_the_shadow_step_reports_the_one_difference(
    launcher: Launcher, tmp_path: Path, component: Path
) -> None:
    """`shadow.toml`: Flask answers `/api/v1`, the component sees a copy; the report shows that
    they agree but for the health check's `runtime`."""
    srv = launcher.start(["-c", str(EXAMPLE / "shadow.toml"), *state_args(tmp_path)], cwd=tmp_path)
    for i in (1, 2, 3):
        r = get(srv, f"/api/v1/users/{i}")
        assert r.headers["x-served-by"] == "flask" and r.json()["id"] == i
    assert get(srv, "/api/v1/users").json()["count"] == 3
    assert get(srv, "/api/v1/health").json()["runtime"] == "python"

    def routes() -> list[dict]:
        return _migrate(["report", "--json"], tmp_path)["routes"]

    assert wait_for(lambda: bool(routes()) and routes()[0]["compared"] == 5)
    (r,) = routes()
    assert (r["route"], r["matched"], r["differed"]) == ("/api/v1", 4, 1)
    assert [d["path"] for d in r["top_differences"]] == ["$.runtime"]
    text = _migrate(["report"], tmp_path)["text"]
    assert "differs at $.runtime: 1 time(s)" in text
    shown = _migrate(["show", str(r["top_differences"][0]["example_id"])], tmp_path)["text"]
    assert "GET /api/v1/health" in shown and '"runtime":"wasm"' in shown


def test_the_canary_step_moves_a_tenth_of_the_traffic(
    launcher: Launcher, tmp_path: Path, component: Path
) -> None:
    srv = launcher.start(["-c", str(EXAMPLE / "canary.toml"), *state_args(tmp_path)], cwd=tmp_path)
    with requests.Session() as s:
        served = [s.get(srv.url + "/api/v1/users/1", timeout=WAIT) for _ in range(600)]
    canary = [r for r in served if r.headers.get("wsrun-variant") == "canary"]
    assert all(r.headers["x-served-by"] == "wsrun-wasm" for r in canary)
    assert all(r.json()["name"] == "Ada Lovelace" for r in served)
    assert 30 <= len(canary) <= 90, len(canary)
