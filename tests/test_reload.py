"""Live configuration reload: `SIGHUP` / `wsrun reload -c FILE` re-reads the file and applies
it without dropping a request; a file with an error changes nothing."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from support.fresh_connections import FreshConnections
from support.http import free_port, port_open
from support.launcher import Finished, Launcher, Server, run_wsrun
from support.paths import APPS, WAIT, wait_for
from support.procfs import child_pids, pid_alive

#: The issue's bound: each change is visible this soon after `wsrun reload` starts.
VISIBLE_WITHIN = 2.0
#: Printed by the master when a SIGHUP arrives while a reload is under way.
COALESCED = "received SIGHUP during a reload; reloading again once this one is done"


@dataclass
class Site:
    """The files of one test's server: its config, state directory and served directories."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def cfg(self) -> Path:
        return self.root / "wsrun.toml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def write(
        self,
        *,
        workers: int = 2,
        port: int | None = None,
        upload_limit: str = "1KiB",
        old_route: bool = True,
        tenant: bool = False,
        extra: str = "",
    ) -> None:
        """Writes `wsrun.toml`: the probe app at `/` and at `/upload` (with `upload_limit`), a
        static route `/old` (unless removed), a static tenant `acme` (when asked)."""
        (self.root / "old").mkdir(exist_ok=True)
        (self.root / "old" / "file.txt").write_text("old route file\n")
        (self.root / "acme").mkdir(exist_ok=True)
        (self.root / "acme" / "site.txt").write_text("acme tenant site\n")
        text = (
            f'[server]\nbind = "127.0.0.1:{port or self.port}"\nworkers = {workers}\n'
            f'state_dir = "{self.state}"\npythonpath = ["{APPS}", "{self.root}"]\n{extra}\n'
            '[[route]]\nprefix = "/"\npython = "probe:app"\n\n'
            f'[[route]]\nprefix = "/upload"\npython = "probe:app"\n'
            f'max_body_size = "{upload_limit}"\n\n'
        )
        if old_route:
            text += f'[[route]]\nprefix = "/old"\nstatic = "{self.root / "old"}"\n\n'
        if tenant:
            text += (
                '[[tenant]]\nname = "acme"\nhosts = ["acme.localhost"]\n'
                f'  [[tenant.route]]\n  prefix = "/"\n  static = "{self.root / "acme"}"\n'
            )
        self.cfg.write_text(text)

    def url(self, port: int | None = None) -> str:
        return f"http://127.0.0.1:{port or self.port}"


def _start(launcher: Launcher, site: Site, workers: int = 2) -> Server:
    return launcher.start(["-c", str(site.cfg)], bind=False, port=site.port, workers=workers)


def _reload(site: Site) -> Finished:
    return run_wsrun(["reload", "-c", str(site.cfg)])


def _workers(srv: Server) -> set[int]:
    return set(child_pids(srv.pid))


def _gone(srv: Server, old: set[int]) -> bool:
    """Waits until none of `old` is a worker of `srv` any more."""
    return wait_for(lambda: not (_workers(srv) & old))


def _get(url: str, host: str | None = None) -> requests.Response:
    headers = {"Connection": "close"}
    if host:
        headers["Host"] = host
    return requests.get(url, headers=headers, timeout=WAIT)


def _post(url: str, size: int) -> int:
    body = b"x" * size
    return requests.post(url, data=body, headers={"Connection": "close"}, timeout=WAIT).status_code


#: Errors that mean "the server closed this idle keep-alive connection before reading the
#: request" (a draining worker closes idle keep-alive connections): only then may a client
#: resend, on a new connection (RFC 9112 section 9.3.1; the rule of tests/test_recycle.py).
STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Load:
    """A keep-alive client in a thread that GETs `/pid` until stopped. Every error and every
    status but 200 is a failure, except a request sent on a reused connection that closed
    before any byte of a response came: that one is resent once (counted in `stale_retries`)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.ok = 0
        self.stale_retries = 0
        self.failures: list[str] = []
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(WAIT)

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=WAIT)

    def _run(self) -> None:
        conn, used = self._connect(), False
        while not self._stop.is_set():
            try:
                try:
                    status, body = _pid_of(conn)
                except STALE_CONNECTION:
                    if not used:
                        raise
                    self.stale_retries += 1
                    conn.close()
                    conn, used = self._connect(), False
                    status, body = _pid_of(conn)
            except Exception as e:  # every other error is a failure, named in the report
                self.failures.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn, used = self._connect(), False
                continue
            used = True
            if status == 200:
                self.ok += 1
                self.pids.add(int(body))
            else:
                self.failures.append(f"status {status}")
        conn.close()

    def wait_served_by(self, pids: set[int]) -> bool:
        """Waits until one of `pids` answered this client (it moved to the new workers)."""
        return wait_for(lambda: bool(self.pids & pids))


def _pid_of(conn: http.client.HTTPConnection) -> tuple[int, bytes]:
    conn.request("GET", "/pid")
    response = conn.getresponse()
    return response.status, response.read()


def _visible(check: Callable[[], bool], start: float) -> float | None:
    """Seconds after `start` at which `check()` first held, polling until WAIT; None if never."""
    if wait_for(check):
        return time.monotonic() - start
    return None


def test_tenant_limit_and_route_changes_apply_under_load_without_a_failed_request(
    launcher: Launcher, tmp_path: Path
) -> None:
    site = Site(tmp_path)
    site.write()
    srv = _start(launcher, site)
    url = site.url()
    # Before: no tenant (its host reaches the probe app), a 1 KiB limit, the /old route.
    assert "acme tenant site" not in _get(url + "/site.txt", host="acme.localhost").text
    assert _post(url + "/upload/echo", 4096) == 413
    assert _get(url + "/old/file.txt").text == "old route file\n"
    before = _workers(srv)
    with Load(url) as load:
        assert wait_for(lambda: load.ok >= 20), load.failures
        site.write(upload_limit="8KiB", old_route=False, tenant=True)
        start = time.monotonic()
        done = _reload(site)
        assert done.code == 0, done.out
        seen = {
            "tenant": _visible(
                lambda: _get(url + "/site.txt", host="acme.localhost").text == "acme tenant site\n",
                start,
            ),
            "limit": _visible(lambda: _post(url + "/upload/echo", 4096) == 200, start),
            "removed route": _visible(
                lambda: "old route file" not in _get(url + "/old/file.txt").text, start
            ),
        }
        new = _workers(srv) - before
        assert load.wait_served_by(new), (load.pids, new)
        served = load.ok
        assert wait_for(lambda: load.ok >= served + 20)
    assert load.failures == [], load.failures[:5]
    assert all(t is not None and t <= VISIBLE_WITHIN for t in seen.values()), seen
    assert _gone(srv, before), "old workers still running"


def test_a_broken_file_changes_nothing_and_reload_prints_file_line_and_key(
    launcher: Launcher, tmp_path: Path
) -> None:
    site = Site(tmp_path)
    site.write()
    srv = _start(launcher, site)
    before = _workers(srv)
    # Line 3 of the file: `workers = ...`
    site.write(upload_limit="8KiB")
    site.cfg.write_text(site.cfg.read_text().replace("workers = 2", 'workers = "many"'))
    done = _reload(site)
    assert done.code == 1, done.out
    assert f"{site.cfg}:3" in done.out and "server.workers" in done.out, done.out
    assert f"{site.cfg}:3" in srv.log(), srv.log()
    # Nothing changed: the same workers serve the old limit.
    assert _post(site.url() + "/upload/echo", 4096) == 413
    assert _workers(srv) == before
    # The file fixed, a reload applies it.
    site.write(upload_limit="8KiB")
    done = _reload(site)
    assert done.code == 0, done.out
    assert _post(site.url() + "/upload/echo", 4096) == 200


def test_reload_without_a_running_master_exits_2(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.write()
    done = _reload(site)
    assert done.code == 2, done.out
    assert "no running wsrun master" in done.out, done.out


def test_changed_python_code_is_served_after_reload(launcher: Launcher, tmp_path: Path) -> None:
    site = Site(tmp_path)
    app = tmp_path / "versioned.py"
    app.write_text(_versioned_app("v1"))
    site.write(extra="")
    site.cfg.write_text(site.cfg.read_text().replace("probe:app", "versioned:app", 1))
    srv = _start(launcher, site)
    assert _get(site.url() + "/").text == "v1"
    app.write_text(_versioned_app("v2"))
    done = _reload(site)
    assert done.code == 0, done.out
    assert _get(site.url() + "/").text == "v2"
    assert srv.running()


def _versioned_app(version: str, import_delay: float = 0.0) -> str:
    return (
        "import time\n"
        f"time.sleep({import_delay})\n\n\n"
        "def app(environ, start_response):\n"
        '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
        f'    return [b"{version}"]\n'
    )


def test_worker_count_changes_on_reload(launcher: Launcher, tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.write(workers=2)
    srv = _start(launcher, site, workers=2)
    first = _workers(srv)
    assert len(first) == 2
    for count in (3, 1):
        before = _workers(srv)
        site.write(workers=count)
        with Load(site.url()) as load:
            done = _reload(site)
            assert done.code == 0, done.out
            assert _gone(srv, before), "old workers still running"
            now = _workers(srv)
            assert len(now) == count, (count, now)
            assert load.wait_served_by(now), (load.pids, now)
        assert load.failures == [], load.failures[:5]
        assert set(srv.ready_pids()) >= now


def test_fewer_workers_reset_no_connection_waiting_to_be_accepted(
    launcher: Launcher, tmp_path: Path
) -> None:
    # Shrinking used to close the extra indexes' listeners, resetting every connection in
    # their accept queues; they are retired instead (steered out, emptied by a kept worker).
    site = Site(tmp_path)
    site.write(workers=3)
    srv = _start(launcher, site, workers=3)
    with FreshConnections(site.url()) as load:
        for count in (1, 3, 1, 2):
            before = _workers(srv)
            site.write(workers=count)
            done = _reload(site)
            assert done.code == 0, done.out
            assert _gone(srv, before), "old workers still running"
            assert len(_workers(srv)) == count
            served = load.ok
            assert wait_for(lambda s=served: load.ok >= s + 200), load.failures[:5]
    assert load.failures == [], (len(load.failures), load.failures[:5])


def test_bind_address_changes_on_reload(launcher: Launcher, tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.write()
    srv = _start(launcher, site)
    old_port, new_port = site.port, free_port()
    before = _workers(srv)
    site.write(port=new_port)
    done = _reload(site)
    assert done.code == 0, done.out
    assert _get(site.url(new_port) + "/pid").status_code == 200
    assert _gone(srv, before), "old workers still running"
    assert wait_for(lambda: not port_open(old_port)), f"{old_port} still accepts"
    # And back: the old address is bound again, the new one closed.
    site.write(port=old_port)
    done = _reload(site)
    assert done.code == 0, done.out
    assert _get(site.url(old_port) + "/pid").status_code == 200
    assert wait_for(lambda: not port_open(new_port)), f"{new_port} still accepts"


def test_sighup_during_a_reload_is_coalesced_not_lost(launcher: Launcher, tmp_path: Path) -> None:
    site = Site(tmp_path)
    app = tmp_path / "versioned.py"
    app.write_text(_versioned_app("v1"))
    site.write(workers=1)
    site.cfg.write_text(site.cfg.read_text().replace("probe:app", "versioned:app", 1))
    srv = _start(launcher, site, workers=1)
    # v2 takes a second to import: the check and the new master image each import it.
    app.write_text(_versioned_app("v2", import_delay=1.0))
    os.kill(srv.pid, signal.SIGHUP)
    assert srv.wait_log("checking the configuration (reload 1)"), srv.log()
    app.write_text(_versioned_app("v3"))
    os.kill(srv.pid, signal.SIGHUP)
    assert srv.wait_log(COALESCED), srv.log()
    assert srv.wait_log("reload 2 applied"), srv.log()
    assert srv.log_count("reload 1 applied") == 1, srv.log()
    assert _get(site.url() + "/").text == "v3"
    assert pid_alive(srv.pid)


def test_a_new_address_that_is_taken_keeps_the_old_workers_serving(
    launcher: Launcher, tmp_path: Path
) -> None:
    """`wsrun check` cannot see that an address is taken; the new master image can, and then
    the old workers keep serving until a later reload succeeds."""
    site = Site(tmp_path)
    site.write()
    srv = _start(launcher, site)
    before = _workers(srv)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    site.write(port=taken_port, upload_limit="8KiB")
    done = _reload(site)
    assert done.code == 1, done.out
    assert str(taken_port) in done.out, done.out
    assert _workers(srv) == before
    assert _post(site.url() + "/upload/echo", 4096) == 413
    taken.close()
    done = _reload(site)
    assert done.code == 0, done.out
    assert _post(site.url(taken_port) + "/upload/echo", 4096) == 200
    assert _gone(srv, before), "old workers still running"


def _series(admin: str, series: str) -> float:
    """One series of the admin listener's `/metrics` (0 when absent)."""
    text = requests.get(admin + "/metrics", timeout=WAIT).text
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_and_the_admin_listener_survive_a_reload(
    launcher: Launcher, tmp_path: Path
) -> None:
    """The metrics segment and the admin socket cross the exec as named descriptors: the
    counters neither reset nor double, and the admin address answers throughout."""
    site = Site(tmp_path)
    admin_port = free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    extra = f'\n[admin]\nbind = "127.0.0.1:{admin_port}"\n'
    site.write(extra=extra)
    srv = _start(launcher, site)
    series = 'wsrun_http_requests_total{route="/",tenant="",code="200"}'
    for _ in range(30):
        assert _get(site.url() + "/pid").status_code == 200
    assert wait_for(lambda: _series(admin, series) == 30), _series(admin, series)
    before = _workers(srv)
    site.write(extra=extra, upload_limit="8KiB")
    done = _reload(site)
    assert done.code == 0, done.out
    assert _gone(srv, before), "old workers still running"
    assert _series(admin, series) == 30, "a reload must neither reset nor double a counter"
    for _ in range(10):
        assert _get(site.url() + "/pid").status_code == 200
    assert wait_for(lambda: _series(admin, series) == 40), _series(admin, series)
    status = requests.get(admin + "/status", timeout=WAIT).json()
    assert {w["pid"] for w in status["workers"]} == _workers(srv), status["workers"]
