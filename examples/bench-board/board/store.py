"""The board's database: one SQLite file (`BENCH_BOARD_DB`, default `board.sqlite3` next to
wsrun.toml) with a `runs` table (the figures the pages filter and chart, plus the whole record)
and a `histogram` table (each run's latency buckets).

Owns: the schema, inserting a checked record in one transaction, and the queries the pages
need. Must not touch: HTTP, HTML. A connection per call: wsrun may run the app in several
threads and workers, and SQLite's own locking (WAL) keeps them apart.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    started_at INTEGER NOT NULL,
    scenario TEXT NOT NULL,
    mode TEXT NOT NULL,
    target TEXT NOT NULL,
    duration_s REAL NOT NULL,
    requests INTEGER NOT NULL,
    requests_per_s REAL NOT NULL,
    transfer_bytes_per_s REAL NOT NULL,
    p50_ms REAL NOT NULL,
    p90_ms REAL NOT NULL,
    p99_ms REAL NOT NULL,
    p999_ms REAL NOT NULL,
    max_ms REAL NOT NULL,
    mean_ms REAL NOT NULL,
    errors INTEGER NOT NULL,
    machine TEXT NOT NULL,
    cpu_model TEXT NOT NULL,
    cpu_count INTEGER NOT NULL,
    version TEXT NOT NULL,
    python_version TEXT NOT NULL,
    wasmtime_version TEXT NOT NULL,
    git_commit TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS histogram (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    latency_us INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS histogram_run ON histogram (run_id);
"""

#: The query-string filters and the column each one matches.
FILTERS = {"scenario": "scenario", "machine": "machine", "version": "version"}


def db_path() -> str:
    return os.environ.get("BENCH_BOARD_DB") or os.path.join(HERE, "board.sqlite3")


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db_path(), timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(SCHEMA)
        yield conn
    finally:
        conn.close()


def insert(record: dict[str, Any], received_at: float) -> int:
    """Stores a checked record and its histogram; returns the new run's id."""
    lat = record["latency_ms"]
    machine = record["machine"]
    versions = machine["versions"]
    row = (
        received_at,
        record["started_at"],
        record["scenario"],
        record["mode"],
        record["target"],
        record["duration_s"],
        record["requests"],
        record["requests_per_s"],
        record["transfer_bytes_per_s"],
        lat["p50"],
        lat["p90"],
        lat["p99"],
        lat["p999"],
        lat["max"],
        lat["mean"],
        sum(record["errors"].values()),
        machine["hostname"],
        machine["cpu_model"],
        machine["cpu_count"],
        versions["wsrun"],
        versions["python"],
        versions["wasmtime"],
        machine.get("git_commit"),
        json.dumps(record),
    )
    with connect() as conn, conn:
        cur = conn.execute(
            "INSERT INTO runs (received_at, started_at, scenario, mode, target, duration_s,"
            " requests, requests_per_s, transfer_bytes_per_s, p50_ms, p90_ms, p99_ms, p999_ms,"
            " max_ms, mean_ms, errors, machine, cpu_model, cpu_count, version, python_version,"
            " wasmtime_version, git_commit, record)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        run_id = cur.lastrowid
        assert run_id is not None
        conn.executemany(
            "INSERT INTO histogram (run_id, latency_us, count) VALUES (?, ?, ?)",
            [(run_id, us, n) for us, n in record["histogram"]],
        )
        return run_id


@dataclass
class Listing:
    runs: list[sqlite3.Row]
    choices: dict[str, list[str]]


def runs(filters: dict[str, str], limit: int = 500) -> Listing:
    """The runs matching `filters` (oldest first), and every value each filter can take."""
    where = [f"{FILTERS[k]} = ?" for k in filters]
    sql = "SELECT * FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at, id LIMIT ?"
    with connect() as conn:
        rows = conn.execute(sql, [*filters.values(), limit]).fetchall()
        choices = {
            key: [r[0] for r in conn.execute(f"SELECT DISTINCT {col} FROM runs ORDER BY 1")]
            for key, col in FILTERS.items()
        }
    return Listing(rows, choices)


def run(run_id: int) -> tuple[sqlite3.Row, list[tuple[int, int]]] | None:
    """One run and its histogram buckets `(latency_us, count)`, or None."""
    with connect() as conn:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        buckets = conn.execute(
            "SELECT latency_us, count FROM histogram WHERE run_id = ? ORDER BY latency_us",
            (run_id,),
        ).fetchall()
    return row, [(b[0], b[1]) for b in buckets]
