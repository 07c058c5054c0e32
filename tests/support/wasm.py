"""Helpers of the WebAssembly tests: the built handler components and small utilities.

Owns: finding the built handlers, patched `hello` versions, state directories of a run.
Must not touch: servers (see `launcher`), /proc (see `procfs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from support.paths import APPS, REPO

#: The built handler components (`bash handlers/build.sh`); `tests/run` exports the variable.
HANDLERS = Path(os.environ.get("WSRUN_HANDLERS", str(REPO / "handlers")))
#: Configs and small apps of the WASM tests.
WASM_APPS = APPS / "wasm"
#: The marker `hello.wasm` carries exactly once; patch its digits for a new version.
REV_MARKER = b"wsrun-rev:0000"
#: A valid component with no imports and no exports (not a `wasi:http/proxy` handler).
EMPTY_COMPONENT = b"\0asm\x0d\x00\x01\x00"
#: A valid, empty core WebAssembly module (not a component).
CORE_MODULE = b"\0asm\x01\x00\x00\x00"
#: What `spin-loop.wasm` writes to stderr (so to the server log) when an instance starts.
SPINNING = "spin-loop: spinning"


def wasm_handler(name: str) -> Path:
    """`handlers/NAME.wasm`, failing clearly when the handlers are not built."""
    path = HANDLERS / f"{name}.wasm"
    if not path.is_file():
        pytest.fail(f"{path} not found: run `bash handlers/build.sh`")
    return path


def hello_rev(rev: int) -> bytes:
    """`hello.wasm` with its marker patched to `wsrun-rev:NNNN` (same length)."""
    data = wasm_handler("hello").read_bytes()
    assert data.count(REV_MARKER) == 1, "hello.wasm must carry its marker exactly once"
    return data.replace(REV_MARKER, f"wsrun-rev:{rev:04d}".encode())


def hello_body(rev: int) -> str:
    """What the `hello` handler patched to `rev` answers."""
    return f"Hello from WebAssembly! (wsrun-rev:{rev:04d})\n"


def state_args(tmp: Path) -> list[str]:
    """Keeps the compiled-code cache and spooled bodies in the test's temp dir."""
    spool = tmp / "spool"
    spool.mkdir(exist_ok=True)
    return ["--state-dir", str(tmp / "state"), "--spool-dir", str(spool)]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (which must not be empty)."""
    ordered = sorted(values)
    rank = int(-(-pct * len(ordered) // 100))  # ceil(pct% of n)
    return ordered[max(1, min(len(ordered), rank)) - 1]
