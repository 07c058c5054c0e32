"""Components from other toolchains, served by wsrun over real sockets: a Python handler built
with componentize-py and a JavaScript one built with `jco componentize` (sources and build
script in `handlers/other/`; `tests/run` runs `handlers/other/build.sh` first). Each answers a
GET and echoes a request body it read to the end, through the wasi:http 0.2.10 interfaces
wsrun's host (wasi:http 0.2.12) serves.

The components are 14-18 MB; compiling one takes 20-60 s of CPU, so the compiled code is kept
in `handlers/other/.wsrun` (wsrun's content-addressed cache, safe to share between runs) and
this module's tests get a longer timeout than the suite's default."""

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
    for prefix, path in COMPONENTS.items():
        args += ["--wasm", f"/{prefix}={path}"]
    server = Server(tmp, name="other")
    try:
        server.start(args, cwd=tmp, wait=False)
        server.wait_ready(timeout=COMPILE_WAIT)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["py", "js"])
def test_get_answers_with_method_and_path(srv: Server, lang: str) -> None:
    r = requests.get(f"{srv.url}/{lang}/some/where?x=1", timeout=30)
    assert r.status_code == 200, r.text
    assert r.text == f"{GREETING[lang]}: GET /{lang}/some/where?x=1\n"
    assert r.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("lang", ["py", "js"])
@pytest.mark.parametrize("size", [1, 4097, 300_000])
def test_body_is_read_to_the_end_and_echoed(srv: Server, lang: str, size: int) -> None:
    body = os.urandom(size)
    r = requests.post(f"{srv.url}/{lang}/echo", data=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-body-bytes"] == str(size)
    assert r.content == body


@pytest.mark.parametrize("lang", ["py", "js"])
def test_chunked_request_body(srv: Server, lang: str) -> None:
    parts = [b"first ", b"second ", os.urandom(70_000)]
    r = requests.put(f"{srv.url}/{lang}/up", data=iter(parts), timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == b"".join(parts)


@pytest.mark.parametrize("lang", ["py", "js"])
def test_many_requests_on_one_connection(srv: Server, lang: str) -> None:
    with requests.Session() as s:
        for i in range(20):
            r = s.post(f"{srv.url}/{lang}/n", data=str(i).encode(), timeout=30)
            assert (r.status_code, r.content) == (200, str(i).encode())
