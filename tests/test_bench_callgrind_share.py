"""bench/callgrind_share.py, run as bench/instructions.sh runs it, on a small callgrind out file:
self costs by object, the server's own share, and the requests counted as the calls of the
server's once-per-request function (falling back to the count given when there is none).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO

SCRIPT = REPO / "bench" / "callgrind_share.py"

# wsrun's own self cost 1000 + 400, libpython's 8600: 10,000 in all. The line after `calls=` is
# the inclusive cost of the call (not the caller's own), so it is not counted.
PROFILE = """\
version: 1
creator: callgrind-3.19.0
events: Ir
ob=(1) /usr/local/bin/wsrun
fl=(1) loop.rs
fn=(1) wsrun::server::connection::serve
5 1000
cfn=(2) wsrun::python::environ::EnvironBuilder::build
calls=4 10
5 400
fn=(2)
10 400
ob=(2) /usr/lib/libpython3.11.so.1.0
fl=(2) ceval.c
fn=(3) _PyEval_EvalFrameDefault
1 8600
"""


def summary(tmp_path: Path, server: str, wrk_requests: int) -> list[str]:
    out = tmp_path / "callgrind.out"
    out.write_text(PROFILE)
    argv = [sys.executable, str(SCRIPT), str(out), str(wrk_requests), server, "5"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.splitlines()


def test_requests_are_the_worker_s_calls_of_its_per_request_function(tmp_path: Path) -> None:
    lines = summary(tmp_path, "wsrun", wrk_requests=3)
    assert "2,500 instructions per request (4 requests served" in lines[0]
    assert "wrk's for the counted seconds 3" in lines[0]
    assert any("86.00%  libpython3.11.so.1.0" in line for line in lines)
    assert any("10.000%  wsrun::server::connection::serve" in line for line in lines)
    assert lines[-1].strip() == "own share: 14.00%  (350 instructions per request)"


def test_without_a_marker_the_given_count_is_used(tmp_path: Path) -> None:
    lines = summary(tmp_path, "granian", wrk_requests=5)
    assert "2,000 instructions per request (5 requests by wrk's count" in lines[0]
    assert lines[-1].strip() == "own share: 0.00%  (0 instructions per request)"
