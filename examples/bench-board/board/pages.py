"""The board's HTML: the runs page (filter form, req/s chart, table of runs) and a run's page
(latency percentiles, distribution chart, machine). Plain HTML and inline SVG; no script.

Owns: markup and escaping. Must not touch: the database, HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from board import charts

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
form label { margin-right: 1em; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _when(stamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


def _select(name: str, values: Sequence[str], chosen: str | None) -> str:
    options = ['<option value="">(all)</option>']
    for v in values:
        sel = " selected" if v == chosen else ""
        options.append(f'<option value="{escape(v)}"{sel}>{escape(v)}</option>')
    return f'<label>{name} <select name="{name}">{"".join(options)}</select></label>'


def runs_page(rows: Sequence[Any], choices: dict[str, list[str]], filters: dict[str, str]) -> str:
    form = (
        '<form method="get" action="/">'
        + "".join(_select(k, v, filters.get(k)) for k, v in choices.items())
        + '<button type="submit">filter</button></form>'
    )
    head = (
        "<tr><th>run</th><th>started (UTC)</th><th>scenario</th><th>req/s</th>"
        "<th>p50 ms</th><th>p99 ms</th><th>errors</th><th>machine</th><th>wsrun</th></tr>"
    )
    lines = [
        f'<tr class="run" data-run-id="{r["id"]}"><td><a href="/runs/{r["id"]}">{r["id"]}</a>'
        f'</td><td class="text">{_when(r["started_at"])}</td>'
        f'<td class="text">{escape(r["scenario"])}</td><td>{r["requests_per_s"]:.1f}</td>'
        f"<td>{r['p50_ms']:.3f}</td><td>{r['p99_ms']:.3f}</td><td>{r['errors']}</td>"
        f'<td class="text">{escape(r["machine"])}</td><td class="text">{escape(r["version"])}</td>'
        "</tr>"
        for r in reversed(rows)
    ]
    shown = ", ".join(f"{k} = {v}" for k, v in filters.items()) or "all runs"
    body = (
        f"{form}<p>{len(rows)} run(s): {escape(shown)}</p>"
        f"<h2>Requests per second per version</h2>{charts.throughput(rows)}"
        f'<h2>Runs</h2><table id="runs">{head}{"".join(lines)}</table>'
        "<p>POST runs to <code>/api/results</code>: "
        "<code>wsrun bench --suite --report http://HOST:PORT/api/results</code></p>"
    )
    return _page("wsrun bench results", body)


def run_page(row: Any, buckets: Sequence[tuple[int, int]]) -> str:
    marks = {
        "p50": row["p50_ms"],
        "p90": row["p90_ms"],
        "p99": row["p99_ms"],
        "p99.9": row["p999_ms"],
        "max": row["max_ms"],
    }
    pct = "".join(
        f'<tr class="pct" data-name="{n}"><th>{n}</th><td>{v:.3f}</td></tr>'
        for n, v in marks.items()
    )
    record = json.loads(row["record"])
    statuses = ", ".join(f"{s}: {n}" for s, n in record["statuses"].items()) or "none"
    facts = {
        "scenario": row["scenario"],
        "target": row["target"],
        "started (UTC)": _when(row["started_at"]),
        "duration": f"{row['duration_s']:.2f} s",
        "requests": str(row["requests"]),
        "req/s": f"{row['requests_per_s']:.1f}",
        "statuses": statuses,
        "errors": str(row["errors"]),
        "machine": f"{row['machine']}: {row['cpu_count']} x {row['cpu_model']}",
        "kernel": record["machine"]["kernel"],
        "versions": f"wsrun {row['version']}, Python {row['python_version']},"
        f" wasmtime {row['wasmtime_version']}",
        "git commit": row["git_commit"] or "-",
    }
    facts_rows = "".join(
        f'<tr><th>{escape(k)}</th><td class="text">{escape(v)}</td></tr>' for k, v in facts.items()
    )
    back = f'<a href="/?scenario={quote(row["scenario"])}">runs of this scenario</a>'
    body = (
        f'<p><a href="/">all runs</a> · {back}</p><table id="facts">{facts_rows}</table>'
        f'<h2>Latency percentiles (ms)</h2><table id="percentiles">{pct}'
        f"<tr><th>mean</th><td>{row['mean_ms']:.3f}</td></tr></table>"
        f"<h2>Latency distribution</h2>{charts.latency(buckets, marks)}"
    )
    return _page(f"run {row['id']}: {row['scenario']}", body)


def not_found(what: str) -> str:
    return _page("not found", f"<p>{escape(what)}</p><p><a href='/'>all runs</a></p>")
