"""Charts as inline SVG, drawn on the server: requests per second per version over time (the
runs page) and a run's latency distribution (its page). No script, no external file.

Owns: scales, marks and their classes (`point` per run, `bar` per latency bin, each with its
`data-*` figures, which the tests read back). Must not touch: the database, HTTP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 16, 40
#: Series colours, in order of first appearance.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
#: Latency bins (log-spaced) on a run's page.
BINS = 30


def _frame(title: str, body: list[str], x_label: str, y_label: str) -> str:
    plot_bottom = HEIGHT - BOTTOM
    axes = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{plot_bottom}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" y2="{plot_bottom}"'
        ' stroke="#333"/>',
        f'<text x="{(LEFT + WIDTH - RIGHT) // 2}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text x="14" y="{(TOP + plot_bottom) // 2}" text-anchor="middle"'
        f' transform="rotate(-90 14 {(TOP + plot_bottom) // 2})">{escape(y_label)}</text>',
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{WIDTH}"'
        f' height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif"'
        f' font-size="11"><title>{escape(title)}</title>' + "".join(axes + body) + "</svg>"
    )


def _y_ticks(top_value: float, fmt: str) -> list[str]:
    out = []
    for i in range(5):
        value = top_value * i / 4
        y = _scale(value, 0, top_value, HEIGHT - BOTTOM, TOP)
        out.append(
            f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"'
            ' stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:{fmt}}</text>'
        )
    return out


def _scale(v: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    if hi <= lo:
        return (out_lo + out_hi) / 2
    return out_lo + (v - lo) / (hi - lo) * (out_hi - out_lo)


def throughput(rows: Sequence[Any]) -> str:
    """req/s of each run against its start time, one coloured series per wsrun version."""
    if not rows:
        return _frame("no runs", [], "run start", "req/s")
    t0 = min(r["started_at"] for r in rows)
    t1 = max(r["started_at"] for r in rows)
    top = max(r["requests_per_s"] for r in rows) * 1.1 or 1.0
    versions = list(dict.fromkeys(r["version"] for r in rows))
    body = _y_ticks(top, ".0f")
    for i, version in enumerate(versions):
        colour = PALETTE[i % len(PALETTE)]
        series = [r for r in rows if r["version"] == version]
        points = [
            (
                _scale(r["started_at"], t0, t1, LEFT + 10, WIDTH - RIGHT - 10),
                _scale(r["requests_per_s"], 0, top, HEIGHT - BOTTOM, TOP),
                r,
            )
            for r in series
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for x, y, r in points:
            body.append(
                f'<a href="/runs/{r["id"]}"><circle class="point" data-run-id="{r["id"]}"'
                f' data-rps="{r["requests_per_s"]:.1f}" cx="{x:.1f}" cy="{y:.1f}" r="4"'
                f' fill="{colour}"><title>run {r["id"]}: {escape(r["scenario"])},'
                f" {r['requests_per_s']:.1f} req/s</title></circle></a>"
            )
        ly = TOP + 14 + 16 * i
        body.append(
            f'<rect class="legend" x="{WIDTH - RIGHT + 12}" y="{ly - 9}" width="10" height="10"'
            f' fill="{colour}"/><text x="{WIDTH - RIGHT + 26}" y="{ly}">wsrun'
            f" {escape(version)}</text>"
        )
    for t, anchor in ((t0, "start"), (t1, "end")):
        x = LEFT + 10 if anchor == "start" else WIDTH - RIGHT - 10
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
        body.append(
            f'<text x="{x}" y="{HEIGHT - BOTTOM + 14}" text-anchor="{anchor}">{stamp}</text>'
        )
    return _frame("requests per second per version over time", body, "run start (UTC)", "req/s")


def bins(buckets: Sequence[tuple[int, int]]) -> list[tuple[float, float, int]]:
    """Buckets `(latency_us, count)` gathered into at most `BINS` log-spaced bins
    `(low_ms, high_ms, count)`; empty bins are kept so the axis stays even."""
    if not buckets:
        return []
    lo = max(min(us for us, _ in buckets), 1)
    hi = max(max(us for us, _ in buckets), lo + 1)
    step = (math.log(hi) - math.log(lo)) / BINS
    edges = [math.exp(math.log(lo) + step * i) for i in range(BINS + 1)]
    counts = [0] * BINS
    for us, n in buckets:
        i = int((math.log(max(us, lo)) - math.log(lo)) / step) if step else 0
        counts[min(max(i, 0), BINS - 1)] += n
    return [(edges[i] / 1000, edges[i + 1] / 1000, counts[i]) for i in range(BINS)]


def latency(buckets: Sequence[tuple[int, int]], marks: dict[str, float]) -> str:
    """The latency distribution: one bar per log-spaced bin, percentile marks as lines."""
    binned = bins(buckets)
    if not binned:
        return _frame("no latency recorded", [], "latency (ms, log scale)", "requests")
    top = max(n for _, _, n in binned) * 1.1 or 1.0
    lo_ms, hi_ms = binned[0][0], binned[-1][1]
    x_of = lambda ms: _scale(  # noqa: E731
        math.log(max(ms, lo_ms)), math.log(lo_ms), math.log(hi_ms), LEFT, WIDTH - RIGHT
    )
    body = _y_ticks(top, ".0f")
    for low, high, n in binned:
        x0, x1 = x_of(low), x_of(high)
        y = _scale(n, 0, top, HEIGHT - BOTTOM, TOP)
        body.append(
            f'<rect class="bar" data-count="{n}" x="{x0:.1f}" y="{y:.1f}"'
            f' width="{max(x1 - x0 - 1, 1):.1f}" height="{HEIGHT - BOTTOM - y:.1f}"'
            f' fill="#1f77b4"><title>{low:.3f}-{high:.3f} ms: {n}</title></rect>'
        )
    for i, (name, ms) in enumerate(marks.items()):
        x = x_of(min(ms, hi_ms))
        body.append(
            f'<line class="pct" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}"'
            f' stroke="#d62728" stroke-dasharray="3,3"/><text x="{WIDTH - RIGHT + 12}"'
            f' y="{TOP + 14 + 16 * i}" fill="#d62728">{escape(name)} {ms:.3f} ms</text>'
        )
    for ms, anchor in ((lo_ms, "start"), (hi_ms, "end")):
        body.append(
            f'<text x="{x_of(ms):.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="{anchor}">'
            f"{ms:.3f}</text>"
        )
    return _frame("latency distribution", body, "latency (ms, log scale)", "requests")
