"""Components from other toolchains, served by wsrun over real sockets: a Python handler built
with componentize-py and a JavaScript one built with `jco componentize` (sources and build
script in `handlers/other/`; `tests/run` runs `handlers/other/build.sh` first). Each answers a
GET and echoes a request body it read to the end, through the wasi:http 0.2.10 interfaces
wsrun's host (wasi:http 0.2.12) serves.

The components are 14-18 MB; compiling one takes 20-60 s of CPU, so the compiled code is kept
in `handlers/other/.wsrun` (wsrun's content-addressed cache, safe to share between runs) and
this module's tests get a longer timeout than the suite's default.

Each component is also served at `/LANG-warm` with `requests_per_instance = 5`. The Python
one runs the same tests on warm instances, each serving several requests one after another.
The JavaScript runtime (jco's StarlingMonkey) answers one request per instance: a warm
instance's second request fails, and wsrun falls back to fresh instances for that handler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.launcher import Server
from support.paths import REPO

OTHER = Path(os.environ.get("WSRUN_HANDLERS", REPO / "handlers")) / "other"
COMPONENTS = {"py": OTHER / "python.wasm", "js": OTHER / "js.wasm"}
GREETING = {"py": "hello from python", "js": "hello from javascript"}
ROUTES = ["py", "js", "py-warm"]
#: The first start compiles both components (minutes of CPU on a busy 2-core machine).
COMPILE_WAIT = 300.0

pytestmark = pytest.mark.timeout(COMPILE_WAIT + 60)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    missing = [str(p) for p in COMPONENTS.values() if not p.is_file()]
    if missing:
        pytest.fail(f"not built: {missing}; run `bash handlers/other/build.sh` (tests/run does)")
    tmp = tmp_path_factory.mktemp("other-toolchains")
    spool = tmp / "spool"
    spool.mkdir()
    args = ["--state-dir", str(OTHER / ".wsrun"), "--spool-dir", str(spool)]
    args += ["--workers", "1", "--max-body-size", "8MiB"]
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        "".join(
            f'[[route]]\nprefix = "/{lang}{warm}"\nwasm = "{path}"\n{reuse}\n'
            for lang, path in COMPONENTS.items()
            for warm, reuse in [("", ""), ("-warm", "requests_per_instance = 5\n")]
        )
    )
    args += ["-c", str(cfg)]
    server = Server(tmp, name="other")
    try:
        server.start(args, cwd=tmp, wait=False)
        server.wait_ready(timeout=COMPILE_WAIT)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("route", ROUTES)
def test_get_answers_with_method_and_path(srv: Server, route: str) -> None:
    with requests.Session() as s:
        for _ in range(3):
            r = s.get(f"{srv.url}/{route}/some/where?x=1", timeout=30)
            assert r.status_code == 200, r.text
            greeting = GREETING[route.removesuffix("-warm")]
            assert r.text == f"{greeting}: GET /{route}/some/where?x=1\n"
            assert r.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("size", [1, 4097, 300_000])
def test_body_is_read_to_the_end_and_echoed(srv: Server, route: str, size: int) -> None:
    body = os.urandom(size)
    r = requests.post(f"{srv.url}/{route}/echo", data=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-body-bytes"] == str(size)
    assert r.content == body


@pytest.mark.parametrize("route", ROUTES)
def test_chunked_request_body(srv: Server, route: str) -> None:
    parts = [b"first ", b"second ", os.urandom(70_000)]
    r = requests.put(f"{srv.url}/{route}/up", data=iter(parts), timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == b"".join(parts)


@pytest.mark.parametrize("route", ROUTES)
def test_many_requests_on_one_connection(srv: Server, route: str) -> None:
    with requests.Session() as s:
        for i in range(20):
            r = s.post(f"{srv.url}/{route}/n", data=str(i).encode(), timeout=30)
            assert (r.status_code, r.content) == (200, str(i).encode())


def test_a_runtime_that_answers_once_per_instance_falls_back_to_fresh_instances(
    srv: Server,
) -> None:
    with requests.Session() as s:
        codes = [s.get(f"{srv.url}/js-warm/n", timeout=30).status_code for _ in range(6)]
    # The second request ran on the first one's instance, which refused it (StarlingMonkey:
    # "respondWith can't be called twice"); from then on every request gets a fresh instance.
    assert codes == [200, 500, 200, 200, 200, 200], codes
    assert "gets a fresh instance per request from now on" in srv.stderr(), srv.log()
