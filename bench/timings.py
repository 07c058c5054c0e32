"""How long things take, measured where the tests only check their order.

The end-to-end tests assert what happens and in which order; the durations that used to be
asserted there (with budgets that a loaded CI machine could miss) are measured here instead,
each printed next to the budget it once had:

    python3 bench/timings.py [NAME ...]      # all by default; WSRUN_BIN, WSRUN_HANDLERS as for tests

  reload   --watch: from writing a new version to serving it (was: under 0.5 s)
  cache    start with 10 cached handlers: spawn to ready, and to the first answer (was: 1 s)
  defer    a response whose deferred call sleeps 0.3 s (was: answered in under 0.25 s)
  timer    gaps of an in-process 0.2 s timer (was: each firing within 0.1 s of its slot)
  delay    a job queued with delay 0.6 s: how late after the delay (was: under 0.4 s)
  timeout  a spinning guest with timeout 500ms: when the 504 comes (was: 0.45-2 s)
  restart  a killed worker: until its replacement is ready (was: within 10 s)

Each prints one `MEASURE name ...` line. Runs take a few seconds each; nothing is asserted.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.launcher import Server
from support.paths import APPS, wait_for
from support.wasm import hello_body, hello_rev, state_args, wasm_handler

JOBS_CONFIG = (
    '[server]\nstate_dir = "state"\n\n[[route]]\nprefix = "/app"\npython = "jobs_app:app"\n'
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _count(srv: Server, kind: str) -> int:
    return sum(x.startswith(kind) for x in srv.calls())


def _jobs_server(tmp: Path) -> Server:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(JOBS_CONFIG)
    return Server(tmp, "jobs").start(["-c", str(cfg), "--pythonpath", str(APPS)], cwd=tmp)


def reload(tmp: Path) -> None:
    watched = tmp / "live"
    watched.mkdir()
    target = watched / "hello.wasm"
    target.write_bytes(hello_rev(0))
    srv = Server(tmp, "reload").start(["--watch", str(watched), *state_args(tmp)], cwd=tmp)
    latencies = []
    try:
        with requests.Session() as s:
            for rev in range(1, 11):
                target.write_bytes(hello_rev(rev))
                written = time.monotonic()
                wait_for(
                    lambda rev=rev: s.get(srv.url + "/hello", timeout=30).text == hello_body(rev)
                )
                latencies.append(time.monotonic() - written)
    finally:
        srv.stop()
    print(
        f"MEASURE reload median_ms={_ms(statistics.median(latencies))} "
        f"max_ms={_ms(max(latencies))} budget_ms=500"
    )


def cache(tmp: Path) -> None:
    args = [*state_args(tmp)]
    for n in range(1, 11):
        f = tmp / f"h{n}.wasm"
        f.write_bytes(hello_rev(n))
        args += ["--wasm", f"/h{n}={f}"]
    for run in ("cold", "cached"):
        started = time.monotonic()
        srv = Server(tmp, f"cache-{run}").start(args, cwd=tmp)
        ready = time.monotonic() - started
        requests.get(srv.url + "/h1", timeout=30)
        answered = time.monotonic() - started
        srv.stop()
        print(
            f"MEASURE cache {run} ready_ms={_ms(ready)} first_answer_ms={_ms(answered)} budget_ms=1000"
        )


def defer(tmp: Path) -> None:
    srv = _jobs_server(tmp)
    try:
        took = []
        for _ in range(5):
            started = time.monotonic()
            requests.get(srv.url + "/app/defer", timeout=30)
            took.append(time.monotonic() - started)
            wait_for(lambda n=len(took): _count(srv, "deferred") >= n)  # noqa: B008
    finally:
        srv.stop()
    print(f"MEASURE defer response_ms max={_ms(max(took))} deferred_sleep_ms=300 budget_ms=250")


def timer(tmp: Path) -> None:
    srv = _jobs_server(tmp)
    try:
        t0 = float(requests.get(srv.url + "/app/timer?seconds=0.2", timeout=30).text)
        wait_for(lambda: sum(x.startswith("timer") for x in srv.calls()) >= 6)
        fired = [float(x.split()[2]) for x in srv.calls() if x.startswith("timer")][:6]
    finally:
        srv.stop()
    late = [at - (t0 + 0.2 * k) for k, at in enumerate(fired, start=1)]
    print(f"MEASURE timer lateness_ms={[round(x * 1000) for x in late]} budget_ms=100")


def delay(tmp: Path) -> None:
    srv = _jobs_server(tmp)
    try:
        queued = time.time()
        requests.get(srv.url + "/app/enqueue?path=/app/sink&delay=0.6", timeout=30)
        wait_for(lambda: any(x.startswith("sink") for x in srv.calls()))
        at = float(next(x for x in srv.calls() if x.startswith("sink")).split()[4])
    finally:
        srv.stop()
    print(f"MEASURE delay late_ms={_ms(at - queued - 0.6)} budget_ms=400")


def timeout(tmp: Path) -> None:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f'[[route]]\nprefix = "/loop"\nwasm = "{wasm_handler("spin-loop")}"\ntimeout = "500ms"\n'
    )
    srv = Server(tmp, "timeout").start(["-c", str(cfg), *state_args(tmp)], cwd=tmp)
    try:
        took = []
        for _ in range(3):
            started = time.monotonic()
            requests.get(srv.url + "/loop", timeout=30)
            took.append(time.monotonic() - started)
    finally:
        srv.stop()
    print(f"MEASURE timeout 504_after_ms={[round(x * 1000) for x in took]} timeout_ms=500")


def restart(tmp: Path) -> None:
    srv = Server(tmp, "restart").start(["probe:app", "--pythonpath", str(APPS), "--workers", "2"])
    try:
        before = srv.ready_pids()
        started = time.monotonic()
        os.kill(before[0], signal.SIGKILL)
        srv.wait_ready_pids(exclude=before, count=1)
        took = time.monotonic() - started
    finally:
        srv.stop()
    print(f"MEASURE restart replacement_ready_ms={_ms(took)} budget_ms=10000")


ALL: dict[str, Callable[[Path], None]] = {
    "reload": reload,
    "cache": cache,
    "defer": defer,
    "timer": timer,
    "delay": delay,
    "timeout": timeout,
    "restart": restart,
}


def main(names: list[str]) -> int:
    for name in names or list(ALL):
        if name not in ALL:
            print(f"unknown measurement {name!r}; known: {', '.join(ALL)}", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix=f"wsrun-timings-{name}-") as tmp:
            ALL[name](Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
