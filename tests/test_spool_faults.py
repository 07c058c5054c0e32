"""Storage faults during an upload: a full disk (here a file-size limit, RLIMIT_FSIZE, set on the
running worker: its writes past the limit fail with EFBIG as they would with ENOSPC) answers
507, a spool directory that was removed answers 503; the worker goes on serving, and no spool
file is left open or on disk."""

from __future__ import annotations

import hashlib
import os
import resource
from pathlib import Path

import pytest
import requests

from support.launcher import Launcher, Server
from support.paths import WAIT, wait_for
from support.procfs import deleted_fds

KiB = 1024
LIMIT = 256 * KiB


@pytest.fixture
def srv(launcher: Launcher, spool_dir: Path) -> Server:
    return launcher.probe(
        "--spool-dir", str(spool_dir), "--spool-threshold", "4KiB", "--max-body-size", "8MiB"
    )


def _post_sha(srv: Server, body: bytes) -> requests.Response:
    return requests.post(srv.url + "/sha", data=body, timeout=WAIT)


def _assert_served(srv: Server, size: int) -> None:
    body = os.urandom(size)
    r = _post_sha(srv, body)
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()


def _assert_nothing_left(srv: Server, spool_dir: Path) -> None:
    assert wait_for(lambda: not deleted_fds(srv.all_pids(), spool_dir)), deleted_fds(
        srv.all_pids(), spool_dir
    )
    assert os.listdir(spool_dir) == []


def test_full_disk_gets_507_and_the_worker_goes_on(srv: Server, spool_dir: Path) -> None:
    [worker] = srv.worker_pids()
    resource.prlimit(worker, resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
    r = _post_sha(srv, os.urandom(4 * LIMIT))
    assert r.status_code == 507, r.text
    assert "Insufficient Storage" in r.text
    assert srv.calls() == [], "the app must not see a body that could not be stored"
    # Same worker (SIGXFSZ did not kill it), still serving bodies in memory and on disk.
    assert srv.worker_pids() == [worker]
    _assert_served(srv, 2 * KiB)
    _assert_served(srv, LIMIT // 2)
    _assert_nothing_left(srv, spool_dir)
    assert "request body" in srv.stderr()


def test_removed_spool_dir_gets_503_until_it_returns(srv: Server, spool_dir: Path) -> None:
    spool_dir.rmdir()
    r = _post_sha(srv, os.urandom(64 * KiB))
    assert r.status_code == 503, r.text
    _assert_served(srv, 2 * KiB)  # bodies under the threshold never touch the disk
    spool_dir.mkdir()
    _assert_served(srv, 64 * KiB)
    _assert_nothing_left(srv, spool_dir)
