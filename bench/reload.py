"""How long a configuration reload takes (`wsrun reload -c wsrun.toml`), measured where
tests/test_reload.py only checks the issue's bound (each change visible within 2 s).

    python3 bench/reload.py [ROUNDS]     # 7 by default; WSRUN_BIN as for the tests

A server with 2 workers (the probe app at `/` and at `/upload` with a body limit) is started
once; each round flips the limit between 1 KiB and 8 KiB, runs `wsrun reload`, and measures
from its start to its exit (every worker then runs the new configuration) and to the first
request that shows the new limit (a 4 KiB POST: 413 before, 200 after, or the reverse).
Prints one `MEASURE` line with the medians and every round; nothing is asserted.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.http import free_port
from support.launcher import Server
from support.paths import APPS, WAIT, wait_for, wsrun_bin


def _config(root: Path, port: int, limit: str) -> str:
    return (
        f'[server]\nbind = "127.0.0.1:{port}"\nworkers = 2\nstate_dir = "{root / "state"}"\n'
        f'pythonpath = ["{APPS}"]\n\n'
        '[[route]]\nprefix = "/"\npython = "probe:app"\n\n'
        f'[[route]]\nprefix = "/upload"\npython = "probe:app"\nmax_body_size = "{limit}"\n'
    )


def _status(url: str) -> int:
    body = b"x" * 4096
    return requests.post(url, data=body, headers={"Connection": "close"}, timeout=WAIT).status_code


def main(rounds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="wsrun-reload-") as tmp:
        root = Path(tmp)
        port = free_port()
        cfg = root / "wsrun.toml"
        cfg.write_text(_config(root, port, "1KiB"))
        srv = Server(root, "reload").start(["-c", str(cfg)], bind=False, port=port, workers=2)
        url = f"http://127.0.0.1:{port}/upload/echo"
        done_ms: list[int] = []
        visible_ms: list[int] = []
        try:
            for i in range(rounds):
                limit, want = ("8KiB", 200) if i % 2 == 0 else ("1KiB", 413)
                cfg.write_text(_config(root, port, limit))
                start = time.monotonic()
                run = subprocess.run(
                    [wsrun_bin(), "reload", "-c", str(cfg)], capture_output=True, timeout=WAIT
                )
                done = time.monotonic() - start
                if run.returncode != 0:
                    print(run.stderr.decode(), file=sys.stderr)
                    return 1
                if not wait_for(lambda want=want: _status(url) == want):
                    print(f"round {i}: the new limit never showed", file=sys.stderr)
                    return 1
                visible = time.monotonic() - start
                done_ms.append(round(done * 1000))
                visible_ms.append(round(visible * 1000))
        finally:
            srv.stop()
    print(
        f"MEASURE config_reload rounds={rounds} workers=2 "
        f"reload_exit_median_ms={statistics.median(done_ms)} "
        f"visible_median_ms={statistics.median(visible_ms)} "
        f"reload_exit_ms={done_ms} visible_ms={visible_ms} budget_ms=2000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 7))
