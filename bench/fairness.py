"""CPU fairness between tenants on one worker's slow lane (issue 11, finding 7).

Tenant B's compute-bound request (the `hostile` component's `spin&work=N`: a fixed amount of
computing) is timed alone, then again while tenant A runs SPINNERS requests that compute for
much longer (`spin&ms=...`), all on one worker. Before per-tenant turns in the slow lane, B got
1/(SPINNERS+1) of the slow lane's thread; with them it gets half, whatever SPINNERS is.

    python3 bench/fairness.py [--work N] [--spinners K] [--rounds R] [--old]
    # WSRUN_BIN, WSRUN_HANDLERS as for the tests

Prints one `MEASURE fairness ...` line per round and the medians; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.launcher import Server
from support.wasm import state_args, wasm_handler

SPINNING = "hostile: spinning"


def config(tmp: Path, cpu_time: bool) -> Path:
    hostile = wasm_handler("hostile")
    budget = 'cpu_time = "120s"\n' if cpu_time else ""
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "a"
hosts = ["a.test"]
timeout = "120s"
{budget}
  [[tenant.route]]
  prefix = "/h"
  wasm = "{hostile}"

[[tenant]]
name = "b"
hosts = ["b.test"]
timeout = "120s"
{budget}
  [[tenant.route]]
  prefix = "/h"
  wasm = "{hostile}"
"""
    )
    return cfg


def timed_b(srv: Server, work: int) -> float:
    start = time.perf_counter()
    r = requests.get(
        f"{srv.url}/h?attack=spin&work={work}", headers={"Host": "b.test"}, timeout=300
    )
    took = time.perf_counter() - start
    assert r.status_code == 200, (r.status_code, r.text)
    return took


def beside_spinners(srv: Server, work: int, spinners: int, spin_ms: int) -> float:
    """B's time while `spinners` of A's requests compute (each for `spin_ms` of wall time)."""
    before = srv.log_count(SPINNING)
    threads = [
        threading.Thread(
            target=lambda: requests.get(
                f"{srv.url}/h?attack=spin&ms={spin_ms}",
                headers={"Host": "a.test"},
                timeout=300,
            )
        )
        for _ in range(spinners)
    ]
    for t in threads:
        t.start()
    assert srv.wait_log(SPINNING, count=before + spinners), "A's spinners did not start"
    time.sleep(0.1)  # let them reach the slow lane
    took = timed_b(srv, work)
    for t in threads:
        t.join()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=int, default=400, help="B's millions of rounds")
    parser.add_argument("--spinners", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--old", action="store_true", help="a build without `cpu_time` (before issue 11)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        srv = Server(tmp, name="fairness")
        try:
            srv.start(["-c", str(config(tmp, cpu_time=not args.old)), *state_args(tmp)], cwd=tmp)
            timed_b(srv, 10)  # warm-up: compile cache, first instance
            alone, beside = [], []
            for n in range(args.rounds):
                a = timed_b(srv, args.work)
                spin_ms = int(a * 1000 * (args.spinners + 2)) + 2000
                b = beside_spinners(srv, args.work, args.spinners, spin_ms)
                alone.append(a)
                beside.append(b)
                print(
                    f"MEASURE fairness round={n + 1} work={args.work} alone={a:.3f}s "
                    f"beside_{args.spinners}_spinners={b:.3f}s ratio={b / a:.2f}",
                    flush=True,
                )
            ma, mb = statistics.median(alone), statistics.median(beside)
            print(
                f"MEASURE fairness median alone={ma:.3f}s beside={mb:.3f}s ratio={mb / ma:.2f} "
                f"(fair share: ~2.0 whatever the spinner count; 1 thread per tenant turn)"
            )
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
