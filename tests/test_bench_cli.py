"""`wsrun bench`: the built-in load generator, driven as a user would, against a real wsrun (the
`bench_target` app, which logs what it received) and tiny Python servers where a test needs to
see connections, stall a response or receive a report.

Every run is bounded by -n or a short -d; timing assertions are wide bounds, never precise.
"""

from __future__ import annotations

import contextlib
import json
import platform
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    APPS,
    REPO,
    WAIT,
    Launcher,
    Server,
    free_port,
    port_open,
    wait_for,
    wsrun_bin,
)

#: Keys every run record (`--json`, schema 1) carries.
RECORD_KEYS = {
    "schema",
    "scenario",
    "mode",
    "target",
    "started_at",
    "settings",
    "duration_s",
    "requests",
    "requests_per_s",
    "bytes_read",
    "bytes_written",
    "transfer_bytes_per_s",
    "latency_ms",
    "statuses",
    "errors",
    "histogram",
    "machine",
}


def bench(tmp: Path, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    """Runs `wsrun bench ARGS` with its store in `tmp`."""
    return subprocess.run(
        [wsrun_bin(), "bench", *args, "--db", str(tmp / "bench.sqlite3")],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=tmp,
    )


def bench_json(tmp: Path, *args: str, timeout: float = WAIT) -> dict[str, Any]:
    done = bench(tmp, *args, "--json", timeout=timeout)
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def calls(srv: Server) -> list[tuple[str, str, int]]:
    lines = srv.call_log.read_text().split()
    return [(m, p, int(s)) for m, p, s in zip(lines[::3], lines[1::3], lines[2::3], strict=True)]


@pytest.fixture
def target(launcher: Launcher) -> Server:
    return launcher.start(["bench_target:app", "--pythonpath", str(APPS)])


# --- a tiny Python server: counts connections, can stall, keeps posted bodies -------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.connections += 1  # type: ignore[attr-defined]
        super().handle()

    def _answer(self, body: bytes = b"ok") -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        stall = self.server.stall  # type: ignore[attr-defined]
        if stall and not stall.is_set():
            stall.set()
            time.sleep(1.0)
        self._answer()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posted.append((self.path, self.headers.get("Content-Type"), body))  # type: ignore[attr-defined]
        self._answer(b'{"stored": true}')

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def tiny_server(stall_first: bool = False) -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()  # type: ignore[attr-defined]
    srv.connections = 0  # type: ignore[attr-defined]
    srv.posted = []  # type: ignore[attr-defined]
    srv.stall = threading.Event() if stall_first else None  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def url_of(srv: ThreadingHTTPServer, path: str = "/") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


# --- saturate mode --------------------------------------------------------------------------


def test_requests_flag_sends_exactly_that_many(tmp_path: Path, target: Server) -> None:
    run = bench_json(tmp_path, f"{target.url}/ok", "-n", "200", "-c", "4")
    assert run["requests"] == 200
    assert run["statuses"] == {"200": 200}
    assert run["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    assert wait_for(lambda: len(calls(target)) == 200)
    assert {(m, p) for m, p, _ in calls(target)} == {("GET", "/ok")}
    assert sum(n for _, n in run["histogram"]) == 200


def test_post_clients_send_bodies_of_the_given_size(tmp_path: Path, target: Server) -> None:
    args = ("-n", "60", "-c", "4", "--post-clients", "2", "--body-size", "3000")
    run = bench_json(tmp_path, f"{target.url}/post", *args)
    assert run["requests"] == 60
    assert wait_for(lambda: len(calls(target)) == 60)
    seen = calls(target)
    posts = [s for m, _, s in seen if m == "POST"]
    gets = [s for m, _, s in seen if m == "GET"]
    assert posts and gets, seen
    assert set(posts) == {3000}
    assert set(gets) == {0}
    assert run["bytes_written"] > 3000 * len(posts)


def test_status_codes_are_counted(tmp_path: Path, target: Server) -> None:
    assert bench_json(tmp_path, f"{target.url}/missing", "-n", "30")["statuses"] == {"404": 30}
    assert bench_json(tmp_path, f"{target.url}/boom", "-n", "20")["statuses"] == {"500": 20}


def test_refused_connections_are_counted_not_fatal(tmp_path: Path) -> None:
    run = bench_json(tmp_path, f"http://127.0.0.1:{free_port()}/", "-n", "5", "-c", "1")
    assert run["errors"]["connect"] == 5
    assert run["requests"] == 0


def test_keepalive_reuses_connections_and_no_keepalive_does_not(tmp_path: Path) -> None:
    with tiny_server() as srv:
        bench_json(tmp_path, url_of(srv), "-n", "40", "-c", "2")
        kept = srv.connections  # type: ignore[attr-defined]
        bench_json(tmp_path, url_of(srv), "-n", "40", "-c", "2", "--no-keepalive")
        fresh = srv.connections - kept  # type: ignore[attr-defined]
    assert kept == 2
    assert fresh == 40


def test_rate_holds_roughly(tmp_path: Path, target: Server) -> None:
    run = bench_json(tmp_path, f"{target.url}/ok", "--rate", "50", "-d", "2s", "-c", "2")
    # 100 intended sends in 2 s: wide bounds, this is not a timing test.
    assert 60 <= run["requests"] <= 110, run["requests"]
    assert run["settings"]["rate"] == 50


def test_rate_counts_latency_from_the_intended_send_time(tmp_path: Path) -> None:
    """The first response stalls 1 s; the requests due meanwhile must show the wait, as a
    fixed-rate client sees it (no coordinated omission): without the correction every latency
    but one would be about a millisecond."""
    with tiny_server(stall_first=True) as srv:
        run = bench_json(tmp_path, url_of(srv), "--rate", "20", "-d", "2s", "-c", "1")
    assert run["latency_ms"]["max"] >= 900
    assert run["latency_ms"]["p90"] >= 300, run["latency_ms"]


# --- slow and flood modes -------------------------------------------------------------------


def test_slow_heads_are_cut_at_the_header_timeout(tmp_path: Path, launcher: Launcher) -> None:
    srv = launcher.start(["bench_target:app", "--pythonpath", str(APPS), "--header-timeout", "1s"])
    run = bench_json(tmp_path, f"{srv.url}/", "--mode", "slow", "-c", "5", "-d", "4s")
    slow = run["slow"]
    assert slow["connections"] == 5
    assert slow["cut"] == 5, slow
    assert slow["open_at_end"] == 0
    first, _, last = slow["cut_after_s"]
    assert 0.8 <= first <= last < 4.0, slow


def test_slow_heads_stay_open_without_a_timeout_in_reach(tmp_path: Path, target: Server) -> None:
    run = bench_json(tmp_path, f"{target.url}/", "--mode", "slow", "-c", "3", "-d", "1s")
    assert run["slow"]["cut"] == 0
    assert run["slow"]["open_at_end"] == 3


def test_flood_reports_accepted_and_probe_ttfb(tmp_path: Path, target: Server) -> None:
    run = bench_json(tmp_path, f"{target.url}/ok", "--mode", "flood", "-c", "20", "-d", "2s")
    flood = run["flood"]
    assert flood["accepted"] > 0
    outcomes = ("accepted", "refused", "reset", "timed_out", "other_errors")
    assert flood["attempts"] == sum(flood[k] for k in outcomes)
    assert flood["probes"] >= 1
    # Whether the probes get through a flood is what the mode measures, not a given.
    if flood["probes"] > flood["probe_failures"]:
        assert flood["probe_ttfb_ms"][0] > 0


def test_flood_against_a_closed_port_is_all_refused(tmp_path: Path) -> None:
    run = bench_json(tmp_path, f"http://127.0.0.1:{free_port()}/", "--mode", "flood", "-d", "1s")
    flood = run["flood"]
    assert flood["accepted"] == 0
    assert flood["refused"] > 0
    assert flood["probe_failures"] == flood["probes"]


# --- output, store, report ------------------------------------------------------------------


def test_json_record_has_the_schema_and_the_machine(tmp_path: Path, target: Server) -> None:
    run = bench_json(tmp_path, f"{target.url}/ok", "-n", "10", "--scenario", "hello")
    assert set(run) >= RECORD_KEYS
    assert run["schema"] == 1
    assert run["scenario"] == "hello"
    assert set(run["latency_ms"]) == {"mean", "p50", "p90", "p99", "p999", "max"}
    machine = run["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["kernel"].startswith("Linux")
    assert machine["versions"]["wsrun"] and machine["versions"]["python"].startswith("3.")
    assert machine["versions"]["wasmtime"] == "48.0.8"


def test_summary_text_names_the_figures(tmp_path: Path, target: Server) -> None:
    done = bench(tmp_path, f"{target.url}/ok", "-n", "10")
    assert done.returncode == 0, done.stderr
    for word in ("req/s", "p50", "p99.9", "status:     200: 10", "errors:", "stored as run 1"):
        assert word in done.stdout, done.stdout


def test_history_lists_runs_and_compare_prints_differences(tmp_path: Path, target: Server) -> None:
    first = bench_json(tmp_path, f"{target.url}/ok", "-n", "20", "--scenario", "one")
    second = bench_json(tmp_path, f"{target.url}/missing", "-n", "30", "--scenario", "two")
    assert (first["id"], second["id"]) == (1, 2)
    history = bench(tmp_path, "history")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert lines[1].split()[0] == "2" and "two" in lines[1]
    assert lines[2].split()[0] == "1" and "one" in lines[2]
    compare = bench(tmp_path, "compare", "1", "2")
    assert compare.returncode == 0, compare.stderr
    requests = next(line for line in compare.stdout.splitlines() if line.startswith("requests"))
    assert requests.split()[1:] == ["20.000", "30.000", "+50.0%"]
    scenario = next(line for line in compare.stdout.splitlines() if line.startswith("scenario"))
    assert scenario.split() == ["scenario", "one", "->", "two"]


def test_report_posts_the_run_json(tmp_path: Path, target: Server) -> None:
    with tiny_server() as board:
        run = bench_json(
            tmp_path, f"{target.url}/ok", "-n", "15", "--report", url_of(board, "/api/results")
        )
        posted = board.posted  # type: ignore[attr-defined]
    assert len(posted) == 1
    path, content_type, body = posted[0]
    assert (path, content_type) == ("/api/results", "application/json")
    assert json.loads(body) == run


def test_report_to_a_dead_board_fails_with_exit_1(tmp_path: Path, target: Server) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/results"
    done = bench(tmp_path, f"{target.url}/ok", "-n", "3", "--report", dead)
    assert done.returncode == 1
    assert "--report" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["https://127.0.0.1/"], "only http://"),
        (["not-a-url"], "not an http:// URL"),
        (["http://127.0.0.1:1/", "-c", "0"], "--connections"),
        (["http://127.0.0.1:1/", "-d", "soon"], "--duration"),
        (["http://127.0.0.1:1/", "--post-clients", "20", "-c", "2"], "--post-clients"),
        (["http://127.0.0.1:1/", "-H", "broken"], "-H"),
        (["http://127.0.0.1:1/", "--mode", "sideways"], "--mode"),
        (["http://127.0.0.1:1/", "--no-such-flag"], "--no-such-flag"),
        (["compare", "1", "2"], "no run 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    done = bench(tmp_path, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "panicked" not in done.stderr


def test_a_server_that_resets_is_counted_as_read_errors(tmp_path: Path) -> None:
    """A listener that accepts and closes at once: every request is a read error."""
    with socket.socket() as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen(64)
        stop = threading.Event()

        def close_all() -> None:
            lst.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = lst.accept()
                except OSError:
                    continue
                conn.close()

        thread = threading.Thread(target=close_all, daemon=True)
        thread.start()
        try:
            run = bench_json(
                tmp_path, f"http://127.0.0.1:{lst.getsockname()[1]}/", "-n", "10", "-c", "1"
            )
        finally:
            stop.set()
            thread.join(timeout=WAIT)
    assert run["requests"] == 0
    assert run["errors"]["read"] + run["errors"]["write"] == 10


# --- --suite: the bundled Fapws3 suite, server started and stopped by the command ----------------

SUITE_DIR = REPO / "examples" / "bench-suite"
SUITE_SCENARIOS = [
    f"suite {variant} {route}"
    for variant in ("python", "wasm")
    for route in ("hello", "iterhello", "long", "getenv", "post")
]


def stored_records(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT record FROM runs ORDER BY id").fetchall()
    return [json.loads(r[0]) for r in rows]


@pytest.mark.timeout(120)
def test_suite_runs_every_scenario_against_its_own_server(tmp_path: Path) -> None:
    done = bench(
        tmp_path, "--suite", "--suite-dir", str(SUITE_DIR), "-d", "1", "-c", "2", timeout=110
    )
    assert done.returncode == 0, done.stderr
    table = done.stdout
    assert "wsrun bench --suite: 10 scenario(s)" in table, table
    assert "server stopped" in table, table
    for name in SUITE_SCENARIOS:
        assert name in table, (name, table)

    records = stored_records(tmp_path / "bench.sqlite3")
    assert [r["scenario"] for r in records] == SUITE_SCENARIOS
    by_name = {r["scenario"]: r for r in records}
    for r in records:
        assert r["requests"] > 0, r["scenario"]
        assert set(r["statuses"]) == {"200"}, (r["scenario"], r["statuses"])
        assert r["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0}
        assert r["settings"]["connections"] == 2
        assert r["machine"]["versions"]["wasmtime"] == "48.0.8"
    for variant in ("python", "wasm"):
        long = by_name[f"suite {variant} long"]
        # every response carried the whole 154 000-byte file
        assert long["bytes_read"] >= 154_000 * long["requests"]
        post = by_name[f"suite {variant} post"]
        assert post["settings"]["post_clients"] == 1
        assert post["settings"]["body_size"] == 1024
        assert by_name[f"suite {variant} hello"]["settings"]["post_clients"] == 0
    # all ten ran against one server, which is gone now
    ports = {r["target"].split("/")[2] for r in records}
    assert len(ports) == 1
    port = int(ports.pop().rsplit(":", 1)[1])
    assert not port_open(port)


def fetch(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as answer:
        body: bytes = answer.read()
        return body


def test_suite_getenv_reports_the_versions(tmp_path: Path, launcher: Launcher) -> None:
    srv = launcher.start(["-c", str(SUITE_DIR / "wsrun.toml"), "--state-dir", str(tmp_path)])
    python = fetch(srv.port, "/getenv").decode()
    assert "variant: python" in python
    assert f"python: {platform.python_version()}" in python
    assert "wsrun: wsrun/" in python
    wasm = fetch(srv.port, "/wasm/getenv").decode()
    assert "variant: wasm" in wasm and "target: wasm32-wasip2" in wasm
    for path in ("/iterhello", "/wasm/iterhello"):
        assert fetch(srv.port, path) == b"hello worlds!!"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suite", "http://127.0.0.1:1/"], "cannot be used with"),
        (["--suite", "--mode", "flood"], "--suite"),
        (["--suite", "--suite-dir", "/nonexistent"], "--suite-dir"),
    ],
)
def test_suite_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = bench(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
