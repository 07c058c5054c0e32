"""A well-behaved tenant's latency while a hostile tenant attacks, one attack at a time.

    python3 bench/hostile.py [ATTACK ...]     # all by default; WSRUN_BIN, WSRUN_HANDLERS as for tests

One worker serves tenant `evil` (the `hostile` component: memory 16MiB, timeout 5s,
max_concurrency 4, its attack's extra keys) and tenant `good` (`hello`). For each attack,
`wrk -t1 -c8` measures `good`'s p99 for DURATION seconds quiet, then again while ATTACKERS
client threads repeat the attack URL; it prints the two p99s, the issue's target (p99 within
2x quiet + 10 ms), the worker's peak RSS and what the attackers got. The tests check that each
attack is contained; this script is where its cost to the neighbour is measured (the machine is
shared and noisy: compare the two columns of one run, never absolutes across runs). The worker
runs on CPU 0, this script, wrk and the attackers on CPU 1.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.launcher import Server
from support.procfs import proc_status_kib
from support.wasm import state_args, wasm_handler

DURATION = 5
ATTACKERS = 4


@dataclass
class Attack:
    """An attack URL (query of the `hostile` component) and the tenant keys it runs under.
    `{upstream}` in either is the address of a local server that accepts connections and
    never answers (what the outbound attack floods)."""

    query: str
    tenant_keys: str = ""
    attackers: int = ATTACKERS
    #: Route `/sink` of `evil` to the `jobs` handler: its jobs' target (`to=/sink`), so the
    #: jobs are delivered too.
    sink: bool = False


ATTACKS: dict[str, Attack] = {
    "fields": Attack("fields&n=12000&size=60000"),
    "outgoing-bodies": Attack("outgoing-bodies&n=2000&size=4000000"),
    "resources": Attack("resources&n=1000000"),
    "stack": Attack("stack&depth=100000000"),
    "grow": Attack("grow&mib=14&hold_ms=200"),
    "sockets": Attack(
        "sockets&n=2000&hold=2000&url=http://{upstream}/",
        'allow_outbound = ["http://{upstream}"]\nmax_resources = 8192',
    ),
    "jobs": Attack("jobs&n=2000&to=/sink", sink=True),
    "big-jobs": Attack("big-jobs&n=100&size=1000000&to=/sink", sink=True),
    "timers": Attack("timers&n=200&period_ms=1000&to=/sink", sink=True),
    "log": Attack("log&bytes=1048576"),
    "spin": Attack("spin&ms=60000"),
}


class Upstream:
    """A local TCP server that accepts connections and never answers (a slow origin)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            del self.held[:-20000]

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def config(tmp: Path, attack: Attack, upstream: str) -> Path:
    keys = attack.tenant_keys.replace("{upstream}", upstream)
    sink = ""
    if attack.sink:
        sink = f"""
  [[tenant.route]]
  prefix = "/sink"
  wasm = "{wasm_handler("jobs")}"
"""
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[tenant]]
name = "evil"
hosts = ["evil.test"]
memory = "16MiB"
timeout = "5s"
max_concurrency = 4
{keys}
  [[tenant.route]]
  prefix = "/"
  wasm = "{wasm_handler("hostile")}"
{sink}
[[tenant]]
name = "good"
hosts = ["good.test"]
  [[tenant.route]]
  prefix = "/"
  wasm = "{wasm_handler("hello")}"
"""
    )
    return cfg


def wrk_p99_ms(url: str) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{DURATION}s", "--latency", "-H", "Host: good.test", url],
        capture_output=True,
        text=True,
        timeout=DURATION + 30,
        check=True,
    ).stdout
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    if match is None:
        raise RuntimeError(f"no p99 in wrk's output:\n{out}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


@dataclass
class Attackers:
    """Threads that repeat one attack URL until stopped, counting what they got."""

    url: str
    count: int
    got: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    r = session.get(self.url, headers={"Host": "evil.test"}, timeout=30)
                    self.got[f"{r.status_code} {r.text.strip()[:60]}"] += 1
                except requests.RequestException as err:
                    self.got[type(err).__name__] += 1

    def __enter__(self) -> Attackers:
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(self.count)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def pin_server(worker: int) -> None:
    """The worker (all its threads) on CPU 0, this script, wrk and the attackers on CPU 1, as
    bench/core.sh pins: the neighbour's latency then measures the server's sharing of its own
    CPU, not the client threads' competing with it (skipped on a 1-CPU machine)."""
    if len(os.sched_getaffinity(0)) < 2:
        return
    subprocess.run(
        ["taskset", "-a", "-p", "-c", "0", str(worker)], capture_output=True, check=False
    )
    os.sched_setaffinity(0, {1})


def measure(name: str, attack: Attack) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-"))
    srv = Server(tmp, name=name)
    upstream = Upstream()
    try:
        srv.start(["-c", str(config(tmp, attack, upstream.address)), *state_args(tmp)], cwd=tmp)
        (worker,) = srv.worker_pids()
        pin_server(worker)
        quiet = wrk_p99_ms(srv.url + "/")
        query = attack.query.replace("{upstream}", upstream.address)
        with Attackers(f"{srv.url}/?attack={query}", attack.attackers) as attackers:
            noisy = wrk_p99_ms(srv.url + "/")
        peak_mib = proc_status_kib(worker, "VmHWM") / 1024
        target = 2 * quiet + 10
        verdict = "ok" if noisy <= target else "MISSED"
        top = "; ".join(f"{n}x {what}" for what, n in attackers.got.most_common(2))
        print(
            f"MEASURE {name:16} good p99 quiet {quiet:7.2f} ms  attacked {noisy:7.2f} ms  "
            f"target {target:7.2f} ms {verdict:6}  worker peak {peak_mib:6.0f} MiB  "
            f"attacker got: {top}",
            flush=True,
        )
    finally:
        srv.stop()
        upstream.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        print(f"unknown attack(s) {unknown}; known: {', '.join(ATTACKS)}", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    for name in names or list(ATTACKS):
        measure(name, ATTACKS[name])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
