"""The results board (examples/bench-board/), used as a person would: the board served by
`wsrun -c examples/bench-board/wsrun.toml`, `wsrun bench --suite --report` posting to it, and
its pages loaded in headless Chromium (`--dump-dom` for the checks, `--screenshot` kept as an
artifact under tests/artifacts/). What the pages show is checked against the board's database.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from conftest import REPO, TESTS, WAIT, Launcher, Server, wsrun_bin

BOARD = REPO / "examples" / "bench-board"
SUITE_DIR = REPO / "examples" / "bench-suite"
ARTIFACTS = TESTS / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_TIMEOUT = 60

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (tests/run)")


@pytest.fixture
def board(tmp_path: Path, launcher: Launcher) -> Server:
    env = {"BENCH_BOARD_DB": str(tmp_path / "board.sqlite3")}
    return launcher.start(["-c", str(BOARD / "wsrun.toml")], env=env)


def board_rows(tmp: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(tmp / "board.sqlite3")) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


def browser(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp / 'chromium'}",
        *args,
    ]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class Marks(HTMLParser):
    """The elements the checks look at, by tag and class."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.cells: dict[str, str] = {}
        self._pct: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.found.append((tag, a))
        if tag == "tr" and a.get("class") == "pct":
            self._pct = a["data-name"]

    def handle_data(self, data: str) -> None:
        if self._pct and data.strip() and data.strip() != self._pct:
            self.cells[self._pct] = data.strip()
            self._pct = None

    def of(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag and a.get("class") == cls]


def page(tmp: Path, url: str) -> Marks:
    dom = browser(tmp, "--dump-dom", url).stdout
    assert "<svg" in dom, dom[:500]
    marks = Marks()
    marks.feed(dom)
    return marks


def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.timeout(240)
def test_suite_report_shows_on_the_board(tmp_path: Path, board: Server) -> None:
    report = f"http://127.0.0.1:{board.port}/api/results"
    done = subprocess.run(
        [
            wsrun_bin(),
            "bench",
            "--suite",
            "--suite-dir",
            str(SUITE_DIR),
            "-d",
            "1",
            "-c",
            "2",
            "--report",
            report,
            "--db",
            str(tmp_path / "bench.sqlite3"),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "reported each run to the board (201)" in done.stdout, done.stdout

    runs = board_rows(tmp_path, "SELECT * FROM runs ORDER BY id")
    assert len(runs) == 10
    ids = {str(r["id"]) for r in runs}
    base = f"http://127.0.0.1:{board.port}"

    everything = page(tmp_path, f"{base}/")
    assert {a["data-run-id"] for a in everything.of("tr", "run")} == ids
    points = everything.of("circle", "point")
    assert {a["data-run-id"] for a in points} == ids
    rps = {str(r["id"]): f"{r['requests_per_s']:.1f}" for r in runs}
    assert {a["data-run-id"]: a["data-rps"] for a in points} == rps

    one = next(r for r in runs if r["scenario"] == "suite wasm long")
    filtered = page(tmp_path, f"{base}/?scenario={quote_plus(one['scenario'])}")
    assert [a["data-run-id"] for a in filtered.of("tr", "run")] == [str(one["id"])]
    assert len(filtered.of("circle", "point")) == 1
    machine = page(tmp_path, f"{base}/?machine={quote_plus(one['machine'])}&version=nope")
    assert machine.of("tr", "run") == []

    shown = page(tmp_path, f"{base}/runs/{one['id']}")
    for name, column in (("p50", "p50_ms"), ("p99", "p99_ms"), ("max", "max_ms")):
        assert shown.cells[name] == f"{one[column]:.3f}", (name, shown.cells)
    recorded = board_rows(
        tmp_path, "SELECT SUM(count) AS n FROM histogram WHERE run_id = ?", one["id"]
    )[0]["n"]
    bars = shown.of("rect", "bar")
    assert bars and sum(int(a["data-count"]) for a in bars) == recorded == one["requests"]

    ARTIFACTS.mkdir(exist_ok=True)
    for name, url in (
        ("bench-board.png", f"{base}/"),
        ("bench-board-run.png", f"{base}/runs/{one['id']}"),
    ):
        shot = ARTIFACTS / name
        shot.unlink(missing_ok=True)
        browser(tmp_path, f"--screenshot={shot}", "--window-size=1200,1500", url)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        print(f"screenshot: {shot}")


def a_record(tmp_path: Path, board: Server) -> dict[str, Any]:
    """A real run record: `wsrun bench --json` against the board's own runs page."""
    done = subprocess.run(
        [
            wsrun_bin(),
            "bench",
            f"http://127.0.0.1:{board.port}/",
            *("-n", "20", "-c", "2", "--json", "--no-store"),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def test_bad_posts_get_4xx_naming_the_field_and_store_nothing(
    tmp_path: Path, board: Server
) -> None:
    url = f"http://127.0.0.1:{board.port}/api/results"
    record = a_record(tmp_path, board)
    no_rps = {k: v for k, v in record.items() if k != "requests_per_s"}
    bad_p99 = json.loads(json.dumps(record))
    bad_p99["latency_ms"]["p99"] = "fast"
    bad_version = json.loads(json.dumps(record))
    del bad_version["machine"]["versions"]["wsrun"]
    cases = [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (json.dumps(no_rps).encode(), 400, "requests_per_s"),
        (json.dumps(bad_p99).encode(), 400, "latency_ms.p99"),
        (json.dumps(bad_version).encode(), 400, "machine.versions.wsrun"),
        (json.dumps({**record, "histogram": [[1, 2, 3]]}).encode(), 400, "histogram[0]"),
        (b" " * (1024 * 1024 + 1), 413, "body"),
    ]
    for body, status, field in cases:
        got, answer = post(url, body)
        assert (got, answer.get("field")) == (status, field), answer
        assert field in answer["error"]
    assert board_rows(tmp_path, "SELECT COUNT(*) AS n FROM runs")[0]["n"] == 0
    assert board_rows(tmp_path, "SELECT COUNT(*) AS n FROM histogram")[0]["n"] == 0

    got, answer = post(url, json.dumps(record).encode())
    assert got == 201, answer
    (row,) = board_rows(tmp_path, "SELECT * FROM runs")
    assert answer["id"] == row["id"] and row["requests"] == 20
