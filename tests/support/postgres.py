"""A throw-away PostgreSQL server for the end-to-end tests: `initdb` into a temporary
directory, `pg_ctl start` on a free port of 127.0.0.1 (its unix socket in that directory),
stopped when the test is done.

Owns: finding `initdb`/`pg_ctl` (PATH, then /usr/lib/postgresql/*/bin), running them as the
`postgres` user when the tests run as root (initdb refuses root), stopping and starting the
server again (the "database unreachable" test), and creating databases.
Must not touch: wsrun servers (see `launcher`). Without initdb a test skips loudly;
tests/run installs Debian's `postgresql`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from support.http import free_port


def server_bin() -> Path | None:
    """The directory with `initdb` and `pg_ctl`, if PostgreSQL is installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


class PgServer:
    """One PostgreSQL server in `tmp/pg`."""

    def __init__(self, durable: bool = False) -> None:
        """`durable`: fsync on (benchmarks); off by default (tests need no crash safety)."""
        bin_dir = server_bin()
        if bin_dir is None:
            pytest.skip("*** no initdb: install Debian's `postgresql` (tests/run does) ***")
        self.bin = bin_dir
        # Its own directory under /tmp: the `postgres` user cannot enter pytest's (mode 0700).
        self.dir = Path(tempfile.mkdtemp(prefix="wsrun-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.durable = durable
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(
            cmd, cwd=str(self.dir), capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"{tool} failed:\n{done.stdout}\n{done.stderr}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.dir / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stops the server if it runs, and deletes its directory."""
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Runs `sql` with psql; returns its unaligned output."""
        cmd = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        done = subprocess.run(
            [*cmd, "-d", db, "-At", "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, f"psql {sql!r}:\n{done.stderr}"
        return done.stdout.strip()

    def create_db(self, name: str) -> str:
        """Creates database `name`; returns its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)
