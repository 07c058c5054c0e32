"""Where things are, and the one wait bound of the suite.

Owns: the repository paths the tests use, the binary under test, `WAIT` and `wait_for`.
Must not touch: servers or sockets (see `launcher` and `http`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
TESTS = REPO / "tests"
APPS = TESTS / "apps"
CONFIGS = APPS / "configs"

#: The bound of every poll in the suite: generous for a loaded 2-core CI machine. A poll that
#: succeeds returns as soon as its condition holds, so this only costs time when a test fails.
WAIT = 30.0


def wsrun_bin() -> str:
    """The binary under test: $WSRUN_BIN, else target/release/wsrun of this repo."""
    return os.environ.get("WSRUN_BIN") or str(REPO / "target" / "release" / "wsrun")


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT, interval: float = 0.02) -> bool:
    """Polls `predicate` until it is true (returns True) or `timeout` passes (returns False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
