"""A worker that crashes in a loop is restarted with a growing back-off (logged), not in a
busy loop, and the master keeps going; once the cause is gone a worker starts and serves.

`tests/apps/crash_app.py` makes every worker exit right after the fork while a gate file
exists (as an app whose per-worker set-up fails would), so the master sees quick deaths.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from support.launcher import Launcher
from support.paths import APPS, WAIT

BACKOFF_LINE = re.compile(r"worker 0 failed (\d+) times in a row; next start in ([\d.]+)(ms|s)")


def _seconds(value: str, unit: str) -> float:
    return float(value) / (1000 if unit == "ms" else 1)


def test_crash_looping_worker_backs_off_then_recovers(launcher: Launcher, tmp_path: Path) -> None:
    gate = tmp_path / "crash"
    gate.touch()
    env = {"CRASH_APP_WHILE": str(gate)}
    args = ["crash_app:app", "--pythonpath", str(APPS)]
    srv = launcher.start(args, env=env, wait="none")
    # Six quick deaths in a row take 0 + 0.1 + 0.2 + 0.4 + 0.8 s of back-off.
    assert srv.wait_log("failed 6 times in a row"), srv.log()[-3000:]
    time.sleep(1.0)  # inside the 1.6 s back-off after the sixth death: no start meanwhile
    delays = [(int(n), _seconds(v, u)) for n, v, u in BACKOFF_LINE.findall(srv.log())]
    crashes = [x for x in srv.calls() if x.startswith("crash ")]
    assert srv.running(), srv.log()[-3000:]
    assert [n for n, _ in delays] == list(range(2, len(delays) + 2)), delays
    assert [d for _, d in delays][:5] == [0.1, 0.2, 0.4, 0.8, 1.6], delays
    # Every start was a logged, backed-off one: no busy loop of forks.
    # (a crash's line may precede the master's line for it by a moment)
    assert len(delays) + 1 <= len(crashes) <= len(delays) + 2, (crashes, delays)
    # The cause goes away: the next start serves, and the master never stopped.
    gate.unlink()
    srv.wait_ready(timeout=WAIT)
    r = requests.get(srv.url + "/", timeout=WAIT)
    assert r.status_code == 200 and int(r.text) in srv.ready_pids()
    assert srv.stop() == 0
