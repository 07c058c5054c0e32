"""wsgi.input: read/readline/readlines/iteration, mixed, past the end; for a body held in memory
and for one spooled to a file (a server started with a tiny --spool-threshold)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests

from support.launcher import Server
from support.paths import APPS, WAIT

BODY = b"".join(f"line {i:04d} {'x' * (i % 50)}\n".encode() for i in range(300)) + b"tail-no-nl"
LONG_LINE = b"L" * 200_000 + b"\nshort\n"


@pytest.fixture(
    scope="module",
    params=[("memory", "inline"), ("file", "inline"), ("memory", "threads"), ("file", "threads")],
    ids=lambda p: "-".join(p),
)
def input_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Bodies in memory and spooled to a file, read on the event-loop thread and on --threads."""
    spool, mode = request.param
    tmp = tmp_path_factory.mktemp(f"input-{spool}-{mode}")
    srv = Server(tmp, name=f"input-{spool}-{mode}")
    threshold = "1MiB" if spool == "memory" else "1024"
    threads = ["--threads", "4"] if mode == "threads" else []
    srv.start(["probe:app", "--pythonpath", str(APPS), "--spool-threshold", threshold, *threads])
    yield srv
    srv.stop()


def expected(body: bytes, ops: str) -> list[object]:
    """The same operations on io.BytesIO: the file semantics wsgi.input must follow."""
    f = io.BytesIO(body)
    out: list[object] = []
    for op in [o for o in ops.split(",") if o]:
        name, _, arg = op.partition(":")
        n = int(arg) if arg else None
        value: object
        if name == "read":
            value = f.read() if n is None else f.read(n)
        elif name == "readline":
            value = f.readline() if n is None else f.readline(n)
        elif name == "readlines":
            value = f.readlines()
        elif name == "iter":
            value = list(f)
        elif name == "next":
            value = next(iter(f), b"<StopIteration>")
        else:
            raise ValueError(name)
        if isinstance(value, bytes):
            out.append(value.decode("latin-1"))
        else:
            assert isinstance(value, list)
            out.append([x.decode("latin-1") for x in value])
    return out


OPS = [
    "read",
    "read:5,read:5,read",
    "read:-1",
    "readline,readline,read",
    "readline:3,readline:3,readline,read:4,readline",
    "readlines",
    "readline,readlines",
    "iter",
    "read:3,iter",
    "next,next,read:10,readline",
    "read,read,read:5,readline,readlines,iter",
    "read:0,read:100000,read",
    "read:7000,readline,readline:1,readline:0,read:2,readlines",
]


@pytest.mark.parametrize("ops", OPS)
def test_input_ops_match_file_semantics(input_server: Server, ops: str) -> None:
    r = requests.post(input_server.url + "/input", params={"ops": ops}, data=BODY, timeout=WAIT)
    assert r.status_code == 200, r.text
    assert r.json() == expected(BODY, ops)


@pytest.mark.parametrize("ops", ["readline,readline,read", "read:4,readlines", "iter"])
def test_input_ops_chunked_request(input_server: Server, ops: str) -> None:
    chunks = [BODY[i : i + 777] for i in range(0, len(BODY), 777)]
    r = requests.post(
        input_server.url + "/input", params={"ops": ops}, data=iter(chunks), timeout=WAIT
    )
    assert r.status_code == 200, r.text
    assert r.json() == expected(BODY, ops)


def test_readline_of_a_very_long_line(input_server: Server) -> None:
    ops = "readline,readline,readline"
    r = requests.post(
        input_server.url + "/input", params={"ops": ops}, data=LONG_LINE, timeout=WAIT
    )
    assert r.json() == expected(LONG_LINE, ops)


def test_readlines_hint(input_server: Server) -> None:
    """readlines(hint) returns whole lines, at least one, and stops once `hint` bytes are
    reached; what it leaves is what read() returns next."""
    r = requests.post(
        input_server.url + "/input", params={"ops": "readlines:100,read"}, data=BODY, timeout=WAIT
    )
    lines, rest = r.json()
    assert lines, "readlines(hint) returns at least one line"
    assert all(x.endswith("\n") for x in lines)
    got = "".join(lines)
    assert len(got) >= 100 or len(lines) == 1
    assert len(got) - len(lines[-1]) < 100, "readlines(hint) must stop once hint is reached"
    assert (got + rest).encode("latin-1") == BODY


def test_empty_body(input_server: Server) -> None:
    ops = "read,readline,readlines,iter,read:10"
    r = requests.post(input_server.url + "/input", params={"ops": ops}, data=b"", timeout=WAIT)
    assert r.json() == ["", "", [], [], ""]


def test_get_has_empty_input(input_server: Server) -> None:
    r = requests.get(input_server.url + "/input", params={"ops": "read,readline"}, timeout=WAIT)
    assert r.json() == ["", ""]


def test_binary_body_roundtrip(input_server: Server) -> None:
    body = bytes(range(256)) * 40
    r = requests.post(input_server.url + "/echo", data=body, timeout=WAIT)
    assert r.content == body
