"""Fixtures and helpers for the end-to-end suite: they drive the built `wsrun` binary over
real sockets.

* `Server` starts the binary on a free port with its stdout/stderr captured to files, waits for
  the port, and stops it at teardown (fixture `launcher`, or the module-scoped `probe`).
* `raw_request` / `raw_exchange` send exact bytes and read until close or timeout;
  `parse_responses` is a small HTTP/1.x response parser (chunked, Content-Length,
  close-delimited, interim 1xx, HEAD) for pipelining and framing tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
APPS = TESTS / "apps"
CONFIGS = APPS / "configs"
START_TIMEOUT = 20.0


def wsrun_bin() -> str:
    """The binary under test: $WSRUN_BIN, else target/release/wsrun of this repo."""
    return os.environ.get("WSRUN_BIN") or str(REPO / "target" / "release" / "wsrun")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls `predicate` until it is true (returns True) or `timeout` passes (returns False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --------------------------------------------------------------------------- /proc helpers


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (the worker processes of a supervisor)."""
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return kids
    for task in tasks:
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        kids.extend(int(x) for x in text.split())
    return sorted(set(kids))


def fd_links(pid: int) -> list[str]:
    links: list[str] = []
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return links
    for entry in entries:
        with contextlib.suppress(OSError):
            links.append(os.readlink(entry))
    return links


def deleted_fds(pids: Sequence[int], under: str | Path | None = None) -> list[str]:
    """Open-but-unlinked files of the given processes, optionally only those under a directory."""
    prefix = str(under) if under is not None else ""
    out: list[str] = []
    for pid in pids:
        for link in fd_links(pid):
            if link.endswith("(deleted)") and link.startswith(prefix):
                out.append(f"{pid}:{link}")
    return out


# --------------------------------------------------------------------------- server


class Server:
    """One run of the wsrun binary."""

    def __init__(self, tmp: Path, name: str = "wsrun") -> None:
        self.tmp = tmp
        self.name = name
        self.port = 0
        self.host = "127.0.0.1"
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
        wait: bool = True,
    ) -> Server:
        self.port = port if port is not None else free_port()
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
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(
                    f"wsrun exited with {self.proc.returncode} before listening\n"
                    f"cmd: {self.args}\n{self.log()}"
                )
            if port_open(self.port, self.host):
                return
            time.sleep(0.05)
        pytest.fail(f"wsrun did not listen on {self.port} within {timeout}s\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
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

    def calls(self) -> list[str]:
        """Lines the test apps appended for each call (`METHOD PATH`)."""
        return [x for x in self.call_log.read_text().splitlines() if x]

    def reset_calls(self) -> None:
        self.call_log.write_text("")

    def closes(self) -> list[str]:
        return [x for x in self.close_log.read_text().splitlines() if x]


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
        wait: bool = True,
    ) -> Server:
        srv = Server(self.tmp, name=f"wsrun{len(self.servers)}")
        self.servers.append(srv)
        return srv.start(args, cwd=cwd, env=env, bind=bind, port=port, wait=wait)

    def probe(self, *extra: str, env: dict[str, str] | None = None) -> Server:
        """The probe app with the given extra flags."""
        return self.start(["probe:app", "--pythonpath", str(APPS), *extra], env=env)

    def stop_all(self) -> None:
        for srv in self.servers:
            srv.stop(timeout=5)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    lau = Launcher(tmp_path)
    try:
        yield lau
    finally:
        lau.stop_all()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A probe server shared by a module's tests (default settings)."""
    srv = Server(tmp_path_factory.mktemp("probe"), name="probe")
    try:
        srv.start(["probe:app", "--pythonpath", str(APPS)])
        yield srv
    finally:
        srv.stop(timeout=5)


@pytest.fixture(autouse=True)
def _require_binary(request: pytest.FixtureRequest) -> None:
    if request.module.__name__.endswith("package_unit"):
        return  # unit tests of the Python package need no server
    if not Path(wsrun_bin()).exists():
        pytest.fail(
            f"wsrun binary not found at {wsrun_bin()}: run `cargo build --release -p wsrun`"
        )


# --------------------------------------------------------------------------- raw sockets


@dataclass
class RawResult:
    data: bytes
    closed: bool  # the server closed the connection (EOF or reset) before the timeout
    elapsed: float


def raw_exchange(
    port: int,
    data: bytes,
    timeout: float = 3.0,
    host: str = "127.0.0.1",
    until: Callable[[bytes], bool] | None = None,
) -> RawResult:
    """Sends `data`, reads until the server closes, `until(received)` holds, or `timeout`."""
    start = time.monotonic()
    received = b""
    closed = False
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if data:
            sock.sendall(data)
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            if until is not None and until(received):
                break
    return RawResult(received, closed, time.monotonic() - start)


def raw_request(port: int, data: bytes, timeout: float = 3.0, host: str = "127.0.0.1") -> bytes:
    """Sends bytes and returns what came back before the connection closed or `timeout`."""
    return raw_exchange(port, data, timeout=timeout, host=host).data


def recv_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Reads from a connected socket until EOF/reset (closed=True) or `timeout`."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return got, False
        except (ConnectionResetError, BrokenPipeError):
            return got, True
        if not chunk:
            return got, True
        got += chunk


def read_response(sock: socket.socket, timeout: float = 3.0, method: str = "GET") -> Response:
    """Reads exactly one complete response (skipping 1xx) from a kept-alive connection."""
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        resps, _rest = _parse(buf, [method], eof=False)
        finals = [r for r in resps if r.status >= 200]
        if finals:
            return finals[0]
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response within {timeout}s; got {buf[:500]!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; got {buf[:500]!r}")
        buf += chunk


# --------------------------------------------------------------------------- response parser


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = True
    chunked: bool = False

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def has(self, name: str) -> bool:
        return self.header(name) is not None


class _NeedMore(Exception):
    pass


def _parse_one(data: bytes, method: str, eof: bool) -> tuple[Response, bytes]:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise _NeedMore
    head = data[:end].decode("latin-1")
    rest = data[end + 4 :]
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"bad status line {lines[0]!r}")
    resp = Response(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        resp.headers.append((name.strip(), value.strip()))
    if 100 <= resp.status < 200 or resp.status in (204, 304) or method == "HEAD":
        return resp, rest
    te = (resp.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        resp.chunked = True
        body = b""
        pos = 0
        while True:
            nl = rest.find(b"\r\n", pos)
            if nl < 0:
                if eof:
                    resp.body, resp.complete = body, False
                    return resp, b""
                raise _NeedMore
            size_text = rest[pos:nl].split(b";")[0].strip()
            size = int(size_text, 16)
            pos = nl + 2
            if size == 0:
                # trailers until an empty line
                while True:
                    nl = rest.find(b"\r\n", pos)
                    if nl < 0:
                        if eof:
                            resp.body, resp.complete = body, False
                            return resp, b""
                        raise _NeedMore
                    trailer = rest[pos:nl]
                    pos = nl + 2
                    if not trailer:
                        resp.body = body
                        return resp, rest[pos:]
            if len(rest) < pos + size + 2:
                if eof:
                    resp.body, resp.complete = body + rest[pos : pos + size], False
                    return resp, b""
                raise _NeedMore
            body += rest[pos : pos + size]
            pos += size + 2
    cl = resp.header("content-length")
    if cl is not None:
        n = int(cl)
        if len(rest) < n:
            if eof:
                resp.body, resp.complete = rest, False
                return resp, b""
            raise _NeedMore
        resp.body = rest[:n]
        return resp, rest[n:]
    # close-delimited
    if not eof:
        raise _NeedMore
    resp.body = rest
    return resp, b""


def _parse(data: bytes, methods: Sequence[str], eof: bool) -> tuple[list[Response], bytes]:
    out: list[Response] = []
    rest = data
    i = 0
    while rest:
        method = methods[i] if i < len(methods) else (methods[-1] if methods else "GET")
        try:
            resp, rest = _parse_one(rest, method, eof)
        except _NeedMore:
            break
        out.append(resp)
        if resp.status >= 200:
            i += 1
    return out, rest


def parse_responses(
    data: bytes, methods: Sequence[str] = ("GET",), include_interim: bool = False
) -> list[Response]:
    """Parses every response in `data` (read until EOF). `methods[i]` is the method of the
    i-th request (a HEAD response has no body). 1xx responses are dropped unless asked for."""
    resps, _ = _parse(data, methods, eof=True)
    if include_interim:
        return resps
    return [r for r in resps if r.status >= 200]


def parse_response(data: bytes, method: str = "GET") -> Response:
    resps = parse_responses(data, [method])
    assert resps, f"no response in {data[:500]!r}"
    return resps[0]


def status_of(data: bytes) -> int:
    """Status code of the first final response in `data` (0 if none)."""
    for line in data.split(b"\r\n"):
        if line.startswith(b"HTTP/1."):
            code = int(line.split(b" ")[1])
            if code >= 200:
                return code
    return 0


def get(path: str, host: str = "localhost", extra: str = "") -> bytes:
    """A minimal HTTP/1.1 GET request head."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")
