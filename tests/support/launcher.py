"""Runs of the wsrun binary: started on a free port with stdout/stderr captured to files, ready
once every worker has logged its "listening on" line, stopped at teardown.

Owns: starting, waiting for and signalling the server processes a test starts; one-shot runs
(`run_wsrun`) that end by themselves.
Must not touch: what the server answers (see `http`), /proc parsing (see `procfs`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from support.http import free_port, port_open
from support.paths import APPS, REPO, WAIT, wait_for, wsrun_bin
from support.procfs import child_pids

#: Logged by each worker once per listener when it is ready to serve (after its handlers are
#: loaded and its watcher started), at info level.
READY_LINE = re.compile(r"worker (\d+) \(pid (\d+)\) listening on https?://(\S+)")

#: How a start waits: "log" for every worker's ready line, "port" only for an open port (for a
#: run whose log level hides info lines), "none" not at all. `True`/`False`, the old spelling,
#: mean "log"/"none".
Ready = Literal["log", "port", "none"] | bool


def workers_of(args: Sequence[str], cwd: str | Path | None = None) -> int:
    """The worker count a command line asks for: `--workers`/`-w`, else `workers =` of its
    `-c`/`--config` file, else 1."""
    flag = _flag_value(args, ("--workers", "-w"))
    if flag is not None:
        return int(flag)
    cfg = _flag_value(args, ("--config", "-c"))
    if cfg is not None:
        path = Path(cfg) if Path(cfg).is_absolute() else Path(cwd or REPO) / cfg
        with contextlib.suppress(OSError):
            found = re.search(r"^\s*workers\s*=\s*(\d+)", path.read_text(), re.MULTILINE)
            if found:
                return int(found.group(1))
    return 1


def _flag_value(args: Sequence[str], names: tuple[str, ...]) -> str | None:
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "=") and name.startswith("--"):
                value = arg.split("=", 1)[1]
    return value


class Server:
    """One run of the wsrun binary."""

    def __init__(self, tmp: Path, name: str = "wsrun") -> None:
        self.tmp = tmp
        self.name = name
        self.port = 0
        self.host = "127.0.0.1"
        self.workers = 1
        self.proc: subprocess.Popen[bytes] | None = None
        self.stdout_path = tmp / f"{name}.stdout.log"
        self.stderr_path = tmp / f"{name}.stderr.log"
        self.call_log = tmp / f"{name}.calls.log"
        self.close_log = tmp / f"{name}.close.log"
        self.args: list[str] = []

    # -- lifecycle
    def start(
        self,
        args: Sequence[str],
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        bind: bool = True,
        port: int | None = None,
        wait: Ready = "log",
        workers: int | None = None,
    ) -> Server:
        """Starts the binary; `workers` is how many ready lines to wait for when the command
        line does not say (a config file in the working directory, for instance)."""
        self.port = port if port is not None else free_port()
        self.workers = workers if workers is not None else workers_of(args, cwd)
        cmd = [wsrun_bin(), *args]
        if bind:
            cmd += ["--bind", f"{self.host}:{self.port}"]
        self.args = cmd
        full_env = dict(os.environ)
        full_env.update(
            {
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                "WSRUN_TEST_CALL_LOG": str(self.call_log),
                "WSRUN_TEST_CLOSE_LOG": str(self.close_log),
            }
        )
        if env:
            full_env.update(env)
        self.call_log.write_text("")
        self.close_log.write_text("")
        out = self.stdout_path.open("wb")
        err = self.stderr_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                cmd,
                cwd=str(cwd) if cwd is not None else str(REPO),
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        finally:
            out.close()
            err.close()
        if wait is True or wait == "log":
            self.wait_ready()
        elif wait == "port":
            self.wait_port()
        return self

    def _fail_if_exited(self, what: str) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(
                f"wsrun exited with {self.proc.returncode} before {what}\n"
                f"cmd: {self.args}\n{self.log()}"
            )

    def wait_ready(self, timeout: float = WAIT) -> list[int]:
        """Waits until every worker has logged its ready line; returns their pids."""
        return self.wait_ready_pids(exclude=(), count=self.workers, timeout=timeout)

    def wait_ready_pids(
        self, exclude: Collection[int] = (), count: int | None = None, timeout: float = WAIT
    ) -> list[int]:
        """Waits until `count` (default: all) workers whose pid is not in `exclude` have logged
        their ready line and are alive (a worker started after SIGHUP or a killed one); returns
        their pids."""
        want = self.workers if count is None else count
        found: list[int] = []

        def ready() -> bool:
            self._fail_if_exited(f"{want} worker(s) were ready")
            found[:] = [p for p in self.ready_pids() if p not in exclude and _alive_child(self, p)]
            return len(found) >= want

        if not wait_for(ready, timeout):
            pytest.fail(
                f"{want} worker(s) not ready (ready line) within {timeout}s; "
                f"ready: {self.ready_pids()}, excluded: {sorted(exclude)}\n{self.log()}"
            )
        return found

    def wait_port(self, timeout: float = WAIT) -> None:
        """Waits only until the port accepts: for runs whose log level hides the ready line."""

        def accepting() -> bool:
            self._fail_if_exited("listening")
            return port_open(self.port, self.host)

        if not wait_for(accepting, timeout):
            pytest.fail(f"wsrun did not listen on {self.port} within {timeout}s\n{self.log()}")

    def ready_pids(self) -> list[int]:
        """Pids of the workers that logged a ready line so far, in log order, once each."""
        pids: list[int] = []
        for match in READY_LINE.finditer(self.stderr()):
            pid = int(match.group(2))
            if pid not in pids:
                pids.append(pid)
        return pids

    def stop(self, sig: int = signal.SIGTERM, timeout: float = WAIT) -> int | None:
        """Sends `sig`, waits, then SIGKILLs as a fallback; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_all()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def wait_exit(self, timeout: float = WAIT) -> int:
        """Waits for the process to end by itself; returns its exit code."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"wsrun did not exit within {timeout}s\n{self.log()}")

    def kill_all(self) -> None:
        """SIGKILL the server and its workers (only processes this run started)."""
        if self.proc is None:
            return
        for kid in child_pids(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    # -- info
    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self) -> list[int]:
        """Children of the server process, or the server itself when it has none."""
        kids = child_pids(self.pid)
        return kids or [self.pid]

    def all_pids(self) -> list[int]:
        return [self.pid, *child_pids(self.pid)]

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log(self) -> str:
        """Everything the server printed so far (stderr then stdout)."""
        return self.stderr() + self.stdout()

    def log_count(self, text: str) -> int:
        return self.log().count(text)

    def wait_log(self, text: str, count: int = 1, timeout: float = WAIT) -> bool:
        """Waits until `text` occurs at least `count` times in the log."""
        return wait_for(lambda: self.log_count(text) >= count, timeout)

    def calls(self) -> list[str]:
        """Lines the test apps appended for each call (`METHOD PATH`)."""
        return [x for x in self.call_log.read_text().splitlines() if x]

    def reset_calls(self) -> None:
        self.call_log.write_text("")

    def closes(self) -> list[str]:
        return [x for x in self.close_log.read_text().splitlines() if x]


def _alive_child(srv: Server, pid: int) -> bool:
    """`pid` is the server itself (one process) or one of its live workers."""
    return pid == srv.pid or pid in child_pids(srv.pid)


class Launcher:
    """Starts servers for one test and stops them all at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.servers: list[Server] = []

    def start(
        self,
        args: Sequence[str],
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        bind: bool = True,
        port: int | None = None,
        wait: Ready = "log",
        workers: int | None = None,
    ) -> Server:
        srv = Server(self.tmp, name=f"wsrun{len(self.servers)}")
        self.servers.append(srv)
        return srv.start(args, cwd=cwd, env=env, bind=bind, port=port, wait=wait, workers=workers)

    def probe(self, *extra: str, env: dict[str, str] | None = None, wait: Ready = "log") -> Server:
        """The probe app with the given extra flags."""
        return self.start(["probe:app", "--pythonpath", str(APPS), *extra], env=env, wait=wait)

    def stop_all(self) -> None:
        for srv in self.servers:
            srv.stop(timeout=10)


@dataclass
class Finished:
    """A run of wsrun that ended by itself."""

    code: int
    out: str  # stderr then stdout
    seen_open: bool  # the watched port accepted a connection meanwhile


def run_wsrun(
    args: Sequence[str],
    cwd: str | Path | None = None,
    port: int | None = None,
    timeout: float = WAIT,
) -> Finished:
    """Runs wsrun to completion (`check`, a start-up that must fail, `jobs ...`), watching
    `port` meanwhile when given."""
    proc = subprocess.Popen(
        [wsrun_bin(), *args],
        cwd=str(cwd) if cwd is not None else str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    seen_open = False
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if port is not None and port_open(port):
            seen_open = True
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"wsrun {args} did not exit within {timeout}s\n{err.decode()}{out.decode()}")
    out, err = proc.communicate()
    text = err.decode(errors="replace") + out.decode(errors="replace")
    return Finished(proc.returncode, text, seen_open)
