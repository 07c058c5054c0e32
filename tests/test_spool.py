"""Request body spooling: memory up to the threshold, then an unlinked temp file in --spool-dir;
413 over --max-body-size (from Content-Length without reading the body, or mid-chunked-body);
temp files gone in every case, client abort included."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.http import parse_response, recv_until_closed, status_of
from support.launcher import Launcher, Server
from support.paths import WAIT, wait_for
from support.procfs import deleted_fds

MiB = 1024 * 1024


@pytest.fixture
def spooling(launcher: Launcher, spool_dir: Path) -> Server:
    return launcher.probe(
        "--spool-dir",
        str(spool_dir),
        "--spool-threshold",
        "1MiB",
        "--max-body-size",
        "4MiB",
    )


def _spooled(srv: Server, spool_dir: Path) -> list[str]:
    return deleted_fds(srv.all_pids(), spool_dir)


def _assert_clean(srv: Server, spool_dir: Path) -> None:
    assert wait_for(lambda: not _spooled(srv, spool_dir)), _spooled(srv, spool_dir)
    assert os.listdir(spool_dir) == []


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_small_body_in_memory(spooling: Server, spool_dir: Path) -> None:
    body = os.urandom(10_000)
    r = requests.post(spooling.url + "/sha", data=body, timeout=WAIT)
    assert r.status_code == 200
    info = r.json()
    assert info["len"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert [x for x in info["deleted_fds"] if x.startswith(str(spool_dir))] == []
    _assert_clean(spooling, spool_dir)


def test_large_body_spooled_to_unlinked_file(spooling: Server, spool_dir: Path) -> None:
    body = os.urandom(3 * MiB)
    r = requests.post(spooling.url + "/sha", data=body, timeout=WAIT)
    assert r.status_code == 200
    info = r.json()
    assert info["len"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert info["content_length"] == str(len(body))
    spooled = [x for x in info["deleted_fds"] if x.startswith(str(spool_dir))]
    assert spooled, f"a 3 MiB body must be in an unlinked file under {spool_dir}: {info}"
    _assert_clean(spooling, spool_dir)


def test_large_chunked_body_spooled(spooling: Server, spool_dir: Path) -> None:
    body = os.urandom(3 * MiB + 123)
    r = requests.post(spooling.url + "/sha", data=_chunks(body), timeout=WAIT)
    assert r.status_code == 200
    info = r.json()
    assert info["len"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert info["content_length"] == str(len(body))
    assert [x for x in info["deleted_fds"] if x.startswith(str(spool_dir))]
    _assert_clean(spooling, spool_dir)


def test_413_from_content_length_without_reading_body(spooling: Server, spool_dir: Path) -> None:
    with socket.create_connection(("127.0.0.1", spooling.port), timeout=5) as s:
        # Only the head is sent: the answer cannot wait for the body.
        s.sendall(f"POST /sha HTTP/1.1\r\nHost: x\r\nContent-Length: {5 * MiB}\r\n\r\n".encode())
        data, closed = recv_until_closed(s, WAIT)
    r = parse_response(data)
    assert r.status == 413
    assert (r.header("content-type") or "").startswith("text/plain")
    assert r.body.strip(), "413 carries a plain-text reason"
    assert closed, "the connection is closed after the 413 (the body is never read)"
    assert spooling.calls() == []
    _assert_clean(spooling, spool_dir)


def test_413_as_soon_as_chunked_body_passes_limit(spooling: Server, spool_dir: Path) -> None:
    block = b"c" * 65536
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    got = b""
    with socket.create_connection(("127.0.0.1", spooling.port), timeout=5) as s:
        s.sendall(b"POST /sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            while sent < 8 * MiB:  # twice the limit, never terminated
                s.sendall(chunk)
                sent += len(block)
        except OSError:
            pass
        data, _ = recv_until_closed(s, 3)
        got = data
    assert status_of(got) == 413, got[:200]
    assert spooling.calls() == []
    _assert_clean(spooling, spool_dir)


def test_client_abort_mid_upload_removes_temp_file(spooling: Server, spool_dir: Path) -> None:
    s = socket.create_connection(("127.0.0.1", spooling.port), timeout=5)
    try:
        s.sendall(f"POST /sha HTTP/1.1\r\nHost: x\r\nContent-Length: {3 * MiB}\r\n\r\n".encode())
        s.sendall(os.urandom(2 * MiB))
        assert wait_for(lambda: bool(_spooled(spooling, spool_dir))), (
            "2 MiB of a 3 MiB body must be spooling to a file in --spool-dir while it arrives"
        )
    finally:
        s.close()
    _assert_clean(spooling, spool_dir)
    assert spooling.calls() == []
    # and the server is fine afterwards
    assert requests.get(spooling.url + "/framing/cl", timeout=WAIT).status_code == 200


def test_client_abort_with_workers(launcher: Launcher, spool_dir: Path) -> None:
    srv = launcher.probe(
        "--workers", "2", "--spool-dir", str(spool_dir), "--spool-threshold", "64KiB"
    )
    assert wait_for(lambda: len(srv.worker_pids()) >= 2 and srv.worker_pids() != [srv.pid])
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            s.sendall(f"POST /sha HTTP/1.1\r\nHost: x\r\nContent-Length: {MiB}\r\n\r\n".encode())
            s.sendall(os.urandom(256 * 1024))
            assert wait_for(lambda: bool(_spooled(srv, spool_dir)))
        finally:
            s.close()
        _assert_clean(srv, spool_dir)
    body = os.urandom(300_000)
    r = requests.post(srv.url + "/sha", data=body, timeout=WAIT)
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    _assert_clean(srv, spool_dir)


def test_spool_cleanup_after_app_error(spooling: Server, spool_dir: Path) -> None:
    r = requests.post(spooling.url + "/error/before", data=os.urandom(2 * MiB), timeout=WAIT)
    assert r.status_code == 500
    _assert_clean(spooling, spool_dir)
