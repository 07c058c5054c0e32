"""Durable jobs across nodes: PostgreSQL with 3 nodes against SQLite on one node.

Run through bench/jobs_pg.sh. Serves bench/apps/jobs_bench.py (one worker per node) and, in
ROUNDS interleaved rounds (odd rounds PostgreSQL first, even rounds SQLite first), measures:

* delivered jobs/s end to end: JOBS `/enqueue` requests (one job each, as a site's clients
  send them) spread over the nodes, CLIENTS concurrent keep-alive connections per node from
  one `wsrun bench -n` process per node, all started together; then `/stats` of every node is
  polled until all JOBS were delivered; the rate is JOBS over (last delivery - first
  enqueue), both read from `perf_counter_ns`, which is CLOCK_MONOTONIC and so comparable
  between processes here. `ENQUEUE=burst` instead sends BURSTS `/burst?n=...` requests per
  node (each enqueues its share one after another: the figure before group commit);
* the CPU split of that phase: CPU seconds of the PostgreSQL server's processes, of the
  wsrun nodes (all their processes) and of the load clients, from /proc, and their share of
  the machine's cores over the phase;
* enqueue latency at RATE enqueues/s: `/enqueue` requests paced at RATE/s for PACED_S seconds,
  spread over the nodes, one connection per node; the p99 of the in-app `wsrun.enqueue` call
  (each node's /stats, the worst node) and of the whole HTTP request (client side).

Concurrency (both stores alike): CONCURRENCY [64] is each node's `[jobs] concurrency` (jobs
in delivery at once per worker; wsrun's default is 8; 64 gave 3 nodes +11-28% over 32, SQLite
level: bench/README.md), THREADS Python threads per node [16] (`--threads`: a
blocking `wsrun.enqueue` holds its thread, so THREADS bounds the enqueues one node has in
flight, which group commit shares one commit between; with 1 the app runs on the event loop
and enqueues run one after another). SYNC_COMMIT [on]: the PostgreSQL databases'
`synchronous_commit`; `off` is a diagnostic only (it shows what the commit's fsync costs: a
commit then survives a crash of wsrun but not of the machine), never the headline figure.

PG_SLOW_MS (diagnostic): logs every statement that takes at least that many ms
(`log_min_duration_statement`) and prints, after the rounds, the slowest kinds of statement
from the server's log: how many, mean and max ms. That is how the JIT compilation of the
housekeeping's statements (22-120 ms each second) was found (bench/README.md).

Medians over rounds are printed, with the PostgreSQL / SQLite ratio of each round. The
PostgreSQL server is a throw-away `initdb` (fsync on: its commits are what a real deployment
pays, unlike the tests' fsync=off) on this machine, sharing its 2 cores with the nodes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.http import free_port  # noqa: E402
from support.postgres import PgServer  # noqa: E402

WSRUN = os.environ.get("WSRUN_BIN", str(ROOT / "target/release/wsrun"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
JOBS = int(os.environ.get("JOBS", "6000"))
RATE = int(os.environ.get("RATE", "1000"))
PACED_S = float(os.environ.get("PACED_S", "5"))
NODES = int(os.environ.get("NODES", "3"))
DRAIN_TIMEOUT = float(os.environ.get("DRAIN_TIMEOUT", "120"))
BURSTS = int(os.environ.get("BURSTS", "1"))
THREADS = int(os.environ.get("THREADS", "16"))
CLIENTS = int(os.environ.get("CLIENTS", "32"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "64"))
ENQUEUE = os.environ.get("ENQUEUE", "http")
CORES = os.cpu_count() or 1
TICK = os.sysconf("SC_CLK_TCK")
SYNC_COMMIT = os.environ.get("SYNC_COMMIT", "on")
PG_SLOW_MS = os.environ.get("PG_SLOW_MS", "")


def get(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class Node:
    def __init__(self, work: Path, name: str, backend: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = work / f"{name}.toml"
        jobs = f'backend = "{backend}"\n' if backend else ""
        cfg.write_text(
            f'[server]\nstate_dir = "{work / ("state-" + name)}"\nnode = "{name}"\n'
            f'log_level = "warn"\n\n[jobs]\nconcurrency = {CONCURRENCY}\n{jobs}\n'
            '[[route]]\nprefix = "/"\npython = "jobs_bench:app"\n'
        )
        self.log_path = work / f"{name}.log"
        log = self.log_path.open("wb")
        bind = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                *(WSRUN, "-c", str(cfg), "--pythonpath", str(ROOT / "bench/apps")),
                *("--bind", bind, "--threads", str(THREADS)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{self.url}/plain", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"node {name} did not start; see {work / name}.log") from None
                time.sleep(0.1)

    def stats(self) -> dict[str, float]:
        return json.loads(get(f"{self.url}/stats"))

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=30)


def cpu_by_group(groups: dict[str, set[int]]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the processes of each session in `groups`,
    and by every process named postgres ("postgres")."""
    used = dict.fromkeys([*groups, "postgres"], 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        session, seconds = int(fields[3]), (int(fields[11]) + int(fields[12])) / TICK
        if comm.startswith("postgres"):
            used["postgres"] += seconds
        for name, sessions in groups.items():
            if session in sessions:
                used[name] += seconds
    return used


def enqueue_clients(nodes: list[Node]) -> list[subprocess.Popen[bytes]]:
    """One `wsrun bench` per node sending its share of JOBS `/enqueue` requests."""
    share = JOBS // len(nodes)
    return [
        subprocess.Popen(
            [
                *(WSRUN, "bench", "-c", str(CLIENTS), "-n", str(share), "--timeout", "60s"),
                *("--no-store", "--json", f"{n.url}/enqueue"),
            ],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        for n in nodes
    ]


def enqueue_bursts(nodes: list[Node]) -> int:
    """BURSTS `/burst` requests per node at once (each enqueues one after another)."""
    share = JOBS // len(nodes) // BURSTS
    threads = [
        threading.Thread(target=get, args=(f"{n.url}/burst?n={share}", 300))
        for n in nodes
        for _ in range(BURSTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return share * len(nodes) * BURSTS


class Undelivered(Exception):
    """Not every job was delivered within DRAIN_TIMEOUT."""


def report_undelivered(nodes: list[Node], pg: PgServer, db: str | None) -> None:
    """What is known of jobs left undelivered: the jobs' rows, and the nodes' warnings."""
    if db:
        print(
            "jobs left (id, attempts, run_at, lease_node, lease_pid, lease_until, last_error):\n"
            + pg.psql(
                "SELECT id, attempts, run_at, lease_node, lease_pid, lease_until, last_error"
                " FROM wsrun_jobs ORDER BY id LIMIT 20",
                db=db,
            ),
            file=sys.stderr,
        )
        print(
            "dead jobs (id, attempts, last_error):\n"
            + pg.psql(
                "SELECT id, attempts, last_error FROM wsrun_dead_jobs ORDER BY id LIMIT 20", db=db
            ),
            file=sys.stderr,
        )
    for node in nodes:
        lines = node.log_path.read_text(errors="replace").splitlines()
        print(f"--- {node.log_path.name} (last 30 lines)", *lines[-30:], sep="\n", file=sys.stderr)


def burst_rate(nodes: list[Node]) -> tuple[float, dict[str, float]]:
    """Delivered jobs/s, and the CPU split of the phase (share of all cores, 0-1)."""
    for node in nodes:
        get(f"{node.url}/reset")
    groups = {"wsrun": {n.proc.pid for n in nodes}, "client": set()}
    before, started = cpu_by_group(groups), time.monotonic()
    clients: list[subprocess.Popen[bytes]] = []
    if ENQUEUE == "burst":
        total = enqueue_bursts(nodes)
    else:
        clients = enqueue_clients(nodes)
        groups["client"] = {c.pid for c in clients}
        total = JOBS // len(nodes) * len(nodes)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        if groups["client"]:
            used = cpu_by_group(groups)  # the clients' figures are gone once they exit
        stats = [n.stats() for n in nodes]
        if sum(s["deliveries"] for s in stats) >= total:
            break
        if time.monotonic() > deadline:
            sent = [json.loads(c.communicate(timeout=60)[0] or b"{}") for c in clients]
            raise Undelivered(
                f"only {sum(s['deliveries'] for s in stats)} of {total} delivered; "
                f"enqueue requests: {[(r.get('statuses'), r.get('errors')) for r in sent]}"
            )
        time.sleep(0.05)
    after, elapsed = cpu_by_group(groups), time.monotonic() - started
    if groups["client"]:
        after["client"] = used["client"]
        for client in clients:
            report = json.loads(client.communicate(timeout=60)[0] or b"{}")
            failed = sum(report.get("errors", {}).values())
            if failed or report.get("statuses", {}).keys() - {"200"}:
                raise SystemExit(f"enqueue requests failed: {report.get('statuses')} {failed}")
    first = min(s["first_enqueue_ns"] for s in stats if s["first_enqueue_ns"])
    last = max(s["last_delivery_ns"] for s in stats)
    split = {f"cpu_{k}": (after[k] - before[k]) / elapsed / CORES for k in after}
    return total / ((last - first) / 1e9), split


def paced(nodes: list[Node]) -> tuple[float, float]:
    """(worst node's in-app enqueue p99, client request p99), both in ms."""
    for node in nodes:
        get(f"{node.url}/reset")
    per_node = RATE / len(nodes)
    latencies: list[float] = []
    lock = threading.Lock()

    def pace(node: Node) -> None:
        start = time.monotonic()
        n = int(per_node * PACED_S)
        mine = []
        for i in range(n):
            due = start + i / per_node
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            t0 = time.perf_counter()
            get(f"{node.url}/enqueue")
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=pace, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    in_app = max(n.stats()["enqueue_p99_us"] for n in nodes) / 1000
    latencies.sort()
    return in_app, latencies[int(len(latencies) * 0.99) - 1]


def run(kind: str, work: Path, pg: PgServer, round_no: int) -> dict[str, float]:
    count = NODES if kind == "postgres" else 1
    backend = None
    if kind == "postgres":
        backend = pg.create_db(f"bench{round_no}")
        pg.psql(f'ALTER DATABASE "bench{round_no}" SET synchronous_commit = {SYNC_COMMIT}')
    nodes = [Node(work, f"{kind}{round_no}-{i}", backend) for i in range(count)]
    try:
        try:
            rate, split = burst_rate(nodes)
        except Undelivered as e:
            report_undelivered(nodes, pg, f"bench{round_no}" if backend else None)
            raise SystemExit(str(e)) from None
        in_app, request = paced(nodes)
    finally:
        for node in nodes:
            node.stop()
    row = {"jobs_s": rate, "enqueue_p99_ms": in_app, "request_p99_ms": request, **split}
    print(
        f"round {round_no} {kind:8} nodes={count} "
        + " ".join(f"{k}={v:.2f}" for k, v in row.items())
    )
    return row


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="wsrun-jobs-pg-") as tmp:
        work = Path(tmp)
        pg = PgServer(durable=True)
        if PG_SLOW_MS:
            pg.psql(f"ALTER SYSTEM SET log_min_duration_statement = {int(PG_SLOW_MS)}")
            pg.psql("SELECT pg_reload_conf()")
        try:
            rows: dict[str, list[dict[str, float]]] = {"postgres": [], "sqlite": []}
            for r in range(1, ROUNDS + 1):
                order = ["postgres", "sqlite"] if r % 2 else ["sqlite", "postgres"]
                for kind in order:
                    rows[kind].append(run(kind, work, pg, r))
            print(
                f"\nmedians over {ROUNDS} rounds, JOBS={JOBS}, RATE={RATE}/s, ENQUEUE={ENQUEUE}, "
                f"CLIENTS={CLIENTS}, CONCURRENCY={CONCURRENCY}, BURSTS={BURSTS}, THREADS={THREADS}, "
                f"synchronous_commit={SYNC_COMMIT} (cpu_*: share of {CORES} cores):"
            )
            for kind, runs in rows.items():
                med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                print(f"  {kind:8} " + " ".join(f"{k}={v:.2f}" for k, v in med.items()))
            ratios = [
                p["jobs_s"] / s["jobs_s"]
                for p, s in zip(rows["postgres"], rows["sqlite"], strict=True)
            ]
            print(
                f"  jobs/s ratio postgres({NODES} nodes)/sqlite(1 node) per round: "
                + ", ".join(f"{x:.2f}" for x in ratios)
                + f"; median {statistics.median(ratios):.2f}"
            )
            if PG_SLOW_MS:
                print_slow_statements(pg.dir / "server.log")
        finally:
            pg.remove()


def print_slow_statements(log: Path) -> None:
    """The statements the server logged as slow, by kind (the first words of their text)."""
    times: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if "duration: " not in line:
            continue
        text = line.partition("duration: ")[2]
        ms, _, statement = text.partition(" ms")
        what = " ".join(statement.split(":", 1)[-1].split()[:6]) or "(unnamed)"
        times.setdefault(what, []).append(float(ms))
    print(f"\nstatements slower than {PG_SLOW_MS} ms (count, mean ms, max ms):")
    ranked = sorted(times.items(), key=lambda kv: -sum(kv[1]))
    for what, values in ranked[:12]:
        print(f"  {len(values):6} {statistics.mean(values):8.1f} {max(values):8.1f}  {what}")


if __name__ == "__main__":
    main()
