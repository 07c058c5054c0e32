"""Durable-jobs benchmark app for bench/jobs.sh: `jobs_bench:app`, one worker.

Routes:

* ``/plain``   — the hello answer, nothing else (the baseline);
* ``/enqueue`` — the same answer, after ``wsrun.enqueue("/sink", body=b"x")``, whose duration
  is recorded with ``time.perf_counter_ns()`` (the last ``MAX_SAMPLES`` calls are kept);
* ``/burst?n=N`` — N enqueue calls in one request (a backlog for the drain-rate figure); records
  when it answered and how many jobs had been delivered by then;
* ``/sink``    — the job target: counts deliveries (and distinct ``wsrun-job-id`` values, so a
  redelivery shows as a duplicate);
* ``/stats``   — JSON: counters (``enqueue_ns`` is the time spent in all enqueue calls),
  enqueue-call p50/p99/max in µs over the kept samples and the mean over all calls, and
  ``perf_counter_ns`` timestamps (first/last enqueue, first/last delivery, now);
* ``/reset``   — zeroes all of it.

The counters are module globals under one lock: exact with one worker process (``--workers 1``),
whatever ``--threads``.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import wsrun

StartResponse = Callable[..., Any]

BODY = b"Hello, world!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
MAX_SAMPLES = 200_000  # enqueue-call durations kept (the newest ones)
MAX_IDS = 2_000_000  # distinct job ids remembered for the duplicate count
MAX_BURST = 200_000  # largest n of /burst

lock = threading.Lock()
samples: deque[int] = deque(maxlen=MAX_SAMPLES)
job_ids: set[str] = set()
counters: dict[str, int] = {}
stamps: dict[str, int] = {}


def reset() -> None:
    """Forget every sample, id, counter and timestamp."""
    samples.clear()
    job_ids.clear()
    counters.update(
        enqueued=0,
        enqueue_errors=0,
        enqueue_ns=0,
        deliveries=0,
        duplicates=0,
        retries=0,
        delivered_at_burst_end=0,
    )
    stamps.update(first_enqueue=0, last_enqueue=0, first_delivery=0, last_delivery=0, burst_end=0)


reset()


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile ``q`` (0-100) of an ascending list; 0 for an empty one."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def stats() -> dict[str, Any]:
    """The counters, enqueue-call percentiles (µs) and timestamps (perf_counter_ns)."""
    ordered = sorted(samples)
    return {
        **counters,
        "samples": len(ordered),
        "enqueue_p50_us": round(percentile(ordered, 50) / 1000, 1),
        "enqueue_p99_us": round(percentile(ordered, 99) / 1000, 1),
        "enqueue_max_us": round((ordered[-1] if ordered else 0) / 1000, 1),
        "enqueue_mean_us": round(counters["enqueue_ns"] / max(1, counters["enqueued"]) / 1000, 1),
        **{f"{name}_ns": value for name, value in stamps.items()},
        "now_ns": time.perf_counter_ns(),
    }


def enqueue_one() -> None:
    """Queue one job to /sink and record how long the call took."""
    start = time.perf_counter_ns()
    try:
        wsrun.enqueue("/sink", body=b"x")
    except Exception:
        with lock:
            counters["enqueue_errors"] += 1
        raise
    end = time.perf_counter_ns()
    with lock:
        samples.append(end - start)
        counters["enqueued"] += 1
        counters["enqueue_ns"] += end - start
        stamps["first_enqueue"] = min(stamps["first_enqueue"] or start, start)
        stamps["last_enqueue"] = max(stamps["last_enqueue"], end)


def deliver(environ: dict[str, Any]) -> None:
    """Count one delivery of a job to /sink."""
    with lock:
        count_delivery(environ, time.perf_counter_ns())


def count_delivery(environ: dict[str, Any], now: int) -> None:
    """The counting part of `deliver` (under `lock`)."""
    counters["deliveries"] += 1
    stamps["first_delivery"] = stamps["first_delivery"] or now
    stamps["last_delivery"] = now
    if environ.get("HTTP_WSRUN_JOB_ATTEMPT", "1") != "1":
        counters["retries"] += 1
    job_id = environ.get("HTTP_WSRUN_JOB_ID", "")
    if job_id in job_ids:
        counters["duplicates"] += 1
    elif len(job_ids) < MAX_IDS:
        job_ids.add(job_id)


def burst(environ: dict[str, Any]) -> bytes:
    """Enqueue ``n`` jobs (query string, default 1000) in a row; answers how many."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        n = min(MAX_BURST, max(0, int(query.get("n", ["1000"])[0])))
    except ValueError:
        n = 1000
    for _ in range(n):
        enqueue_one()
    stamps["burst_end"] = time.perf_counter_ns()
    counters["delivered_at_burst_end"] = counters["deliveries"]
    return f"{n}\n".encode()


def answer(
    start_response: StartResponse, body: bytes, content_type: str, status: str = "200 OK"
) -> list[bytes]:
    """A response with ``body``."""
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Dispatch on PATH_INFO; anything unknown is a 404."""
    path = environ.get("PATH_INFO", "")
    if path == "/plain":
        start_response("200 OK", HEADERS)
        return [BODY]
    if path == "/enqueue":
        enqueue_one()
        start_response("200 OK", HEADERS)
        return [BODY]
    if path == "/burst":
        return answer(start_response, burst(environ), "text/plain")
    if path == "/sink":
        deliver(environ)
        return answer(start_response, b"ok", "text/plain")
    if path == "/stats":
        return answer(start_response, json.dumps(stats()).encode(), "application/json")
    if path == "/reset":
        reset()
        return answer(start_response, b"reset", "text/plain")
    return answer(start_response, b"not found", "text/plain", "404 Not Found")
