"""Hostile handler files dropped over a served one under `--watch`: truncated, a huge number
of imports or functions, deep nesting, a 1 GiB data segment, a 1 GiB memory. Each is refused
(the compile child's CPU and memory limits, the parser's limits, the instance pool's limits
at link time) with a log line naming the file, within bounded time, while the previous
version keeps answering every request and the worker's memory stays put.

The modules are built here byte by byte (as `test_hostile_compile.compile_bomb`), each
wrapped as a component's core module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from support.launcher import Launcher, Server
from support.paths import WAIT
from support.procfs import proc_status_kib
from support.wasm import hello_body, state_args, wasm_handler
from test_hostile_compile import Hello

#: The worker only reads the file and pipes it to the compile child (as the bomb's bound).
WORKER_GROWTH_BOUND_KIB = 64 * 1024
GIB = 1 << 30


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _section(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _leb(len(body)) + body


def _vec(items: list[bytes]) -> bytes:
    return _leb(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    return _leb(len(text)) + text.encode()


def _component(*sections: bytes) -> bytes:
    core = b"\0asm\x01\x00\x00\x00" + b"".join(sections)
    return b"\0asm\x0d\x00\x01\x00" + _section(1, core)


def truncated() -> bytes:
    data = wasm_handler("raw-hello").read_bytes()
    return data[: len(data) // 2]


def many_imports(count: int = 100_000) -> bytes:
    imports = [_name("m") + _name(f"f{i}") + b"\x00" + _leb(0) for i in range(count)]
    return _component(_section(1, _vec([b"\x60\x00\x00"])), _section(2, _vec(imports)))


def many_functions(count: int = 400_000) -> bytes:
    body = _leb(2) + b"\x00\x0b"  # size 2: no locals, end
    return _component(
        _section(1, _vec([b"\x60\x00\x00"])),
        _section(3, _vec([_leb(0)] * count)),
        _section(10, _leb(count) + body * count),
    )


def deep_nesting(depth: int = 200_000) -> bytes:
    code = b"\x00" + b"\x02\x40" * depth + b"\x0b" * (depth + 1)  # nested `block`s
    return _component(
        _section(1, _vec([b"\x60\x00\x00"])),
        _section(3, _vec([_leb(0)])),
        _section(10, _vec([_leb(len(code)) + code])),
    )


def gib_data_segment() -> bytes:
    """A data segment that says it holds 1 GiB (the file holds a few bytes of it)."""
    segment = b"\x00\x41\x00\x0b" + _leb(GIB) + b"\0" * 64  # active, memory 0, i32.const 0
    memory = _section(5, _vec([b"\x00" + _leb(1)]))
    return _component(memory, _section(11, _leb(1) + segment))


def gib_memory() -> bytes:
    """A valid module whose memory starts at 1 GiB, with a byte of data at its end."""
    pages = GIB // 65536
    segment = b"\x00\x41" + _sleb(GIB - 8) + b"\x0b" + _leb(8) + b"hostile!"
    return _component(_section(5, _vec([b"\x00" + _leb(pages)])), _section(11, _vec([segment])))


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


HOSTILE: dict[str, Callable[[], bytes]] = {
    "truncated": truncated,
    "many-imports": many_imports,
    "many-functions": many_functions,
    "deep-nesting": deep_nesting,
    "gib-data-segment": gib_data_segment,
    "gib-memory": gib_memory,
}


def _watch(launcher: Launcher, tmp: Path) -> tuple[Server, Path]:
    watched = tmp / "handlers"
    watched.mkdir()
    (watched / "hello.wasm").write_bytes(wasm_handler("hello").read_bytes())
    args = ["--watch", str(watched), "--compile-timeout", "2s", *state_args(tmp)]
    return launcher.start(args, cwd=tmp), watched


def _drop(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.stem}.tmp"  # not *.wasm: the watcher ignores it
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_replacement_is_refused_and_the_old_version_serves(
    launcher: Launcher, tmp_path: Path, kind: str
) -> None:
    srv, watched = _watch(launcher, tmp_path)
    (worker,) = srv.worker_pids()
    before = proc_status_kib(worker, "VmHWM")
    refused = (
        "handler `hello` on /hello: new version not loaded, the previous one keeps serving: "
        f"{watched / 'hello.wasm'}: "
    )
    with Hello(srv) as hello:
        _drop(watched / "hello.wasm", HOSTILE[kind]())
        assert srv.wait_log(refused), srv.log()[-2000:]
    line = next(x for x in srv.log().splitlines() if refused in x)
    print(f"{kind}: {line.split(refused, 1)[1][:160]}")
    grown = proc_status_kib(worker, "VmHWM") - before
    assert grown < WORKER_GROWTH_BOUND_KIB, f"worker grew {grown} KiB"
    assert hello.answers and set(hello.answers) == {(200, hello_body(0))}
    assert srv.worker_pids() == [worker]
    # The watcher is not stuck: a good version after it goes in.
    _drop(watched / "hello.wasm", wasm_handler("raw-hello").read_bytes())
    assert srv.wait_log("handler `hello` on /hello: reloaded"), srv.log()[-2000:]
    assert requests.get(srv.url + "/hello", timeout=WAIT).text == "raw wasi hello\n"
