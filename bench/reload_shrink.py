"""Connections lost when a reload changes the worker count, under a load that opens a new
connection per request (what tests/test_reload.py asserts is zero, counted here per binary).

    python3 bench/reload_shrink.py [CYCLES]     # 6 by default; WSRUN_BIN as for the tests

A server (the probe app at `/`, 3 workers) is started; `THREADS` [4] client threads each send
`GET /pid` on a fresh connection (`Connection: close`) in a loop, so every listener's accept
queue keeps holding connections; each cycle reloads to 1 worker, then back to 3, `PAUSE_S`
[1.0] s apart. Prints one `MEASURE` line: requests answered 200, failures (resets, other
errors, other statuses) and the first few. Before the retired-listener change (2026-12-05) a
shrink closed the extra indexes' listeners and reset what waited in their queues. Nothing is
asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.fresh_connections import FreshConnections
from support.http import free_port
from support.launcher import Server
from support.paths import APPS, wsrun_bin


def _config(root: Path, port: int, workers: int) -> str:
    return (
        f'[server]\nbind = "127.0.0.1:{port}"\nworkers = {workers}\n'
        f'state_dir = "{root / "state"}"\npythonpath = ["{APPS}"]\n\n'
        '[[route]]\nprefix = "/"\npython = "probe:app"\n'
    )


def _reload(cfg: Path) -> None:
    done = subprocess.run(
        [wsrun_bin(), "reload", "-c", str(cfg)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"wsrun reload failed: {done.stdout}{done.stderr}")


def main(cycles: int) -> int:
    threads = int(os.environ.get("THREADS", "4"))
    pause = float(os.environ.get("PAUSE_S", "1.0"))
    with tempfile.TemporaryDirectory(prefix="wsrun-shrink-") as tmp:
        root = Path(tmp)
        port = free_port()
        cfg = root / "wsrun.toml"
        cfg.write_text(_config(root, port, 3))
        server = Server(root, name="shrink")
        server.start(["-c", str(cfg)], cwd=root, bind=False, port=port, workers=3)
        started = time.monotonic()
        try:
            with FreshConnections(f"http://127.0.0.1:{port}", threads) as clients:
                for _ in range(cycles):
                    for workers in (1, 3):
                        cfg.write_text(_config(root, port, workers))
                        _reload(cfg)
                        time.sleep(pause)
        finally:
            server.stop()
        took = time.monotonic() - started
    print(
        f"MEASURE reload_shrink cycles={cycles} threads={threads} seconds={took:.1f} "
        f"ok={clients.ok} failures={len(clients.failures)} first={clients.failures[:3]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6))
